"""The runbooks API (issue 19), a Powertools router included by ``rdsgate.api``, and the run path the
invoke handler shares.

    GET  /runbooks               the runbooks the caller may run, each with its parameter schema
    GET  /runbooks/{name}        one of them
    POST /runbooks/{name}/run    {"parameters": {…}, "shape"?, "maxRows"?} → the result document of /query

A runbook the caller may not run answers the 404 of a missing name. Parameters are checked against
the schema before anything runs (400 naming the parameter and the ``rule``). The statement then runs
through the query service as the caller, with the runbook's ``allowed_principals`` checked instead of
the connection's, so every other rule applies unchanged: read-only, guardrails, masking, limits, clean
sessions, reviews, and one audit record naming the runbook and its version.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from . import edge
from .access import Caller
from .edge import API_RESPONSE_LIMIT_BYTES, STEP_FUNCTIONS_LIMIT_BYTES
from .encoding import dumps, encode_within
from .errors import InvalidRequest, RdsgateError
from .request import SHAPES, _positive
from .runbooks.catalog import RunbookCatalog, RunbookNotFound
from .runbooks.connections import RUN_FIELDS, RunbookQuery, runbook_context
from .runtime import SERVICE
from .service import Invocation

router = APIGatewayRouter()


class _Catalogs:
    """The runbook catalog of the current service (rebuilt when the service is, as after a reset)."""

    def __init__(self) -> None:
        self._service: Any = None
        self._catalog: RunbookCatalog | None = None

    def get(self) -> RunbookCatalog:
        import os

        service = SERVICE.get()
        if self._catalog is None or self._service is not service:
            ttl = SERVICE.settings.definition_ttl_seconds
            self._catalog = RunbookCatalog(os.environ.get("RDSGATE_RUNBOOKS_TABLE") or None, ttl_seconds=ttl,
                                           client_factory=getattr(service.catalog, "_client_factory", None))
            self._service = service
        return self._catalog


CATALOGS = _Catalogs()


def run_runbook(name: str, values: Any, invocation: Invocation, *, shape: str = "objects", max_rows: int | None = None) -> dict[str, Any]:
    """Check the caller and the parameters, then run the runbook's statement through the query service.

    Exactly one audit record is written, naming the runbook and its version, whatever the outcome.
    """
    service = SERVICE.get()
    runbook = None
    try:
        runbook = CATALOGS.get().get(name)
        if not runbook.may_run(invocation.caller):
            hidden = RunbookNotFound(f"runbook {name!r} does not exist")
            context = {**invocation.audit_context, **runbook_context(runbook, name), "reason": "Forbidden"}
            service.record_failure(runbook.connection, dataclasses.replace(invocation, audit_context=context), hidden)
            raise hidden
        parameters, hints = runbook.bind(values)
    except RdsgateError as exc:
        context = {**invocation.audit_context, **runbook_context(runbook, name)}
        service.record_failure(runbook.connection if runbook else None, dataclasses.replace(invocation, audit_context=context), exc)
        raise
    limit = min(x for x in (max_rows, runbook.max_rows) if x is not None) if (max_rows or runbook.max_rows) else None
    request = RunbookQuery(sql=runbook.sql, parameters=parameters, type_hints=hints, shape=shape, max_rows=limit,
                           read_only=bool(runbook.read_only), runbook=runbook.name, runbook_version=runbook.version,
                           approval=runbook.approval)
    # The runbook's principals were checked above, instead of the connection's.
    runner = dataclasses.replace(
        invocation, caller=Caller(arn=invocation.caller.arn, governed=False),
        audit_context={**invocation.audit_context, **runbook_context(runbook, name)},
    )
    return service.query(runbook.connection, request, runner)


def parse_run(document: Any) -> tuple[Any, str, int | None]:
    """``{"parameters", "shape", "maxRows"}`` of a run request."""
    if not isinstance(document, dict):
        raise InvalidRequest("the request must be a JSON object such as {\"parameters\": {...}}")
    unknown = sorted(set(document) - RUN_FIELDS)
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(RUN_FIELDS))})", field=unknown[0])
    shape = document.get("shape", "objects")
    if shape not in SHAPES:
        raise InvalidRequest("shape: must be 'objects' or 'arrays'", field="shape")
    return document.get("parameters"), shape, _positive(document, "maxRows")


# -- routes ------------------------------------------------------------------------------------


def _invocation(route: str) -> Invocation:
    return edge.invocation(router, route)


def _json(status: int, document: Any) -> Response:
    body = encode_within(document, API_RESPONSE_LIMIT_BYTES, "API Gateway") if status == 200 else dumps(document)
    return Response(status_code=status, content_type="application/json", body=body)


def _body() -> Any:
    if not router.current_event.body:
        return {}
    return edge.body(router, SERVICE.get().limits.max_request_bytes)


@router.get("/runbooks")
def list_runbooks() -> Response:
    """The runbooks the caller may run, each with its parameter schema."""
    invocation = _invocation("GET /runbooks")

    def work(record: dict[str, Any]) -> list[dict[str, Any]]:
        record["statementType"] = "LIST"
        listed = [runbook.view() for runbook in CATALOGS.get().list() if runbook.may_run(invocation.caller)]
        record["rows"] = len(listed)
        return listed

    return _json(200, {"runbooks": SERVICE.get()._audited(None, None, invocation, work)})


@router.get("/runbooks/<name>")
def describe_runbook(name: str) -> Response:
    """One runbook the caller may run: its connection, SQL, parameter schema, limits, approval rule and version."""
    invocation = _invocation("GET /runbooks/{name}")

    def work(record: dict[str, Any]) -> dict[str, Any]:
        record["statementType"] = "GET"
        record["runbook"] = name
        runbook = CATALOGS.get().get(name)
        record["connection"] = runbook.connection
        record["runbookVersion"] = runbook.version
        if not runbook.may_run(invocation.caller):
            record["reason"] = "Forbidden"
            raise RunbookNotFound(f"runbook {name!r} does not exist")
        return runbook.view()

    return _json(200, SERVICE.get()._audited(None, None, invocation, work))


@router.post("/runbooks/<name>/run")
def run_runbook_route(name: str) -> Response:
    """Run a runbook: {"parameters": {…}} → the result document of /query (202 with a review id when it needs one)."""
    invocation = _invocation("POST /runbooks/{name}/run")
    try:
        values, shape, max_rows = parse_run(_body())
    except RdsgateError as exc:
        runbook_invocation = dataclasses.replace(invocation, audit_context=runbook_context(None, name))
        SERVICE.get().record_failure(None, runbook_invocation, exc)
        raise
    return _json(200, run_runbook(name, values, invocation, shape=shape, max_rows=max_rows))


# -- Step Functions and direct invoke: {"runbook", "parameters"} -------------------------------------

INVOKE_FIELDS = RUN_FIELDS | {"runbook", "caller", "executionArn"}


def invoke_runbook(event: dict[str, Any], invocation: Invocation) -> dict[str, Any]:
    """The invoke handler's runbook form, with the invocation it read (``rdsgate.invoke``: the claimed caller,
    the execution). Invoking the function is the authorization, as for SQL: the runbook's principals are
    not checked."""
    name = event.get("runbook")
    try:
        if not isinstance(name, str) or not name:
            raise InvalidRequest("runbook: the runbook's name is required", field="runbook")
        unknown = sorted(set(event) - INVOKE_FIELDS)
        if unknown:
            raise InvalidRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(INVOKE_FIELDS))})", field=unknown[0])
        values, shape, max_rows = parse_run({k: v for k, v in event.items() if k in RUN_FIELDS})
    except RdsgateError as exc:
        context_facts = {**invocation.audit_context, **runbook_context(None, name if isinstance(name, str) else None)}
        SERVICE.get().record_failure(None, dataclasses.replace(invocation, audit_context=context_facts), exc)
        raise
    result = run_runbook(name, values, invocation, shape=shape, max_rows=max_rows)
    encode_within(result, STEP_FUNCTIONS_LIMIT_BYTES, "Step Functions")  # raises ResultTooLarge
    return result
