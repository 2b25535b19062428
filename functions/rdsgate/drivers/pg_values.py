"""PostgreSQL values: JSON parameters to text and a type OID, and the server's text back to JSON.

The driver (``postgres``) sends parameters as text with the OID that types them and keeps
every value the server sends as text (``pg8000_wire``); each is converted here once, per
column, straight to its JSON form.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any, Callable, Mapping

from .. import errors
from ..encoding import int_or_text, json_loads
from ..params import JsonText
from ..sql.text import PreparedSql

# Built-in type OIDs and names (pg_type.typname); others are looked up once per connection.
TYPE_NAMES = {
    16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4", 25: "text",
    26: "oid", 114: "json", 142: "xml", 199: "_json", 650: "cidr", 700: "float4", 701: "float8",
    705: "unknown", 790: "money", 829: "macaddr", 869: "inet", 1000: "_bool", 1001: "_bytea",
    1005: "_int2", 1007: "_int4", 1009: "_text", 1014: "_bpchar", 1015: "_varchar", 1016: "_int8",
    1021: "_float4", 1022: "_float8", 1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time",
    1114: "timestamp", 1115: "_timestamp", 1182: "_date", 1183: "_time", 1184: "timestamptz",
    1185: "_timestamptz", 1186: "interval", 1187: "_interval", 1231: "_numeric", 1266: "timetz",
    1270: "_timetz", 1560: "bit", 1562: "varbit", 1700: "numeric", 2249: "record", 2278: "void",
    2950: "uuid", 2951: "_uuid", 3802: "jsonb", 3807: "_jsonb",
}
ARRAY_ELEMENTS = {
    199: 114, 1000: 16, 1001: 17, 1005: 21, 1007: 23, 1009: 25, 1014: 1042, 1015: 1043, 1016: 20,
    1021: 700, 1022: 701, 1115: 1114, 1182: 1082, 1183: 1083, 1185: 1184, 1187: 1186, 1231: 1700,
    1270: 1266, 2951: 2950, 3807: 3802,
}

_JSON_OIDS = frozenset({114, 3802})  # json, jsonb

OID_BOOL, OID_BYTEA, OID_INT8, OID_FLOAT8, OID_NUMERIC, OID_JSONB, OID_UUID = 16, 17, 20, 701, 1700, 3802, 2950
OID_DATE, OID_TIME, OID_TIMETZ, OID_TIMESTAMP, OID_TIMESTAMPTZ = 1082, 1083, 1266, 1114, 1184
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
# --- values in: JSON parameters to text plus a type OID -------------------------------------

def _wire_values(prepared: PreparedSql, values: Mapping[str, Any]) -> tuple[list[str | None], list[int]]:
    texts, oids = [], []
    for name in prepared.names:
        text, oid = _to_wire(values[name])
        texts.append(text)
        oids.append(oid)
    return texts, oids


def _to_wire(value: Any) -> tuple[str | None, int]:
    if value is None:
        return None, 0
    if value is True or value is False:
        return ("true" if value else "false"), OID_BOOL
    if isinstance(value, JsonText):
        return str(value), OID_JSONB
    if isinstance(value, str):
        return value, 0  # unknown: the server infers the type from the context
    if isinstance(value, int):
        return str(value), (OID_INT8 if INT8_MIN <= value <= INT8_MAX else OID_NUMERIC)
    if isinstance(value, float):
        return repr(value), OID_FLOAT8
    if isinstance(value, Decimal):
        return str(value), OID_NUMERIC
    if isinstance(value, dt.datetime):
        return value.isoformat(), (OID_TIMESTAMP if value.tzinfo is None else OID_TIMESTAMPTZ)
    if isinstance(value, dt.date):
        return value.isoformat(), OID_DATE
    if isinstance(value, dt.time):
        return value.isoformat(), (OID_TIME if value.tzinfo is None else OID_TIMETZ)
    if isinstance(value, uuid.UUID):
        return str(value), OID_UUID
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":")), OID_JSONB
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex(), OID_BYTEA
    if isinstance(value, list):
        return _array_literal(value), 0
    raise errors.InvalidRequest(f"parameters: unsupported value of type {type(value).__name__}", field="parameters")


def _array_literal(items: list[Any]) -> str:
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list):
            parts.append(_array_literal(item))
        else:
            text = json.dumps(item, separators=(",", ":")) if isinstance(item, dict) else _to_wire(item)[0]
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


# --- values out: text to JSON, once per value -------------------------------------------------

def _identity(text: str) -> str:
    return text


def _float(text: str) -> float | str:
    return text if text in ("NaN", "Infinity", "-Infinity") else float(text)


def _bool(text: str) -> bool:
    return text == "t"


def _bytea(text: str) -> str:
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")  # text is \x<hex>


def _with_offset(text: str, start: int) -> str:
    """ISO 8601 wants ±hh:mm; PostgreSQL writes a whole-hour offset as ±hh."""
    sign = max(text.rfind("+", start), text.rfind("-", start))
    return text + ":00" if sign != -1 and len(text) - sign == 3 else text


def _timetz(text: str) -> str:
    return _with_offset(text, 0)


def _timestamp(text: str) -> str:
    return text.replace(" ", "T", 1) if text[:1].isdigit() else text  # 'infinity' stays as it is


def _timestamptz(text: str) -> str:
    return _with_offset(_timestamp(text), 10) if text[:1].isdigit() else text


_SCALAR_CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: _bool, 17: _bytea, 20: int_or_text, 21: int, 23: int, 26: int, 114: json_loads, 3802: json_loads,
    700: _float, 701: _float, 1114: _timestamp, 1184: _timestamptz, 1266: _timetz,
}


def _array_converter(element: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return _parse_array(text, element)

    return convert


def _parse_array(text: str, element: Callable[[str], Any]) -> list[Any]:
    """Parse PostgreSQL's array text form ``{1,"a b",NULL,{2,3}}`` into nested lists."""
    if text[:1] == "[":  # explicit bounds prefix such as [0:1]={...}
        text = text[text.index("=") + 1:]
    stack: list[list[Any]] = []
    result: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{":
            stack.append([])
            i += 1
        elif char == "}":
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            else:
                result = done
            i += 1
        elif char == ",":
            i += 1
        elif char == '"':
            i += 1
            chunk = []
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                chunk.append(text[i])
                i += 1
            stack[-1].append(element("".join(chunk)))
            i += 1
        else:
            end = i
            while text[end] not in ",}":
                end += 1
            token = text[i:end]
            stack[-1].append(None if token == "NULL" else element(token))
            i = end
    return result


def converter(oid: int, array_elements: Mapping[int, int], json_as_text: bool) -> Callable[[str], Any]:
    """How a column of type ``oid`` becomes JSON (``_identity``: the text as it is)."""
    element = array_elements.get(oid)
    if element is not None:
        return _array_converter(_identity if json_as_text and element in _JSON_OIDS else _SCALAR_CONVERTERS.get(element, _identity))
    if json_as_text and oid in _JSON_OIDS:
        return _identity
    return _SCALAR_CONVERTERS.get(oid, _identity)
