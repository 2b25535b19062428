"""Masking: result columns named by a definition's ``masked_columns`` never leave the function.

``fixed`` replaces a value with ``****``; ``hash`` with a keyed HMAC-SHA256 of it, so
equal values stay equal (joinable) without being readable. NULL stays NULL.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
from typing import Any

FIXED_MASK = "****"


def masked_indexes(column_names: list[str], patterns: tuple[str, ...]) -> list[int]:
    """Positions of the columns whose names match any glob pattern (case-insensitive)."""
    lowered = [pattern.lower() for pattern in patterns]
    return [i for i, name in enumerate(column_names) if any(fnmatch.fnmatchcase(name.lower(), p) for p in lowered)]


def mask_rows(rows: list[list[Any]], indexes: list[int], mode: str, key: bytes) -> None:
    """Replace the values at ``indexes`` in every row, in place."""
    for row in rows:
        for i in indexes:
            value = row[i]
            if value is None:
                continue
            row[i] = FIXED_MASK if mode == "fixed" else _digest(value, key)


def _digest(value: Any, key: bytes) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
