"""MySQL's forms for `rdsgate connect`: field types for the API's type names, and values in the text protocol.

The API returns JSON values and a type name per column (MySQL's, or PostgreSQL's
typname); MySQL clients want a field type, charset and flags per column, and each
value as the text the server would send: ``2026-01-05 10:00:00``, ``input,usb``,
raw bytes for binary columns, JSON text for json, BIT as big-endian bytes (as few as the
value needs: the API does not say the column's width).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

UTF8MB4, BINARY = 45, 63  # utf8mb4_general_ci, binary
# Field types (MYSQL_TYPE_*) and flags for the API's type names, MySQL's and PostgreSQL's.
TYPES = {
    "tinyint": 1, "bool": 1, "smallint": 2, "int2": 2, "int": 3, "integer": 3, "int4": 3, "oid": 3, "float": 4,
    "float4": 4, "double": 5, "float8": 5, "null": 6, "timestamp": 7, "bigint": 8, "int8": 8, "bit": 16,
    "mediumint": 9, "date": 10, "time": 11, "datetime": 12, "timestamptz": 12, "year": 13, "decimal": 246,
    "numeric": 246, "enum": 254, "set": 254, "char": 254, "bpchar": 254, "binary": 254, "varbinary": 253,
    "tinyblob": 252, "blob": 252, "mediumblob": 252, "longblob": 252, "bytea": 252, "tinytext": 252,
    "text": 252, "mediumtext": 252, "longtext": 252, "json": 252, "jsonb": 252, "geometry": 255,
}
BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bytea", "geometry"})
NUMERIC = frozenset({1, 2, 3, 4, 5, 8, 9, 13, 246})
FLAGS = {"enum": 256, "set": 2048, "bit": 32}


def value_bytes(value: Any, type_name: str) -> bytes | None:
    """One value in MySQL's text protocol form for its column type."""
    if value is None:
        return None
    if type_name in ("json", "jsonb"):
        return json.dumps(value, ensure_ascii=False).encode()
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if type_name == "bit" and isinstance(value, int):  # the API's integer; MySQL sends BIT as big-endian bytes
        return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if isinstance(value, float):
        text = repr(value)
        return (text[:-2] if text.endswith(".0") else text).encode()
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, list):
        text = ",".join(map(str, value)) if type_name == "set" else json.dumps(value, ensure_ascii=False)
        return text.encode()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False).encode()
    text = str(value)
    if type_name in BINARY_TYPES:
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            return text.encode()
    if type_name in ("datetime", "timestamp", "timestamptz") and len(text) > 10 and text[10] == "T":
        if type_name == "timestamptz":
            try:
                moment = dt.datetime.fromisoformat(text)
                if moment.tzinfo is not None:
                    text = moment.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat()
            except ValueError:
                pass
        return (text[:10] + " " + text[11:]).encode()
    return text.encode()
