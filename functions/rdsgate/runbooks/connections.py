"""What runbooks change about a connection's requests.

A connection's runbook and review fields (``adhoc``, ``approval``); the ``RunbookQuery`` that only the
runbook path builds, the one request a runbook-only connection (``"adhoc": false``) takes; the refusal
of free SQL and of sessions where those fields forbid them; and the audit context of a runbook run.
The query service and the session gateway call these checks; ``rdsgate.reviews`` reads the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..approval import ApprovalRule, ApprovalRuleError, parse_approval
from ..errors import Forbidden, InvalidDefinition
from ..request import QueryRequest

if TYPE_CHECKING:
    from .definition import Runbook

__all__ = [
    "RUN_FIELDS", "RUNBOOK_CONTEXT", "RunbookQuery", "check_connection_fields", "check_free_sql", "check_session",
    "connection_adhoc", "connection_approval", "runbook_context",
]

RUN_FIELDS = frozenset({"parameters", "shape", "maxRows"})  # a run's request body


def connection_adhoc(definition: Any) -> bool:
    """A connection's ``adhoc`` field: true (the default) lets callers send their own SQL."""
    value = dict(definition.extras).get("adhoc", True)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidDefinition(f"connection {definition.name!r}: 'adhoc' must be true or false", field="adhoc")
    return value


def connection_approval(definition: Any) -> ApprovalRule | None:
    """A connection's ``approval`` rule (``rdsgate.approval``), if it has one."""
    extras = dict(definition.extras)
    raw = extras.get("approval")
    if raw is None:
        return None
    try:
        return parse_approval(_thawed(raw))
    except ApprovalRuleError as exc:
        raise InvalidDefinition(f"connection {definition.name!r}: {exc}", field="approval") from None


def check_connection_fields(item: Mapping[str, Any]) -> None:
    """Deploy-time check of a connection's runbook and review fields (``adhoc``, ``approval``)."""
    name = item.get("name")
    adhoc = item.get("adhoc", True)
    if not isinstance(adhoc, bool):
        raise InvalidDefinition(f"connection {name!r}: 'adhoc' must be true or false", field="adhoc")
    try:
        parse_approval(item.get("approval"))
    except ApprovalRuleError as exc:
        raise InvalidDefinition(f"connection {name!r}: {exc}", field="approval") from None


def _thawed(value: Any) -> Any:
    """Undo ``definitions._freeze`` (extras are stored as sorted tuples of pairs)."""
    if isinstance(value, tuple) and value and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return {k: _thawed(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


RUNBOOK_CONTEXT = "runbook"  # the key of an invocation's audit context that names the runbook it runs


@dataclass(frozen=True)
class RunbookQuery(QueryRequest):
    """The statement of a runbook run: only the runbook path builds one, never a request body."""

    runbook: str = ""
    runbook_version: str = ""
    approval: Any = None  # the runbook's own approval rule (rdsgate.reviews), if it has one


def check_free_sql(definition: Any, statement: Any) -> None:
    """403 for SQL of the caller's own (anything but a runbook's statement) on a runbook-only connection."""
    if not isinstance(statement, RunbookQuery) and not connection_adhoc(definition):
        raise Forbidden(
            f"connection {definition.name!r} runs runbooks only (adhoc: false): free SQL is refused; "
            "see GET /runbooks for what you may run", rule="adhoc",
        )


def check_session(definition: Any) -> None:
    """A session (a transaction held across calls) runs SQL of the caller's own, and cannot wait for a review:
    refused at its start on runbook-only connections and on connections with an approval rule."""
    check_free_sql(definition, None)
    if connection_approval(definition) is not None:
        raise Forbidden(
            f"connection {definition.name!r} has an approval rule: a statement of an open session cannot wait for a "
            "review; send it with /query, /batch or /transaction", rule="approval",
        )


def runbook_context(runbook: Runbook | None, name: str | None) -> dict[str, Any]:
    """What every audit record of a runbook request carries."""
    context: dict[str, Any] = {RUNBOOK_CONTEXT: runbook.name if runbook else name}
    if runbook is not None:
        context["runbookVersion"] = runbook.version
    return context
