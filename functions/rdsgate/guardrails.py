"""Guardrails: a connection's named rules, checked on the SQL before it runs.

Statement rules (``deny_statements``, ``allow_statements``, ``require_where``) read the SQL
through ``sql.classify``: a real parser (sqlglot, in the engine's dialect) for each
statement, and the server's own lexical rules for where statements, strings, comments and
bodies begin and end. Wrappers do not hide a statement (DO blocks, EXPLAIN ANALYZE, MERGE
actions, data-modifying CTEs, the bodies of functions, procedures, rules, triggers and
events), and whatever the classifier cannot see into is refused while a statement rule
applies. SQL over the checking limits is refused (403) naming the limit; a check never
takes longer than ``sql.classify.CHECK_SECONDS``.

sqlglot and the classifier are imported only when a statement rule applies: most requests
never load them. Outcomes are cached by SQL text.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from .definitions import Guardrail
from .errors import GuardrailViolation
from .sql import DIALECTS

__all__ = ["analyse", "check_guardrails", "clear_cache"]

# Short statements are cached by their text, longer ones by a digest of it (memory stays bounded).
_SHORT_SQL = 8192
_LONG_CACHE_SIZE = 64


@dataclass(frozen=True)
class Outcome:
    """What a statement rule needs to know about one SQL text."""

    kinds: frozenset[str]
    unguarded: tuple[str, ...]
    problem: str | None = None  # why the SQL cannot be checked; every statement rule then refuses it


def check_guardrails(rules: Iterable[Guardrail], sql: str, engine: str) -> None:
    """Raise GuardrailViolation naming the first rule the SQL breaks."""
    statement_rules = []
    for rule in rules:
        if rule.deny_pattern is not None:
            if _regex(rule.deny_pattern).search(sql):
                raise GuardrailViolation(f"guardrail {rule.name!r}: the sql matches a denied pattern", rule=rule.name)
        else:
            statement_rules.append(rule)
    if not statement_rules:
        return
    if engine not in DIALECTS:  # an engine's name is its dialect's
        raise KeyError(engine)
    outcome = analyse(sql, engine)
    for rule in statement_rules:
        if outcome.problem is not None:
            raise GuardrailViolation(f"guardrail {rule.name!r}: {outcome.problem}", rule=rule.name)
        if rule.deny_statements:
            denied = sorted(outcome.kinds.intersection(rule.deny_statements))
            if denied:
                raise GuardrailViolation(f"guardrail {rule.name!r}: {denied[0]} statements are not allowed", rule=rule.name)
        elif rule.allow_statements:
            other = sorted(outcome.kinds.difference(rule.allow_statements))
            if other:
                allowed = ", ".join(rule.allow_statements)
                raise GuardrailViolation(
                    f"guardrail {rule.name!r}: {other[0]} statements are not allowed (only {allowed})", rule=rule.name
                )
        elif rule.require_where and outcome.unguarded:
            raise GuardrailViolation(f"guardrail {rule.name!r}: {outcome.unguarded[0]} is not allowed", rule=rule.name)


def analyse(sql: str, dialect: str) -> Outcome:
    """The classification of ``sql``, cached."""
    if len(sql) <= _SHORT_SQL:
        return _analyse_short(sql, dialect)
    key = (dialect, hashlib.blake2b(sql.encode("utf-8", "surrogatepass"), digest_size=16).digest())
    with _LONG_LOCK:
        outcome = _LONG.get(key)
        if outcome is not None:
            _LONG.move_to_end(key)
            return outcome
    outcome = _analyse(sql, dialect)
    with _LONG_LOCK:
        _LONG[key] = outcome
        while len(_LONG) > _LONG_CACHE_SIZE:
            _LONG.popitem(last=False)
    return outcome


def clear_cache() -> None:
    """Forget every cached outcome (the benchmark measures uncached checks)."""
    _analyse_short.cache_clear()
    with _LONG_LOCK:
        _LONG.clear()


_LONG: OrderedDict[tuple[str, bytes], Outcome] = OrderedDict()
_LONG_LOCK = threading.Lock()


@lru_cache(maxsize=512)
def _analyse_short(sql: str, dialect: str) -> Outcome:
    return _analyse(sql, dialect)


def _analyse(sql: str, dialect: str) -> Outcome:
    from .sql.classify import TooComplex, Unclassifiable, classify

    try:
        result = classify(sql, dialect)
    except Unclassifiable as exc:
        return Outcome(frozenset(), (), str(exc))
    except TooComplex as exc:
        return Outcome(frozenset(), (), f"{exc}; send long values as parameters, or split the statement")
    return Outcome(result.kinds, result.unguarded)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
