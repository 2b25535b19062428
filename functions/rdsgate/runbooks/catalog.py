"""Where runbooks come from: the runbooks file (deploys and the dev stack) and the DynamoDB table the gateway reads.

The file is validated whole (every runbook, names unique) and then against the deployed connections;
the table (``RDSGATE_RUNBOOKS_TABLE``, key ``name``) is read through ``rdsgate.catalog.KeyedTable``
with a TTL cache, and each item parsed by the same ``rdsgate.runbooks.definition``.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..caching import TtlCache
from ..catalog import KeyedTable
from ..dynamodb_items import plain_item
from ..errors import ConnectionNotFound, InvalidDefinition
from .definition import NAME, Runbook, parse_runbook

__all__ = ["RunbookCatalog", "RunbookNotFound", "load_runbooks_file", "parse_runbooks_document"]


class RunbookNotFound(ConnectionNotFound):
    """No runbook of that name, or one the caller may not run (the same 404)."""


def parse_runbooks_document(document: Any, source: str = "runbooks file") -> list[Runbook]:
    """``{"runbooks": [...]}``: every runbook validated, names unique."""
    items = document.get("runbooks") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise InvalidDefinition(f"{source}: expected an object with a 'runbooks' list")
    runbooks: list[Runbook] = []
    for index, item in enumerate(items):
        try:
            runbook = parse_runbook(item)
        except InvalidDefinition as exc:
            raise InvalidDefinition(f"{source}: runbooks[{index}]: {exc.message}", **exc.details) from None
        if any(r.name == runbook.name for r in runbooks):
            raise InvalidDefinition(f"{source}: runbook {runbook.name!r} is defined twice", field="name")
        runbooks.append(runbook)
    return runbooks


def load_runbooks_file(path: Any) -> tuple[list[dict[str, Any]], list[Runbook]]:
    """The items (as written, to store) and the parsed runbooks of a runbooks file."""
    from pathlib import Path

    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidDefinition(f"runbooks file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InvalidDefinition(f"{path}: not valid JSON: {exc}") from None
    runbooks = parse_runbooks_document(document, str(path))
    return list(document["runbooks"]), runbooks


class RunbookCatalog(KeyedTable):
    """Runbooks from the DynamoDB table ``RDSGATE_RUNBOOKS_TABLE`` (key ``name``), cached with a TTL."""

    what = "runbooks"

    def __init__(self, table_name: str | None, *, ttl_seconds: float = 30.0, client_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(table_name, client_factory)
        self._items: TtlCache[Any] = TtlCache(ttl_seconds)

    def get(self, name: str) -> Runbook:
        """The runbook called ``name``; RunbookNotFound when there is none."""
        item = self._items.get(name, lambda: self._get_item(name)) if self.table_name and NAME.match(name) else None
        if item is None:
            raise RunbookNotFound(f"runbook {name!r} does not exist")
        return parse_runbook(item)

    def list(self) -> list[Runbook]:
        """Every valid runbook, by name (a malformed item is left out; get() names its problem)."""
        if not self.table_name:
            return []
        runbooks = []
        for item in self._items.get("\0all", self._scan_items):
            try:
                runbooks.append(parse_runbook(item))
            except InvalidDefinition:
                continue
        return sorted(runbooks, key=lambda r: r.name)

    def _get_item(self, name: str) -> Any:
        item = self._call("get_item", TableName=self.table_name, Key={"name": {"S": name}}).get("Item")
        return None if item is None else plain_item(item)
