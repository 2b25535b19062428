"""Asynchronous statements: long statements and large results, delivered through S3.

The shape is the Redshift Data API's: a statement is submitted (``SUBMITTED``), runs in an
asynchronous invocation of the worker (``RUNNING``) and ends ``FINISHED``, ``FAILED`` or
``CANCELLED``. Its status lives in a DynamoDB item (with TTL); its rows stream from the
database cursor into an S3 multipart upload, encoded exactly as ``/query`` encodes values
(JSON Lines, or CSV with a header), optionally gzip-compressed.

The object is written as a series of *members* of about ``MEMBER_BYTES`` of text, each a
complete gzip member when compressed (concatenated members are one valid gzip file), and an
index object beside it records each member's byte range and first row. A page of the result
is then one ranged GET and one member's decompression, wherever it starts.

Everything here takes its AWS clients as arguments (botocore), so the API function, the
invoke function, the worker and the local stack share it.

Over ~400 lines: the statement item's life and the result writer and reader that share its S3 layout, formats and limits.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import gc
import io
import json
import os
import queue
import secrets
import threading
import time
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .botoclients import Clients
from .encoding import _ENCODER, unique_keys
from .errors import ConnectionNotFound, InvalidRequest, RdsgateError, RequestTooLarge

STATUSES = ("SUBMITTED", "RUNNING", "FINISHED", "FAILED", "CANCELLED")
ACTIVE = ("SUBMITTED", "RUNNING")
FORMATS = ("jsonl", "csv")
COMPRESSIONS = ("gzip", "none")
MEMBER_BYTES = 2 * 1024 * 1024  # text per member: what a page reads and decompresses at most
GZIP_LEVEL = 1  # fast: the worker's second core compresses while the first reads rows
PART_BYTES = 5 * 1024 * 1024  # S3 parts: S3's minimum for all but the last (less memory, an earlier first byte)
PRESIGNED_URL_SECONDS = 900
COLLECT_SECONDS = 2.0  # how often a long statement's sink collects cyclic garbage
MAX_REQUEST_BYTES = 256 * 1024  # the request is kept in the status item and sent to the worker
MAX_EXPORT_ROWS = 100_000_000
DEFAULT_WORKER_TIMEOUT_SECONDS = 900
LIST_LIMIT = 100
EXTENSIONS = {"jsonl": "jsonl", "csv": "csv"}
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


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
               deadline_seconds: int = DEFAULT_WORKER_TIMEOUT_SECONDS) -> dict[str, Any]:
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
    plain: dict[str, Any] = {}
    for name, value in item.items():
        (kind, data), = value.items()
        if kind == "N":
            plain[name] = int(data) if data.lstrip("-").isdigit() else float(data)
        elif kind == "BOOL":
            plain[name] = data
        elif name in _JSON_FIELDS:
            plain[name] = json.loads(data)
        else:
            plain[name] = data
    return plain


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


# -- encoding the records ------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """One JSON-safe value as CSV text: null empty, true/false, objects and arrays as compact JSON."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return _ENCODER.encode(value)
    if isinstance(value, float):
        return _ENCODER.encode(value)
    return str(value)


# The C encoder behind _ENCODER, made once: JSONEncoder.encode builds a new one for every call.
_encode_chunks = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
) if json.encoder.c_make_encoder is not None else (lambda value, _level: _ENCODER.encode(value))


class RecordEncoder:
    """Records (objects or arrays, as ``/query`` builds them) to JSON Lines or CSV text."""

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n") if fmt == "csv" else None

    def header(self, columns: list[dict[str, Any]]) -> str:
        if self._writer is None:
            return ""
        self._writer.writerow(unique_keys([column["name"] for column in columns]))
        return self._take()

    def encode(self, records: list[Any]) -> str:
        if self._writer is None:
            encode, join = _encode_chunks, "".join
            return "\n".join([join(encode(record, 0)) for record in records]) + "\n"
        self._writer.writerows([[csv_cell(value) for value in record] for record in records])
        return self._take()

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


# -- writing the object ----------------------------------------------------------------------------


class ResultWriter:
    """Text in, an S3 object out: members of ``member_bytes`` (gzip members when compressed), uploaded as
    multipart parts of at least ``part_bytes`` by a background thread (compression releases the GIL), with
    at most one member waiting, so memory stays flat whatever the result's size.

    The upload starts with the first full part; a result smaller than a part is one PutObject at the end
    (or, for ``inline_text``, never written at all).
    """

    def __init__(self, s3: Any, bucket: str, key: str, *, output: Output, kms_key: str | None = None,
                 part_bytes: int = PART_BYTES, member_bytes: int = MEMBER_BYTES,
                 on_upload: Callable[[str], None] | None = None) -> None:
        self.s3, self.bucket, self.key, self.output = s3, bucket, key, output
        self.kms_key = kms_key
        self.part_bytes, self.member_bytes = part_bytes, member_bytes
        self.on_upload = on_upload
        self.rows = 0  # data rows written
        self.bytes = 0  # text bytes (UTF-8), before compression
        self.stored_bytes = 0
        self.first_byte_at: float | None = None  # time.monotonic() when the first part reached S3
        self.upload_id: str | None = None
        self._chunks: list[bytes] = []
        self._chunk_bytes = 0
        self._member_first_row = 0
        self._member_rows = 0
        self._header = 0  # CSV: the header line, before the first row
        self._index: list[list[int]] = []  # [offset, length, firstRow, rows]
        self._offset = 0
        self._part = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._closed = False

    # the producer side (the thread reading the database)

    def header(self, text: str) -> None:
        if text:
            self._header = 1
            self._add(text.encode("utf-8"), 0)

    def write(self, text: str, rows: int) -> None:
        self._add(text.encode("utf-8"), rows)

    def _add(self, data: bytes, rows: int) -> None:
        if self._error is not None:
            raise self._error
        self._chunks.append(data)
        self._chunk_bytes += len(data)
        self._member_rows += rows
        self.rows += rows
        self.bytes += len(data)
        if self._chunk_bytes >= self.member_bytes:
            self._seal()

    def _seal(self) -> None:
        if not self._chunks:
            return
        member = (b"".join(self._chunks), self._member_first_row, self._member_rows)
        self._chunks, self._chunk_bytes = [], 0
        self._member_first_row += self._member_rows
        self._member_rows = 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._consume, name="rdsgate-result-upload", daemon=True)
            self._thread.start()
        self._put(member)

    def _put(self, item: Any) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def inline_text(self, limit_bytes: int) -> str | None:
        """The whole text, when nothing was sealed yet and it fits ``limit_bytes`` (Step Functions' inline result)."""
        if self._thread is not None or self._index or self.bytes > limit_bytes:
            return None
        return b"".join(self._chunks).decode("utf-8")

    def finish(self) -> dict[str, Any]:
        """Write what is left, complete the upload and the index; the result's sizes and where it is."""
        self._seal()
        if self._thread is not None:
            self._put(None)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        extra = self._encryption()
        if self.upload_id is None:  # smaller than a part: one object
            data = bytes(self._part)
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=data, ContentType=CONTENT_TYPES[self.output.format], **extra)
            self.stored_bytes = len(data)
            self.first_byte_at = self.first_byte_at or time.monotonic()
        else:
            if self._part:
                self._upload_part(bytes(self._part))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._part = bytearray()
        index = {"format": self.output.format, "compression": self.output.compression, "headerLines": self._header,
                 "rows": self.rows, "bytes": self.bytes, "members": self._index}
        self.s3.put_object(Bucket=self.bucket, Key=index_key(self.key), Body=json.dumps(index).encode(),
                           ContentType="application/json", **extra)
        self._closed = True
        return {"rowCount": self.rows, "bytes": self.bytes, "storedBytes": self.stored_bytes}

    def abort(self) -> None:
        """Stop, abort the multipart upload and delete whatever was written: no partial output remains."""
        self._error = self._error or StatementCancelled("the statement was cancelled")
        if self._thread is not None:
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                pass
            self._thread.join(timeout=30)
            self._thread = None
        discard_result(self.s3, self.bucket, self.key, self.upload_id)

    # the consumer side (the upload thread)

    def _consume(self) -> None:
        compress = self.output.compression == "gzip"
        try:
            while True:
                member = self._queue.get()
                if member is None or self._error is not None:
                    return
                data, first_row, rows = member
                if compress:
                    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: a gzip member
                    data = packer.compress(data) + packer.flush()
                self._index.append([self._offset, len(data), first_row, rows])
                self._offset += len(data)
                self._part += data
                del data
                if len(self._part) >= self.part_bytes:
                    part, self._part = bytes(self._part), bytearray()
                    self._upload_part(part)
        except BaseException as exc:  # reported to the producer on its next write
            self._error = exc

    def _upload_part(self, data: bytes) -> None:
        if self.upload_id is None:
            created = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=CONTENT_TYPES[self.output.format], **self._encryption()
            )
            self.upload_id = created["UploadId"]
            if self.on_upload is not None:
                self.on_upload(self.upload_id)
        number = len(self._parts) + 1
        response = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data)
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self.stored_bytes += len(data)
        if self.first_byte_at is None:
            self.first_byte_at = time.monotonic()

    def _encryption(self) -> dict[str, str]:
        if self.kms_key:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key}
        return {}


def index_key(key: str) -> str:
    return key.rsplit("/", 1)[0] + "/index.json"


def discard_result(s3: Any, bucket: str, key: str, upload_id: str | None) -> None:
    """Abort the upload and delete the object and its index; each step is best effort."""
    if upload_id:
        try:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:  # already aborted or completed
            pass
    for name in (key, index_key(key)):
        try:
            s3.delete_object(Bucket=bucket, Key=name)
        except Exception:
            pass


class RecordSink:
    """What ``QueryService.stream`` writes to: records encoded into a ``ResultWriter``; checks for a cancel."""

    def __init__(self, writer: ResultWriter, fmt: str, cancelled: Callable[[], bool] = lambda: False) -> None:
        self.writer = writer
        self.encoder = RecordEncoder(fmt)
        self.cancelled = cancelled
        self.columns: list[dict[str, Any]] = []
        self._collected = time.monotonic()

    def start(self, columns: list[dict[str, Any]]) -> None:
        self.columns = columns
        if columns:
            self.writer.header(self.encoder.header(columns))

    def records(self, records: list[Any]) -> None:
        if self.cancelled():
            raise StatementCancelled("the statement was cancelled")
        self.writer.write(self.encoder.encode(records), len(records))
        now = time.monotonic()
        if now - self._collected > COLLECT_SECONDS:
            # The service pauses the cyclic collector while a statement runs (rows make no cycles); over minutes,
            # the AWS calls beside it (status polls, part uploads) do, so collect the young generations now and then.
            gc.collect(1)
            self._collected = now


# -- reading it back -------------------------------------------------------------------------------


def encode_token(row: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"row": row}).encode()).decode().rstrip("=")


def decode_token(token: str) -> int:
    try:
        row = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["row"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidRequest("nextToken: not a token this API issued", field="nextToken") from None
    if not isinstance(row, int) or row < 0:
        raise InvalidRequest("nextToken: not a token this API issued", field="nextToken")
    return row


class ResultReader:
    """Pages of a finished statement's result, read member by member with ranged GETs."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self._index: dict[str, Any] | None = None

    @property
    def index(self) -> dict[str, Any]:
        if self._index is None:
            body = self.s3.get_object(Bucket=self.bucket, Key=index_key(self.key))["Body"]
            self._index = json.loads(body.read())
        return self._index

    def page(self, start_row: int, *, max_records: int, limit_bytes: int) -> tuple[list[Any], int | None, str]:
        """Records from ``start_row`` while they fit ``limit_bytes`` (JSON text) and ``max_records``.

        JSON Lines records are returned as their text (spliced into the response as they are stored);
        CSV records as lists of strings. The second value is the next row, or None at the end.
        """
        index = self.index
        members = index["members"]
        total = index["rows"]
        if start_row >= total:
            return [], None, index["format"]
        firsts = [member[2] for member in members]
        position = max(bisect_right(firsts, start_row) - 1, 0)
        records: list[Any] = []
        used = 2
        row = start_row
        while position < len(members) and len(records) < max_records:
            offset, length, first, count = members[position]
            lines = self._member_records(offset, length, index, header=position == 0)
            for record in lines[row - first:]:
                size = (len(record.encode("utf-8")) if isinstance(record, str) else len(_ENCODER.encode(record).encode("utf-8"))) + 1
                if records and (used + size > limit_bytes or len(records) >= max_records):
                    return records, row, index["format"]
                if not records and used + size > limit_bytes:
                    raise RequestTooLarge(f"row {row} alone is over the response limit of {limit_bytes} bytes; download the result (?format=url)")
                records.append(record)
                used += size
                row += 1
            position += 1
        return records, (row if row < total else None), index["format"]

    def _member_records(self, offset: int, length: int, index: dict[str, Any], header: bool) -> list[Any]:
        if length == 0:
            return []
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={offset}-{offset + length - 1}")["Body"].read()
        if index["compression"] == "gzip":
            body = zlib.decompress(body, 31)
        text = body.decode("utf-8")
        if index["format"] == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            return rows[index.get("headerLines", 0):] if header else rows
        return text.splitlines()

    def presigned_url(self, seconds: int = PRESIGNED_URL_SECONDS) -> str:
        """A GET of the object for ``seconds``; answered as an attachment named after the statement (browsers save it)."""
        statement_id, name = self.key.rsplit("/", 2)[-2:]
        disposition = f'attachment; filename="{statement_id}.{name.split(".", 1)[1]}"'
        params = {"Bucket": self.bucket, "Key": self.key, "ResponseContentDisposition": disposition}
        return self.s3.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)


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
