"""The audit trail's durable copy: one DynamoDB item per request, readable per connection.

Items are keyed by ``connection`` and ``at`` (ISO time, then ``#`` and the request
id, so they sort by time) and expire after a configurable number of days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Callable, Protocol

from .botoclients import dynamodb_client
from .errors import DatabaseUnavailable, InvalidRequest

MAX_READ_RECORDS = 1000
# A record always fits a DynamoDB item (400 KB): long SQL is kept cut, with its length and SHA-256.
MAX_SQL_CHARS = 8192
MAX_PARAMETERS_CHARS = 32768
NO_CONNECTION = "-"  # the partition of records that name no connection (listing, malformed requests)


def new_record(name: str | None, sql: Any, invocation: Any) -> dict[str, Any]:
    """The audit record of one request, before its outcome is known."""
    record: dict[str, Any] = {
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
        "requestId": invocation.request_id,
        "caller": invocation.caller.arn,
        "connection": name,
        "engine": None,
        "sql": sql,
        "statementType": None,
        "rows": None,
    }
    if invocation.route:
        record["route"] = invocation.route
    record.update(invocation.audit_context)
    return record


def fit(record: dict[str, Any]) -> dict[str, Any]:
    """The record, with SQL texts over ``MAX_SQL_CHARS`` cut (their length and SHA-256 kept) and
    parameters over ``MAX_PARAMETERS_CHARS`` replaced by their size and digest."""
    sql = record.get("sql")
    texts = sql if isinstance(sql, list) else [sql]
    if any(isinstance(t, str) and len(t) > MAX_SQL_CHARS for t in texts):
        joined = "\n;\n".join(t for t in texts if isinstance(t, str))
        record["sqlLength"] = len(joined)
        record["sqlSha256"] = hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()
        each = max(256, MAX_SQL_CHARS // max(1, len(texts)))
        cut = [t[:each] + "…" if isinstance(t, str) and len(t) > each else t for t in texts]
        record["sql"] = cut if isinstance(sql, list) else cut[0]
        record["sqlTruncated"] = True
    if "parameters" in record:
        text = json.dumps(record["parameters"], separators=(",", ":"), default=str)
        if len(text) > MAX_PARAMETERS_CHARS:
            record["parameters"] = {"truncated": True, "length": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return record


class AuditSink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...


class DynamoDBAuditTrail:
    """Writes audit records to a table and reads them back by connection and time."""

    def __init__(self, table_name: str, *, ttl_days: int = 90, client_factory: Callable[[], Any] | None = None) -> None:
        self.table_name = table_name
        self.ttl_days = ttl_days
        self._client_factory = client_factory or dynamodb_client  # botocore, as the catalog's
        self._client: Any = None

    def write(self, record: dict[str, Any]) -> None:
        at = dt.datetime.fromisoformat(record["at"])
        item = {
            "connection": {"S": record.get("connection") or NO_CONNECTION},
            "at": {"S": f"{record['at']}#{record.get('requestId') or ''}"},
            "record": {"S": json.dumps(record, separators=(",", ":"), default=str)},
            "expires_at": {"N": str(int((at + dt.timedelta(days=self.ttl_days)).timestamp()))},
        }
        self._table_client().put_item(TableName=self.table_name, Item=item)

    def read(self, connection: str, since: str | None, limit: int = MAX_READ_RECORDS) -> list[dict[str, Any]]:
        """Records of one connection, oldest first, from ``since`` (ISO 8601) on."""
        if since is not None:
            try:
                since_time = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidRequest("since: must be an ISO 8601 time such as 2026-01-31T00:00:00Z", field="since") from None
            if since_time.tzinfo is None:
                since_time = since_time.replace(tzinfo=dt.timezone.utc)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#c = :c",
            "ExpressionAttributeNames": {"#c": "connection"},
            "ExpressionAttributeValues": {":c": {"S": connection}},
            "Limit": limit,
        }
        if since is not None:
            kwargs["KeyConditionExpression"] += " AND #a >= :since"
            kwargs["ExpressionAttributeNames"]["#a"] = "at"
            kwargs["ExpressionAttributeValues"][":since"] = {
                "S": since_time.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")
            }
        try:
            items = self._table_client().query(**kwargs).get("Items", [])
        except Exception as exc:
            raise DatabaseUnavailable(f"the audit table could not be read ({type(exc).__name__})") from exc
        return [json.loads(item["record"]["S"]) for item in items]

    def _table_client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client
