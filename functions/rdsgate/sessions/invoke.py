"""Sessions from Step Functions and direct invokes: the invoke handler's ``session`` inputs.

    {"connection", "session": "begin", "readOnly"?}              → {"sessionId"}
    {"connection", "sessionId", "sql", "parameters", …}         → the result document (a statement in the session)
    {"connection", "sessionId", "sql", "parameterSets"}         → a batch in the session
    {"connection", "session": "commit" | "rollback", "sessionId"} → {"status"}

The session is bound to the caller the input claims (``caller``; else the invoked function),
as invoking the function is the authorization; its id is what keeps other executions out.
"""

from __future__ import annotations

from typing import Any

from ..encoding import encode_within
from ..errors import InvalidRequest
from ..request import parse_query
from ..runtime import SERVICE
from ..service import Invocation
from .routes import SESSIONS, parse_begin, split_session

ACTIONS = ("begin", "commit", "rollback")


def is_session_event(event: dict[str, Any]) -> bool:
    return "session" in event or "sessionId" in event


def handle(event: dict[str, Any], name: str, invocation: Invocation, envelope: frozenset[str], limit_bytes: int) -> dict[str, Any]:
    body = {key: value for key, value in event.items() if key not in envelope and key != "session"}
    action = event.get("session")
    if action is not None:
        if action not in ACTIONS:
            raise InvalidRequest(f"session: must be one of {', '.join(ACTIONS)}", field="session")
        if action == "begin":
            return SESSIONS.get().begin(name, invocation, read_only=parse_begin(body))
        body, session_id = split_session(body)
        if body:
            raise InvalidRequest(f"{sorted(body)[0]}: unknown field beside session {action!r}", field=sorted(body)[0])
        if session_id is None:
            raise InvalidRequest("sessionId: required", field="sessionId")
        return SESSIONS.get().end(session_id, invocation, commit=action == "commit", name=name)
    body, session_id = split_session(body)
    service = SERVICE.get()
    if "parameterSets" in body:
        request: Any = service.batch_request(body)
    elif "statements" in body:
        request = service.transaction_request(body)
    else:
        request = parse_query(body)
    result = SESSIONS.get().run(session_id, name, request, invocation)
    encode_within(result, limit_bytes, "Step Functions")  # raises ResultTooLarge
    return result
