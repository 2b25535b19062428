"""PostgreSQL's forms for `rdsgate connect`: type OIDs for the API's type names, values as text, command tags.

The API returns JSON values and a type name per column (PostgreSQL's typname, or a
MySQL type name); clients want pg_type OIDs in RowDescription and PostgreSQL's text
output forms in DataRow: ``t``/``f``, ``2026-01-05 10:00:00+00``, ``2 days 04:00:00``,
``\\x89504e47``, ``{a,"b c"}``, jsonb's ``{"k": 1}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .gateway import Outcome
from .pgoids import OIDS, TYPE_NAMES
from .pgtime import BadValue, interval_parts, styled_interval
from .wiresql import Analysis

# MySQL's type names map to their nearest PostgreSQL type.
MYSQL_TYPES = {
    "tinyint": "int2", "smallint": "int2", "year": "int2", "mediumint": "int4", "int": "int4", "integer": "int4",
    "bigint": "int8", "bit": "int8", "decimal": "numeric", "float": "float4", "double": "float8",
    "datetime": "timestamp", "char": "bpchar", "tinytext": "text", "mediumtext": "text", "longtext": "text",
    "enum": "text", "set": "_text", "binary": "bytea", "varbinary": "bytea", "tinyblob": "bytea", "blob": "bytea",
    "mediumblob": "bytea", "longblob": "bytea", "geometry": "bytea", "null": "text",
}
TYPE_LENGTHS = {16: 1, 18: 1, 19: 64, 20: 8, 21: 2, 23: 4, 26: 4, 700: 4, 701: 8, 1082: 4, 1083: 8, 1114: 8,
                1184: 8, 1186: 16, 1266: 12, 2950: 16}
ROW_KEYWORDS = frozenset({"SELECT", "VALUES", "TABLE"})
INTERVAL_STYLES = ("postgres", "postgres_verbose", "sql_standard", "iso_8601")


def canonical_name(name: str, dialect: str = "postgres") -> str:
    """The built-in PostgreSQL type an API column type name stands for: itself, a MySQL type's nearest
    (for a MySQL connection, or a name PostgreSQL does not have), or ``text`` (``_text`` for arrays) for
    user-defined types such as enums and domains."""
    if dialect == "mysql" or name not in OIDS:
        name = MYSQL_TYPES.get(name, name)
    return name if name in OIDS else "_text" if name.startswith("_") else "text"


def type_oid(name: str, dialect: str = "postgres") -> int:
    """The OID for an API column type name: PostgreSQL's typname, or a MySQL type name."""
    return OIDS[canonical_name(name, dialect)]


# -- values: the API's JSON to PostgreSQL's text forms -------------------------------------------


def interval_text(text: str, style: str = "postgres") -> str:
    """ISO 8601 (how the API carries intervals) in an IntervalStyle: ``1 year 2 mons 3 days 04:05:06`` by default."""
    if style == "iso_8601":
        return text
    try:
        return styled_interval(*interval_parts(text), style)
    except BadValue:
        return text


def _offset(text: str) -> str:
    """``…+00:00`` to PostgreSQL's ``…+00`` (a whole-hour offset is written with hours only)."""
    return text[:-3] if len(text) > 6 and text[-6] in "+-" and text.endswith(":00") else text


def _timestamp(text: str, tz: bool) -> str:
    """``20000-01-05T10:00:00+00:00`` (the API's ISO 8601) → ``20000-01-05 10:00:00+00``; `` BC`` stays last."""
    at = text.find("T", 10)
    if at < 0:
        return text
    text = text[:at] + " " + text[at + 1:]
    if tz:
        body, bc = (text[:-3], " BC") if text.endswith(" BC") else (text, "")
        return _offset(body) + bc
    return text


def value_text(value: Any, type_name: str, interval_style: str = "postgres") -> str | None:
    """One value in PostgreSQL's text output form for its column type."""
    if value is None:
        return None
    name = canonical_name(type_name)
    if name in ("json", "jsonb"):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        element = name[1:] if name.startswith("_") else "text"
        return _array_text(value, element, interval_style)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if name == "bytea":
        try:
            return "\\x" + base64.b64decode(text, validate=True).hex()
        except ValueError:
            return text
    if name in ("timestamp", "timestamptz"):
        return _timestamp(text, name == "timestamptz")
    if name == "timetz":
        return _offset(text)
    if name == "interval" and text.startswith(("P", "-P")):
        return interval_text(text, interval_style)
    return text


def _array_text(items: list[Any], element: str, interval_style: str) -> str:
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
            continue
        text = _array_text(item, element, interval_style) if isinstance(item, list) and element not in ("json", "jsonb") \
            else value_text(item, element, interval_style) or ""
        if isinstance(item, list) and element not in ("json", "jsonb"):
            parts.append(text)
        elif text == "" or text.upper() == "NULL" or any(c in text for c in '{},"\\ \t\n\r'):
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            parts.append(text)
    return "{" + ",".join(parts) + "}"


def cast_type(oid: int) -> str | None:
    name = TYPE_NAMES.get(oid)
    if name is None or name == "unknown":
        return None
    # Built-in type names need no quotes after the schema (even "char": any keyword may follow the dot).
    return f"pg_catalog.{name[1:]}[]" if name.startswith("_") else f"pg_catalog.{name}"


_OBJECTS = ("TABLE", "INDEX", "VIEW", "SEQUENCE", "SCHEMA", "FUNCTION", "PROCEDURE", "TYPE", "EXTENSION",
            "TRIGGER", "ROLE", "USER", "DATABASE", "DOMAIN", "POLICY", "RULE", "AGGREGATE", "COLLATION",
            "PUBLICATION", "SUBSCRIPTION", "SERVER", "TABLESPACE", "OPERATOR")


def command_tag(analysis: Analysis, outcome: Outcome, rows: int) -> str:
    """The CommandComplete tag PostgreSQL would send: ``SELECT 3``, ``INSERT 0 1``, ``CREATE TABLE``, …"""
    if outcome.tag:
        return outcome.tag
    main, count = analysis.main, outcome.updated or 0
    if main == "INSERT":
        return f"INSERT 0 {count}"
    if main in ("UPDATE", "DELETE", "MERGE"):
        return f"{main} {count}"
    if main in ROW_KEYWORDS or (outcome.columns is not None and main not in ("SHOW", "EXPLAIN", "CALL", "FETCH")):
        return f"SELECT {rows}"
    if main in ("CREATE", "DROP", "ALTER"):
        words = analysis.after(1)
        if words[:2] == ("MATERIALIZED", "VIEW"):
            return f"{main} MATERIALIZED VIEW"
        obj = next((w for w in words[:4] if w in _OBJECTS), "")
        return f"{main} {obj}".strip()
    if main == "TRUNCATE":
        return "TRUNCATE TABLE"
    return main or "OK"
