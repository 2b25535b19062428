"""The result reader: pages of a finished statement's result, its ``nextToken`` and a pre-signed download.

A page starts at any row: the index ``result_writer`` wrote beside the object names the
member that holds the row, which is one ranged GET and one member's decompression away.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import zlib
from bisect import bisect_right
from typing import Any

from .encoding import _ENCODER
from .errors import InvalidRequest, RequestTooLarge
from .statements import index_key

__all__ = ["PRESIGNED_URL_SECONDS", "ResultReader", "decode_token", "encode_token"]

PRESIGNED_URL_SECONDS = 900


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
