"""MySQL and MariaDB values: parameters PyMySQL can escape, and the server's text back to JSON.

PyMySQL hands each column's bytes to a converter of ours (``_DECODERS``); ``_lean_converters``
makes the pairs the driver's row reader (``pymysql_wire.read_rows``) applies as it reads, and
``_post_converter`` what is known only once a column's type is (SET, MariaDB's JSON);
``column_type`` names each column's type as the API reports it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, Callable

import pymysql
from pymysql.constants import FIELD_TYPE, FLAG

from ..encoding import MAX_SAFE_INTEGER, int_or_text, json_loads

TYPE_NAMES = {
    FIELD_TYPE.DECIMAL: "decimal", FIELD_TYPE.NEWDECIMAL: "decimal", FIELD_TYPE.TINY: "tinyint",
    FIELD_TYPE.SHORT: "smallint", FIELD_TYPE.LONG: "int", FIELD_TYPE.FLOAT: "float", FIELD_TYPE.DOUBLE: "double",
    FIELD_TYPE.NULL: "null", FIELD_TYPE.TIMESTAMP: "timestamp", FIELD_TYPE.LONGLONG: "bigint",
    FIELD_TYPE.INT24: "mediumint", FIELD_TYPE.DATE: "date", FIELD_TYPE.TIME: "time",
    FIELD_TYPE.DATETIME: "datetime", FIELD_TYPE.YEAR: "year", FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.BIT: "bit", FIELD_TYPE.JSON: "json", FIELD_TYPE.ENUM: "enum", FIELD_TYPE.SET: "set",
    FIELD_TYPE.GEOMETRY: "geometry",
}
# BLOB/TEXT family by reported length: bytes for BLOB; for TEXT, characters times the
# charset's bytes per character (up to 4), so TEXT's limits are scaled by 4.
_BLOB_SIZES = ((255, "tiny"), (65535, ""), (16777215, "medium"))
_TEXT_SIZES = ((1020, "tiny"), (262140, ""), (67108860, "medium"))
BINARY_CHARSET = 63
_BLOB_TYPES = (FIELD_TYPE.BLOB, FIELD_TYPE.TINY_BLOB, FIELD_TYPE.MEDIUM_BLOB, FIELD_TYPE.LONG_BLOB)
_LONGTEXT_LENGTH = 4294967295


def column_type(field: Any, is_json: Callable[[Any], bool] | None = None) -> str:
    """A result column's type name, as the API reports it; ``is_json`` says whether a TEXT column is MariaDB's JSON."""
    code = field.type_code
    if code in (FIELD_TYPE.STRING, FIELD_TYPE.VAR_STRING, FIELD_TYPE.VARCHAR):
        if field.flags & FLAG.ENUM:
            return "enum"
        if field.flags & FLAG.SET:
            return "set"
        binary = field.charsetnr == BINARY_CHARSET
        if code == FIELD_TYPE.STRING:
            return "binary" if binary else "char"
        return "varbinary" if binary else "varchar"
    if code in _BLOB_TYPES:
        binary = field.charsetnr == BINARY_CHARSET
        if is_json is not None and is_json(field):
            return "json"
        sizes = _BLOB_SIZES if binary else _TEXT_SIZES
        size = next((prefix for limit, prefix in sizes if field.length <= limit), "long")
        return size + ("blob" if binary else "text")
    return TYPE_NAMES.get(code, "unknown")


def json_candidate(field: Any) -> bool:
    """Could this column be MariaDB's JSON (LONGTEXT with a json_valid check on its table)?"""
    return (
        field.type_code in _BLOB_TYPES
        and field.charsetnr != BINARY_CHARSET
        and field.length == _LONGTEXT_LENGTH
        and bool(field.org_table and field.db)
    )


def _datetime(text: str) -> str:
    return text.replace(" ", "T", 1)


def _bit(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _binary_or_text(value: bytes | str) -> str:
    return value if type(value) is str else base64.b64encode(value).decode("ascii")


# PyMySQL hands each converter the column's text (bytes for binary columns).
# Absent types (DECIMAL, DATE, TIME, ENUM, …) stay as the exact text the server sent.
_DECODERS: dict[int, Callable[[Any], Any]] = {
    FIELD_TYPE.TINY: int, FIELD_TYPE.SHORT: int, FIELD_TYPE.LONG: int, FIELD_TYPE.INT24: int,
    FIELD_TYPE.YEAR: int, FIELD_TYPE.LONGLONG: int_or_text, FIELD_TYPE.FLOAT: float, FIELD_TYPE.DOUBLE: float,
    FIELD_TYPE.DATETIME: _datetime, FIELD_TYPE.TIMESTAMP: _datetime, FIELD_TYPE.BIT: _bit,
    FIELD_TYPE.JSON: json_loads, FIELD_TYPE.BLOB: _binary_or_text, FIELD_TYPE.TINY_BLOB: _binary_or_text,
    FIELD_TYPE.MEDIUM_BLOB: _binary_or_text, FIELD_TYPE.LONG_BLOB: _binary_or_text,
    FIELD_TYPE.STRING: _binary_or_text, FIELD_TYPE.VAR_STRING: _binary_or_text,
    FIELD_TYPE.VARCHAR: _binary_or_text, FIELD_TYPE.GEOMETRY: _binary_or_text,
}
# PyMySQL takes decoders (int keys) and parameter encoders (type keys) from one mapping.
_CONVERSIONS = {**pymysql.converters.encoders, **_DECODERS}


def _post_converter(type_name: str, field: Any, *, json_as_text: bool = False) -> Callable[[Any], Any] | None:
    if type_name == "set":
        return lambda text: [] if text == "" else text.split(",")
    if type_name == "json" and field.type_code != FIELD_TYPE.JSON and not json_as_text:  # MariaDB JSON arrives as text
        return json_loads
    return None


def _to_python(value: Any) -> Any:
    """A value PyMySQL can escape: JSON objects and arrays become JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)  # the session is in UTC
    if isinstance(value, Decimal):
        return str(value)
    return value


def _lean_converters(
    converters: list[tuple[str | None, Any]], columns: list[dict[str, str]] | None = None, fields: list[Any] | None = None,
    *, json_as_text: bool = False,
) -> list[tuple[str | None, Any]]:
    """PyMySQL's ``(encoding, converter)`` per column, giving the same values in fewer steps.

    ``int`` and ``float`` read ASCII bytes as they are; a text column's value is already
    the string ``_binary_or_text`` would return. With the ``columns`` (their types known),
    SET and MariaDB JSON columns are converted as they are read, too.
    """
    lean = []
    for index, (encoding, converter) in enumerate(converters):
        if encoding == "ascii" and converter in (int, float):
            encoding = None
        elif encoding == "ascii" and converter is int_or_text:
            encoding, converter = None, _int_bytes
        elif encoding is not None and converter is _binary_or_text:
            converter = None
        elif converter is json_loads and json_as_text:  # MySQL's JSON, kept as the server's text
            encoding, converter = "utf-8", None
        post = (
            _post_converter(columns[index]["type"], fields[index], json_as_text=json_as_text)
            if columns is not None and fields is not None else None
        )
        if post is not None:
            converter = post if converter is None else _chain(converter, post)
        lean.append((encoding, converter))
    return lean


def _chain(first: Callable[[Any], Any], then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: then(first(value))


def _int_bytes(raw: bytes) -> int | str:
    value = int(raw)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else raw.decode("ascii")
