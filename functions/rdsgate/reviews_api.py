"""The reviews API (issue 19), a Powertools router included by ``rdsgate.api``.

    GET  /reviews?status=PENDING      the reviews the caller may decide (``&mine=true``: the caller's own requests)
    GET  /reviews/{id}                status, decisions, then the statement id (or the result of a batch)
    POST /reviews/{id}/approve        {"comment"?}; enough approvals run the statement as its requester
    POST /reviews/{id}/reject         {"comment"?}; it never runs

A request that needs a review answers ``202 {"reviewId", "status": "PENDING", "expiresAt"}`` on whatever
route it came (the exception handler below). The requester can never decide their own request; approvers
match the rule's ``approvers`` (or, when it lists none, anyone who may use the connection or run the
runbook). A review the caller neither requested nor may decide does not exist for them (404). Every
decision writes an audit record (``APPROVE`` / ``REJECT`` with the review id).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from . import edge
from .access import Caller
from .edge import API_RESPONSE_LIMIT_BYTES
from .encoding import dumps, encode_within
from .errors import Forbidden, InvalidRequest, RdsgateError
from .reviews.decisions import decide, expire, may_decide, parse_decision
from .reviews.item import STATUSES, ReviewNotFound, ReviewPending, ReviewStore, current_status, view
from .reviews.run import run_approved
from .runbooks_api import CATALOGS
from .runtime import SERVICE
from .service import Invocation
from .worker import submit_statement

router = APIGatewayRouter()


@router.exception_handler(ReviewPending)
def review_pending(error: ReviewPending) -> Response:
    """Any route: the request waits for a review (its audit record is written already)."""
    body = {"reviewId": error.details["review_id"], "status": "PENDING", "expiresAt": error.details.get("expires_at"),
            "message": error.message}
    return Response(status_code=202, content_type="application/json", body=dumps(body))


def _invocation(route: str) -> Invocation:
    return edge.invocation(router, route)


def _json(status: int, document: Any) -> Response:
    body = encode_within(document, API_RESPONSE_LIMIT_BYTES, "API Gateway") if status == 200 else dumps(document)
    return Response(status_code=status, content_type="application/json", body=body)


def approver(item: dict[str, Any], caller: Caller) -> bool:
    """May this caller decide the review? (Never its requester.)"""
    allowed = may_decide(item, caller)
    if allowed is not None:
        return allowed
    try:  # no approvers listed: whoever may use the connection, or run the runbook
        if item.get("runbook"):
            return CATALOGS.get().get(item["runbook"]).may_run(caller)
        return caller.may_use(SERVICE.get().catalog.get(item["connection"]))
    except RdsgateError:
        return False


def _visible(review_id: str, caller: Caller, store: ReviewStore) -> dict[str, Any]:
    item = store.get(review_id)
    if item is None or not (caller.arn and (item.get("requester") == caller.arn or approver(item, caller))):
        raise ReviewNotFound(f"review {review_id!r} does not exist")
    expire(store, item)
    return store.get(review_id) or item


@router.get("/reviews")
def list_reviews() -> Response:
    """The reviews the caller may decide, newest first (?status=PENDING by default; &mine=true: the caller's own)."""
    invocation = _invocation("GET /reviews")
    event = router.current_event
    status = (event.get_query_string_value("status") or "PENDING").upper()
    mine = (event.get_query_string_value("mine") or "").lower() == "true"

    def work(record: dict[str, Any]) -> list[dict[str, Any]]:
        record["statementType"] = "LIST REVIEWS"
        if status not in STATUSES:
            raise InvalidRequest(f"status: must be one of {', '.join(STATUSES)}", field="status")
        store = ReviewStore.configured()
        caller = invocation.caller
        listed = []
        for item in store.list_status(status):
            if expire(store, item) and status == "PENDING":
                continue
            if (item.get("requester") == caller.arn) if mine else approver(item, caller):
                listed.append(view(store, item))
        record["rows"] = len(listed)
        return listed

    return _json(200, {"reviews": SERVICE.get()._audited(None, None, invocation, work)})


@router.get("/reviews/<review_id>")
def describe_review(review_id: str) -> Response:
    """A review: status (PENDING, APPROVED, REJECTED, EXPIRED, EXECUTED, FAILED), decisions, then the statement id or result."""
    invocation = _invocation("GET /reviews/{id}")

    def work(record: dict[str, Any]) -> dict[str, Any]:
        record["statementType"] = "GET REVIEW"
        record["reviewId"] = review_id
        store = ReviewStore.configured()
        item = _visible(review_id, invocation.caller, store)
        record["connection"] = item["connection"]
        return view(store, item)

    return _json(200, SERVICE.get()._audited(None, None, invocation, work))


def _decide(review_id: str, decision: str) -> Response:
    invocation = _invocation(f"POST /reviews/{{id}}/{'approve' if decision == 'APPROVE' else 'reject'}")
    service = SERVICE.get()

    def work(record: dict[str, Any]) -> dict[str, Any]:
        record["statementType"] = decision
        record["reviewId"] = review_id
        comment = parse_decision(_body())
        store = ReviewStore.configured()
        item = _visible(review_id, invocation.caller, store)
        record["connection"] = item["connection"]
        if item.get("runbook"):
            record.update(runbook=item["runbook"], runbookVersion=item.get("runbookVersion"))
        if item.get("requester") == invocation.caller.arn:
            record["reason"] = "OwnRequest"
            raise Forbidden(f"review {review_id!r}: you requested it, so someone else must decide it (four eyes)", rule="four-eyes")
        if not approver(item, invocation.caller):
            record["reason"] = "NotAnApprover"
            raise Forbidden(f"review {review_id!r}: you are not one of its approvers", rule="approvers")
        if comment:
            record["comment"] = comment
        return decide(item, invocation.caller, decision, comment)

    decided = service._audited(None, None, invocation, work)
    store = ReviewStore.configured()
    if decided["status"] == "APPROVED":
        decided = run_approved(decided, service, invocation, catalogs=CATALOGS, submit_statement=submit_statement)
    return _json(200, view(store, decided))


@router.post("/reviews/<review_id>/approve")
def approve_review(review_id: str) -> Response:
    """Approve a review ({"comment"} optional); with enough approvals the statement runs as its requester."""
    return _decide(review_id, "APPROVE")


@router.post("/reviews/<review_id>/reject")
def reject_review(review_id: str) -> Response:
    """Reject a review ({"comment"}); it never runs."""
    return _decide(review_id, "REJECT")


def _body() -> Any:
    if not router.current_event.body:
        return None
    return edge.body(router, 65536, too_large=InvalidRequest("the request body is over 64 KiB"))


__all__ = ["router", "current_status"]
