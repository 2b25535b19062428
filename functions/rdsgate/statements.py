"""Asynchronous statements: long statements and large results, delivered through S3.

The shape is the Redshift Data API's: a statement is submitted (``SUBMITTED``), runs in an
asynchronous invocation of the worker (``RUNNING``) and ends ``FINISHED``, ``FAILED`` or
``CANCELLED``. Its status lives in a DynamoDB item (with TTL); its rows stream from the
database cursor into an S3 multipart upload, encoded exactly as ``/query`` encodes values
(JSON Lines, or CSV with a header), optionally gzip-compressed.

This module holds the statement's life: its settings and output options, its id, the status
item and what a caller may see of it, the S3 key of its result and the AWS clients. The
result object is written by ``result_writer`` and read back, page by page, by
``result_reader``.

Everything here takes its AWS clients as arguments (botocore), so the API function, the
invoke function, the worker and the local stack share it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .botoclients import Clients
from .dynamodb_items import plain_item
from .errors import ConnectionNotFound, InvalidRequest, RdsgateError

__all__ = [
    "CLIENTS",
    "MAX_EXPORT_ROWS",
    "MAX_REQUEST_BYTES",
    "Output",
    "StatementCancelled",
    "StatementNotFound",
    "StatementSettings",
    "StatementStore",
    "index_key",
    "new_statement_id",
    "parse_output",
    "status_view",
    "visible",
]

STATUSES = ("SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED")
ACTIVE = ("SUBMITTED", "RUNNING")
FORMATS = ("jsonl", "csv")
COMPRESSIONS = ("gzip", "none")
MAX_REQUEST_BYTES = 256 * 1024  # the request is kept in the status item and sent to the worker
MAX_EXPORT_ROWS = 100_000_000
DEFAULT_WORKER_TIMEOUT_SECONDS = 900
LIST_LIMIT = 100
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv"}


class StatementCancelled(RdsgateError):
    """The statement was cancelled while it ran (DELETE /statements/{id})."""

    code = "Cancelled"


class StatementNotFound(ConnectionNotFound):
    """No statement with that id that this caller may see (or it expired)."""


# -- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementSettings:
    """Where statements and results live, and how the worker is reached (``RDSGATE_*`` variables)."""

    table: str | None = None
    bucket: str | None = None
    prefix: str = "results/"
    kms_key: str | None = None
    expiry_days: float = 7.0
    worker_function: str | None = None  # Lambda: InvocationType=Event
    local_worker: bool = False  # rdsgate serve and the tests: a thread of this process
    worker_timeout_seconds: int = DEFAULT_WORKER_TIMEOUT_SECONDS

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None) -> StatementSettings:
        env = os.environ if environ is None else environ
        prefix = env.get("RDSGATE_RESULTS_PREFIX") or "results/"
        return cls(
            table=env.get("RDSGATE_STATEMENTS_TABLE") or None,
            bucket=env.get("RDSGATE_RESULTS_BUCKET") or None,
            prefix=prefix if prefix.endswith("/") else prefix + "/",
            kms_key=env.get("RDSGATE_RESULTS_KMS_KEY") or None,
            expiry_days=float(env.get("RDSGATE_RESULTS_EXPIRY_DAYS") or 7),
            worker_function=env.get("RDSGATE_WORKER_FUNCTION") or None,
            local_worker=(env.get("RDSGATE_WORKER") or "") == "thread",
            worker_timeout_seconds=int(env.get("RDSGATE_WORKER_TIMEOUT_SECONDS") or DEFAULT_WORKER_TIMEOUT_SECONDS),
        )

    def require(self) -> StatementSettings:
        if not self.table or not self.bucket:
            raise InvalidRequest(
                "asynchronous statements are not enabled (RDSGATE_STATEMENTS_TABLE and RDSGATE_RESULTS_BUCKET are not set)"
            )
        return self

    def key_for(self, statement_id: str, output: Output) -> str:
        suffix = ".gz" if output.compression == "gzip" else ""
        return f"{self.prefix}{statement_id}/result.{EXTENSIONS[output.format]}{suffix}"


@dataclass(frozen=True)
class Output:
    format: str = "jsonl"
    compression: str = "gzip"


def parse_output(value: Any, field: str = "output") -> Output:
    """``{"format": "jsonl"|"csv", "compression": "gzip"|"none"}``; both optional."""
    if value is None:
        return Output()
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field}: must be an object with format and compression", field=field)
    unknown = sorted(set(value) - {"format", "compression", "s3"})
    if unknown:
        raise InvalidRequest(f"{field}.{unknown[0]}: unknown field (allowed: compression, format)", field=field)
    fmt = value.get("format", "jsonl")
    if fmt not in FORMATS:
        raise InvalidRequest(f"{field}.format: must be one of {', '.join(FORMATS)}", field=field)
    compression = value.get("compression", "gzip")
    if compression not in COMPRESSIONS:
        raise InvalidRequest(f"{field}.compression: must be one of {', '.join(COMPRESSIONS)}", field=field)
    return Output(fmt, compression)


def new_statement_id() -> str:
    """128 random bits from the operating system's CSPRNG, as a UUID-shaped string: unguessable."""
    raw = bytearray(secrets.token_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the status items --------------------------------------------------------------------------

_JSON_FIELDS = ("columns", "error", "request", "output")


class StatementStore:
    """The statements table: key ``id``; index ``caller-submittedAt``; TTL on ``expires_at``."""

    CALLER_INDEX = "caller-submittedAt"

    def __init__(self, table: str, client: Any, *, expiry_days: float = 7.0) -> None:
        self.table = table
        self.client = client
        self.expiry_days = expiry_days

    def create(self, *, connection: str, caller: str | None, request: dict[str, Any], output: Output,
               key: str, statement_id: str | None = None, task_token: str | None = None,
               deadline_seconds: int = DEFAULT_WORKER_TIMEOUT_SECONDS, governed: bool = True,
               review: dict[str, Any] | None = None) -> dict[str, Any]:
        """The SUBMITTED item, written once; ``governed=False`` and an approved ``review``'s run are recorded in it."""
        now = _now()
        item: dict[str, Any] = {
            "id": statement_id or new_statement_id(),
            "connection": connection,
            "caller": caller or "unknown",
            "status": "SUBMITTED",
            "submittedAt": _iso(now),
            "request": request,
            "output": {"format": output.format, "compression": output.compression},
            "key": key,
            "expires_at": int((now + dt.timedelta(days=self.expiry_days)).timestamp()),
            # A worker that vanished (crash, Lambda timeout) leaves no end: past this the statement counts as failed.
            "deadline": int(now.timestamp()) + deadline_seconds + 120,
        }
        if task_token:
            item["taskToken"] = task_token
        if not governed:
            item["governed"] = False
        if review:  # an approved review's run (rdsgate.reviews): which review, and the runbook it runs
            item["review"] = json.dumps(review)
        self.client.put_item(TableName=self.table, Item=_to_item(item), ConditionExpression="attribute_not_exists(id)")
        return item

    def get(self, statement_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table, Key={"id": {"S": statement_id}}, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else _from_item(item)

    def list_for(self, caller: str, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        response = self.client.query(
            TableName=self.table, IndexName=self.CALLER_INDEX, KeyConditionExpression="#c = :c",
            ExpressionAttributeNames={"#c": "caller"}, ExpressionAttributeValues={":c": {"S": caller}},
            ScanIndexForward=False, Limit=limit,
        )
        return [_from_item(item) for item in response.get("Items", [])]

    def started(self, statement_id: str, backend: int | None) -> bool:
        """SUBMITTED → RUNNING, recording the session to cancel; False when it is no longer SUBMITTED."""
        values = {"startedAt": _iso(_now()), "status": "RUNNING"}
        if backend is not None:
            values["backend"] = backend
        return self._update(statement_id, values, expect=("SUBMITTED",))

    def uploading(self, statement_id: str, upload_id: str) -> bool:
        return self._update(statement_id, {"uploadId": upload_id}, expect=("RUNNING",))

    def finished(self, statement_id: str, summary: dict[str, Any]) -> bool:
        values = {"status": "FINISHED", "endedAt": _iso(_now())}
        values.update({k: v for k, v in summary.items() if v is not None})
        return self._update(statement_id, values, expect=("RUNNING",))

    def failed(self, statement_id: str, error: dict[str, Any]) -> bool:
        return self._update(statement_id, {"status": "FAILED", "endedAt": _iso(_now()), "error": error}, expect=ACTIVE)

    def cancel(self, statement_id: str) -> dict[str, Any] | None:
        """→ CANCELLED; the item as it was before, or None when it had already ended."""
        try:
            response = self.client.update_item(
                TableName=self.table, Key={"id": {"S": statement_id}},
                UpdateExpression="SET #s = :s, endedAt = :e",
                ConditionExpression="#s IN (:a, :b)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": "CANCELLED"}, ":e": {"S": _iso(_now())},
                                           ":a": {"S": "SUBMITTED"}, ":b": {"S": "RUNNING"}},
                ReturnValues="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return _from_item(response["Attributes"])

    def _update(self, statement_id: str, values: dict[str, Any], *, expect: tuple[str, ...]) -> bool:
        names = {f"#f{i}": name for i, name in enumerate(values)}
        attrs = {f":v{i}": _to_value(name, value) for i, (name, value) in enumerate(values.items())}
        names["#status"] = "status"
        for i, status in enumerate(expect):
            attrs[f":x{i}"] = {"S": status}
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": {"S": statement_id}},
                UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
                ConditionExpression=f"#status IN ({', '.join(f':x{i}' for i in range(len(expect)))})",
                ExpressionAttributeNames=names, ExpressionAttributeValues=attrs,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _to_value(name: str, value: Any) -> dict[str, Any]:
    if name in _JSON_FIELDS:
        return {"S": json.dumps(value, separators=(",", ":"), default=str)}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    return {"S": str(value)}


def _to_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _to_value(name, value) for name, value in item.items() if value is not None}


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    plain = plain_item(item, _number)
    for name in _JSON_FIELDS:
        if isinstance(plain.get(name), str):  # written as their JSON text (_to_value)
            plain[name] = json.loads(plain[name])
    return plain


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def status_view(item: dict[str, Any]) -> dict[str, Any]:
    """What GET /statements/{id} answers (never the SQL's parameters, the task token or the S3 key)."""
    status = item["status"]
    error = item.get("error")
    if status in ACTIVE and item.get("deadline") and time.time() > item["deadline"]:
        status = "FAILED"
        error = {"code": "InternalError", "message": "the worker stopped before the statement ended (timeout or crash)"}
    output = item.get("output") or {}
    return {
        "id": item["id"],
        "connection": item["connection"],
        "status": status,
        "submittedAt": item.get("submittedAt"),
        "startedAt": item.get("startedAt"),
        "endedAt": item.get("endedAt"),
        "rowCount": item.get("rowCount"),
        "bytes": item.get("bytes"),
        "storedBytes": item.get("storedBytes"),
        "updatedRows": item.get("updatedRows"),
        "truncated": item.get("truncated"),
        "columns": item.get("columns"),
        "error": error,
        "format": output.get("format"),
        "compression": output.get("compression"),
        "expiresAt": _iso(dt.datetime.fromtimestamp(item["expires_at"], dt.timezone.utc)) if item.get("expires_at") else None,
    }


def visible(item: dict[str, Any] | None, caller_arn: str | None, may_use_connection: Callable[[], bool]) -> bool:
    """The submitting caller sees a statement; so does anyone allowed on its connection when the definition
    shares statements (``share_statements: true``, checked by ``may_use_connection``). Expired is gone."""
    if item is None or (item.get("expires_at") and time.time() >= item["expires_at"]):
        return False
    if caller_arn is not None and item.get("caller") == caller_arn:
        return True
    return may_use_connection()


# -- the result's S3 layout ------------------------------------------------------------------------


def index_key(key: str) -> str:
    """The index object beside a result: ``result_writer`` writes it, ``result_reader`` reads it."""
    return key.rsplit("/", 1)[0] + "/index.json"


# -- AWS clients -----------------------------------------------------------------------------------


def _client_config(service: str) -> Any:
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"})
    if service == "s3":
        # Path-style against an endpoint of our own (moto); virtual hosts with AWS; SigV4 pre-signed URLs.
        style = "path" if os.environ.get("AWS_ENDPOINT_URL_S3") else "auto"
        config = config.merge(Config(s3={"addressing_style": style}, signature_version="s3v4"))
    return config


CLIENTS = Clients(_client_config)
