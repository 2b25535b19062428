"""The result writer: a statement's records encoded and uploaded to S3 as they stream from the cursor.

The object is written as a series of *members* of about ``MEMBER_BYTES`` of text, each a
complete gzip member when compressed (concatenated members are one valid gzip file), and an
index object beside it records each member's byte range and first row, so that
``result_reader`` can serve a page with one ranged GET and one member's decompression,
wherever it starts. Records are encoded exactly as ``/query`` encodes values (JSON Lines,
or CSV with a header).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import queue
import threading
import time
import zlib
from typing import Any, Callable

from .encoding import _ENCODER, unique_keys
from .statements import Output, StatementCancelled, index_key

__all__ = ["RecordSink", "ResultWriter", "discard_result"]

MEMBER_BYTES = 2 * 1024 * 1024  # text per member: what a page reads and decompresses at most
GZIP_LEVEL = 1  # fast: the worker's second core compresses while the first reads rows
PART_BYTES = 5 * 1024 * 1024  # S3 parts: S3's minimum for all but the last (less memory, an earlier first byte)
COLLECT_SECONDS = 2.0  # how often a long statement's sink collects cyclic garbage
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


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
    """What ``QueryService.stream`` writes to: records encoded into a ``ResultWriter`` (in its output's format); checks for a cancel."""

    def __init__(self, writer: ResultWriter, cancelled: Callable[[], bool] = lambda: False) -> None:
        self.writer = writer
        self.encoder = RecordEncoder(writer.output.format)
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
