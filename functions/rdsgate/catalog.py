"""The connection catalog: definitions read from DynamoDB, validated and cached with a TTL."""

from __future__ import annotations

from typing import Any, Callable

from .botoclients import dynamodb_client
from .caching import TtlCache
from .dynamodb_items import plain_item
from .definitions import ConnectionDefinition, parse_definition
from .errors import ConnectionNotFound, DatabaseUnavailable
from .tracing import TRACING

__all__ = ["DefinitionCatalog", "KeyedTable"]

_LIST_KEY = "\0all"  # cache key of the full listing; no definition name contains NUL


class KeyedTable:
    """A DynamoDB table keyed by ``name`` (connections, runbooks): its client made on first use, items as
    plain values, and a failure reported as DatabaseUnavailable naming the table, without internals."""

    what = "connections"  # the table's name in an error

    def __init__(self, table_name: str | None, client_factory: Callable[[], Any] | None = None) -> None:
        self.table_name = table_name
        self._client_factory = client_factory or dynamodb_client
        self._client: Any = None

    def _scan_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        while True:
            response = self._call("scan", **kwargs)
            items.extend(plain_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        if self._client is None:
            self._client = self._client_factory()
        try:
            return getattr(self._client, operation)(**kwargs)
        except Exception as exc:  # botocore errors: report without internals
            raise DatabaseUnavailable(f"the {self.what} table could not be read ({type(exc).__name__})") from exc


class DefinitionCatalog(KeyedTable):
    """Looks up connection definitions by name; a warm lookup reads DynamoDB at most once per TTL."""

    def __init__(self, table_name: str, *, ttl_seconds: float = 30.0, client_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(table_name, client_factory)
        self._items: TtlCache[dict[str, Any] | None] = TtlCache(ttl_seconds)
        self._listing: TtlCache[list[dict[str, Any]]] = TtlCache(ttl_seconds)
        self._parsed: dict[str, tuple[dict[str, Any], ConnectionDefinition]] = {}

    def get(self, name: str) -> ConnectionDefinition:
        """The definition called ``name``; ``ConnectionNotFound`` when there is none."""
        item = self._items.get(name, lambda: self._get_item(name))
        if item is None:
            raise ConnectionNotFound(f"connection {name!r} does not exist")
        parsed = self._parsed.get(name)
        if parsed is not None and parsed[0] is item:  # the same cached item: parsed once per fetch
            return parsed[1]
        definition = parse_definition(item, name=name)
        self._parsed[name] = (item, definition)
        return definition

    def list(self) -> list[ConnectionDefinition]:
        """Every valid definition, sorted by name; malformed items are left out of the listing."""
        definitions = []
        for item in self._listing.get(_LIST_KEY, self._scan_items):
            try:
                definitions.append(parse_definition(item))
            except Exception:  # one bad item must not hide the others; get() reports it by name
                continue
        return sorted(definitions, key=lambda d: d.name)

    def _get_item(self, name: str) -> dict[str, Any] | None:
        # Traced when DynamoDB is read (a cache miss), not for the cached answers in between.
        with TRACING.subsegment("definition") as span:
            response = self._call("get_item", TableName=self.table_name, Key={"name": {"S": name}}, ConsistentRead=False)
            item = response.get("Item")
            if item is None:
                return None
            plain = plain_item(item)
            span.annotate(connection=name, engine=plain.get("engine") if isinstance(plain.get("engine"), str) else None)
            return plain
