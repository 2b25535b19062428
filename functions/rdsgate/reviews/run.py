"""The run of an approved review: its statement as its requester, after its hash and its runbook are checked again.

A single query goes through the asynchronous statements' machinery (its result in S3); a runbook, a
batch or a transaction runs at once and its result is kept with the review. The worker's side of an
approved statement (``approved_run``) is here too: what it runs is what the review approved.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from ..errors import Forbidden, InvalidRequest, RdsgateError
from ..request import QueryRequest
from ..runbooks.connections import RunbookQuery
from .item import REVIEW_CONTEXT, ReviewStore, digest, opened_document, rebuild, request_document
from .notices import fail_task

__all__ = ["MAX_KEPT_RESULT_BYTES", "approved_run", "run_approved"]

MAX_KEPT_RESULT_BYTES = 256 * 1024  # a batch or transaction result kept with its review


def run_approved(item: dict[str, Any], service: Any, base_invocation: Any, *, catalogs: Any, submit_statement: Any) -> dict[str, Any]:
    """Run an APPROVED review as its requester; the item as it ends (EXECUTED with a statement id or result, or FAILED).

    ``catalogs``: the runbook catalogs (``.get()``); ``submit_statement``: how a single statement is handed
    to the asynchronous statements' worker (``rdsgate.worker.submit_statement``)."""
    from ..access import Caller

    store = ReviewStore.configured()
    document = opened_document(store, item)
    if digest(item["connection"], item["kind"], document) != item["requestSha256"]:
        failed = {**item, "status": "FAILED", "error": {"code": "Forbidden", "message": "the stored request no longer matches its hash: it does not run"}}
        store.replace(failed, "APPROVED")
        fail_task(store, failed, Forbidden(f"review {item['id']} was tampered with: it does not run"))
        return failed
    request = rebuild(item["kind"], document)
    invocation = dataclasses.replace(
        base_invocation, caller=Caller(arn=item.get("requester"), governed=bool(item.get("governed", True)) and item["kind"] != "runbook"),
        audit_context={**(item.get("claim") or {}), REVIEW_CONTEXT: item["id"],
                       **({"runbook": item["runbook"], "runbookVersion": item["runbookVersion"]} if item.get("runbook") else {})},
    )
    try:
        if isinstance(request, RunbookQuery):  # the runbook must still be the version approved, and runnable by its requester
            request = _current_runbook(item, request, catalogs)
        if item["kind"] == "query":
            outcome = _submit_statement(item, request, invocation, service, submit_statement)
        elif item["kind"] == "runbook":  # its caller may not read the connection's statements: the result stays here
            outcome = {"result": _kept(service.query(item["connection"], request, invocation))}
        elif item["kind"] in ("batch", "transaction"):
            result = service.run_atomic(item["connection"], request, invocation)
            outcome = {"result": _kept(result)}
        else:
            raise InvalidRequest(f"review {item['id']}: unknown kind {item['kind']!r}")
    except RdsgateError as exc:
        failed = {**item, "status": "FAILED", "error": exc.to_dict()}
        store.replace(failed, "APPROVED")
        fail_task(store, failed, exc)
        return failed
    done = {**item, "status": "EXECUTED", **outcome}
    store.replace(done, "APPROVED")
    return done


def _current_runbook(item: Mapping[str, Any], request: Any, catalogs: Any) -> Any:
    """The runbook must still be the version approved."""
    from ..access import Caller

    runbook = catalogs.get().get(item["runbook"])
    if item.get("governed", True) and not runbook.may_run(Caller(arn=item.get("requester"), governed=True)):
        raise Forbidden(f"review {item['id']}: its requester may no longer run runbook {item['runbook']!r}", rule="review")
    if runbook.version != item["runbookVersion"]:
        raise Forbidden(f"runbook {item['runbook']!r} changed since review {item['id']} was submitted: it does not run", rule="review")
    return dataclasses.replace(request, approval=runbook.approval)


def _submit_statement(item: Mapping[str, Any], request: Any, invocation: Any, service: Any, submit_statement: Any) -> dict[str, Any]:
    """A single statement: the asynchronous statements machinery runs it (the result in S3)."""
    from ..statements import Output, StatementSettings

    settings = StatementSettings.resolve()
    if not settings.table or not settings.bucket:  # no asynchronous statements here: run it now
        result = service.query(item["connection"], request, invocation)
        return {"result": _kept(result)}
    service.check_statement(item["connection"], request, invocation)  # governance now, as on submission
    _, document = request_document(request)
    body = {k: v for k, v in {"sql": document["sql"], "parameters": document["parameters"], "typeHints": document["typeHints"],
                              "shape": document["shape"], "maxRows": document["maxRows"], "readOnly": document["readOnly"] or None,
                              "timeoutMs": document["timeoutMs"]}.items() if v not in (None, {})}
    statement = submit_statement(item["connection"], body, Output(), caller=item.get("requester"),
                                 governed=bool(item.get("governed", True)) and item["kind"] != "runbook",
                                 task_token=item.get("taskToken"), review=dict(invocation.audit_context))
    return {"statementId": statement["id"]}


def _kept(result: dict[str, Any]) -> dict[str, Any]:
    """The result kept with the review, when it fits an item; else its counts."""
    text = json.dumps(result, default=str)
    if len(text.encode()) <= MAX_KEPT_RESULT_BYTES:
        return result
    return {k: v for k, v in result.items() if k not in ("records", "results")} | {"kept": False}


def approved_run(review: str, request: Any, invocation: Any) -> tuple[Any, Any]:
    """The worker's request and invocation for a statement an approved review submitted."""
    context = json.loads(review)
    if context.get("runbook"):
        fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(QueryRequest)}
        request = RunbookQuery(**fields, runbook=context["runbook"], runbook_version=context.get("runbookVersion", ""))
    return request, dataclasses.replace(invocation, audit_context={**(invocation.audit_context or {}), **context})
