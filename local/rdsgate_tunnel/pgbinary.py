"""PostgreSQL's binary format for `rdsgate connect`: results out of the API's JSON, parameters into text.

Clients such as asyncpg ask for every result in binary, and psycopg 3 sends many
parameters in binary. The API speaks JSON (typed, exact: see the README), so:

- ``result_bytes(value, type_name)`` writes one JSON value of a column in the binary
  form of the column's type (the type whose OID RowDescription announced);
- ``pgparams.parameter_text(data, oid)`` reads one binary parameter and writes it in
  PostgreSQL's text form, which the server reads back to the same value (the tunnel
  sends parameters as text, cast to their declared type).

Covered: bool, int2/4/8, oid, float4/8, numeric, text and the other character types,
bytea, json/jsonb/jsonpath, date, time, timetz, timestamp(tz), interval, uuid, inet,
cidr, macaddr(8), bit/varbit, point, pg_lsn, void, ranges, multiranges, and arrays of
all of these. Anything else is refused with ``0A000`` naming the type (ask for text).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import struct
import uuid
from decimal import Decimal
from typing import Any, Callable

from . import pgtime
from .gateway import TunnelError
from .pgoids import OIDS
from .pgtypes import canonical_name, value_text

RANGES = {"int4range": "int4", "int8range": "int8", "numrange": "numeric", "daterange": "date",
           "tsrange": "timestamp", "tstzrange": "timestamptz"}
MULTIRANGES = {"int4multirange": "int4range", "int8multirange": "int8range", "nummultirange": "numrange",
                "datemultirange": "daterange", "tsmultirange": "tsrange", "tstzmultirange": "tstzrange"}
EMPTY, LB_INC, UB_INC, LB_INF, UB_INF = 0x01, 0x02, 0x04, 0x08, 0x10
NUMERIC_SPECIAL = {"NaN": 0xC000, "Infinity": 0xD000, "-Infinity": 0xF000}


def unsupported(type_name: str, what: str = "result") -> TunnelError:
    return TunnelError.refused(f"the binary format of type {type_name} is not supported by rdsgate connect "
                               f"(as a {what}); ask for it in text format")


# -- results: JSON value → binary -------------------------------------------------------------------


def result_bytes(value: Any, type_name: str) -> bytes | None:
    """One API value of a column in the binary form of the column's type; None for NULL."""
    if value is None:
        return None
    name = canonical_name(type_name)
    try:
        return _encode(value, name)
    except (ValueError, TypeError, ArithmeticError, struct.error) as exc:
        raise TunnelError(f"a {type_name} value cannot be sent in binary: {exc}", sqlstate="22P03") from None


def _encode(value: Any, name: str) -> bytes:
    if name.startswith("_"):
        return _array_bytes(value, name[1:])
    encoder = _ENCODERS.get(name)
    if encoder is None:
        if name in RANGES:
            return _range_bytes(str(value), RANGES[name])
        if name in MULTIRANGES:
            ranges = _split_top(str(value).strip()[1:-1], ",") if str(value).strip() != "{}" else []
            parts = [_range_bytes(r, RANGES[MULTIRANGES[name]]) for r in ranges]
            return struct.pack("!i", len(parts)) + b"".join(struct.pack("!i", len(p)) + p for p in parts)
        raise unsupported(name)
    return encoder(value)


def _text(value: Any) -> bytes:
    return (value if isinstance(value, str) else value_text(value, "text") or "").encode("utf-8")


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def numeric_bytes(value: Any) -> bytes:
    text = str(value).strip()
    if text in NUMERIC_SPECIAL:
        return struct.pack("!hhHh", 0, 0, NUMERIC_SPECIAL[text], 0 if text == "NaN" else 32)  # as numeric_send
    number = Decimal(text)
    if not number.is_finite():
        raise ValueError(f"not a number: {text}")
    sign = 0x4000 if number.is_signed() and number else 0
    whole, _, fraction = format(number.copy_abs(), "f").partition(".")
    whole = whole.lstrip("0")
    whole = whole.rjust(-(-len(whole) // 4) * 4, "0")
    digits = [int(whole[i:i + 4]) for i in range(0, len(whole), 4)]
    weight = len(digits) - 1
    padded = fraction.ljust(-(-len(fraction) // 4) * 4, "0")
    digits += [int(padded[i:i + 4]) for i in range(0, len(padded), 4)]
    while digits and digits[0] == 0:
        digits.pop(0)
        weight -= 1
    while digits and digits[-1] == 0:
        digits.pop()
    if not digits:
        weight = 0
    return struct.pack(f"!hhHh{len(digits)}h", len(digits), weight, sign, len(fraction), *digits)


def _float(fmt: str) -> Callable[[Any], bytes]:
    return lambda value: struct.pack(fmt, float(value))


def _interval_bytes(value: Any) -> bytes:
    months, days, micros = pgtime.interval_parts(str(value))
    return struct.pack("!qii", micros, days, months)


def _timetz_bytes(value: Any) -> bytes:
    micros, east = pgtime.time_us(str(value))
    return struct.pack("!qi", micros, -east)


def _inet_bytes(value: Any, cidr: bool) -> bytes:
    text = str(value)
    network = ipaddress.ip_network(text, strict=False) if cidr else ipaddress.ip_interface(text)
    address = network.network_address if cidr else network.ip
    bits = network.prefixlen if cidr else network.network.prefixlen
    packed = address.packed
    return bytes([2 if len(packed) == 4 else 3, bits, 1 if cidr else 0, len(packed)]) + packed


def _bits_bytes(value: Any) -> bytes:
    bits = str(value)
    padded = bits.ljust(-(-len(bits) // 8) * 8, "0")
    return struct.pack("!i", len(bits)) + bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))


def _point_bytes(value: Any) -> bytes:
    x, y = str(value).strip().strip("()").split(",")
    return struct.pack("!dd", float(x), float(y))


def _lsn_bytes(value: Any) -> bytes:
    high, low = str(value).split("/")
    return struct.pack("!Q", int(high, 16) << 32 | int(low, 16))


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "bool": lambda v: b"\x01" if v in (True, "t", "true") else b"\x00",
    "int2": lambda v: struct.pack("!h", int(v)), "int4": lambda v: struct.pack("!i", int(v)),
    "int8": lambda v: struct.pack("!q", int(v)), "oid": lambda v: struct.pack("!I", int(v)),
    "xid": lambda v: struct.pack("!I", int(v)), "cid": lambda v: struct.pack("!I", int(v)),
    "xid8": lambda v: struct.pack("!Q", int(v)),
    "float4": _float("!f"), "float8": _float("!d"), "numeric": numeric_bytes,
    "text": _text, "varchar": _text, "bpchar": _text, "name": _text, "unknown": _text, "xml": _text,
    "char": lambda v: _text(v)[:1], "refcursor": _text,
    "json": lambda v: _json_text(v).encode("utf-8"), "jsonb": lambda v: b"\x01" + _json_text(v).encode("utf-8"),
    "jsonpath": lambda v: b"\x01" + _text(v),
    "bytea": lambda v: base64.b64decode(str(v), validate=True),
    "uuid": lambda v: uuid.UUID(str(v)).bytes,
    "date": lambda v: struct.pack("!i", pgtime.date_days(str(v))),
    "time": lambda v: struct.pack("!q", pgtime.time_us(str(v))[0]), "timetz": _timetz_bytes,
    "timestamp": lambda v: struct.pack("!q", pgtime.timestamp_us(str(v))),
    "timestamptz": lambda v: struct.pack("!q", pgtime.timestamp_us(str(v))),
    "interval": _interval_bytes,
    "inet": lambda v: _inet_bytes(v, False), "cidr": lambda v: _inet_bytes(v, True),
    "macaddr": lambda v: bytes.fromhex(str(v).replace(":", "").replace("-", "")),
    "macaddr8": lambda v: bytes.fromhex(str(v).replace(":", "").replace("-", "")),
    "bit": _bits_bytes, "varbit": _bits_bytes, "point": _point_bytes, "pg_lsn": _lsn_bytes,
    "void": lambda v: b"",
}


def _array_bytes(value: Any, element: str) -> bytes:
    if not isinstance(value, list):
        raise ValueError("an array value is not a list")
    dims, items = [], value
    nested = element not in ("json", "jsonb")  # a JSON element may itself be a list
    while True:
        dims.append(len(items))
        if not (nested and items and isinstance(items[0], list)):
            break
        items = items[0]
    flat = _flatten(value, len(dims))
    if not flat:
        dims = []
    parts, has_null = [], False
    for item in flat:
        if item is None:
            parts.append(b"\xff\xff\xff\xff")
            has_null = True
        else:
            data = _encode(item, element)
            parts.append(struct.pack("!i", len(data)) + data)
    header = struct.pack("!iiI", len(dims), has_null, OIDS.get(element, 25))
    return header + b"".join(struct.pack("!ii", d, 1) for d in dims) + b"".join(parts)


def _flatten(items: list[Any], depth: int) -> list[Any]:
    if depth <= 1:
        return list(items)
    out: list[Any] = []
    for item in items:
        if not isinstance(item, list):
            raise ValueError("a multidimensional array is not rectangular")
        out += _flatten(item, depth - 1)
    return out


def _split_top(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside double quotes and brackets (range and multirange text)."""
    parts, current, quoted, depth, i = [], [], False, 0, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted:
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[(":
            depth += 1
        elif not quoted and char in "])":
            depth -= 1
        elif char == separator and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
            i += 1
            continue
        current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        body, out, i = text[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
            elif body[i] == '"' and body[i + 1:i + 2] == '"':
                i += 1
            out.append(body[i])
            i += 1
        return "".join(out)
    return text


def _range_bytes(text: str, element: str) -> bytes:
    text = text.strip()
    if text.lower() == "empty":
        return bytes([EMPTY])
    lower, upper = _split_top(text[1:-1], ",")
    flags = (LB_INC if text[0] == "[" else 0) | (UB_INC if text[-1] == "]" else 0)
    out = b""
    for bound, infinite in ((lower, LB_INF), (upper, UB_INF)):
        if bound.strip() == "":
            flags = flags & ~(LB_INC if infinite == LB_INF else UB_INC) | infinite
        else:
            data = _ENCODERS[element](_unquote(bound))
            out += struct.pack("!i", len(data)) + data
    return bytes([flags]) + out
