"""The sessions API (issue 15), a Powertools router included by ``rdsgate.api``, and the calls the
other entry points share (``/query`` and ``/batch`` with ``sessionId``, the Data API's transactions,
the invoke handler's ``session`` inputs).

    POST /connections/{name}/sessions   {"readOnly"?} → {"sessionId"}: BEGIN [READ ONLY], held by a runner
    POST /sessions/{id}/commit          → {"status": "committed"}
    POST /sessions/{id}/rollback        → {"status": "rolledback"}

and ``"sessionId"`` in the body of ``POST /connections/{name}/query`` and ``…/batch`` runs the
statement in that session. A session id works only for the caller that began it, on its
connection; for anyone else it does not exist (404 TransactionNotFound), and the attempt is audited.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from .. import edge
from ..encoding import dumps
from ..errors import InvalidRequest
from ..request import AtomicRequest, QueryRequest
from ..runtime import SERVICE
from ..service import Invocation
from .gateway import SessionsHolder

__all__ = ["SESSIONS", "parse_begin", "split_session"]

router = APIGatewayRouter()
SESSIONS = SessionsHolder(SERVICE)  # the sessions of the process-wide service (rdsgate.runtime)
BEGIN_FIELDS = frozenset({"readOnly"})
SESSION_FIELD = "sessionId"
# The Data API's words for the outcome of CommitTransaction and RollbackTransaction.
DATA_API_STATUS = {True: "Transaction Committed", False: "Rollback Complete"}


def _invocation(route: str) -> Invocation:
    """The call's facts; ``route`` is the resource's template, so a session id in the path is never recorded."""
    return edge.invocation(router, route)


def _body(*, optional: bool = False) -> Any:
    body = edge.body(router, SERVICE.get().limits.max_request_bytes, optional=optional)
    return {} if body is None and optional else body


def _respond(document: Any) -> Response:
    return Response(status_code=200, content_type="application/json", body=dumps(document))


@router.post("/connections/<name>/sessions")
def begin_session(name: str) -> Response:
    """Begin a session: a transaction held open across calls ({"readOnly"?}) → {"sessionId"}."""
    body = _body(optional=True)
    read_only = parse_begin(body)
    return _respond(SESSIONS.get().begin(name, _invocation("POST /connections/{name}/sessions"), read_only=read_only))


@router.post("/sessions/<session_id>/commit")
def commit_session(session_id: str) -> Response:
    """Commit the session's transaction and end the session → {"status": "committed"}."""
    return _respond(SESSIONS.get().end(session_id, _invocation("POST /sessions/{id}/commit"), commit=True))


@router.post("/sessions/<session_id>/rollback")
def rollback_session(session_id: str) -> Response:
    """Roll the session's transaction back and end the session → {"status": "rolledback"}."""
    return _respond(SESSIONS.get().end(session_id, _invocation("POST /sessions/{id}/rollback"), commit=False))


# -- shared by the other entry points ----------------------------------------------------------


def parse_begin(body: Any, *, allowed: frozenset[str] = BEGIN_FIELDS) -> bool:
    """The begin's options: ``{"readOnly": bool}``; its read-only flag."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed)) or 'none'})", field=unknown[0])
    read_only = body.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise InvalidRequest("readOnly: must be true or false", field="readOnly")
    return read_only


def split_session(body: Any) -> tuple[Any, Any]:
    """The body without ``sessionId``, and the session id (None when the body names none)."""
    if isinstance(body, dict) and SESSION_FIELD in body:
        session_id = body[SESSION_FIELD]
        if not isinstance(session_id, str) or not session_id:
            raise InvalidRequest(f"{SESSION_FIELD}: must be the id a begin returned", field=SESSION_FIELD)
        return {k: v for k, v in body.items() if k != SESSION_FIELD}, session_id
    return body, None


def run_in_session(session_id: Any, name: str, request: QueryRequest | AtomicRequest, invocation: Invocation) -> dict[str, Any]:
    return SESSIONS.get().run(session_id, name, request, invocation)


def data_api_begin(name: str, invocation: Invocation) -> dict[str, Any]:
    """BeginTransaction → ``{"transactionId"}``."""
    return {"transactionId": SESSIONS.get().begin(name, invocation)["sessionId"]}


def data_api_end(transaction_id: Any, name: str, invocation: Invocation, *, commit: bool) -> dict[str, Any]:
    """CommitTransaction / RollbackTransaction → ``{"transactionStatus"}``, as the Data API words it."""
    if not isinstance(transaction_id, str) or not transaction_id:
        raise InvalidRequest("transactionId: required", field="transactionId")
    SESSIONS.get().end(transaction_id, invocation, commit=commit, name=name)
    return {"transactionStatus": DATA_API_STATUS[commit]}
