"""Reviews (approvals): statements that wait for other people's approval before they run.

A connection or a runbook with an ``approval`` rule (``rdsgate.approval``) holds the statements the rule
names: the request is checked as usual (access, SQL checks, guardrails, parameters), then, instead of
running, it becomes a review item (DynamoDB, ``RDSGATE_REVIEWS_TABLE``) and the caller gets
``202 {"reviewId", "status": "PENDING"}``. Nothing has run.

The item holds the requester, the connection (and runbook and its version), the request (SQL and
parameters; the parameters encrypted with KMS when ``RDSGATE_REVIEWS_KMS_KEY`` is set, and never shown
unless the connection sets ``audit_parameters``), the SHA-256 of the whole request, the time and the
expiry. Approvers matching the rule's ``approvers`` (never the requester: four eyes) approve or reject;
each decision is audited. Once ``min_approvals`` approvals are in, the statement runs as the requester,
with the same governance, after its hash is checked again: a query through the asynchronous statements
machinery (``statementId``; result from ``/statements/{id}/result``); a runbook, a batch or a transaction
at once (its result kept with the review: a runbook's caller may not be allowed to read the connection's
statements). Expired and rejected reviews never run. A Step Functions
task token held by a review is answered when the statement ends, or failed with ``ReviewRejected`` or
``ReviewExpired``. An optional SNS topic (``RDSGATE_REVIEWS_TOPIC``) hears of new and decided reviews.

Over ~400 lines: a review's whole life (gate, item, decisions, run, expiry, notices) around one DynamoDB item.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import datetime as dt
import hashlib
import json
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from .approval import ApprovalRule, parse_approval
from .botoclients import Clients
from .errors import ConnectionNotFound, Forbidden, InvalidRequest, RdsgateError
from .request import AtomicRequest, QueryRequest, Statement

STATUSES = ("PENDING", "APPROVED", "REJECTED", "EXPIRED", "EXECUTED", "FAILED")
REVIEW_CONTEXT = "review"  # the audit-context key of an approved review's run
KEEP_DAYS = 30  # how long a decided review stays readable (TTL)
MAX_ENCRYPTED_BYTES = 4096  # KMS Encrypt's plaintext limit
MAX_KEPT_RESULT_BYTES = 256 * 1024  # a batch or transaction result kept with its review
LIST_LIMIT = 100


class ReviewPending(RdsgateError):
    """The request waits for a review; nothing has run (202 with the review's id)."""

    code = "ReviewPending"


class ReviewRejected(RdsgateError):
    """A reviewer rejected the request: it never runs (a held Step Functions task fails with this name)."""

    code = "ReviewRejected"


class ReviewExpired(RdsgateError):
    """Nobody approved the request in time: it never runs."""

    code = "ReviewExpired"


class ReviewNotFound(ConnectionNotFound):
    """No review of that id that the caller may see."""


# -- settings and clients ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewSettings:
    table: str | None = None
    kms_key: str | None = None
    topic: str | None = None

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None) -> ReviewSettings:
        env = os.environ if environ is None else environ
        return cls(table=env.get("RDSGATE_REVIEWS_TABLE") or None, kms_key=env.get("RDSGATE_REVIEWS_KMS_KEY") or None,
                   topic=env.get("RDSGATE_REVIEWS_TOPIC") or None)

    def require(self) -> ReviewSettings:
        if not self.table:
            raise InvalidRequest("this request needs a review, and reviews are not enabled (RDSGATE_REVIEWS_TABLE is not set)")
        return self


CLIENTS = Clients()  # botocore without a Config of its own


# -- the request a review holds ------------------------------------------------------------------


def request_document(request: Any) -> tuple[str, dict[str, Any]]:
    """The kind of request and everything that decides what runs (what the hash covers)."""
    from .runbooks import RunbookQuery

    if isinstance(request, AtomicRequest):
        return ("batch" if request.batch else "transaction"), {
            "statements": [{"sql": s.sql, "parameters": dict(s.parameters), "typeHints": dict(s.type_hints)} for s in request.statements],
            "shape": request.shape, "maxRows": request.max_rows, "maxBytes": request.max_bytes,
            "readOnly": request.read_only, "timeoutMs": request.timeout_ms,
        }
    document = {"sql": request.sql, "parameters": dict(request.parameters), "typeHints": dict(request.type_hints),
                "shape": request.shape, "maxRows": request.max_rows, "maxBytes": request.max_bytes,
                "readOnly": request.read_only, "timeoutMs": request.timeout_ms}
    if isinstance(request, RunbookQuery):
        document.update(runbook=request.runbook, runbookVersion=request.runbook_version)
        return "runbook", document
    return "query", document


def rebuild(kind: str, document: Mapping[str, Any]) -> Any:
    """The request object of a review's document."""
    from .runbooks import RunbookQuery

    options = {"shape": document.get("shape") or "objects", "max_rows": document.get("maxRows"),
               "max_bytes": document.get("maxBytes"), "read_only": bool(document.get("readOnly")),
               "timeout_ms": document.get("timeoutMs")}
    if kind in ("batch", "transaction"):
        statements = tuple(Statement(s["sql"], s.get("parameters") or {}, s.get("typeHints") or {}) for s in document["statements"])
        return AtomicRequest(statements, batch=kind == "batch", **options)
    common = dict(sql=document["sql"], parameters=document.get("parameters") or {}, type_hints=document.get("typeHints") or {}, **options)
    if kind == "runbook":
        return RunbookQuery(runbook=document["runbook"], runbook_version=document["runbookVersion"], **common)
    return QueryRequest(**common)


def digest(connection: str, kind: str, document: Mapping[str, Any]) -> str:
    """SHA-256 of what a review approves: connection, kind, SQL, parameters and options."""
    canonical = json.dumps({"connection": connection, "kind": kind, "request": document}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- the gate, called by the query service before a statement runs ---------------------------------

_TASK_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("rdsgate_review_task_token", default=None)


@contextmanager
def holding_task_token(token: str | None) -> Iterator[None]:
    """A review made within this block holds the Step Functions task token (waitForTaskToken)."""
    reset = _TASK_TOKEN.set(token)
    try:
        yield
    finally:
        _TASK_TOKEN.reset(reset)


def rule_for(definition: Any, request: Any) -> ApprovalRule | None:
    """A runbook's own rule when it has one, else its connection's."""
    from .runbooks import RunbookQuery, connection_approval

    if isinstance(request, RunbookQuery) and request.approval is not None:
        return request.approval
    return connection_approval(definition)


def statement_kinds(sqls: list[str], engine: str) -> tuple[frozenset[str], bool]:
    """The kinds the guardrails' classifier reports for the statements, and whether any cannot be read."""
    from .guardrails import analyse

    kinds: set[str] = set()
    unreadable = False
    for sql in sqls:
        outcome = analyse(sql, engine)
        kinds |= outcome.kinds
        unreadable = unreadable or outcome.problem is not None
    return frozenset(kinds), unreadable


def review_gate(definition: Any, request: Any, invocation: Any, record: dict[str, Any]) -> None:
    """Raise ReviewPending (after recording the review) when the request needs one; check an approved run."""
    review_id = (invocation.audit_context or {}).get(REVIEW_CONTEXT)
    if review_id is not None:
        check_approved_run(review_id, definition, request)
        return
    rule = rule_for(definition, request)
    if rule is None:
        return
    sqls = [s.sql for s in request.statements] if isinstance(request, AtomicRequest) else [request.sql]
    kinds, unreadable = statement_kinds(sqls, definition.engine)
    if not rule.requires_review(kinds, unreadable=unreadable):
        return
    review = submit_review(definition, request, invocation, rule, sorted(kinds))
    record["reviewId"] = review["id"]
    record["statementType"] = f"REVIEW {record.get('statementType') or ''}".strip()
    raise ReviewPending(f"this request needs {rule.min_approvals} approval(s) before it runs; review {review['id']} is PENDING",
                        review_id=review["id"], expires_at=review["expiresAt"])


def check_approved_run(review_id: str, definition: Any, request: Any) -> None:
    """What runs for an approved review is exactly what was approved (its hash), on its connection."""
    store = ReviewStore.configured()
    item = store.get(review_id)
    kind, document = request_document(request)
    # EXECUTED too: the worker may start the statement after the approval recorded its id.
    if item is None or item.get("status") not in ("APPROVED", "EXECUTED") or item.get("connection") != definition.name:
        raise Forbidden(f"review {review_id!r} is not approved for this connection: the statement does not run", rule="review")
    if digest(definition.name, kind, document) != item.get("requestSha256"):
        raise Forbidden(f"review {review_id!r}: the statement differs from the one approved; it does not run", rule="review")


# -- the store ----------------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReviewStore:
    """The reviews table: key ``id``; index ``status-submittedAt``; TTL ``expires_at``."""

    STATUS_INDEX = "status-submittedAt"

    def __init__(self, settings: ReviewSettings, clients: Any = CLIENTS) -> None:
        self.settings = settings.require()
        self.clients = clients

    @classmethod
    def configured(cls) -> ReviewStore:
        return cls(ReviewSettings.resolve())

    @property
    def dynamodb(self) -> Any:
        return self.clients.get("dynamodb")

    def create(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=self.settings.table, Item={"id": {"S": item["id"]}, "status": {"S": item["status"]},
                                                                     "submittedAt": {"S": item["submittedAt"]},
                                                                     "expires_at": {"N": str(item["expires_at"])},
                                                                     "review": {"S": json.dumps(item, default=str)}},
                               ConditionExpression="attribute_not_exists(id)")

    def get(self, review_id: str) -> dict[str, Any] | None:
        if not review_id or len(review_id) > 64 or not all(c.isalnum() or c == "-" for c in review_id):
            return None
        found = self.dynamodb.get_item(TableName=self.settings.table, Key={"id": {"S": review_id}}, ConsistentRead=True).get("Item")
        if found is None:
            return None
        item = json.loads(found["review"]["S"])
        item["status"] = found["status"]["S"]
        return item

    def list_status(self, status: str, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=self.settings.table, IndexName=self.STATUS_INDEX, KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": status}},
            ScanIndexForward=False, Limit=limit,
        )
        items = []
        for found in response.get("Items", []):
            item = json.loads(found["review"]["S"])
            item["status"] = found["status"]["S"]
            items.append(item)
        return items

    def replace(self, item: dict[str, Any], expected: str) -> bool:
        """Write the item with its new status, if the stored one still has ``expected``; False otherwise."""
        try:
            self.dynamodb.put_item(
                TableName=self.settings.table,
                Item={"id": {"S": item["id"]}, "status": {"S": item["status"]}, "submittedAt": {"S": item["submittedAt"]},
                      "expires_at": {"N": str(item["expires_at"])}, "review": {"S": json.dumps(item, default=str)}},
                ConditionExpression="#s = :e", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":e": {"S": expected}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # parameters: encrypted with KMS when a key is configured

    def seal(self, parameters: Any, context: Mapping[str, str]) -> dict[str, Any]:
        text = json.dumps(parameters, separators=(",", ":"), sort_keys=True, default=str)
        if not self.settings.kms_key:
            return {"plain": parameters}
        if len(text.encode()) > MAX_ENCRYPTED_BYTES:
            raise InvalidRequest(f"parameters: over {MAX_ENCRYPTED_BYTES} bytes, too large for a reviewed request (they are kept encrypted)",
                                 field="parameters")
        blob = self.clients.get("kms").encrypt(KeyId=self.settings.kms_key, Plaintext=text.encode(), EncryptionContext=dict(context))
        return {"kms": base64.b64encode(blob["CiphertextBlob"]).decode()}

    def unseal(self, sealed: Mapping[str, Any], context: Mapping[str, str]) -> Any:
        if "plain" in sealed:
            return sealed["plain"]
        plain = self.clients.get("kms").decrypt(CiphertextBlob=base64.b64decode(sealed["kms"]), EncryptionContext=dict(context))
        return json.loads(plain["Plaintext"])


def new_review_id() -> str:
    return "r-" + secrets.token_hex(16)


def _sealed_document(store: ReviewStore, review_id: str, kind: str, document: dict[str, Any]) -> dict[str, Any]:
    """The document with its parameters sealed (one envelope for every statement's)."""
    sealed = dict(document)
    if kind in ("batch", "transaction"):
        parameters = [s.get("parameters") or {} for s in document["statements"]]
        sealed["statements"] = [{k: v for k, v in s.items() if k != "parameters"} for s in document["statements"]]
    else:
        parameters = document.get("parameters") or {}
        sealed.pop("parameters", None)
    sealed["sealedParameters"] = store.seal(parameters, {"review": review_id})
    return sealed


def opened_document(store: ReviewStore, item: Mapping[str, Any]) -> dict[str, Any]:
    document = dict(item["request"])
    parameters = store.unseal(document.pop("sealedParameters"), {"review": item["id"]})
    if item["kind"] in ("batch", "transaction"):
        document["statements"] = [{**s, "parameters": p} for s, p in zip(document["statements"], parameters)]
    else:
        document["parameters"] = parameters
    return document


def submit_review(definition: Any, request: Any, invocation: Any, rule: ApprovalRule, kinds: list[str]) -> dict[str, Any]:
    store = ReviewStore.configured()
    kind, document = request_document(request)
    review_id = new_review_id()
    now = _now()
    expires = now + dt.timedelta(hours=rule.expires_after_hours)
    caller = invocation.caller
    item: dict[str, Any] = {
        "id": review_id, "status": "PENDING", "kind": kind, "connection": definition.name, "engine": definition.engine,
        "requester": caller.arn, "governed": bool(caller.governed), "submittedAt": _iso(now), "expiresAt": _iso(expires),
        "expires_at": int((expires + dt.timedelta(days=KEEP_DAYS)).timestamp()),
        "rule": rule.as_dict(), "statementKinds": kinds, "requestSha256": digest(definition.name, kind, document),
        "request": _sealed_document(store, review_id, kind, document), "decisions": [],
        "auditParameters": bool(definition.audit_parameters), "claim": dict(invocation.audit_context or {}),
    }
    if kind == "runbook":
        item.update(runbook=document["runbook"], runbookVersion=document["runbookVersion"])
    token = _TASK_TOKEN.get()
    if token:
        item["taskToken"] = token
    store.create(item)
    notify(store.settings, "submitted", item)
    return item


# -- views, decisions and the run ---------------------------------------------------------------------


def current_status(item: Mapping[str, Any]) -> str:
    if item["status"] == "PENDING" and time.time() >= _epoch(item["expiresAt"]):
        return "EXPIRED"
    return item["status"]


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def view(store: ReviewStore, item: Mapping[str, Any]) -> dict[str, Any]:
    """What GET /reviews/{id} shows: never a task token; parameters only with audit_parameters."""
    document = dict(item["request"])
    sealed = document.pop("sealedParameters", None)
    if item.get("auditParameters") and sealed is not None:
        document = opened_document(store, item)
    elif sealed is not None:
        document["parameters"] = "hidden (the connection does not set audit_parameters)"
    shown = {
        "reviewId": item["id"], "status": current_status(item), "kind": item["kind"], "connection": item["connection"],
        "runbook": item.get("runbook"), "runbookVersion": item.get("runbookVersion"), "requester": item.get("requester"),
        "submittedAt": item["submittedAt"], "expiresAt": item["expiresAt"], "rule": item["rule"],
        "statementKinds": item.get("statementKinds"), "requestSha256": item["requestSha256"], "request": document,
        "decisions": item.get("decisions", []), "approvals": sum(1 for d in item.get("decisions", []) if d["decision"] == "APPROVE"),
        "statementId": item.get("statementId"), "decidedAt": item.get("decidedAt"), "error": item.get("error"),
    }
    if "result" in item:
        shown["result"] = item["result"]
    return {k: v for k, v in shown.items() if v is not None}


def may_decide(item: Mapping[str, Any], caller: Any) -> bool:
    """An approver: matches the rule's approvers (any caller allowed on the connection when none are listed),
    and is not the requester."""
    from .access import _pattern

    arn = getattr(caller, "arn", None)
    if not arn or arn == item.get("requester") or _same_session_role(arn, item.get("requester")):
        return False
    approvers = item["rule"].get("approvers") or []
    if approvers:
        return any(_pattern(p).match(arn) for p in approvers)
    return None  # decided by the caller's access to the connection


def _same_session_role(a: str, b: str | None) -> bool:
    """Two sessions of one assumed role are the same person as far as four eyes go only if the session names match."""
    return False if b is None else a == b


def expire(store: ReviewStore, item: dict[str, Any]) -> bool:
    """PENDING past its expiry → EXPIRED (once), failing a held task."""
    if item["status"] != "PENDING" or current_status(item) != "EXPIRED":
        return False
    updated = {**item, "status": "EXPIRED", "decidedAt": _iso(_now())}
    if not store.replace(updated, "PENDING"):
        return False
    _fail_task(store, updated, ReviewExpired(f"review {item['id']} expired before it was approved"))
    notify(store.settings, "expired", updated)
    return True


def _fail_task(store: ReviewStore, item: Mapping[str, Any], error: RdsgateError) -> None:
    token = item.get("taskToken")
    if token:
        store.clients.get("stepfunctions").send_task_failure(taskToken=token, error=type(error).__name__, cause=error.message[:32768])


def notify(settings: ReviewSettings, event: str, item: Mapping[str, Any]) -> None:
    """Tell the optional SNS topic (Slack or Teams through AWS Chatbot): never SQL parameters or tokens."""
    if not settings.topic:
        return
    subject = f"rdsgate review {item['id']} {event}: {item['connection']}" + (f" / {item['runbook']}" if item.get("runbook") else "")
    message = {
        "version": "1.0", "source": "custom",
        "content": {"title": subject[:250],
                    "description": f"{item.get('requester')} asked to run {', '.join(item.get('statementKinds') or []) or 'a statement'} "
                                   f"on {item['connection']}; status {item['status']}; expires {item['expiresAt']}."},
        "metadata": {"additionalContext": {"reviewId": item["id"], "status": item["status"], "connection": item["connection"],
                                           "runbook": item.get("runbook"), "requestSha256": item["requestSha256"]}},
    }
    try:
        CLIENTS.get("sns").publish(TopicArn=settings.topic, Subject=subject[:100], Message=json.dumps(message))
    except Exception:  # a notification never decides a review
        pass


def decide(item: dict[str, Any], caller: Any, decision: str, comment: str | None) -> dict[str, Any]:
    """Record one decision; the item as it is after it (status APPROVED once enough approvals are in)."""
    store = ReviewStore.configured()
    if expire(store, item):
        raise ReviewExpired(f"review {item['id']} expired at {item['expiresAt']}; it never runs")
    status = current_status(item)
    if status != "PENDING":
        raise InvalidRequest(f"review {item['id']} is {status}: only a PENDING review can be decided")
    if any(d["by"] == caller.arn for d in item.get("decisions", [])):
        raise InvalidRequest(f"review {item['id']}: you have decided it already")
    updated = dict(item)
    updated["decisions"] = [*item.get("decisions", []), {"decision": decision, "by": caller.arn, "at": _iso(_now()),
                                                         **({"comment": comment} if comment else {})}]
    approvals = sum(1 for d in updated["decisions"] if d["decision"] == "APPROVE")
    if decision == "REJECT":
        updated.update(status="REJECTED", decidedAt=_iso(_now()))
    elif approvals >= int(item["rule"].get("min_approvals", 1)):
        updated.update(status="APPROVED", decidedAt=_iso(_now()))
    if not store.replace(updated, "PENDING"):
        raise InvalidRequest(f"review {item['id']} changed meanwhile; read it again")
    if updated["status"] == "REJECTED":
        _fail_task(store, updated, ReviewRejected(f"review {item['id']} was rejected by {caller.arn}" + (f": {comment}" if comment else "")))
    if updated["status"] != "PENDING":
        notify(store.settings, updated["status"].lower(), updated)
    return updated


def run_approved(item: dict[str, Any], service: Any, base_invocation: Any, *, catalogs: Any, submit_statement: Any) -> dict[str, Any]:
    """Run an APPROVED review as its requester; the item as it ends (EXECUTED with a statement id or result, or FAILED).

    ``catalogs``: the runbook catalogs (``.get()``); ``submit_statement``: how a single statement is handed
    to the asynchronous statements' worker (``rdsgate.worker.submit_statement``)."""
    from .access import Caller
    from .runbooks import RunbookQuery

    store = ReviewStore.configured()
    document = opened_document(store, item)
    if digest(item["connection"], item["kind"], document) != item["requestSha256"]:
        failed = {**item, "status": "FAILED", "error": {"code": "Forbidden", "message": "the stored request no longer matches its hash: it does not run"}}
        store.replace(failed, "APPROVED")
        _fail_task(store, failed, Forbidden(f"review {item['id']} was tampered with: it does not run"))
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
        _fail_task(store, failed, exc)
        return failed
    done = {**item, "status": "EXECUTED", **outcome}
    store.replace(done, "APPROVED")
    return done


def _current_runbook(item: Mapping[str, Any], request: Any, catalogs: Any) -> Any:
    """The runbook must still be the version approved."""
    from .access import Caller

    runbook = catalogs.get().get(item["runbook"])
    if item.get("governed", True) and not runbook.may_run(Caller(arn=item.get("requester"), governed=True)):
        raise Forbidden(f"review {item['id']}: its requester may no longer run runbook {item['runbook']!r}", rule="review")
    if runbook.version != item["runbookVersion"]:
        raise Forbidden(f"runbook {item['runbook']!r} changed since review {item['id']} was submitted: it does not run", rule="review")
    return dataclasses.replace(request, approval=runbook.approval)


def _submit_statement(item: Mapping[str, Any], request: Any, invocation: Any, service: Any, submit_statement: Any) -> dict[str, Any]:
    """A single statement: the asynchronous statements machinery runs it (the result in S3)."""
    from .statements import Output, StatementSettings

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


def parse_decision(body: Any) -> str | None:
    if body in (None, ""):
        return None
    if not isinstance(body, dict) or set(body) - {"comment"}:
        raise InvalidRequest("the body may hold only {\"comment\": \"…\"}")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
        raise InvalidRequest("comment: must be a string of at most 2000 characters", field="comment")
    return comment


__all__ = ["ReviewPending", "ReviewRejected", "ReviewExpired", "review_gate", "parse_approval"]


def approved_run(review: str, request: Any, invocation: Any) -> tuple[Any, Any]:
    """The worker's request and invocation for a statement an approved review submitted."""
    from .runbooks import RunbookQuery

    context = json.loads(review)
    if context.get("runbook"):
        fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(QueryRequest)}
        request = RunbookQuery(**fields, runbook=context["runbook"], runbook_version=context.get("runbookVersion", ""))
    return request, dataclasses.replace(invocation, audit_context={**(invocation.audit_context or {}), **context})


def hold_for_review(service: Any, name: str, request: Any, invocation: Any, token: str) -> dict[str, Any] | None:
    """The invoke handler's waitForTaskToken form: when the statement needs a review, the review holds the
    token (answered when the approved statement ends, or failed with ReviewRejected / ReviewExpired)."""
    with holding_task_token(token):
        try:
            service.check_statement(name, request, invocation)
        except ReviewPending as pending:
            return {"reviewId": pending.details["review_id"], "status": "PENDING", "expiresAt": pending.details["expires_at"]}
    return None


def sweep(store: ReviewStore | None = None) -> list[str]:
    """Expire every PENDING review past its expiry (failing the Step Functions tasks they hold); their ids."""
    store = store or ReviewStore.configured()
    return [item["id"] for item in store.list_status("PENDING", limit=1000) if expire(store, item)]


def sweep_handler(event: Any, context: Any) -> dict[str, Any]:
    """The scheduled sweeper (EventBridge, every 15 minutes): held tasks learn of an expiry nobody read."""
    return {"expired": sweep()}
