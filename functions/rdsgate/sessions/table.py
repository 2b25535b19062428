"""The session table's items as Python, and its batched reads and writes (``store`` does the rest).

Item kinds and attributes: see ``store``. Here: the sessions' states, ``SessionItem`` (a
session as read), each item kind's id, DynamoDB's attribute values both ways, and the batch
calls with their retries of what DynamoDB left unprocessed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterable

from ..dynamodb_items import plain_item

STARTING, OPEN = "starting", "open"
COMMITTED, ROLLED_BACK, EXPIRED, FAILED, LOST, ABANDONED = (
    "committed", "rolledback", "expired", "failed", "lost", "abandoned",
)
LIVE = frozenset({STARTING, OPEN})
KEEP_SECONDS = 86_400  # ended sessions answer "expired" / "not found" for a day, then TTL removes them
TTL_ATTRIBUTE = "expires_at"
MAX_ATTEMPTS = 8


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SessionItem:
    """A session as the table holds it."""

    key: str
    state: str
    connection: str
    caller: str
    engine: str = ""
    read_only: bool = False
    created: int = 0
    deadline: int = 0
    idle_until: int = 0
    lease_until: int = 0
    seq: int = 0
    done: int = 0
    request: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    reason: str | None = None
    runner: str | None = None
    error: dict[str, Any] | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def fingerprint(key: str) -> str:
    """A short name of a session for logs and the audit trail (never its id)."""
    return key[:12]


def session_item(key: str, item: dict[str, Any]) -> SessionItem:
    """A session item as read (its attributes as plain Python)."""
    values = plain(item)
    error = values.get("err")
    return SessionItem(
        key=key,
        state=values.get("st", ""),
        connection=values.get("conn", ""),
        caller=values.get("caller", ""),
        engine=values.get("engine", ""),
        read_only=bool(values.get("ro", False)),
        created=int(values.get("created", 0)),
        deadline=int(values.get("deadline", 0)),
        idle_until=int(values.get("idle", 0)),
        lease_until=int(values.get("lease", 0)),
        seq=int(values.get("seq", 0)),
        done=int(values.get("done", 0)),
        request=_with_key(values.get("req"), key),
        result=_with_key(values.get("res"), key),
        reason=values.get("why"),
        runner=values.get("runner"),
        error=json.loads(error) if error else None,
    )


def _with_key(packed: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if packed is not None:
        packed["key"] = key
    return packed


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level attribute map as plain Python: the session table's numbers are whole (N as int)."""
    return plain_item(item, int)


def json_text(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), default=str)


def session_id(key: str) -> str:
    return f"s#{key}"


def chunk_id(key: str, nonce: str, index: int) -> str:
    return f"c#{key}#{nonce}#{index}"


def limit_id(kind: str, name: str) -> str:
    return f"l#{kind}#{name}"


def string_attr(text: str) -> dict[str, str]:
    return {"S": text}


def number_attr(number: int) -> dict[str, str]:
    return {"N": str(int(number))}


def batch_get(client: Any, table: str, ids: Iterable[str], projection: str | None = None, *, pause: float = 0.0) -> dict[str, Any]:
    """The items with these ids that exist (raw attribute maps by id), read consistently, 100 per call."""
    ids = list(ids)
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 100):
        request: dict[str, Any] = {table: {"Keys": [{"id": string_attr(i)} for i in ids[start : start + 100]], "ConsistentRead": True}}
        if projection is not None:
            request[table]["ProjectionExpression"] = projection
        for _ in range(MAX_ATTEMPTS):
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                found[item["id"]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            if pause:
                time.sleep(pause)
    return found


def batch_put(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """Write the items, 25 per call, until DynamoDB has taken every one."""
    for start in range(0, len(items), 25):
        requests = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        for _ in range(MAX_ATTEMPTS):
            left = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if not left:
                break
            requests = left
            time.sleep(0.01)
        else:
            raise RuntimeError("the session table did not take every chunk")
