"""Content detectors: personal data recognised in result strings, whatever column it came from.

A definition's ``mask_detectors`` lists built-in recognizers. Every string value of every
result on that connection is scanned and each match is replaced by the mask (``****``, or
its keyed hash). Recognizers with a checksum (payment cards: Luhn; IBAN: mod-97) only
mask what passes it, so order numbers are not taken for cards.

Scanning costs one regular-expression search over each string column's values joined
together; only columns with a candidate are then scanned value by value.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any, Callable

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


@lru_cache(maxsize=32)
def _compiled(names: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    alternatives = "|".join(f"(?P<{name}>{_PATTERNS[name]})" for name in names)
    return re.compile(alternatives), names


def scan_rows(rows: list[list[Any]], names: tuple[str, ...], replace: Replace) -> bool:
    """Mask every detected value in ``rows`` in place; True when anything was masked."""
    if not names or not rows:
        return False
    pattern, _ = _compiled(tuple(sorted(names)))
    changed = False
    for index in range(len(rows[0])):
        texts = [row[index] for row in rows if type(row[index]) is str]
        if not texts or pattern.search("\x00".join(texts)) is None:
            continue  # one C-level search rules the whole column out
        for row in rows:
            value = row[index]
            if type(value) is str:
                masked = _mask_text(value, pattern, replace)
                if masked is not value:
                    row[index] = masked
                    changed = True
    return changed


def _mask_text(text: str, pattern: re.Pattern[str], replace: Replace) -> str:
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        kind = match.lastgroup
        check = _CHECKS.get(kind or "")
        if check is not None and not check(match.group()):
            continue
        pieces.append(text[last : match.start()])
        pieces.append(replace(match.group()))
        last = match.end()
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)
