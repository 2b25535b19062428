"""PostgreSQL's forms for `rdsgate connect`: type OIDs for the API's type names, values as text, command tags.

The API returns JSON values and a type name per column (PostgreSQL's typname, or a
MySQL type name); clients want pg_type OIDs in RowDescription and PostgreSQL's text
output forms in DataRow: ``t``/``f``, ``2026-01-05 10:00:00+00``, ``2 days 04:00:00``,
``\\x89504e47``, ``{a,"b c"}``, jsonb's ``{"k": 1}``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from .tunnel import Outcome
from .wiresql import Analysis

# pg_type OIDs of the built-in types, by typname; MySQL's type names map to their nearest PostgreSQL type.
OIDS = {
    "bool": 16, "bytea": 17, "char": 18, "name": 19, "int8": 20, "int2": 21, "int2vector": 22, "int4": 23,
    "regproc": 24, "text": 25, "oid": 26, "tid": 27, "xid": 28, "cid": 29, "oidvector": 30, "json": 114,
    "xml": 142, "pg_node_tree": 194, "point": 600, "lseg": 601, "path": 602, "box": 603, "polygon": 604,
    "line": 628, "cidr": 650, "float4": 700, "float8": 701, "unknown": 705, "circle": 718, "macaddr8": 774,
    "money": 790, "macaddr": 829, "inet": 869, "aclitem": 1033, "bpchar": 1042, "varchar": 1043, "date": 1082,
    "time": 1083, "timestamp": 1114, "timestamptz": 1184, "interval": 1186, "timetz": 1266, "bit": 1560,
    "varbit": 1562, "numeric": 1700, "refcursor": 1790, "regprocedure": 2202, "regoper": 2203,
    "regoperator": 2204, "regclass": 2205, "regtype": 2206, "record": 2249, "cstring": 2275, "void": 2278,
    "uuid": 2950, "pg_lsn": 3220, "tsvector": 3614, "tsquery": 3615, "regconfig": 3734, "regdictionary": 3769,
    "jsonb": 3802, "jsonpath": 4072, "int4range": 3904, "numrange": 3906, "tsrange": 3908, "tstzrange": 3910,
    "daterange": 3912, "int8range": 3926, "regnamespace": 4089, "regrole": 4096, "xid8": 5069,
    "_bool": 1000, "_bytea": 1001, "_char": 1002, "_name": 1003, "_int2": 1005, "_int4": 1007, "_text": 1009,
    "_oid": 1028, "_bpchar": 1014, "_varchar": 1015, "_int8": 1016, "_float4": 1021, "_float8": 1022,
    "_aclitem": 1034, "_inet": 1041, "_cidr": 651, "_timestamp": 1115, "_date": 1182, "_time": 1183,
    "_timestamptz": 1185, "_interval": 1187, "_numeric": 1231, "_timetz": 1270, "_uuid": 2951, "_json": 199,
    "_jsonb": 3807, "_money": 791, "_regtype": 2211, "_record": 2287,
}
MYSQL_TYPES = {
    "tinyint": "int2", "smallint": "int2", "year": "int2", "mediumint": "int4", "int": "int4", "integer": "int4",
    "bigint": "int8", "bit": "int8", "decimal": "numeric", "float": "float4", "double": "float8",
    "datetime": "timestamp", "char": "bpchar", "tinytext": "text", "mediumtext": "text", "longtext": "text",
    "enum": "text", "set": "_text", "binary": "bytea", "varbinary": "bytea", "tinyblob": "bytea", "blob": "bytea",
    "mediumblob": "bytea", "longblob": "bytea", "geometry": "bytea", "null": "text",
}
TYPE_NAMES = {oid: name for name, oid in OIDS.items()}
TYPE_LENGTHS = {16: 1, 18: 1, 19: 64, 20: 8, 21: 2, 23: 4, 26: 4, 700: 4, 701: 8, 1082: 4, 1083: 8, 1114: 8,
                1184: 8, 1186: 16, 1266: 12, 2950: 16}
ROW_KEYWORDS = frozenset({"SELECT", "VALUES", "TABLE"})


def type_oid(name: str) -> int:
    """The OID for an API column type name: PostgreSQL's typname, or a MySQL type name."""
    name = MYSQL_TYPES.get(name, name) if name not in OIDS else name
    return OIDS.get(name, 1009 if name.startswith("_") else 25)


# -- values: the API's JSON to PostgreSQL's text forms -------------------------------------------

_ISO_DURATION = re.compile(r"(-)?P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)W)?(?:(-?\d+)D)?"
                           r"(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?")


def interval_text(text: str) -> str:
    """ISO 8601 (how the API carries intervals) to PostgreSQL's default style: ``1 year 2 mons 3 days 04:05:06``."""
    match = _ISO_DURATION.fullmatch(text)
    if match is None:
        return text
    negate = -1 if match.group(1) else 1
    years, months, weeks, days, hours, minutes = (negate * int(match.group(i) or 0) for i in range(2, 8))
    seconds = negate * float(match.group(8) or 0)
    days += 7 * weeks
    parts, negative = [], False  # after a negative field, PostgreSQL writes a positive one with '+'
    for value, unit, plural in ((years, "year", "years"), (months, "mon", "mons"), (days, "day", "days")):
        if value:
            parts.append(f"{'+' if negative and value > 0 else ''}{value} {unit if abs(value) == 1 else plural}")
            negative = value < 0
    total = hours * 3600 + minutes * 60 + seconds
    if total or not parts:
        sign, total = ("-" if total < 0 else "+" if negative else ""), abs(total)
        whole = int(total)
        fraction = f"{total - whole:.6f}"[1:].rstrip("0").rstrip(".") if total != whole else ""
        parts.append(f"{sign}{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}{fraction}")
    return " ".join(parts)


def _offset(text: str) -> str:
    """``…+00:00`` to PostgreSQL's ``…+00`` (a whole-hour offset is written with hours only)."""
    return text[:-3] if len(text) > 6 and text[-6] in "+-" and text.endswith(":00") else text


def value_text(value: Any, type_name: str) -> str | None:
    """One value in PostgreSQL's text output form for its column type."""
    if value is None:
        return None
    name = MYSQL_TYPES.get(type_name, type_name) if type_name not in OIDS else type_name
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
        return _array_text(value, element)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    if name == "bytea":
        try:
            return "\\x" + base64.b64decode(text, validate=True).hex()
        except ValueError:
            return text
    if name in ("timestamp", "timestamptz") and len(text) > 10 and text[10] == "T":
        text = text[:10] + " " + text[11:]
        return _offset(text) if name == "timestamptz" else text
    if name == "timetz":
        return _offset(text)
    if name == "interval" and text.startswith(("P", "-P")):
        return interval_text(text)
    return text


def _array_text(items: list[Any], element: str) -> str:
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
            continue
        text = _array_text(item, element) if isinstance(item, list) and element not in ("json", "jsonb") \
            else value_text(item, element) or ""
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
    return f'pg_catalog."{name[1:]}"[]' if name.startswith("_") else f'pg_catalog."{name}"'


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
