"""PostgreSQL's binary format for `rdsgate connect`: results out of the API's JSON, parameters into text.

Clients such as asyncpg ask for every result in binary, and psycopg 3 sends many
parameters in binary. The API speaks JSON (typed, exact: see the README), so:

- ``result_bytes(value, type_name)`` writes one JSON value of a column in the binary
  form of the column's type (the type whose OID RowDescription announced);
- ``parameter_text(data, oid)`` reads one binary parameter and writes it in
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
import math
import struct
import uuid
from decimal import Decimal
from typing import Any, Callable

from . import pgtime
from .pgoids import OIDS, TYPE_NAMES
from .pgtypes import canonical_name, value_text
from .gateway import TunnelError

_RANGES = {"int4range": "int4", "int8range": "int8", "numrange": "numeric", "daterange": "date",
           "tsrange": "timestamp", "tstzrange": "timestamptz"}
_MULTIRANGES = {"int4multirange": "int4range", "int8multirange": "int8range", "nummultirange": "numrange",
                "datemultirange": "daterange", "tsmultirange": "tsrange", "tstzmultirange": "tstzrange"}
_EMPTY, _LB_INC, _UB_INC, _LB_INF, _UB_INF = 0x01, 0x02, 0x04, 0x08, 0x10
_NUMERIC_SPECIAL = {"NaN": 0xC000, "Infinity": 0xD000, "-Infinity": 0xF000}


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
        if name in _RANGES:
            return _range_bytes(str(value), _RANGES[name])
        if name in _MULTIRANGES:
            ranges = _split_top(str(value).strip()[1:-1], ",") if str(value).strip() != "{}" else []
            parts = [_range_bytes(r, _RANGES[_MULTIRANGES[name]]) for r in ranges]
            return struct.pack("!i", len(parts)) + b"".join(struct.pack("!i", len(p)) + p for p in parts)
        raise unsupported(name)
    return encoder(value)


def _text(value: Any) -> bytes:
    return (value if isinstance(value, str) else value_text(value, "text") or "").encode("utf-8")


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def numeric_bytes(value: Any) -> bytes:
    text = str(value).strip()
    if text in _NUMERIC_SPECIAL:
        return struct.pack("!hhHh", 0, 0, _NUMERIC_SPECIAL[text], 0 if text == "NaN" else 32)  # as numeric_send
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
        return bytes([_EMPTY])
    lower, upper = _split_top(text[1:-1], ",")
    flags = (_LB_INC if text[0] == "[" else 0) | (_UB_INC if text[-1] == "]" else 0)
    out = b""
    for bound, infinite in ((lower, _LB_INF), (upper, _UB_INF)):
        if bound.strip() == "":
            flags = flags & ~(_LB_INC if infinite == _LB_INF else _UB_INC) | infinite
        else:
            data = _ENCODERS[element](_unquote(bound))
            out += struct.pack("!i", len(data)) + data
    return bytes([flags]) + out


# -- parameters: binary → text -----------------------------------------------------------------------


def parameter_text(data: bytes, oid: int) -> str:
    """One binary parameter in PostgreSQL's text form for its type (exact: the server reads it back the same)."""
    name = TYPE_NAMES.get(oid, "")
    try:
        return _decode(data, name or f"oid {oid}")
    except TunnelError:
        raise
    except (ValueError, TypeError, ArithmeticError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise TunnelError(f"incorrect binary data format in a {name or oid} parameter: {exc}",
                          sqlstate="22P03") from None


def _decode(data: bytes, name: str) -> str:
    if name.startswith("_"):
        return _array_text(data, name[1:])
    decoder = _DECODERS.get(name)
    if decoder is not None:
        return decoder(data)
    if name in _RANGES:
        return _range_text(data, _RANGES[name])
    if name in _MULTIRANGES:
        (count,), at, parts = struct.unpack_from("!i", data), 4, []
        for _ in range(count):
            (length,) = struct.unpack_from("!i", data, at)
            parts.append(_range_text(data[at + 4:at + 4 + length], _RANGES[_MULTIRANGES[name]]))
            at += 4 + length
        return "{" + ",".join(parts) + "}"
    raise unsupported(name, "parameter")


def numeric_text(data: bytes) -> str:
    count, weight, sign, scale = struct.unpack_from("!hhHh", data)
    special = {v: k for k, v in _NUMERIC_SPECIAL.items()}.get(sign)
    if special:
        return special
    digits = "".join(f"{d:04d}" for d in struct.unpack_from(f"!{count}h", data, 8))
    point = (weight + 1) * 4
    if point <= 0:
        digits, point = "0000" * -(weight + 1) + digits, 0
    digits = digits.ljust(point, "0")
    whole, fraction = digits[:point].lstrip("0") or "0", digits[point:][:scale].ljust(scale, "0")
    return ("-" if sign == 0x4000 else "") + whole + ("." + fraction if scale > 0 else "")


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return ("-Infinity" if value < 0 else "Infinity") if math.isinf(value) else repr(value)


def _inet_text(data: bytes) -> str:
    _family, bits, cidr, size = data[:4]
    address = ipaddress.ip_address(data[4:4 + size])
    return f"{address}/{bits}" if cidr or bits != size * 8 else str(address)


def _bits_text(data: bytes) -> str:
    (count,) = struct.unpack_from("!i", data)
    return "".join(f"{byte:08b}" for byte in data[4:])[:count]


def _interval_text(data: bytes) -> str:
    micros, days, months = struct.unpack("!qii", data)
    return pgtime.interval_text(months, days, micros)


def _timetz_text(data: bytes) -> str:
    micros, west = struct.unpack("!qi", data)
    return pgtime.clock_text(micros) + pgtime.offset_text(-west)


def _lsn_text(data: bytes) -> str:
    (value,) = struct.unpack("!Q", data)
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _utf8(data: bytes) -> str:
    return data.decode("utf-8")


def _versioned(data: bytes) -> str:
    if data[:1] != b"\x01":
        raise ValueError("unsupported version")
    return data[1:].decode("utf-8")


_DECODERS: dict[str, Callable[[bytes], str]] = {
    "bool": lambda d: "true" if d != b"\x00" else "false",
    "int2": lambda d: str(struct.unpack("!h", d)[0]), "int4": lambda d: str(struct.unpack("!i", d)[0]),
    "int8": lambda d: str(struct.unpack("!q", d)[0]), "oid": lambda d: str(struct.unpack("!I", d)[0]),
    "xid": lambda d: str(struct.unpack("!I", d)[0]), "cid": lambda d: str(struct.unpack("!I", d)[0]),
    "xid8": lambda d: str(struct.unpack("!Q", d)[0]),
    "float4": lambda d: _float_text(struct.unpack("!f", d)[0]) if not math.isfinite(struct.unpack("!f", d)[0])
    else "%.9g" % struct.unpack("!f", d)[0],
    "float8": lambda d: _float_text(struct.unpack("!d", d)[0]), "numeric": numeric_text,
    "text": _utf8, "varchar": _utf8, "bpchar": _utf8, "name": _utf8, "unknown": _utf8, "xml": _utf8,
    "char": lambda d: d.decode("latin-1"), "refcursor": _utf8, "json": _utf8, "jsonb": _versioned,
    "jsonpath": _versioned, "bytea": lambda d: "\\x" + d.hex(), "uuid": lambda d: str(uuid.UUID(bytes=d)),
    "date": lambda d: pgtime.date_text(struct.unpack("!i", d)[0]),
    "time": lambda d: pgtime.clock_text(struct.unpack("!q", d)[0]), "timetz": _timetz_text,
    "timestamp": lambda d: pgtime.timestamp_text(struct.unpack("!q", d)[0], utc=False),
    "timestamptz": lambda d: pgtime.timestamp_text(struct.unpack("!q", d)[0], utc=True),
    "interval": _interval_text, "inet": _inet_text, "cidr": _inet_text,
    "macaddr": lambda d: ":".join(f"{b:02x}" for b in d), "macaddr8": lambda d: ":".join(f"{b:02x}" for b in d),
    "bit": _bits_text, "varbit": _bits_text, "pg_lsn": _lsn_text,
    "point": lambda d: "(%s,%s)" % tuple(_float_text(x) for x in struct.unpack("!dd", d)),
}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array_text(data: bytes, element: str) -> str:
    ndim, _flags, _oid = struct.unpack_from("!iiI", data)
    dims = [struct.unpack_from("!ii", data, 12 + 8 * i)[0] for i in range(ndim)]
    at, items = 12 + 8 * ndim, []
    for _ in range(math.prod(dims) if dims else 0):
        (length,) = struct.unpack_from("!i", data, at)
        at += 4
        if length < 0:
            items.append("NULL")
        else:
            items.append(_quote(_decode(data[at:at + length], element)))
            at += length
    for size in reversed(dims[1:]):
        items = ["{" + ",".join(items[i:i + size]) + "}" for i in range(0, len(items), size)]
    return "{" + ",".join(items) + "}"


def _range_text(data: bytes, element: str) -> str:
    flags, at, bounds = data[0], 1, []
    if flags & _EMPTY:
        return "empty"
    for infinite in (_LB_INF, _UB_INF):
        if flags & infinite:
            bounds.append("")
            continue
        (length,) = struct.unpack_from("!i", data, at)
        bounds.append(_quote(_DECODERS[element](data[at + 4:at + 4 + length])))
        at += 4 + length
    return ("[" if flags & _LB_INC else "(") + ",".join(bounds) + ("]" if flags & _UB_INC else ")")
