"""The Data API's typed values: SqlParameter in, Field, formattedRecords values and columnMetadata out.

A parameter arrives as one typed value (``stringValue``, ``longValue``, ``blobValue``,
``arrayValue``…) and is bound as its plain value. A result column's type decides how its
values are written: which Field kind, which form in ``formattedRecords`` (with the
``resultSetOptions`` for decimals and longs), and its ``columnMetadata`` (java.sql.Types).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from .. import errors

# java.sql.Types codes, as the Data API reports them in columnMetadata.type
_JDBC = {
    "bool": 16, "boolean": 16, "bit": -7, "tinyint": -6, "int2": 5, "smallint": 5, "int4": 4, "int": 4,
    "mediumint": 4, "int8": -5, "bigint": -5, "oid": -5, "year": 4, "float4": 7, "float": 7, "float8": 8,
    "double": 8, "numeric": 2, "decimal": 3, "money": 2, "char": 1, "bpchar": 1, "varchar": 12, "text": 12,
    "tinytext": 12, "mediumtext": -1, "longtext": -1, "name": 12, "uuid": 1111, "json": 1111, "jsonb": 1111,
    "date": 91, "time": 92, "timetz": 2013, "timestamp": 93, "datetime": 93, "timestamptz": 2014,
    "bytea": -2, "binary": -2, "varbinary": -3, "blob": -4, "tinyblob": -3, "mediumblob": -4, "longblob": -4,
    "enum": 12, "set": 12, "interval": 1111,
}
_INTEGER_TYPES = {"int2", "int4", "int8", "smallint", "int", "mediumint", "bigint", "tinyint", "oid", "year", "bit"}
_FLOAT_TYPES = {"float4", "float8", "float", "double"}
_DECIMAL_TYPES = {"numeric", "decimal"}
_BINARY_TYPES = {"bytea", "binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"}
_JSON_TYPES = {"json", "jsonb"}


def parse_parameters(parameters: Any, where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A list of SqlParameter: the values to bind by name, and their type hints by name."""
    if not isinstance(parameters, list):
        raise errors.InvalidRequest(f"{where}: must be a list of {{name, value, typeHint}}", field="parameters")
    values: dict[str, Any] = {}
    hints: dict[str, str] = {}
    for index, parameter in enumerate(parameters):
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise errors.InvalidRequest(f"{where}[{index}]: needs a name", field="parameters")
        name = parameter["name"]
        values[name] = _value(parameter.get("value") or {"isNull": True}, f"{where}[{index}]")
        if parameter.get("typeHint"):
            hints[name] = parameter["typeHint"]
    return values, hints


def _value(field: Any, where: str) -> Any:
    if not isinstance(field, dict) or len(field) != 1:
        raise errors.InvalidRequest(f"{where}.value: must hold exactly one typed value", field="parameters")
    kind, value = next(iter(field.items()))
    if kind == "isNull":
        return None
    if kind in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        return value
    if kind == "blobValue":
        try:
            return base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            raise errors.InvalidRequest(f"{where}.value.blobValue: must be base64", field="parameters") from None
    if kind == "arrayValue":
        return _array(value, where)
    raise errors.InvalidRequest(f"{where}.value: unknown value type {kind!r}", field="parameters")


def _array(value: Any, where: str) -> list[Any]:
    # The Data API rejects array parameters; rdsgate binds them (PostgreSQL arrays, JSON on MySQL).
    if not isinstance(value, dict) or len(value) != 1:
        raise errors.InvalidRequest(f"{where}.value.arrayValue: must hold exactly one list", field="parameters")
    kind, items = next(iter(value.items()))
    if kind == "arrayValues":
        return [_array(item, where) for item in items]
    return list(items)


# --- result values: each column's type picks how its values are written ---------------------

NULL = {"isNull": True}


@dataclass(frozen=True)
class _Converter:
    """How one column's non-null values are written: as a Field, and in formattedRecords."""

    field: Callable[[Any], dict[str, Any]]
    plain: Callable[[Any], Any]


MASKED = _Converter(lambda value: {"stringValue": str(value)}, str)


def converter(type_name: str, output: dict[str, Any]) -> _Converter:
    if type_name.startswith("_") and len(type_name) > 1:  # a PostgreSQL array of type_name[1:]
        return _array_converter(type_name[1:], output)
    text = _TEXT_FORMATS.get(type_name)
    if text is not None:
        return _Converter(lambda value: {"stringValue": text(value)}, text)
    if type_name in _INTEGER_TYPES:
        if output["long"] == "STRING":
            return _Converter(lambda value: {"stringValue": str(value)}, str)
        return _Converter(lambda value: {"longValue": int(value)}, int)
    if type_name in _DECIMAL_TYPES and output["decimal"] == "DOUBLE_OR_LONG":
        return _Converter(_double_or_long_field, _double_or_long)
    if type_name in _FLOAT_TYPES:
        return _Converter(_double_field, _same)
    if type_name in _BINARY_TYPES:
        return _Converter(lambda value: {"blobValue": value}, _same)  # already base64, as rest-json carries blobs
    if type_name in ("bool", "boolean"):
        return _Converter(lambda value: {"booleanValue": bool(value)}, bool)
    return _Converter(_any_field, _same)


def _array_converter(element_type: str, output: dict[str, Any]) -> _Converter:
    """An array column: arrayValue of the element type's list kind; lists in formattedRecords."""
    element = converter(element_type, output)
    if element_type in _INTEGER_TYPES:
        kind, convert = "longValues", int
    elif element_type in _FLOAT_TYPES:
        kind, convert = "doubleValues", _same
    elif element_type in ("bool", "boolean"):
        kind, convert = "booleanValues", bool
    else:
        kind, convert = "stringValues", lambda value: _as_text(element.plain(value))
    # A json/jsonb element may itself be a JSON array: only the outer list is the SQL array.
    nested = element_type not in _JSON_TYPES

    def field(items: list[Any]) -> dict[str, Any]:
        if nested and any(isinstance(item, list) for item in items):
            return {"arrayValues": [field(item) if isinstance(item, list) else {kind: [item]} for item in items]}
        return {kind: [None if item is None else convert(item) for item in items]}

    def plain(items: list[Any]) -> list[Any]:
        return [None if item is None else plain(item) if nested and isinstance(item, list) else element.plain(item) for item in items]

    return _Converter(lambda value: {"arrayValue": field(value)}, plain)


def _same(value: Any) -> Any:
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _any_field(value: Any) -> dict[str, Any]:
    """A value of a type without its own rule, by its JSON form."""
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, list):
        return {"arrayValue": _array_value(value)}
    if isinstance(value, dict):
        return {"stringValue": _json_text(value)}
    return {"stringValue": value if isinstance(value, str) else str(value)}


def _array_value(items: list[Any]) -> dict[str, Any]:
    if any(isinstance(item, list) for item in items):
        return {"arrayValues": [_array_value(item) for item in items]}
    if items and all(isinstance(item, bool) for item in items):
        return {"booleanValues": items}
    if items and all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        return {"longValues": items}
    if items and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        return {"doubleValues": items}
    return {"stringValues": [item if isinstance(item, str) else _json_text(item) for item in items]}


def _double_field(value: Any) -> dict[str, Any]:
    # NaN and the infinities arrive as strings (JSON has no number for them).
    return {"doubleValue": value} if isinstance(value, (int, float)) and not isinstance(value, bool) else {"stringValue": str(value)}


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _double_or_long(value: Any) -> int | float:
    text = str(value)
    return int(text) if _INTEGER_TEXT.fullmatch(text) else float(text)


def _double_or_long_field(value: Any) -> dict[str, Any]:
    number = _double_or_long(value)
    return {"longValue": number} if isinstance(number, int) else {"doubleValue": number}


def _json_text(value: Any) -> str:
    """A json/jsonb value as compact JSON text, as the Data API writes it.

    The Data API path asks the drivers for the server's text (so JSON ``null`` is the text
    ``null``, not SQL NULL); it is written compact here.
    """
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_TIMESTAMP_TEXT = re.compile(
    r"(?P<date>[0-9]{4,}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?P<fraction>\.[0-9]+)?"
    r"(?P<offset>Z|[+-][0-9]{2}(?::?[0-9]{2}){0,2})?(?P<era> BC)?"
)


def _timestamp_text(value: Any) -> str:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]``, in UTC for values with a time zone, as the Data API writes them.

    The fraction keeps the server's digits (PostgreSQL drops trailing zeros, MySQL writes the
    column's precision); 'infinity' and BC dates stay as the server wrote them.
    """
    if not isinstance(value, str):
        return str(value)
    match = _TIMESTAMP_TEXT.fullmatch(value)
    if match is None:
        return value
    date, time, fraction, offset, era = match.group("date", "time", "fraction", "offset", "era")
    if offset and offset.strip("Z+-:0") and not era:  # the session's time zone is UTC; a statement may change it
        try:
            moment = dt.datetime.fromisoformat(f"{date}T{time}{offset}").astimezone(dt.timezone.utc)
        except ValueError:
            return value.replace("T", " ", 1)
        date, _, time = moment.replace(tzinfo=None).isoformat(" ", "seconds").partition(" ")
    return f"{date} {time}{fraction or ''}{era or ''}"


_WHOLE_HOUR_OFFSET = re.compile(r"[+-][0-9]{2}:00$")


def _timetz_text(value: Any) -> str:
    """PostgreSQL's own time-with-time-zone text: a whole-hour offset as ``+05``."""
    if isinstance(value, str) and _WHOLE_HOUR_OFFSET.search(value):
        return value[:-3]
    return str(value)


_ISO_INTERVAL = re.compile(
    r"P(?:(?P<years>-?[0-9]+)Y)?(?:(?P<months>-?[0-9]+)M)?(?:(?P<days>-?[0-9]+)D)?"
    r"(?:T(?:(?P<hours>-?[0-9]+)H)?(?:(?P<minutes>-?[0-9]+)M)?(?:(?P<minus>-?)(?P<seconds>[0-9]+(?:\.[0-9]+)?)S)?)?"
)


def _interval_text(value: Any) -> str:
    """A PostgreSQL interval in PostgreSQL's default output style: ``1 year 2 mons 3 days 04:05:06.5``.

    rdsgate's sessions write intervals in ISO 8601 (``P1Y2M3DT4H5M6.5S``); the Data API's
    sessions use PostgreSQL's default style, which this rebuilds field by field as the
    server does (a sign before a field only when the one before it was negative).
    """
    if not isinstance(value, str):
        return str(value)
    match = _ISO_INTERVAL.fullmatch(value)
    if match is None or value == "P":
        return value
    parts: list[str] = []
    before_negative = False
    for unit, key in (("year", "years"), ("mon", "months"), ("day", "days")):
        amount = int(match.group(key) or 0)
        if amount:
            plus = "+" if before_negative and amount > 0 else ""
            parts.append(f"{plus}{amount} {unit}{'' if amount == 1 else 's'}")
            before_negative = amount < 0
    hours, minutes = int(match.group("hours") or 0), int(match.group("minutes") or 0)
    whole, _, fraction = (match.group("seconds") or "0").partition(".")
    negative = hours < 0 or minutes < 0 or match.group("minus") == "-"
    if not parts or hours or minutes or int(whole) or fraction.strip("0"):
        sign = "-" if negative else "+" if before_negative else ""
        parts.append(f"{sign}{abs(hours):02d}:{abs(minutes):02d}:{int(whole):02d}" + (f".{fraction}" if fraction else ""))
    return " ".join(parts)


def _set_text(value: Any) -> str:
    """A MySQL SET as MySQL writes it: its members joined by commas."""
    return ",".join(value) if isinstance(value, list) else str(value)


_TEXT_FORMATS: dict[str, Callable[[Any], str]] = {
    "json": _json_text, "jsonb": _json_text, "timestamp": _timestamp_text, "timestamptz": _timestamp_text,
    "datetime": _timestamp_text, "timetz": _timetz_text, "interval": _interval_text, "set": _set_text,
}


def column_metadata(column: dict[str, str], engine: str) -> dict[str, Any]:
    type_name = column["type"]
    array = engine == "postgres" and type_name.startswith("_")
    return {
        "name": column["name"],
        "label": column["name"],
        # The Data API reports MySQL's type names in capitals (VARCHAR, JSON), PostgreSQL's as pg_type has them.
        "typeName": type_name.upper() if engine == "mysql" else type_name,
        "type": 2003 if array else _JDBC.get(type_name, 1111),
        "arrayBaseColumnType": _JDBC.get(type_name[1:], 1111) if array else 0,
        "isSigned": type_name in _INTEGER_TYPES | _FLOAT_TYPES | _DECIMAL_TYPES,
        "isCurrency": type_name == "money",
        "isCaseSensitive": type_name in ("text", "varchar", "char", "bpchar", "name"),
        "isAutoIncrement": False,
        "nullable": 2,  # columnNullableUnknown: a result column's nullability is not reported
        "precision": 0,
        "scale": 0,
        "schemaName": "",
        "tableName": "",
    }
