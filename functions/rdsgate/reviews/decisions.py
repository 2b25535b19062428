"""Deciding a review: who may (four eyes), approve and reject, and expiry (the scheduled sweeper).

Each decision replaces the item only if its status is still the one read (a conditional write), so two
approvers, or an approver and the sweeper, never both win.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import InvalidRequest
from .item import ReviewExpired, ReviewRejected, ReviewStore, current_status, iso, now_utc
from .notices import fail_task, notify

__all__ = ["decide", "expire", "may_decide", "parse_decision", "sweep", "sweep_handler"]


def may_decide(item: Mapping[str, Any], caller: Any) -> bool:
    """An approver: matches the rule's approvers (any caller allowed on the connection when none are listed),
    and is not the requester."""
    from ..access import _pattern

    arn = getattr(caller, "arn", None)
    if not arn or arn == item.get("requester") or _same_session_role(arn, item.get("requester")):
        return False
    approvers = item["rule"].get("approvers") or []
    if approvers:
        return any(_pattern(p).match(arn) for p in approvers)
    return None  # decided by the caller's access to the connection


def _same_session_role(a: str, b: str | None) -> bool:
    """Two sessions of one assumed role are the same person as far as four eyes go only if the session names match."""
    return False if b is None else a == b


def expire(store: ReviewStore, item: dict[str, Any]) -> bool:
    """PENDING past its expiry → EXPIRED (once), failing a held task."""
    if item["status"] != "PENDING" or current_status(item) != "EXPIRED":
        return False
    updated = {**item, "status": "EXPIRED", "decidedAt": iso(now_utc())}
    if not store.replace(updated, "PENDING"):
        return False
    fail_task(store, updated, ReviewExpired(f"review {item['id']} expired before it was approved"))
    notify(store.settings, "expired", updated)
    return True


def decide(item: dict[str, Any], caller: Any, decision: str, comment: str | None) -> dict[str, Any]:
    """Record one decision; the item as it is after it (status APPROVED once enough approvals are in)."""
    store = ReviewStore.configured()
    if expire(store, item):
        raise ReviewExpired(f"review {item['id']} expired at {item['expiresAt']}; it never runs")
    status = current_status(item)
    if status != "PENDING":
        raise InvalidRequest(f"review {item['id']} is {status}: only a PENDING review can be decided")
    if any(d["by"] == caller.arn for d in item.get("decisions", [])):
        raise InvalidRequest(f"review {item['id']}: you have decided it already")
    updated = dict(item)
    updated["decisions"] = [*item.get("decisions", []), {"decision": decision, "by": caller.arn, "at": iso(now_utc()),
                                                         **({"comment": comment} if comment else {})}]
    approvals = sum(1 for d in updated["decisions"] if d["decision"] == "APPROVE")
    if decision == "REJECT":
        updated.update(status="REJECTED", decidedAt=iso(now_utc()))
    elif approvals >= int(item["rule"].get("min_approvals", 1)):
        updated.update(status="APPROVED", decidedAt=iso(now_utc()))
    if not store.replace(updated, "PENDING"):
        raise InvalidRequest(f"review {item['id']} changed meanwhile; read it again")
    if updated["status"] == "REJECTED":
        fail_task(store, updated, ReviewRejected(f"review {item['id']} was rejected by {caller.arn}" + (f": {comment}" if comment else "")))
    if updated["status"] != "PENDING":
        notify(store.settings, updated["status"].lower(), updated)
    return updated


def parse_decision(body: Any) -> str | None:
    if body in (None, ""):
        return None
    if not isinstance(body, dict) or set(body) - {"comment"}:
        raise InvalidRequest("the body may hold only {\"comment\": \"…\"}")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise InvalidRequest("comment: must be a string of at most 2000 characters", field="comment")
    return comment


def sweep(store: ReviewStore | None = None) -> list[str]:
    """Expire every PENDING review past its expiry (failing the Step Functions tasks they hold); their ids."""
    store = store or ReviewStore.configured()
    return [item["id"] for item in store.list_status("PENDING", limit=1000) if expire(store, item)]


def sweep_handler(event: Any, context: Any) -> dict[str, Any]:
    """The scheduled sweeper (EventBridge, every 15 minutes): held tasks learn of an expiry nobody read."""
    return {"expired": sweep()}
