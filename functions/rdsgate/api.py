"""API Gateway entry point: a Powertools REST resolver over the query service.

Routes translate the event into a request for the one service (``runtime.SERVICE.get()``) and its
answer into a response; errors map to status codes (``rdsgate.edge``'s table) in exception handlers,
always as ``{"error": {"code", "message", ...}}`` and never with a stack trace.
"""

from __future__ import annotations

from typing import Any

from .lazy import LazyModule, defer_package_init

# The REST resolver without the rest of Powertools' event handler and event classes (rdsgate.lazy).
defer_package_init("aws_lambda_powertools.event_handler")
defer_package_init("aws_lambda_powertools.utilities.data_classes")

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response  # noqa: E402
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from . import __version__, edge
from .edge import API_RESPONSE_LIMIT_BYTES, http_status
from .encoding import dumps, encode_within, utf8_length
from .errors import ConnectionNotFound, InternalError, InvalidRequest, RdsgateError
from .request import parse_query
from .runtime import LOGGER, SERVICE, begin_invocation, cors_origins
from .service import Invocation
from .tracing import TRACING
from .sessions import routes as sessions
from .statements_api import router as statements_router
from .runbooks_api import router as runbooks_router
from .reviews_api import router as reviews_router

# Imported by the routes that use them, not by a cold start (bench/CHANGES.md, cold start): diagnose's
# socket, ssl and email.utils imports wait for a diagnosis, openapi for the document.
dataapi = LazyModule("rdsgate.dataapi")
diagnose_module = LazyModule("rdsgate.diagnose")
openapi = LazyModule("rdsgate.openapi")


SIGV4_HEADERS = ["Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"]


def _cors() -> CORSConfig | None:
    """CORS only for configured origins (the web console's); none by default."""
    origins = cors_origins()
    if not origins:
        return None
    return CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], allow_headers=SIGV4_HEADERS, max_age=600)


app = APIGatewayRestResolver(cors=_cors())
app.include_router(sessions.router)  # sessions: transactions held across calls (rdsgate.sessions)
app.include_router(statements_router)  # asynchronous statements, results in S3 (rdsgate.statements_api)
app.include_router(runbooks_router)  # runbooks: named SQL with typed parameters (rdsgate.runbooks_api)
app.include_router(reviews_router)  # reviews: approvals before a statement runs (rdsgate.reviews_api)


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    with TRACING.subsegment("encode"):
        body = dumps(document) if status != 200 else encode_within(document, API_RESPONSE_LIMIT_BYTES, "API Gateway")
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


@app.get("/health")
def health() -> Response:
    return _json(200, {"status": "ok"})


def _invocation() -> Invocation:
    # The limit is read here, at the call: tests lower api.API_RESPONSE_LIMIT_BYTES.
    return edge.invocation(app, limit_bytes=API_RESPONSE_LIMIT_BYTES)


@app.get("/connections")
def list_connections() -> Response:
    return _json(200, {"connections": SERVICE.get().list_connections(_invocation())})


@app.get("/connections/<name>")
def describe_connection(name: str) -> Response:
    return _json(200, SERVICE.get().describe_connection(name, _invocation()))


@app.get("/audit")
def read_audit() -> Response:
    """Audit records of one connection the caller may use: ``?connection=…&since=…``."""
    connection = app.current_event.get_query_string_value("connection")
    if not connection:
        raise InvalidRequest("connection: the query parameter is required", field="connection")
    since = app.current_event.get_query_string_value("since")
    return _json(200, {"records": SERVICE.get().audit_records(connection, _invocation(), since)})


def _body() -> Any:
    """The decoded JSON body, refused when over the service's request limit."""
    return edge.body(app, SERVICE.get().limits.max_request_bytes)


@app.post("/connections/<name>/query")
def query(name: str) -> Response:
    body, session_id = sessions.split_session(_body())
    request = parse_query(body)
    if session_id is not None:  # in a session (POST /connections/{name}/sessions)
        return _json(200, sessions.run_in_session(session_id, name, request, _invocation()))
    return _json(200, SERVICE.get().query(name, request, _invocation()))


@app.post("/connections/<name>/describe")
def describe_statement(name: str) -> Response:
    """A statement's parameters and result columns, without running it: ``{"sql"}``."""
    request = parse_query(_body(), allowed=frozenset({"sql"}))
    return _json(200, SERVICE.get().describe(name, request.sql, _invocation()))


@app.get("/connections/<name>/schema")
def connection_schema(name: str) -> Response:
    """Schemas, tables and columns with their types, as the connection's database user sees them."""
    return _json(200, SERVICE.get().schema(name, _invocation()))


@app.post("/connections/<name>/batch")
def batch(name: str) -> Response:
    body, session_id = sessions.split_session(_body())
    request = SERVICE.get().batch_request(body)
    if session_id is not None:
        return _json(200, sessions.run_in_session(session_id, name, request, _invocation()))
    return _json(200, SERVICE.get().run_atomic(name, request, _invocation()))


@app.post("/connections/<name>/transaction")
def transaction(name: str) -> Response:
    request = SERVICE.get().transaction_request(_body())
    return _json(200, SERVICE.get().run_atomic(name, request, _invocation()))


# -- RDS Data API compatibility: boto3's rds-data client pointed at this API ----------------


def _data_api(work: Any) -> Response:
    """Run a Data API operation; its errors take the Data API's rest-json shape, not ours.

    ``work`` returns the response's JSON text and its extra headers.
    """
    try:
        body = _body()
        text, headers = work(body if isinstance(body, dict) else {})
        return Response(status_code=200, content_type="application/json", body=text, headers=headers or None)
    except RdsgateError as error:
        _record_failure(error)
        status, headers, document = dataapi.error_response(error)
        return Response(status_code=status, content_type="application/json", body=dumps(document), headers=headers)


def _data_api_connection(body: dict[str, Any]) -> Any:
    """The definition of the connection a Data API call names, once the caller may use it."""
    return SERVICE.get().authorize(dataapi.connection_name(body), edge.caller(app), database=body.get("database"))


@app.post("/Execute")
def data_api_execute() -> Response:
    def work(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
        request, output = dataapi.parse_execute(body)
        definition = _data_api_connection(body)
        if body.get("transactionId"):  # in a transaction begun with BeginTransaction
            result = sessions.run_in_session(body["transactionId"], definition.name, request, _invocation())
        else:
            result = SERVICE.get().query(definition.name, request, _invocation())
        cut = bool(result["truncated"])
        if cut and not output["truncate"]:  # the Data API fails a call whose result is over its limit
            limits = dataapi.result_limits(definition, SERVICE.get().limits, API_RESPONSE_LIMIT_BYTES)
            wrote = result["updatedRows"] is not None or dataapi.may_write(request.sql, definition.engine)
            raise limits.exceeded(result["rowCount"], may_have_written=wrote)
        document = dataapi.execute_response(result, output, definition.engine)
        text, trimmed = dataapi.encode_response(document, API_RESPONSE_LIMIT_BYTES, truncate=output["truncate"])
        return text, {dataapi.TRUNCATED_HEADER: "true"} if cut or trimmed else {}

    return _data_api(work)


@app.post("/BatchExecute")
def data_api_batch_execute() -> Response:
    def work(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
        request = dataapi.parse_batch_execute(body, max_sets=SERVICE.get().limits.max_batch_sets)
        name = _data_api_connection(body).name
        if body.get("transactionId"):
            result = sessions.run_in_session(body["transactionId"], name, request, _invocation())
        else:
            result = SERVICE.get().run_atomic(name, request, _invocation())
        return dumps(dataapi.batch_response(result)), {}

    return _data_api(work)


@app.post("/BeginTransaction")
def data_api_begin_transaction() -> Response:
    def work(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
        dataapi.check_transaction_body(body, begin=True)
        return dumps(sessions.data_api_begin(_data_api_connection(body).name, _invocation())), {}

    return _data_api(work)


@app.post("/CommitTransaction")
@app.post("/RollbackTransaction")
def data_api_end_transaction() -> Response:
    def work(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
        dataapi.check_transaction_body(body, begin=False)
        commit = app.current_event.path.endswith("/CommitTransaction")
        name = _data_api_connection(body).name
        return dumps(sessions.data_api_end(body.get("transactionId"), name, _invocation(), commit=commit)), {}

    return _data_api(work)


@app.post("/ExecuteSql")
def data_api_unsupported() -> Response:
    def work(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
        raise InvalidRequest(dataapi.EXECUTE_SQL_UNSUPPORTED)

    return _data_api(work)


# -- diagnosis (rdsgate doctor) and the API's description --------------------------------


@app.get("/connections/<name>/diagnose")
def diagnose_connection(name: str) -> Response:
    """Check each step of the connection's IAM login from inside the function."""
    settings = SERVICE.settings
    service = SERVICE.get()
    diagnosis = service.audited(
        name, "DIAGNOSE", _invocation(),
        lambda _: diagnose_module.diagnose(name, service.catalog.get, region=settings.region, connect_timeout=settings.connect_timeout_seconds),
    )
    return _json(200, diagnosis.to_dict())


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response:
    """This API's OpenAPI document."""
    return _json(200, openapi.describe_api(app, version=__version__))


@app.exception_handler(RdsgateError)
def handle_rdsgate_error(error: RdsgateError) -> Response:
    _record_failure(error)
    headers = {"Retry-After": str(error.details["retry_after"])} if "retry_after" in error.details else None
    return _json(http_status(error), {"error": error.to_dict()}, headers)


def _record_failure(error: RdsgateError) -> None:
    """Every request leaves one audit record: this writes it for errors raised before the service ran."""
    if getattr(error, "audited", False):
        return
    try:
        name = (app.current_event.path_parameters or {}).get("name")
        SERVICE.get().record_failure(name, _invocation(), error)
    except Exception as exc:  # no configuration, no service: the request's own error still answers
        LOGGER.error("audit record failed", extra={"exception": type(exc).__name__, "auditWriteFailed": True})


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
    metrics = SERVICE.metrics
    begin_invocation()
    try:
        if not _is_proxy_event(event):  # not from API Gateway: no caller to govern, nothing to route
            error = InvalidRequest("the event is not an API Gateway REST proxy event (requestContext, httpMethod and path are required)")
            return {"statusCode": http_status(error), "headers": {"Content-Type": "application/json"}, "body": dumps({"error": error.to_dict()})}
        response = app.resolve(event, context)
        body = response.get("body")
        if isinstance(body, str):
            metrics.response(utf8_length(body))
        return response
    finally:
        metrics.flush()  # once per invocation: this invocation's metrics, one EMF line per connection


def _is_proxy_event(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("requestContext"), dict)
        and isinstance(event["requestContext"].get("identity", {}), dict)
        and isinstance(event.get("httpMethod"), str)
        and isinstance(event.get("path"), str)
    )
