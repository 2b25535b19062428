"""JSON encoding of result values without loss of precision.

Drivers convert most values on the way in (see the driver modules); this module
handles what is left, in one pass per row: exact decimals and out-of-range
integers as strings, non-finite floats as strings, temporal values as ISO 8601,
binary as base64, UUIDs as strings, arrays recursively.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import sys
from decimal import Decimal
from typing import Any

__all__ = [
    "EncodedRecords",
    "MAX_SAFE_INTEGER",
    "dumps",
    "encode_within",
    "int_or_text",
    "iso_duration",
    "json_loads",
    "json_value",
    "unique_keys",
    "utf8_length",
]

MAX_SAFE_INTEGER = 2**53 - 1


def int_or_text(text: str) -> int | str:
    """A database's whole number from its text: an int while JSON readers keep it exact, else the text."""
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else text

_PASSTHROUGH = (str, bool, type(None))


def json_value(value: Any) -> Any:
    """The JSON-safe form of one database value."""
    kind = type(value)
    if kind in _PASSTHROUGH:
        return value
    if kind is int:
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if kind is list or kind is tuple:
        return [json_value(item) for item in value]
    if kind is dict:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    uuid = sys.modules.get("uuid")  # a UUID value means uuid was imported; a cold start need not import it
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, int):  # bool handled above; int subclasses such as enums
        return json_value(int(value))
    return str(value)


def iso_duration(delta: dt.timedelta) -> str:
    """An ISO 8601 duration such as ``P1DT2H3M4.5S`` (negative durations start with ``-``)."""
    sign = "-" if delta < dt.timedelta(0) else ""
    delta = abs(delta)
    hours, remainder = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(remainder, 60)
    text = f"{sign}P{delta.days}D" if delta.days else f"{sign}P"
    seconds_text = f"{seconds}.{delta.microseconds:06d}".rstrip("0").rstrip(".") if delta.microseconds else str(seconds)
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds_text}S" if seconds or delta.microseconds else "")
    if time_part:
        text += "T" + time_part
    return text if text not in ("P", "-P") else "PT0S"


# One encoder for every document: json.dumps would build one per call (it shows on small documents).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class EncodedRecords(list):
    """Result records whose JSON text is already made: ``json`` is the text of the whole list.

    The row budget measures each batch of records by encoding it in its final shape; the
    text is kept, so a document's records are encoded once. It is a list like any other;
    ``dumps`` splices the text in instead of encoding the records again.
    """

    __slots__ = ("json", "objects")

    def __init__(self, records: list[Any], json_text: str, objects: bool) -> None:
        super().__init__(records)
        self.json = json_text
        self.objects = objects  # records are objects (dicts), not arrays


# Below this size, encoding the records again costs less than splicing their text in.
_SPLICE_MIN_CHARS = 2048


def dumps(document: Any) -> str:
    """Compact JSON, as sent over the wire."""
    records = document.get("records") if type(document) is dict else None
    if type(records) is EncodedRecords and len(records.json) > _SPLICE_MIN_CHARS:
        if all(type(key) is str for key in document):
            return "{" + ",".join(
                _ENCODER.encode(key) + ":" + (value.json if type(value) is EncodedRecords else _ENCODER.encode(value))
                for key, value in document.items()
            ) + "}"
    return _ENCODER.encode(document)


def unique_keys(names: list[str]) -> list[str]:
    """Record keys: a repeated column name gets a suffix (``id``, ``id_2``) so no value is lost."""
    if len(set(names)) == len(names):
        return names
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return keys


_SCAN = json.JSONDecoder().scan_once


def json_loads(text: Any) -> Any:
    """``json.loads`` for the JSON text of a json/jsonb column, about 4x faster on one value.

    The C scanner reads the value directly; anything it does not consume whole (surrounding
    whitespace, trailing data, an error) goes through ``json.loads``, which decides.
    """
    if type(text) is str:
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:
            return json.loads(text)
        if end == len(text):
            return value
    return json.loads(text)


def utf8_length(text: str) -> int:
    """The size of ``text`` in UTF-8, without encoding it when it is ASCII."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def encode_within(document: Any, limit_bytes: int, transport: str) -> str:
    """The document as JSON text, or ``ResultTooLarge`` when it exceeds the transport's limit."""
    from .errors import ResultTooLarge

    text = dumps(document)
    size = len(text.encode("utf-8")) if len(text) * 4 > limit_bytes else len(text)
    if size > limit_bytes:
        raise ResultTooLarge(
            f"the result is {size} bytes, over {transport}'s limit of {limit_bytes} bytes; "
            "ask for fewer rows with maxRows or select fewer columns"
        )
    return text
