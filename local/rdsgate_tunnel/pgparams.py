"""PostgreSQL's binary parameters for `rdsgate connect`: each one read and written in its type's text form.

psycopg 3 sends many parameters in binary; the tunnel sends parameters to the API as
text, cast to their declared type, so ``parameter_text(data, oid)`` writes the text
form the server reads back to the same value. The other direction (results out of the
API's JSON into binary) and the type tables both use are ``pgbinary``.
"""

from __future__ import annotations

import ipaddress
import math
import struct
import uuid
from typing import Callable

from . import pgtime
from .gateway import TunnelError
from .pgbinary import EMPTY, LB_INC, LB_INF, MULTIRANGES, NUMERIC_SPECIAL, RANGES, UB_INC, UB_INF, unsupported
from .pgoids import TYPE_NAMES


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
    if name in RANGES:
        return _range_text(data, RANGES[name])
    if name in MULTIRANGES:
        (count,), at, parts = struct.unpack_from("!i", data), 4, []
        for _ in range(count):
            (length,) = struct.unpack_from("!i", data, at)
            parts.append(_range_text(data[at + 4:at + 4 + length], RANGES[MULTIRANGES[name]]))
            at += 4 + length
        return "{" + ",".join(parts) + "}"
    raise unsupported(name, "parameter")


def numeric_text(data: bytes) -> str:
    count, weight, sign, scale = struct.unpack_from("!hhHh", data)
    special = {v: k for k, v in NUMERIC_SPECIAL.items()}.get(sign)
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
    if flags & EMPTY:
        return "empty"
    for infinite in (LB_INF, UB_INF):
        if flags & infinite:
            bounds.append("")
            continue
        (length,) = struct.unpack_from("!i", data, at)
        bounds.append(_quote(_DECODERS[element](data[at + 4:at + 4 + length])))
        at += 4 + length
    return ("[" if flags & LB_INC else "(") + ",".join(bounds) + ("]" if flags & UB_INC else ")")
