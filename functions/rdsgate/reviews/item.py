"""A review's DynamoDB item: its statuses and outcomes, the table, the request it holds, and what GET shows.

The item is what every other part of a review reads and writes (``rdsgate.reviews``): the request
as a document (what the SHA-256 covers, and the request object rebuilt from it), its parameters sealed
with KMS when a key is configured, and the status, read through its expiry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..botoclients import Clients
from ..errors import ConnectionNotFound, InvalidRequest, RdsgateError
from ..request import AtomicRequest, QueryRequest, Statement
from ..runbooks.connections import RunbookQuery

__all__ = [
    "CLIENTS", "KEEP_DAYS", "REVIEW_CONTEXT", "STATUSES", "ReviewExpired", "ReviewNotFound", "ReviewPending",
    "ReviewRejected", "ReviewSettings", "ReviewStore", "current_status", "digest", "iso", "new_review_id", "now_utc",
    "opened_document", "rebuild", "request_document", "sealed_document", "view",
]

STATUSES = ("PENDING", "APPROVED", "REJECTED", "EXPIRED", "EXECUTED", "FAILED")
REVIEW_CONTEXT = "review"  # the audit-context key of an approved review's run
KEEP_DAYS = 30  # how long a decided review stays readable (TTL)
MAX_ENCRYPTED_BYTES = 4096  # KMS Encrypt's plaintext limit
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


# -- the table ----------------------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
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


def sealed_document(store: ReviewStore, review_id: str, kind: str, document: dict[str, Any]) -> dict[str, Any]:
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


# -- the status and the view ----------------------------------------------------------------------------


def current_status(item: Mapping[str, Any]) -> str:
    if item["status"] == "PENDING" and time.time() >= _epoch(item["expiresAt"]):
        return "EXPIRED"
    return item["status"]


def _epoch(moment: str) -> float:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


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
