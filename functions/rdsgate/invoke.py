"""Step Functions and direct-invoke entry point.

Input ``{"connection", "sql", "parameters", "typeHints", "shape", "maxRows", …}``
returns the result document; ``{"connection", "sql", "parameterSets"}`` runs a batch and
``{"connection", "statements": [...]}`` a transaction, as the API's ``/batch`` and
``/transaction`` do. The input is translated into a request for the one service; failures
raise exceptions whose class names are the documented error names (``rdsgate.edge``'s
table), so a state machine's Retry and Catch can match them.
"""

from __future__ import annotations

from typing import Any

from . import errors
from .access import TRUSTED
from .edge import EXECUTION_ARN, STEP_FUNCTIONS_LIMIT_BYTES, remaining_ms, step_functions_name
from .encoding import encode_within, utf8_length
from .request import BATCH_FIELDS, QUERY_FIELDS, TRANSACTION_FIELDS, parse_query
from .runtime import SERVICE, begin_invocation
from .service import Invocation
from .tracing import TRACING

ENVELOPE = frozenset({"connection", "caller", "executionArn"})  # beside the request's own fields
_BY_NAME = {cls.__name__: cls for cls in errors.ERROR_TABLE}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Run one statement; raise InvalidRequest, ConnectionNotFound, SqlError, … on failure."""
    try:
        return _run(event, context)
    except errors.RdsgateError as exc:
        _record_failure(event, context, exc)
        raise _as_step_functions_error(exc) from None
    finally:
        SERVICE.metrics.flush()  # once per invocation: this invocation's metrics, one EMF line per connection


def _record_failure(event: Any, context: Any, error: errors.RdsgateError) -> None:
    """Every invocation leaves one audit record: this writes it for input refused before the service ran."""
    if getattr(error, "audited", False):
        return
    name = event.get("connection") if isinstance(event, dict) and isinstance(event.get("connection"), str) else None
    audit_context: dict[str, Any] = {}
    if isinstance(event, dict) and "runbook" in event:  # the runbook form: its record names the runbook
        from .runbooks.connections import runbook_context

        runbook = event["runbook"]
        audit_context = runbook_context(None, runbook if isinstance(runbook, str) else None)
    invocation = Invocation(
        caller=TRUSTED, result_limit_bytes=0,
        request_id=getattr(context, "aws_request_id", None), route="invoke", audit_context=audit_context,
    )
    try:
        SERVICE.get().record_failure(name, invocation, error)
    except Exception:  # no configuration, no service: the invocation's own error still answers
        pass


def _invocation(event: dict[str, Any], context: Any) -> Invocation:
    """The facts of a direct invocation, for every input form. Invoking the function is the authorization
    (lambda:InvokeFunction): nothing in the event is verified, so the caller it names is recorded as claimed,
    beside what the function knows. Starts the invocation (log sampling; the trace id)."""
    caller = event.get("caller")
    if caller is not None and not isinstance(caller, str):
        raise errors.InvalidRequest("caller: must be a string (an ARN or a name, recorded for audit)", field="caller")
    execution = event.get("executionArn")
    if execution is not None and not (isinstance(execution, str) and EXECUTION_ARN.match(execution)):
        raise errors.InvalidRequest("executionArn: must be a Step Functions execution ARN ($$.Execution.Id)", field="executionArn")
    context_facts = {"claimedCaller": caller, "invokedFunctionArn": getattr(context, "invoked_function_arn", None), "executionArn": execution,
                     **begin_invocation()}
    return Invocation(
        caller=TRUSTED,
        result_limit_bytes=STEP_FUNCTIONS_LIMIT_BYTES,
        request_id=getattr(context, "aws_request_id", None),
        remaining_ms=remaining_ms(context),
        route="invoke",
        audit_context={key: value for key, value in context_facts.items() if value is not None},
    )


def _run(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise errors.InvalidRequest("the input must be a JSON object")
    invocation = _invocation(event, context)
    if "runbook" in event:  # {"runbook", "parameters"}: a runbook (rdsgate.runbooks_api)
        from .runbooks_api import invoke_runbook

        return invoke_runbook(event, invocation)
    name = event.get("connection")
    if not isinstance(name, str) or not name:
        raise errors.InvalidRequest("connection: the connection name is required", field="connection")
    from .sessions import invoke as sessions

    if sessions.is_session_event(event):  # a transaction across invocations (rdsgate.sessions.invoke)
        return sessions.handle(event, name, invocation, ENVELOPE, STEP_FUNCTIONS_LIMIT_BYTES)
    service = SERVICE.get()
    if "statements" not in event and "parameterSets" not in event:
        from .worker import invoke_to_s3, wants_s3  # results in S3: "output": {"s3": true}, "taskToken", spill_to_s3

        if wants_s3(event, name):
            return invoke_to_s3(event, name, invocation, ENVELOPE)
    if "statements" in event:  # a transaction
        result = service.run_atomic(name, service.transaction_request(event, TRANSACTION_FIELDS | ENVELOPE), invocation)
    elif "parameterSets" in event:  # a batch
        result = service.run_atomic(name, service.batch_request(event, BATCH_FIELDS | ENVELOPE), invocation)
    else:
        result = service.query(name, parse_query(event, allowed=QUERY_FIELDS | ENVELOPE), invocation)
    with TRACING.subsegment("encode"):
        text = encode_within(result, STEP_FUNCTIONS_LIMIT_BYTES, "Step Functions")  # raises ResultTooLarge
    SERVICE.metrics.response(utf8_length(text))
    return result


def _as_step_functions_error(exc: errors.RdsgateError) -> errors.RdsgateError:
    """The same error under its documented Step Functions name (RequestTooLarge → InvalidRequest)."""
    cls = _BY_NAME.get(step_functions_name(exc), type(exc))
    if cls is type(exc):
        return exc
    return cls(exc.message, **exc.details)
