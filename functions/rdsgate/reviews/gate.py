"""The gate the query service calls before a statement runs: hold it for a review, or let an approved review's run through.

A request whose connection or runbook has an approval rule naming its statement kinds becomes a PENDING
review item (``rdsgate.reviews.item``) and raises ``ReviewPending`` (202); an approved review's run must
be exactly what was approved. The invoke handler's waitForTaskToken form leaves its task token with the review.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from contextlib import contextmanager
from typing import Any, Iterator

from ..approval import ApprovalRule
from ..errors import Forbidden
from ..request import AtomicRequest
from ..runbooks.connections import RunbookQuery, connection_approval
from .item import (
    KEEP_DAYS, REVIEW_CONTEXT, ReviewPending, ReviewStore, digest, iso, new_review_id, now_utc, request_document,
    sealed_document,
)
from .notices import notify

__all__ = ["check_approved_run", "hold_for_review", "holding_task_token", "review_gate", "submit_review"]

_TASK_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("rdsgate_review_task_token", default=None)


@contextmanager
def holding_task_token(token: str | None) -> Iterator[None]:
    """A review made within this block holds the Step Functions task token (waitForTaskToken)."""
    reset = _TASK_TOKEN.set(token)
    try:
        yield
    finally:
        _TASK_TOKEN.reset(reset)


def rule_for(definition: Any, request: Any) -> ApprovalRule | None:
    """A runbook's own rule when it has one, else its connection's."""
    if isinstance(request, RunbookQuery) and request.approval is not None:
        return request.approval
    return connection_approval(definition)


def statement_kinds(sqls: list[str], engine: str) -> tuple[frozenset[str], bool]:
    """The kinds the guardrails' classifier reports for the statements, and whether any cannot be read."""
    from ..guardrails import analyse

    kinds: set[str] = set()
    unreadable = False
    for sql in sqls:
        outcome = analyse(sql, engine)
        kinds |= outcome.kinds
        unreadable = unreadable or outcome.problem is not None
    return frozenset(kinds), unreadable


def review_gate(definition: Any, request: Any, invocation: Any, record: dict[str, Any]) -> None:
    """Raise ReviewPending (after recording the review) when the request needs one; check an approved run."""
    review_id = (invocation.audit_context or {}).get(REVIEW_CONTEXT)
    if review_id is not None:
        check_approved_run(review_id, definition, request)
        return
    rule = rule_for(definition, request)
    if rule is None:
        return
    sqls = [s.sql for s in request.statements] if isinstance(request, AtomicRequest) else [request.sql]
    kinds, unreadable = statement_kinds(sqls, definition.engine)
    if not rule.requires_review(kinds, unreadable=unreadable):
        return
    review = submit_review(definition, request, invocation, rule, sorted(kinds))
    record["reviewId"] = review["id"]
    record["statementType"] = f"REVIEW {record.get('statementType') or ''}".strip()
    raise ReviewPending(f"this request needs {rule.min_approvals} approval(s) before it runs; review {review['id']} is PENDING",
                        review_id=review["id"], expires_at=review["expiresAt"])


def check_approved_run(review_id: str, definition: Any, request: Any) -> None:
    """What runs for an approved review is exactly what was approved (its hash), on its connection."""
    store = ReviewStore.configured()
    item = store.get(review_id)
    kind, document = request_document(request)
    # EXECUTED too: the worker may start the statement after the approval recorded its id.
    if item is None or item.get("status") not in ("APPROVED", "EXECUTED") or item.get("connection") != definition.name:
        raise Forbidden(f"review {review_id!r} is not approved for this connection: the statement does not run", rule="review")
    if digest(definition.name, kind, document) != item.get("requestSha256"):
        raise Forbidden(f"review {review_id!r}: the statement differs from the one approved; it does not run", rule="review")


def submit_review(definition: Any, request: Any, invocation: Any, rule: ApprovalRule, kinds: list[str]) -> dict[str, Any]:
    store = ReviewStore.configured()
    kind, document = request_document(request)
    review_id = new_review_id()
    now = now_utc()
    expires = now + dt.timedelta(hours=rule.expires_after_hours)
    caller = invocation.caller
    item: dict[str, Any] = {
        "id": review_id, "status": "PENDING", "kind": kind, "connection": definition.name, "engine": definition.engine,
        "requester": caller.arn, "governed": bool(caller.governed), "submittedAt": iso(now), "expiresAt": iso(expires),
        "expires_at": int((expires + dt.timedelta(days=KEEP_DAYS)).timestamp()),
        "rule": rule.as_dict(), "statementKinds": kinds, "requestSha256": digest(definition.name, kind, document),
        "request": sealed_document(store, review_id, kind, document), "decisions": [],
        "auditParameters": bool(definition.audit_parameters), "claim": dict(invocation.audit_context or {}),
    }
    if kind == "runbook":
        item.update(runbook=document["runbook"], runbookVersion=document["runbookVersion"])
    token = _TASK_TOKEN.get()
    if token:
        item["taskToken"] = token
    store.create(item)
    notify(store.settings, "submitted", item)
    return item


def hold_for_review(service: Any, name: str, request: Any, invocation: Any, token: str) -> dict[str, Any] | None:
    """The invoke handler's waitForTaskToken form: when the statement needs a review, the review holds the
    token (answered when the approved statement ends, or failed with ReviewRejected / ReviewExpired)."""
    with holding_task_token(token):
        try:
            service.check_statement(name, request, invocation)
        except ReviewPending as pending:
            return {"reviewId": pending.details["review_id"], "status": "PENDING", "expiresAt": pending.details["expires_at"]}
    return None
