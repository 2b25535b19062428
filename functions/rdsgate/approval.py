"""Approval rules: which statements of a connection or runbook wait for a review, and who may approve them.

A rule is ``{"required_for": ["INSERT", "UPDATE", "DELETE", "DDL"], "approvers": ["arn:…:role/dba"],
"min_approvals": 1, "expires_after_hours": 24}`` or ``{"required_for": "all"}``. Statement kinds are
those of the guardrails' classifier (``rdsgate.guardrails.analyse``); ``DDL`` stands for every kind
that defines or grants (CREATE, ALTER, DROP, TRUNCATE, RENAME, COMMENT, GRANT, REVOKE), ``WRITE``
for every kind that changes data. SQL the classifier cannot read needs a review whenever a rule
exists: what cannot be checked is not waved through.

Pure: parsing and matching only. A connection's rule is read by ``rdsgate.runbooks.connections``, a
runbook's by ``rdsgate.runbooks.definition``; the reviews themselves live in ``rdsgate.reviews``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

DDL_KINDS = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "GRANT", "REVOKE"})
WRITE_KINDS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "COPY", "LOAD", "CALL", "DO"})
GROUPS = {"DDL": DDL_KINDS, "WRITE": WRITE_KINDS}
# The kinds the classifier reports (as guardrails name them).
KINDS = DDL_KINDS | WRITE_KINDS | frozenset(
    {
        "SELECT", "EXPLAIN", "ANALYZE", "SHOW", "VACUUM", "REINDEX", "REFRESH", "CLUSTER", "CHECKPOINT", "NOTIFY",
        "FLUSH", "OPTIMIZE", "REPAIR", "CHECK", "CHECKSUM", "KILL", "PURGE", "SECURITY", "IMPORT", "REASSIGN",
    }
)  # fmt: skip
ALL = "all"
DEFAULT_EXPIRY_HOURS = 24
MAX_EXPIRY_HOURS = 24 * 30
RULE_FIELDS = frozenset({"required_for", "approvers", "min_approvals", "expires_after_hours"})


class ApprovalRuleError(ValueError):
    """The rule is malformed; the message names the field."""


@dataclass(frozen=True)
class ApprovalRule:
    """When a review is needed, who may approve it, and how many approvals it takes."""

    required_for: tuple[str, ...] | None  # None: every statement ("all")
    approvers: tuple[str, ...] = ()  # ARN patterns; none: anyone allowed on the connection or runbook
    min_approvals: int = 1
    expires_after_hours: float = DEFAULT_EXPIRY_HOURS

    def requires_review(self, kinds: Iterable[str], *, unreadable: bool = False) -> bool:
        """True when statements of these kinds wait for a review (SQL the classifier cannot read always does)."""
        if self.required_for is None or unreadable:
            return True
        wanted: set[str] = set()
        for name in self.required_for:
            wanted |= GROUPS.get(name, {name})
        return bool(wanted.intersection(kinds))

    def as_dict(self) -> dict[str, Any]:
        return {
            "required_for": ALL if self.required_for is None else list(self.required_for),
            "approvers": list(self.approvers),
            "min_approvals": self.min_approvals,
            "expires_after_hours": self.expires_after_hours,
        }


def parse_approval(value: Any, where: str = "approval") -> ApprovalRule | None:
    """The rule, or None when ``value`` is None; raises ApprovalRuleError naming the field."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ApprovalRuleError(f"'{where}' must be an object such as {{\"required_for\": [\"UPDATE\", \"DELETE\"]}}")
    unknown = sorted(set(value) - RULE_FIELDS)
    if unknown:
        raise ApprovalRuleError(f"'{where}.{unknown[0]}' is not a field of an approval rule (known: {', '.join(sorted(RULE_FIELDS))})")
    required = value.get("required_for")
    if isinstance(required, str) and required.lower() == ALL:
        kinds: tuple[str, ...] | None = None
    else:
        if isinstance(required, (set, frozenset)):
            required = sorted(required)
        if not isinstance(required, (list, tuple)) or not required or not all(isinstance(k, str) and k.strip() for k in required):
            raise ApprovalRuleError(f"'{where}.required_for' must be \"all\" or a non-empty list of statement kinds")
        names = []
        for kind in required:
            upper = kind.strip().upper()
            if upper not in GROUPS and upper not in KINDS:
                raise ApprovalRuleError(f"'{where}.required_for' names {kind!r}, which is not a statement kind (nor DDL or WRITE)")
            if upper not in names:
                names.append(upper)
        kinds = tuple(names)
    approvers = value.get("approvers") or ()
    if isinstance(approvers, (set, frozenset)):
        approvers = sorted(approvers)
    if not isinstance(approvers, (list, tuple)) or not all(isinstance(a, str) and a for a in approvers):
        raise ApprovalRuleError(f"'{where}.approvers' must be a list of ARN patterns")
    minimum = _whole(value.get("min_approvals", 1), f"{where}.min_approvals", 1, 10)
    hours = value.get("expires_after_hours", DEFAULT_EXPIRY_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) and not _is_decimal(hours):
        raise ApprovalRuleError(f"'{where}.expires_after_hours' must be a number of hours")
    hours = float(hours)
    if not 0 < hours <= MAX_EXPIRY_HOURS:
        raise ApprovalRuleError(f"'{where}.expires_after_hours' must be more than 0 and at most {MAX_EXPIRY_HOURS}")
    return ApprovalRule(required_for=kinds, approvers=tuple(approvers), min_approvals=minimum, expires_after_hours=hours)


def _is_decimal(value: Any) -> bool:
    from decimal import Decimal

    return isinstance(value, Decimal) and value.is_finite()


def _whole(value: Any, where: str, low: int, high: int) -> int:
    if _is_decimal(value) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApprovalRuleError(f"'{where}' must be a whole number from {low} to {high}")
    return value
