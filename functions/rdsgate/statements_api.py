"""The asynchronous statements API (issue 17), a Powertools router included by ``rdsgate.api``.

    POST   /connections/{name}/statements   the /query body plus "output" → 202 {"id", "status"}
    GET    /statements                      the caller's statements, newest first
    GET    /statements/{id}                 status, counts, columns, error
    GET    /statements/{id}/result          a page of records (nextToken); ?format=url: a pre-signed URL
    DELETE /statements/{id}                 cancel

A statement is visible to the caller who submitted it, and to callers allowed on its
connection when the definition says ``share_statements: true``; to anyone else it does
not exist (404), as an unknown or expired id.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from . import edge
from .access import Caller
from .edge import API_RESPONSE_LIMIT_BYTES
from .encoding import _ENCODER, dumps
from .errors import InvalidRequest, RdsgateError, RequestTooLarge
from .request import QUERY_FIELDS, parse_query
from .runtime import LOGGER, SERVICE
from .result_reader import PRESIGNED_URL_SECONDS, ResultReader, decode_token, encode_token
from .result_writer import discard_result
from .statements import CLIENTS, MAX_REQUEST_BYTES, StatementNotFound, StatementSettings, parse_output, status_view, visible
from .worker import store_for, submit_statement

router = APIGatewayRouter()
PAGE_ENVELOPE_BYTES = 64 * 1024  # columns, token and the rest of a page beside its records
DEFAULT_PAGE_RECORDS = 100_000


def _caller() -> Caller:
    return edge.caller(router)


def _respond(status: int, document: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=dumps(document))


def _body() -> Any:
    return edge.body(router, MAX_REQUEST_BYTES, too_large=RequestTooLarge(
        f"the request body is over the limit of {MAX_REQUEST_BYTES} bytes for an asynchronous statement"))


@router.post("/connections/<name>/statements")
def submit_async_statement(name: str) -> Response:
    """Submit a statement to run asynchronously, its result written to S3: the /query body plus "output"."""
    body = _body()
    if not isinstance(body, dict):
        raise InvalidRequest("the request must be a JSON object")
    output = parse_output(body.get("output"))
    document = {key: value for key, value in body.items() if key != "output"}
    if "idempotencyKey" in document:
        raise InvalidRequest("idempotencyKey: not supported for asynchronous statements (each submission is its own)", field="idempotencyKey")
    request = parse_query(document, allowed=QUERY_FIELDS)
    invocation = edge.invocation(router, "POST /connections/{name}/statements", deadline=False)
    caller = invocation.caller
    SERVICE.get().check_statement(name, request, invocation)  # 403/404/400 now, not later in the worker
    item = submit_statement(name, document, output, caller=caller.arn, governed=True)
    LOGGER.info("statement submitted", extra={"statement": item["id"], "connection": name, "caller": caller.arn})
    return _respond(202, {"id": item["id"], "status": item["status"]})


def _audited(item: dict[str, Any], kind: str, route: str, work: Any) -> Any:
    """``work()`` with one audit record on the statement's connection, for a caller still allowed on it."""
    invocation = edge.invocation(router, route, deadline=False, audit_context={"statementId": item["id"]})
    return SERVICE.get().audited(item["connection"], kind, invocation, lambda definition: work())


def _visible_item(statement_id: str, caller: Caller, store: Any) -> dict[str, Any]:
    item = store.get(statement_id) if _plausible(statement_id) else None

    def shared() -> bool:
        try:
            definition = SERVICE.get().catalog.get(item["connection"])
        except RdsgateError:
            return False
        return dict(definition.extras).get("share_statements") is True and caller.may_use(definition)

    if not visible(item, caller.arn, shared):
        raise StatementNotFound(f"statement {statement_id!r} does not exist")
    return item


def _plausible(statement_id: str) -> bool:
    return 0 < len(statement_id) <= 64 and all(c.isalnum() or c == "-" for c in statement_id)


@router.get("/statements")
def list_statements() -> Response:
    """The caller's asynchronous statements, newest first (up to 100)."""
    caller = _caller()
    if not caller.arn:
        return _respond(200, {"statements": []})
    settings = StatementSettings.resolve().require()
    items = store_for(settings).list_for(caller.arn)
    views = [status_view(item) for item in items if visible(item, caller.arn, lambda: False)]
    return _respond(200, {"statements": views})


@router.get("/statements/<statement_id>")
def describe_statement_status(statement_id: str) -> Response:
    """An asynchronous statement's status: SUBMITTED, RUNNING, FINISHED, FAILED or CANCELLED, with counts and columns."""
    settings = StatementSettings.resolve().require()
    item = _visible_item(statement_id, _caller(), store_for(settings))
    view = _audited(item, "STATEMENT STATUS", "GET /statements/{id}", lambda: status_view(item))
    return _respond(200, view)


@router.get("/statements/<statement_id>/result")
def statement_result(statement_id: str) -> Response:
    """A page of a finished statement's records (nextToken), or with ?format=url a pre-signed S3 URL valid 15 minutes."""
    settings = StatementSettings.resolve().require()
    item = _visible_item(statement_id, _caller(), store_for(settings))
    return _audited(item, "STATEMENT RESULT", "GET /statements/{id}/result", lambda: _result(item, settings, statement_id))


def _result(item: dict[str, Any], settings: StatementSettings, statement_id: str) -> Response:
    view = status_view(item)
    if view["status"] != "FINISHED":
        raise InvalidRequest(f"statement {statement_id!r} is {view['status']}: only a FINISHED statement has a result")
    event = router.current_event
    reader = ResultReader(CLIENTS.get("s3"), settings.bucket, item["key"])
    wanted = event.get_query_string_value("format")
    if wanted == "url":
        return _respond(200, {"url": reader.presigned_url(), "expiresIn": PRESIGNED_URL_SECONDS, "format": view["format"],
                              "compression": view["compression"], "bytes": view["bytes"], "storedBytes": view["storedBytes"],
                              "rowCount": view["rowCount"]})
    if wanted not in (None, "", "records"):
        raise InvalidRequest("format: must be records (the default) or url", field="format")
    token = event.get_query_string_value("nextToken")
    start = decode_token(token) if token else 0
    max_records = _page_size(event.get_query_string_value("maxRecords"))
    records, next_row, fmt = reader.page(start, max_records=max_records, limit_bytes=API_RESPONSE_LIMIT_BYTES - PAGE_ENVELOPE_BYTES)
    head = {"columns": view["columns"], "format": fmt, "rowCount": view["rowCount"], "startRow": start}
    if next_row is not None:
        head["nextToken"] = encode_token(next_row)
    # JSON Lines records are spliced in as stored: the same text /query would have sent, value for value.
    text = "[" + ",".join(records if fmt == "jsonl" else (_ENCODER.encode(r) for r in records)) + "]"
    body = dumps(head)[:-1] + ',"records":' + text + "}"
    return Response(status_code=200, content_type="application/json", body=body)


def _page_size(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_PAGE_RECORDS
    if not value.isdigit() or not 1 <= int(value) <= DEFAULT_PAGE_RECORDS:
        raise InvalidRequest(f"maxRecords: must be a whole number from 1 to {DEFAULT_PAGE_RECORDS}", field="maxRecords")
    return int(value)


@router.delete("/statements/<statement_id>")
def cancel_statement(statement_id: str) -> Response:
    """Cancel a SUBMITTED or RUNNING statement: the database cancels it, and its partial output is deleted."""
    settings = StatementSettings.resolve().require()
    store = store_for(settings)
    caller = _caller()
    item = _visible_item(statement_id, caller, store)
    return _audited(item, "STATEMENT CANCEL", "DELETE /statements/{id}", lambda: _cancel(item, store, settings, caller))


def _cancel(item: dict[str, Any], store: Any, settings: StatementSettings, caller: Caller) -> Response:
    statement_id = item["id"]
    before = store.cancel(statement_id)
    if before is None:
        current = status_view(store.get(statement_id))
        raise InvalidRequest(f"statement {statement_id!r} is {current['status']}: only a SUBMITTED or RUNNING statement can be cancelled")
    if before.get("uploadId"):  # first, as it is quick: the partial output goes at once, and the worker's next part fails
        discard_result(CLIENTS.get("s3"), settings.bucket, before["key"], before["uploadId"])
    if before.get("backend") is not None and before["status"] == "RUNNING":
        try:  # from a second connection of the same definition; the worker does the same when it sees CANCELLED
            SERVICE.get().cancel_backend(before["connection"], int(before["backend"]))
        except RdsgateError as exc:
            LOGGER.info("cancel on the database failed", extra={"statement": statement_id, "error": exc.code})
    LOGGER.info("statement cancelled", extra={"statement": statement_id, "caller": caller.arn})
    return _respond(200, {"id": statement_id, "status": "CANCELLED"})
