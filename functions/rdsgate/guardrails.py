"""Guardrails: a connection's named rules, checked on the SQL before it runs.

Statement kinds come from a real SQL parser (sqlglot, in the engine's dialect),
so comments, odd casing and statements nested in CTEs do not hide them. sqlglot
is imported only when a statement rule applies: most requests never load it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable

from .definitions import Guardrail
from .errors import GuardrailViolation

_DIALECTS = {"postgres": "postgres", "mysql": "mysql"}


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
    kinds, unguarded_writes = _analyse(sql, _DIALECTS[engine], statement_rules[0].name)
    for rule in statement_rules:
        denied = sorted(kinds.intersection(rule.deny_statements))
        if denied:
            raise GuardrailViolation(f"guardrail {rule.name!r}: {denied[0]} statements are not allowed", rule=rule.name)
        if rule.require_where and unguarded_writes:
            raise GuardrailViolation(
                f"guardrail {rule.name!r}: {unguarded_writes[0]} without a WHERE clause is not allowed", rule=rule.name
            )


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=512)
def _analyse(sql: str, dialect: str, first_rule: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """Every statement kind in the SQL (nested ones included) and the UPDATE/DELETEs lacking WHERE."""
    import sqlglot
    from sqlglot import exp

    try:
        trees = [tree for tree in sqlglot.parse(sql, read=dialect) if tree is not None]
    except sqlglot.errors.SqlglotError:
        trees = []
    if not trees:
        raise GuardrailViolation(
            f"guardrail {first_rule!r}: the sql could not be parsed, so the rule cannot be checked", rule=first_rule
        )
    kinds: set[str] = set()
    unguarded: list[str] = []
    for tree in trees:
        for node in tree.walk():
            kind = _kind(node, exp)
            if kind is None:
                continue
            kinds.add(kind)
            if kind in ("UPDATE", "DELETE") and not node.args.get("where"):
                unguarded.append(kind)
    return frozenset(kinds), tuple(unguarded)


def _kind(node: Any, exp: Any) -> str | None:
    if isinstance(node, exp.Command):
        return str(node.this).split()[0].upper() if node.this else None
    for cls, kind in (
        (exp.Select, "SELECT"), (exp.Insert, "INSERT"), (exp.Update, "UPDATE"), (exp.Delete, "DELETE"),
        (exp.Merge, "MERGE"), (exp.Create, "CREATE"), (exp.Drop, "DROP"), (exp.Alter, "ALTER"),
        (exp.TruncateTable, "TRUNCATE"), (exp.Grant, "GRANT"),
    ):
        if isinstance(node, cls):
            return kind
    name = type(node).__name__.upper()
    return name if name in ("REVOKE", "COPY") else None
