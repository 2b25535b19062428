"""API Gateway entry point: a Powertools REST resolver over the query service.

Routes map to service calls; errors map to status codes in exception handlers,
always as ``{"error": {"code", "message", ...}}`` and never with a stack trace.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from .encoding import dumps, encode_within
from .errors import ConnectionNotFound, InternalError, RdsgateError, RequestTooLarge
from .request import decode_json_body, parse_query
from .runtime import API_RESPONSE_LIMIT_BYTES, LOGGER, SERVICE

app = APIGatewayRestResolver()


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    body = dumps(document) if status != 200 else encode_within(document, API_RESPONSE_LIMIT_BYTES, "API Gateway")
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


@app.get("/health")
def health() -> Response:
    return _json(200, {"status": "ok"})


@app.get("/connections")
def list_connections() -> Response:
    return _json(200, {"connections": SERVICE.get().list_connections()})


@app.get("/connections/<name>")
def describe_connection(name: str) -> Response:
    return _json(200, SERVICE.get().describe_connection(name))


@app.post("/connections/<name>/query")
def query(name: str) -> Response:
    event = app.current_event
    raw = event.body or ""
    limit = SERVICE.settings.max_request_bytes
    if len(raw) > limit:  # a base64 body is larger than its content; either way it is over
        raise RequestTooLarge(f"the request body is over the limit of {limit} bytes")
    request = parse_query(decode_json_body(event.decoded_body if event.is_base64_encoded else raw))
    return _json(200, SERVICE.get().query(name, request))


@app.exception_handler(RdsgateError)
def handle_rdsgate_error(error: RdsgateError) -> Response:
    headers = {"Retry-After": str(error.details["retry_after"])} if "retry_after" in error.details else None
    return _json(error.status, {"error": error.to_dict()}, headers)


@app.not_found
def handle_not_found(_: NotFoundError) -> Response:
    event = app.current_event
    return handle_rdsgate_error(ConnectionNotFound(f"no route for {event.http_method} {event.path}"))


@app.exception_handler(Exception)
def handle_unexpected(error: Exception) -> Response:
    LOGGER.error("unexpected failure", extra={"exception": type(error).__name__})
    return handle_rdsgate_error(InternalError("rdsgate failed unexpectedly; see the function's log"))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for API Gateway REST (proxy integration) events."""
    return app.resolve(event, context)
