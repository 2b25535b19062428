"""The result documents' helpers of the query service: batches handed to a stream's sink, MySQL's insert id,
and the collector paused while rows are built."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from .drivers import StatementResult
from .masking import NO_MASKING

if TYPE_CHECKING:
    from .definitions import ConnectionDefinition


class _PausedGc:
    """Pauses the cyclic garbage collector while a request builds its rows.

    Rows are lists, dicts and scalars and form no reference cycles, so the collector has
    nothing to find in them; but building 100,000 of them triggers it thousands of times,
    with full passes over every live object, which cost a large result ~15-25 % of its time.
    Garbage made meanwhile is collected by the next automatic pass after the request.
    A pause already in place (a nested call, or the collector turned off) is left alone.
    """

    __slots__ = ("_resume",)

    def __enter__(self) -> None:
        self._resume = gc.isenabled()
        if self._resume:
            gc.disable()

    def __exit__(self, *exc_info: Any) -> None:
        if self._resume:
            gc.enable()


class _StreamBatches:
    """The driver's sink for ``QueryService.stream``: masks each batch as ``_document`` does and hands on its records."""

    def __init__(self, service: Any, definition: ConnectionDefinition, shape: str, sink: Any) -> None:
        # service: the QueryService (rdsgate.service imports this module, so its type is not imported here)
        self.service, self.definition, self.shape, self.sink = service, definition, shape, sink
        self.plan: Any = NO_MASKING
        self.columns: list[dict[str, Any]] | None = None
        self.sources: Any = None
        self.count = 0

    def start(self, template: Any) -> None:
        self.columns, self.sources = template.columns, getattr(template, "sources", None)
        self.sink.start(self.columns)

    def rows(self, rows: list[list[Any]]) -> None:
        batch = StatementResult(self.columns, rows, False, None, sources=self.sources)
        records = self.service._document(self.definition, batch, self.shape, self.plan)["records"]
        self.count += len(records)
        self.sink.records(records)


def _with_insert_id(document: dict[str, Any], outcome: Any) -> dict[str, Any]:
    """MySQL's AUTO_INCREMENT id of the statement, when it set one (``lastInsertId``)."""
    if getattr(outcome, "last_insert_id", None):
        document["lastInsertId"] = outcome.last_insert_id
    return document
