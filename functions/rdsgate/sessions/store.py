"""The session table: each session's state, its limits and its channel, on DynamoDB.

One table (partition key ``id``) holds three kinds of item:

- ``s#<key>``: a session. ``key`` is the SHA-256 of the session id the caller holds, so the
  table (and its readers) never hold a usable id. Its state (``st``), owner (``caller``,
  ``conn``), deadlines in epoch milliseconds (``deadline``: the runner's time limit;
  ``idle``: rolled back when no call comes before it; ``lease``: the runner refreshes it while
  it lives) and the channel: ``seq`` counts requests, ``done`` the answered ones, ``req`` is
  the pending request and ``res`` the last answer.
- ``c#<key>#<nonce>#<i>``: one chunk of a request or answer too large to ride in the session
  item. The session item stays under 4 KB, so each consistent read of it costs one read unit.
- ``l#c#<connection>`` and ``l#u#<caller>``: the open sessions of a connection and of a caller
  (a map of session key to hard deadline), for the limits; written with optimistic versions
  in the same transaction that creates the session.

The channel is this item, read with strongly consistent GetItem: the API function writes a
request with one conditional UpdateItem and polls for the answer; the runner polls for the
request and writes the answer with one UpdateItem (README "Transactions across calls" has the
measurements that chose it over SQS).

Over ~400 lines: every conditional write on the session table, whose item kinds and conditions are read together.
"""

from __future__ import annotations

import secrets
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..errors import TooManySessions

STARTING, OPEN = "starting", "open"
COMMITTED, ROLLED_BACK, EXPIRED, FAILED, LOST, ABANDONED = (
    "committed", "rolledback", "expired", "failed", "lost", "abandoned",
)
LIVE = frozenset({STARTING, OPEN})
INLINE_BYTES = 3000  # larger payloads go to chunk items: the session item stays within one read unit
CHUNK_BYTES = 350_000  # under DynamoDB's 400 KB item limit
COMPRESS_FROM = 1024
KEEP_SECONDS = 86_400  # ended sessions answer "expired" / "not found" for a day, then TTL removes them
CHUNK_KEEP_SECONDS = 3600
TTL_ATTRIBUTE = "expires_at"
_MAX_ATTEMPTS = 8


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


class DynamoDBSessionStore:
    """The session table through a botocore DynamoDB client (created on first use)."""

    def __init__(self, table: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self.table = table
        self._client_factory = client_factory or _default_client
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # -- sessions and limits ------------------------------------------------------------------

    def create(
        self,
        key: str,
        *,
        connection: str,
        caller: str,
        engine: str,
        read_only: bool,
        start_until: int,
        deadline: int,
        limits: tuple[int, int],
    ) -> None:
        """Create a session in state ``starting``, counted against the connection's and the caller's limits.

        ``limits`` is (per connection, per caller). Sessions past their hard deadline, and those
        whose runner is gone, no longer count. Raises TooManySessions when a limit is reached.
        """
        ids = (_limit_id("c", connection), _limit_id("u", caller))
        names = (f"connection {connection!r}", "this caller")
        for _ in range(_MAX_ATTEMPTS):
            now = now_ms()
            held = self._limit_entries(ids)
            entries = {i: {k: d for k, d in held[i][0].items() if d > now} for i in ids}
            full = [n for i, n, limit in zip(ids, names, limits) if len(entries[i]) >= limit]
            if full:
                dead = self._dead(set().union(*(entries[i] for i in ids)), now)
                entries = {i: {k: d for k, d in entries[i].items() if k not in dead} for i in ids}
                full = [(n, limit) for i, n, limit in zip(ids, names, limits) if len(entries[i]) >= limit]
                if full:
                    name, limit = full[0]
                    raise TooManySessions(
                        f"{name} has {limit} open sessions, the most allowed; commit or roll one back, or retry later",
                        retry_after=5,
                    )
            item = {
                "id": _s(_session_id(key)), "st": _s(STARTING), "conn": _s(connection), "caller": _s(caller),
                "engine": _s(engine), "ro": {"BOOL": read_only}, "created": _n(now), "deadline": _n(deadline),
                "idle": _n(deadline), "lease": _n(start_until), "seq": _n(0), "done": _n(0),
                TTL_ATTRIBUTE: _n(deadline // 1000 + KEEP_SECONDS),
            }
            transact: list[dict[str, Any]] = [
                {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}}
            ]
            for limit_id in ids:
                version = held[limit_id][1]
                entries[limit_id][key] = deadline
                limit_item = {
                    "id": _s(limit_id),
                    "m": {"M": {k: _n(d) for k, d in entries[limit_id].items()}},
                    "v": _n((version or 0) + 1),
                }
                put: dict[str, Any] = {"TableName": self.table, "Item": limit_item}
                if version is None:
                    put["ConditionExpression"] = "attribute_not_exists(id)"
                else:
                    put["ConditionExpression"] = "v = :v"
                    put["ExpressionAttributeValues"] = {":v": _n(version)}
                transact.append({"Put": put})
            try:
                self.client.transact_write_items(TransactItems=transact)
                return
            except self.client.exceptions.TransactionCanceledException:
                continue  # another session came or went meanwhile: read the limits again
        raise TooManySessions("too many sessions are starting at once; retry", retry_after=1)

    def release(self, key: str, connection: str, caller: str) -> None:
        """Stop counting a session that ended against its limits."""
        for limit_id in (_limit_id("c", connection), _limit_id("u", caller)):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"id": _s(limit_id)},
                    UpdateExpression="REMOVE m.#k ADD v :one",
                    ConditionExpression="attribute_exists(m)",
                    ExpressionAttributeNames={"#k": key},
                    ExpressionAttributeValues={":one": _n(1)},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                pass

    def get(self, key: str) -> SessionItem | None:
        """The session, read strongly consistently; None when there is none."""
        response = self.client.get_item(TableName=self.table, Key={"id": _s(_session_id(key))}, ConsistentRead=True)
        item = response.get("Item")
        return None if item is None else _session(key, item)

    def open(self, key: str, *, runner: str, lease_until: int, idle_until: int, deadline: int) -> bool:
        """The runner holds BEGIN: ``starting`` becomes ``open``. False if the begin gave up meanwhile."""
        return self._update(
            key,
            "SET st = :open, runner = :runner, lease = :lease, idle = :idle, deadline = :deadline",
            "st = :starting",
            {":open": _s(OPEN), ":runner": _s(runner), ":lease": _n(lease_until), ":idle": _n(idle_until),
             ":deadline": _n(deadline), ":starting": _s(STARTING)},
        )

    def fail(self, key: str, error: dict[str, Any]) -> bool:
        """The runner could not begin (login refused, database unreachable, …): ``starting`` becomes ``failed``."""
        return self._update(
            key, "SET st = :failed, err = :err", "st = :starting",
            {":failed": _s(FAILED), ":err": _s(_json_text(error)), ":starting": _s(STARTING)},
        )

    def abandon(self, key: str) -> bool:
        """The begin stopped waiting: a runner that starts later finds ``abandoned`` and leaves."""
        return self._update(key, "SET st = :abandoned", "st = :starting", {":abandoned": _s(ABANDONED), ":starting": _s(STARTING)})

    def end(self, key: str, state: str, reason: str, *, only_if_idle: bool = False) -> bool:
        """An open session ends without a request to answer (idle expiry, time limit, lost runner)."""
        condition = "st = :open" + (" AND attribute_not_exists(req)" if only_if_idle else "")
        return self._update(
            key, "SET st = :state, why = :why", condition, {":state": _s(state), ":why": _s(reason), ":open": _s(OPEN)}
        )

    def mark_lost(self, key: str, lease_until: int) -> bool:
        """Nobody refreshed the lease: the runner is gone (and with it its connection and transaction)."""
        return self._update(
            key, "SET st = :lost, why = :why", "st = :open AND lease = :lease",
            {":lost": _s(LOST), ":why": _s("the session's runner stopped answering"), ":open": _s(OPEN),
             ":lease": _n(lease_until)},
        )

    def heartbeat(self, key: str, lease_until: int) -> bool:
        return self._update(key, "SET lease = :lease", "st = :open", {":lease": _n(lease_until), ":open": _s(OPEN)})

    # -- the channel --------------------------------------------------------------------------

    def post(self, key: str, *, caller: str, connection: str, op: str, payload: bytes) -> int | None:
        """Put a request on the session's channel; its sequence number, or None if the session
        is not open for this caller and connection, or already has a request pending."""
        request = self._pack(key, op, payload)
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key={"id": _s(_session_id(key))},
                UpdateExpression="SET seq = seq + :one, req = :req REMOVE res",
                ConditionExpression="st = :open AND caller = :caller AND conn = :conn AND attribute_not_exists(req) AND lease > :now",
                ExpressionAttributeValues={":one": _n(1), ":req": request, ":open": _s(OPEN), ":caller": _s(caller),
                                           ":conn": _s(connection), ":now": _n(now_ms())},
                ReturnValues="UPDATED_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return int(response["Attributes"]["seq"]["N"])

    def poll_request(self, key: str) -> SessionItem | None:
        """The runner's read: the session with its pending request, if any."""
        response = self.client.get_item(
            TableName=self.table, Key={"id": _s(_session_id(key))}, ConsistentRead=True,
            ProjectionExpression="st, seq, done, req, idle, deadline",
        )
        item = response.get("Item")
        return None if item is None else _session(key, item)

    def poll_answer(self, key: str) -> SessionItem | None:
        """The API function's read while it waits: state, lease and the last answer."""
        response = self.client.get_item(
            TableName=self.table, Key={"id": _s(_session_id(key))}, ConsistentRead=True,
            ProjectionExpression="st, seq, done, res, lease, why, caller, conn",
        )
        item = response.get("Item")
        return None if item is None else _session(key, item)

    def answer(self, key: str, seq: int, kind: str, payload: bytes, *, idle_until: int, state: str | None = None,
               reason: str | None = None) -> bool:
        """The runner's answer to request ``seq`` (``kind`` is "ok" or "error"); ``state`` ends the session."""
        values = {":seq": _n(seq), ":res": self._pack(key, kind, payload), ":idle": _n(idle_until)}
        expression = "SET done = :seq, res = :res, idle = :idle"
        if state is not None:
            expression += ", st = :state, why = :why"
            values[":state"], values[":why"] = _s(state), _s(reason or state)
        return self._update(key, expression + " REMOVE req", "seq = :seq", values)

    def unpack(self, packed: dict[str, Any]) -> tuple[str, bytes]:
        """(kind or op, payload bytes) of a request or an answer, its chunks read back if it has any."""
        kind = packed["k"]
        if "n" in packed:
            count, nonce = packed["n"], packed["c"]
            keys = [_chunk_id(packed["key"], nonce, i) for i in range(count)]
            chunks = self._batch_get(keys)
            data = b"".join(chunks[k] for k in keys)
        else:
            data = packed["p"]
        return kind, zlib.decompress(data) if packed.get("z") else data

    # -- internals ----------------------------------------------------------------------------

    def _pack(self, key: str, kind: str, payload: bytes) -> dict[str, Any]:
        compressed = len(payload) >= COMPRESS_FROM
        data = zlib.compress(payload, 1) if compressed else payload
        packed: dict[str, Any] = {"k": _s(kind), "z": {"BOOL": compressed}}
        if len(data) <= INLINE_BYTES:
            packed["p"] = {"B": data}
        else:
            nonce = secrets.token_hex(8)
            parts = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
            expires = _n(int(time.time()) + CHUNK_KEEP_SECONDS)
            self._batch_put(
                [{"id": _s(_chunk_id(key, nonce, i)), "p": {"B": part}, TTL_ATTRIBUTE: expires} for i, part in enumerate(parts)]
            )
            packed["n"], packed["c"] = _n(len(parts)), _s(nonce)
        return {"M": packed}

    def _batch_put(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 25):
            requests = {self.table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            for _ in range(_MAX_ATTEMPTS):
                left = self.client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not left:
                    break
                requests = left
                time.sleep(0.01)
            else:
                raise RuntimeError("the session table did not take every chunk")

    def _batch_get(self, ids: list[str], projection: str = "id, p") -> dict[str, Any]:
        found: dict[str, Any] = {}
        for start in range(0, len(ids), 100):
            request = {self.table: {"Keys": [{"id": _s(i)} for i in ids[start : start + 100]], "ConsistentRead": True,
                                    "ProjectionExpression": projection}}
            for _ in range(_MAX_ATTEMPTS):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    found[item["id"]["S"]] = _plain(item).get("p", item)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.01)
        return found

    def _limit_entries(self, ids: Iterable[str]) -> dict[str, tuple[dict[str, int], int | None]]:
        ids = list(ids)
        request = {self.table: {"Keys": [{"id": _s(i)} for i in ids], "ConsistentRead": True}}
        items: dict[str, Any] = {}
        for _ in range(_MAX_ATTEMPTS):
            response = self.client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.table, []):
                items[item["id"]["S"]] = item
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        result = {}
        for limit_id in ids:
            item = items.get(limit_id)
            if item is None:
                result[limit_id] = ({}, None)
            else:
                entries = {k: int(v["N"]) for k, v in item.get("m", {}).get("M", {}).items()}
                result[limit_id] = (entries, int(item["v"]["N"]))
        return result

    def _dead(self, keys: set[str], now: int) -> set[str]:
        """Of these sessions, those that no longer hold a connection: ended, gone, or their runner silent."""
        if not keys:
            return set()
        ids = {_session_id(k): k for k in keys}
        found = {}
        for start in range(0, len(ids), 100):
            chunk = list(ids)[start : start + 100]
            request = {self.table: {"Keys": [{"id": _s(i)} for i in chunk], "ConsistentRead": True,
                                    "ProjectionExpression": "id, st, lease"}}
            for _ in range(_MAX_ATTEMPTS):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    found[item["id"]["S"]] = _plain(item)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
        dead = set()
        for session_id, key in ids.items():
            item = found.get(session_id)
            if item is None or item.get("st") not in LIVE or int(item.get("lease", 0)) < now:
                dead.add(key)
        return dead

    def _update(self, key: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": _s(_session_id(key))}, UpdateExpression=expression,
                ConditionExpression=condition, ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _session(key: str, item: dict[str, Any]) -> SessionItem:
    plain = _plain(item)
    error = plain.get("err")
    return SessionItem(
        key=key,
        state=plain.get("st", ""),
        connection=plain.get("conn", ""),
        caller=plain.get("caller", ""),
        engine=plain.get("engine", ""),
        read_only=bool(plain.get("ro", False)),
        created=int(plain.get("created", 0)),
        deadline=int(plain.get("deadline", 0)),
        idle_until=int(plain.get("idle", 0)),
        lease_until=int(plain.get("lease", 0)),
        seq=int(plain.get("seq", 0)),
        done=int(plain.get("done", 0)),
        request=_with_key(plain.get("req"), key),
        result=_with_key(plain.get("res"), key),
        reason=plain.get("why"),
        runner=plain.get("runner"),
        error=_json_load(error) if error else None,
    )


def _with_key(packed: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if packed is not None:
        packed["key"] = key
    return packed


def _plain(value: dict[str, Any]) -> Any:
    """A low-level attribute map as plain Python (S, N as int, B, BOOL, M)."""
    out = {}
    for name, attribute in value.items():
        out[name] = _plain_value(attribute)
    return out


def _plain_value(attribute: dict[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value)
    if kind == "B":
        return bytes(value)
    if kind == "BOOL":
        return value
    if kind == "M":
        return _plain(value)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain_value(v) for v in value]
    return value


def _json_text(document: Any) -> str:
    import json

    return json.dumps(document, separators=(",", ":"), default=str)


def _json_load(text: str) -> Any:
    import json

    return json.loads(text)


def _session_id(key: str) -> str:
    return f"s#{key}"


def _chunk_id(key: str, nonce: str, index: int) -> str:
    return f"c#{key}#{nonce}#{index}"


def _limit_id(kind: str, name: str) -> str:
    return f"l#{kind}#{name}"


def _s(text: str) -> dict[str, str]:
    return {"S": text}


def _n(number: int) -> dict[str, str]:
    return {"N": str(int(number))}


def _default_client() -> Any:
    from botocore.session import get_session

    return get_session().create_client("dynamodb")
