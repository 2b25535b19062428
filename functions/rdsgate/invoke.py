"""Step Functions and direct-invoke entry point.

Input ``{"connection", "sql", "parameters", "typeHints", "shape", "maxRows", …}``
returns the result document; ``{"connection", "sql", "parameterSets"}`` runs a batch and
``{"connection", "statements": [...]}`` a transaction, as the API's ``/batch`` and
``/transaction`` do. Failures raise exceptions whose class names are the
documented error names, so a state machine's Retry and Catch can match them.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .encoding import encode_within
from .request import BATCH_FIELDS, QUERY_FIELDS, TRANSACTION_FIELDS, parse_batch, parse_query, parse_transaction
from .access import Caller
from .runtime import SERVICE, STEP_FUNCTIONS_LIMIT_BYTES
from .service import Invocation

ENVELOPE = frozenset({"connection", "caller"})  # beside the request's own fields
_BY_NAME = {cls.__name__: cls for cls in errors.ERROR_TABLE}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run one statement; raise InvalidRequest, ConnectionNotFound, SqlError, … on failure."""
    try:
        return _run(event, context)
    except errors.RdsgateError as exc:
        raise _as_step_functions_error(exc) from None


def _run(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise errors.InvalidRequest("the input must be a JSON object")
    name = event.get("connection")
    if not isinstance(name, str) or not name:
        raise errors.InvalidRequest("connection: the connection name is required", field="connection")
    caller = event.get("caller")
    if caller is not None and not isinstance(caller, str):
        raise errors.InvalidRequest("caller: must be a string (an ARN or a name, recorded for audit)", field="caller")
    invocation = Invocation(
        # Invoking the function is the authorization (lambda:InvokeFunction); the caller is recorded.
        caller=Caller(arn=caller or getattr(context, "invoked_function_arn", None), governed=False),
        result_limit_bytes=STEP_FUNCTIONS_LIMIT_BYTES,
        request_id=getattr(context, "aws_request_id", None),
        remaining_ms=context.get_remaining_time_in_millis() if hasattr(context, "get_remaining_time_in_millis") else None,
    )
    settings = SERVICE.settings
    if "statements" in event:  # a transaction
        atomic = parse_transaction(event, max_statements=settings.max_transaction_statements, allowed=TRANSACTION_FIELDS | ENVELOPE)
        result = SERVICE.run_atomic(name, atomic, invocation, context)
    elif "parameterSets" in event:  # a batch
        atomic = parse_batch(event, max_sets=settings.max_batch_sets, allowed=BATCH_FIELDS | ENVELOPE)
        result = SERVICE.run_atomic(name, atomic, invocation, context)
    else:
        result = SERVICE.query(name, parse_query(event, allowed=QUERY_FIELDS | ENVELOPE), invocation, context)
    encode_within(result, STEP_FUNCTIONS_LIMIT_BYTES, "Step Functions")  # raises ResultTooLarge
    return result


def _as_step_functions_error(exc: errors.RdsgateError) -> errors.RdsgateError:
    """The same error under its documented Step Functions name (RequestTooLarge → InvalidRequest)."""
    cls = _BY_NAME.get(exc.step_functions_name, type(exc))
    if cls is type(exc):
        return exc
    return cls(exc.message, **exc.details)
