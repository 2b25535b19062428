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

This module holds every conditional write and read of these items, whose conditions are read
together; the items' shapes and batch calls are in ``table``, the payloads' chunks in ``payloads``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ..botoclients import dynamodb_client
from ..errors import TooManySessions
from . import payloads
from .table import (
    ABANDONED, FAILED, KEEP_SECONDS, LIVE, LOST, MAX_ATTEMPTS, OPEN, STARTING, TTL_ATTRIBUTE, SessionItem, batch_get,
    json_text, limit_id, now_ms, number_attr, plain, session_id, session_item, string_attr,
)


class DynamoDBSessionStore:
    """The session table through a botocore DynamoDB client (created on first use)."""

    def __init__(self, table: str, *, client_factory: Callable[[], Any] | None = None) -> None:
        self.table = table
        self._client_factory = client_factory or dynamodb_client
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
        ids = (limit_id("c", connection), limit_id("u", caller))
        names = (f"connection {connection!r}", "this caller")
        for _ in range(MAX_ATTEMPTS):
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
                "id": string_attr(session_id(key)), "st": string_attr(STARTING), "conn": string_attr(connection), "caller": string_attr(caller),
                "engine": string_attr(engine), "ro": {"BOOL": read_only}, "created": number_attr(now), "deadline": number_attr(deadline),
                "idle": number_attr(deadline), "lease": number_attr(start_until), "seq": number_attr(0), "done": number_attr(0),
                TTL_ATTRIBUTE: number_attr(deadline // 1000 + KEEP_SECONDS),
            }
            transact: list[dict[str, Any]] = [
                {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}}
            ]
            for limit_key in ids:
                version = held[limit_key][1]
                entries[limit_key][key] = deadline
                limit_item = {
                    "id": string_attr(limit_key),
                    "m": {"M": {k: number_attr(d) for k, d in entries[limit_key].items()}},
                    "v": number_attr((version or 0) + 1),
                }
                put: dict[str, Any] = {"TableName": self.table, "Item": limit_item}
                if version is None:
                    put["ConditionExpression"] = "attribute_not_exists(id)"
                else:
                    put["ConditionExpression"] = "v = :v"
                    put["ExpressionAttributeValues"] = {":v": number_attr(version)}
                transact.append({"Put": put})
            try:
                self.client.transact_write_items(TransactItems=transact)
                return
            except self.client.exceptions.TransactionCanceledException:
                continue  # another session came or went meanwhile: read the limits again
        raise TooManySessions("too many sessions are starting at once; retry", retry_after=1)

    def release(self, key: str, connection: str, caller: str) -> None:
        """Stop counting a session that ended against its limits."""
        for limit_key in (limit_id("c", connection), limit_id("u", caller)):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"id": string_attr(limit_key)},
                    UpdateExpression="REMOVE m.#k ADD v :one",
                    ConditionExpression="attribute_exists(m)",
                    ExpressionAttributeNames={"#k": key},
                    ExpressionAttributeValues={":one": number_attr(1)},
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                pass

    def get(self, key: str) -> SessionItem | None:
        """The session, read strongly consistently; None when there is none."""
        return self._read(key)

    def open(self, key: str, *, runner: str, lease_until: int, idle_until: int, deadline: int) -> bool:
        """The runner holds BEGIN: ``starting`` becomes ``open``. False if the begin gave up meanwhile."""
        return self._update(
            key,
            "SET st = :open, runner = :runner, lease = :lease, idle = :idle, deadline = :deadline",
            "st = :starting",
            {":open": string_attr(OPEN), ":runner": string_attr(runner), ":lease": number_attr(lease_until), ":idle": number_attr(idle_until),
             ":deadline": number_attr(deadline), ":starting": string_attr(STARTING)},
        )

    def fail(self, key: str, error: dict[str, Any]) -> bool:
        """The runner could not begin (login refused, database unreachable, …): ``starting`` becomes ``failed``."""
        return self._update(
            key, "SET st = :failed, err = :err", "st = :starting",
            {":failed": string_attr(FAILED), ":err": string_attr(json_text(error)), ":starting": string_attr(STARTING)},
        )

    def abandon(self, key: str) -> bool:
        """The begin stopped waiting: a runner that starts later finds ``abandoned`` and leaves."""
        return self._update(key, "SET st = :abandoned", "st = :starting", {":abandoned": string_attr(ABANDONED), ":starting": string_attr(STARTING)})

    def end(self, key: str, state: str, reason: str, *, only_if_idle: bool = False) -> bool:
        """An open session ends without a request to answer (idle expiry, time limit, lost runner)."""
        condition = "st = :open" + (" AND attribute_not_exists(req)" if only_if_idle else "")
        return self._update(
            key, "SET st = :state, why = :why", condition, {":state": string_attr(state), ":why": string_attr(reason), ":open": string_attr(OPEN)}
        )

    def mark_lost(self, key: str, lease_until: int) -> bool:
        """Nobody refreshed the lease: the runner is gone (and with it its connection and transaction)."""
        return self._update(
            key, "SET st = :lost, why = :why", "st = :open AND lease = :lease",
            {":lost": string_attr(LOST), ":why": string_attr("the session's runner stopped answering"), ":open": string_attr(OPEN),
             ":lease": number_attr(lease_until)},
        )

    def heartbeat(self, key: str, lease_until: int) -> bool:
        return self._update(key, "SET lease = :lease", "st = :open", {":lease": number_attr(lease_until), ":open": string_attr(OPEN)})

    # -- the channel --------------------------------------------------------------------------

    def post(self, key: str, *, caller: str, connection: str, op: str, payload: bytes) -> int | None:
        """Put a request on the session's channel; its sequence number, or None if the session
        is not open for this caller and connection, or already has a request pending."""
        request = payloads.pack(self.client, self.table, key, op, payload)
        try:
            response = self.client.update_item(
                TableName=self.table,
                Key={"id": string_attr(session_id(key))},
                UpdateExpression="SET seq = seq + :one, req = :req REMOVE res",
                ConditionExpression="st = :open AND caller = :caller AND conn = :conn AND attribute_not_exists(req) AND lease > :now",
                ExpressionAttributeValues={":one": number_attr(1), ":req": request, ":open": string_attr(OPEN), ":caller": string_attr(caller),
                                           ":conn": string_attr(connection), ":now": number_attr(now_ms())},
                ReturnValues="UPDATED_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return int(response["Attributes"]["seq"]["N"])

    def poll_request(self, key: str) -> SessionItem | None:
        """The runner's read: the session with its pending request, if any."""
        return self._read(key, "st, seq, done, req, idle, deadline")

    def poll_answer(self, key: str) -> SessionItem | None:
        """The API function's read while it waits: state, lease and the last answer."""
        return self._read(key, "st, seq, done, res, lease, why, caller, conn")

    def _read(self, key: str, projection: str | None = None) -> SessionItem | None:
        """The session item (only ``projection``'s attributes, if given), read strongly consistently; None when there is none."""
        extra = {"ProjectionExpression": projection} if projection is not None else {}
        response = self.client.get_item(TableName=self.table, Key={"id": string_attr(session_id(key))}, ConsistentRead=True, **extra)
        item = response.get("Item")
        return None if item is None else session_item(key, item)

    def answer(self, key: str, seq: int, kind: str, payload: bytes, *, idle_until: int, state: str | None = None,
               reason: str | None = None) -> bool:
        """The runner's answer to request ``seq`` (``kind`` is "ok" or "error"); ``state`` ends the session."""
        values = {":seq": number_attr(seq), ":res": payloads.pack(self.client, self.table, key, kind, payload), ":idle": number_attr(idle_until)}
        expression = "SET done = :seq, res = :res, idle = :idle"
        if state is not None:
            expression += ", st = :state, why = :why"
            values[":state"], values[":why"] = string_attr(state), string_attr(reason or state)
        return self._update(key, expression + " REMOVE req", "seq = :seq", values)

    def unpack(self, packed: dict[str, Any]) -> tuple[str, bytes]:
        """(kind or op, payload bytes) of a request or an answer, its chunks read back if it has any."""
        return payloads.unpack(self.client, self.table, packed)

    # -- internals ----------------------------------------------------------------------------

    def _limit_entries(self, ids: Iterable[str]) -> dict[str, tuple[dict[str, int], int | None]]:
        ids = list(ids)
        items = batch_get(self.client, self.table, ids)
        result = {}
        for limit_key in ids:
            item = items.get(limit_key)
            if item is None:
                result[limit_key] = ({}, None)
            else:
                values = plain(item)
                result[limit_key] = (values.get("m", {}), values["v"])
        return result

    def _dead(self, keys: set[str], now: int) -> set[str]:
        """Of these sessions, those that no longer hold a connection: ended, gone, or their runner silent."""
        if not keys:
            return set()
        ids = {session_id(k): k for k in keys}
        found = {i: plain(item) for i, item in batch_get(self.client, self.table, ids, "id, st, lease").items()}
        dead = set()
        for item_id, key in ids.items():
            item = found.get(item_id)
            if item is None or item.get("st") not in LIVE or int(item.get("lease", 0)) < now:
                dead.add(key)
        return dead

    def _update(self, key: str, expression: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self.client.update_item(
                TableName=self.table, Key={"id": string_attr(session_id(key))}, UpdateExpression=expression,
                ConditionExpression=condition, ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
