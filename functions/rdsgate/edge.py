"""What every entry point shares: the transports' limits, their error tables, and the API routes' reading of a call.

The core raises errors that carry a code, a message and fields; which HTTP status or Step Functions
error name stands for each is the transports' business, so the tables live here, beside the helpers
the API routers (``api``, ``sessions.routes``, ``statements_api``, ``runbooks_api``, ``reviews_api``)
use to read a body and the call's facts. No Lambda context goes further than this module's callers.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Mapping

from .access import Caller
from .errors import RdsgateError, InvalidRequest, RequestTooLarge
from .request import decode_json_body
from .service import Invocation
from .tracing import trace_facts

__all__ = [
    "API_RESPONSE_LIMIT_BYTES",
    "EXECUTION_ARN",
    "STEP_FUNCTIONS_LIMIT_BYTES",
    "body",
    "caller",
    "http_status",
    "invocation",
    "remaining_ms",
    "step_functions_name",
]

API_RESPONSE_LIMIT_BYTES = 6_000_000  # Lambda's 6 MB response limit, less room for the envelope
STEP_FUNCTIONS_LIMIT_BYTES = 262_144  # Step Functions' 256 KiB payload limit
# The documented field a state machine fills with "$$.Execution.Id", so the record names the execution.
EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^\s]{1,200}$")

# One row per error code: the API's HTTP status (a subclass without a code of its own answers as its base).
HTTP_STATUS: Mapping[str, int] = {
    "InternalError": 500,
    "InvalidRequest": 400,
    "RequestTooLarge": 413,
    "NotFound": 404,
    "Forbidden": 403,
    "ReadOnlyViolation": 403,
    "GuardrailViolation": 403,
    "InvalidDefinition": 500,
    "SqlError": 422,
    "AuthenticationFailed": 502,
    "DatabaseUnavailable": 503,
    "QueryTimeout": 504,
    "ResultTooLarge": 413,
    "TransactionNotFound": 404,
    "TransactionExpired": 410,
    "TooManySessions": 503,
    "Cancelled": 409,  # rdsgate.statements.StatementCancelled
    "ReviewPending": 202,  # rdsgate.reviews: the request waits for a review
    "ReviewRejected": 409,
    "ReviewExpired": 410,
}
# The Step Functions error name is the class name (what Lambda reports), except where documented otherwise.
STEP_FUNCTIONS_NAMES: Mapping[str, str] = {"RequestTooLarge": "InvalidRequest"}


def http_status(error: RdsgateError) -> int:
    """The HTTP status the API answers ``error`` with."""
    return HTTP_STATUS.get(error.code, 500)


def step_functions_name(error: RdsgateError | type[RdsgateError]) -> str:
    """The documented error name a state machine's Retry/Catch matches."""
    name = error.__name__ if isinstance(error, type) else type(error).__name__
    return STEP_FUNCTIONS_NAMES.get(name, name)


def remaining_ms(context: Any) -> float | None:
    """The Lambda function's remaining time, when its context tells it: the plain number the core is given."""
    return context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None


def caller(resolver: Any) -> Caller:
    """The SigV4 signer API Gateway authenticated (AWS_IAM authorization)."""
    identity = resolver.current_event.raw_event["requestContext"].get("identity") or {}
    arn = identity.get("userArn")
    return Caller(arn=arn if isinstance(arn, str) else None, governed=True)


def invocation(resolver: Any, route: str | None = None, *, limit_bytes: int = API_RESPONSE_LIMIT_BYTES,
               deadline: bool = True, audit_context: Mapping[str, Any] | None = None) -> Invocation:
    """The facts of an API call through ``resolver`` (the app or a router); ``route`` defaults to the resource.
    Its audit context carries the X-Ray trace id beside ``audit_context`` (correlation in the logs)."""
    event = resolver.current_event
    return Invocation(
        caller=caller(resolver),
        result_limit_bytes=limit_bytes,
        request_id=event.raw_event["requestContext"].get("requestId"),
        remaining_ms=remaining_ms(resolver.lambda_context) if deadline else None,
        route=route or f"{event.http_method} {event.raw_event.get('resource') or event.path}",
        audit_context={**trace_facts(), **(audit_context or {})},
    )


def body(resolver: Any, limit: int, *, optional: bool = False, too_large: RdsgateError | None = None) -> Any:
    """The decoded JSON body, refused (``too_large``, else RequestTooLarge) when over ``limit`` bytes;
    ``optional``: a blank body is None."""
    event = resolver.current_event
    raw = event.body or ""
    if optional and not raw.strip():
        return None
    if len(raw) > limit:  # a base64 body is larger than its content; either way it is over
        raise too_large or RequestTooLarge(f"the request body is over the limit of {limit} bytes")
    if event.is_base64_encoded:
        try:
            return decode_json_body(base64.b64decode(raw, validate=True))
        except binascii.Error:
            raise InvalidRequest("the request body is marked base64 but is not valid base64") from None
    return decode_json_body(raw)
