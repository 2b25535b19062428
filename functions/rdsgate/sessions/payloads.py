"""Requests and answers on a session's channel: compressed, and in chunk items when too large.

A payload of ``COMPRESS_FROM`` bytes or more is compressed; one still over ``INLINE_BYTES`` goes
to chunk items (``c#<key>#<nonce>#<i>``, removed by TTL after ``CHUNK_KEEP_SECONDS``) and the
session item carries only their count and nonce, so it stays within one read unit.
"""

from __future__ import annotations

import secrets
import time
import zlib
from typing import Any

from .table import TTL_ATTRIBUTE, batch_get, batch_put, chunk_id, number_attr, plain, string_attr

INLINE_BYTES = 3000  # larger payloads go to chunk items: the session item stays within one read unit
CHUNK_BYTES = 350_000  # under DynamoDB's 400 KB item limit
COMPRESS_FROM = 1024
CHUNK_KEEP_SECONDS = 3600


def pack(client: Any, table: str, key: str, kind: str, payload: bytes) -> dict[str, Any]:
    """The attribute value of a request or answer of session ``key``; its chunk items are written first, if it needs any."""
    compressed = len(payload) >= COMPRESS_FROM
    data = zlib.compress(payload, 1) if compressed else payload
    packed: dict[str, Any] = {"k": string_attr(kind), "z": {"BOOL": compressed}}
    if len(data) <= INLINE_BYTES:
        packed["p"] = {"B": data}
    else:
        nonce = secrets.token_hex(8)
        parts = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
        expires = number_attr(int(time.time()) + CHUNK_KEEP_SECONDS)
        batch_put(
            client, table,
            [{"id": string_attr(chunk_id(key, nonce, i)), "p": {"B": part}, TTL_ATTRIBUTE: expires} for i, part in enumerate(parts)],
        )
        packed["n"], packed["c"] = number_attr(len(parts)), string_attr(nonce)
    return {"M": packed}


def unpack(client: Any, table: str, packed: dict[str, Any]) -> tuple[str, bytes]:
    """(kind or op, payload bytes) of a request or an answer as read (``SessionItem.request``/``result``)."""
    kind = packed["k"]
    if "n" in packed:
        count, nonce = packed["n"], packed["c"]
        keys = [chunk_id(packed["key"], nonce, i) for i in range(count)]
        chunks = {i: plain(item).get("p", item) for i, item in batch_get(client, table, keys, "id, p", pause=0.01).items()}
        data = b"".join(chunks[k] for k in keys)
    else:
        data = packed["p"]
    return kind, zlib.decompress(data) if packed.get("z") else data
