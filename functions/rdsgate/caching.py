"""Caching expressed as a value plus its expiry, for definitions and other warm-path data."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ExpirableValue(Generic[T]):
    """A cached value and the monotonic time after which it must be fetched again."""

    value: T
    expires_at: float

    def is_fresh(self, now: float) -> bool:
        return now < self.expires_at


class TtlCache(Generic[T]):
    """A small keyed cache whose entries expire ``ttl_seconds`` after they were fetched."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[str, ExpirableValue[T]] = {}

    def get(self, key: str, fetch: Callable[[], T]) -> T:
        """The cached value for ``key``, calling ``fetch`` when it is missing or stale."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry.is_fresh(now):
            return entry.value
        value = fetch()
        if self.ttl_seconds > 0:
            self._entries[key] = ExpirableValue(value, now + self.ttl_seconds)
        return value

    def clear(self) -> None:
        self._entries.clear()
