"""Content detectors: personal data recognised in result strings, whatever column it came from.

A definition's ``mask_detectors`` lists built-in recognizers. Every string value of every
result on that connection is scanned and each match is replaced by the mask (``****``, or
its keyed hash). Recognizers with a checksum (payment cards: Luhn; IBAN: mod-97) only
mask what passes it, so order numbers are not taken for cards.

Scanning costs one regular-expression search over each string column's values joined
together; only columns with a candidate are then scanned value by value.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from functools import lru_cache
from typing import Any, Callable

__all__ = ["DETECTORS", "scan_rows"]

Replace = Callable[[str], str]

_PATTERNS = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "phone": r"(?<![\w+])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?!\w)",
    "card": r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)",
    "ssn": r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    "ipv4": r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])",
    "ipv6": (
        r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
        r"|(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?::(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6})?)(?![\w:])"
    ),
    "aws_access_key": r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
}
DETECTORS = tuple(_PATTERNS)


def _luhn(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return 13 <= len(digits) <= 19 and total % 10 == 0


def _iban(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ipv6(text: str) -> bool:
    # "a::" is an address too, but short forms are mostly casts and times in text.
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return len([group for group in text.split(":") if group]) >= 3


_CHECKS: dict[str, Callable[[str], bool]] = {"card": _luhn, "iban": _iban, "ipv6": _ipv6}


def _always(text: str) -> bool:
    return True


# What a column's joined values must contain for a recognizer to find anything: a substring
# test in C spares the regular expression's pass over the whole column.
_GATES: dict[str, Callable[[str], bool]] = {
    "email": lambda text: "@" in text,
    "ssn": lambda text: "-" in text,
    "ipv4": lambda text: "." in text,
    "ipv6": lambda text: ":" in text,
    "iban": lambda text: not text.islower(),
    "aws_access_key": lambda text: any(prefix in text for prefix in ("AKIA", "ASIA", "ABIA", "ACCA")),
}


@lru_cache(maxsize=32)
def _compiled(names: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    alternatives = "|".join(f"(?P<{name}>{_PATTERNS[name]})" for name in names)
    return re.compile(alternatives), names


# Column types whose values cannot hold text to detect (numbers, times, identifiers, binary
# data sent as base64): their string forms would only feed false matches and cost time.
_NOT_TEXT = frozenset(
    {
        "int2", "int4", "int8", "float4", "float8", "numeric", "bool", "date", "time", "timetz", "timestamp",
        "timestamptz", "interval", "uuid", "bytea", "oid", "tinyint", "smallint", "mediumint", "int", "bigint",
        "float", "double", "decimal", "year", "bit", "datetime", "binary", "varbinary", "tinyblob", "blob",
        "mediumblob", "longblob",
    }
)


# A column whose every value is a UUID: one linear match over the joined values rules it out.
_ALL_UUIDS = re.compile(r"(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?:\x00|\Z))+")


def scan_rows(rows: list[list[Any]], names: tuple[str, ...], replace: Replace, columns: list[dict[str, Any]] | None = None) -> bool:
    """Mask every detected value in ``rows`` in place; True when anything was masked.

    With ``columns``, columns of non-text types are not scanned (see ``_NOT_TEXT``).
    """
    if not names or not rows:
        return False
    wanted = tuple(sorted(names))
    changed = False
    indexes = range(len(rows[0])) if columns is None else [i for i, c in enumerate(columns) if c.get("type") not in _NOT_TEXT]
    for index in indexes:
        positions = [i for i, row in enumerate(rows) if type(row[index]) is str]
        if not positions:
            continue
        texts = [rows[i][index] for i in positions]
        # One C-level pass over the column's values joined by NULs (no pattern matches a NUL), the
        # matches mapped back to their values: a column without any costs nothing more.
        joined = "\x00".join(texts)
        if _ALL_UUIDS.fullmatch(joined):
            continue  # identifiers (MySQL keeps UUIDs in CHAR(36)) hold nothing to detect
        active = tuple(name for name in wanted if _GATES.get(name, _always)(joined))
        if not active:
            continue
        pattern, _ = _compiled(active)
        starts: list[int] = []
        offset = 0
        for text in texts:
            starts.append(offset)
            offset += len(text) + 1
        found: dict[int, list[re.Match[str]]] = {}
        for match in pattern.finditer(joined):
            found.setdefault(bisect.bisect_right(starts, match.start()) - 1, []).append(match)
        for k, matches in found.items():
            masked = _mask_text(texts[k], starts[k], matches, replace)
            if masked is not texts[k]:
                rows[positions[k]][index] = masked
                changed = True
    return changed


def _mask_text(text: str, base: int, matches: list[re.Match[str]], replace: Replace) -> str:
    """``text`` (at ``base`` in the joined column) with each match that passes its check replaced."""
    pieces: list[str] = []
    last = 0
    for match in matches:
        kind = match.lastgroup
        check = _CHECKS.get(kind or "")
        if check is not None and not check(match.group()):
            continue
        pieces.append(text[last : match.start() - base])
        pieces.append(replace(match.group()))
        last = match.end() - base
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)
