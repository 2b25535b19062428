"""The query service: what both entry points call to list connections and run statements.

It owns the request flow (definition → SQL checks → parameters → connection →
execution → result document) and the one structured log line per request. It
knows nothing of API Gateway or Step Functions events.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from .catalog import DefinitionCatalog
from .errors import DatabaseUnavailable, InternalError, InvalidRequest, RdsgateError
from .params import bind_values
from .pool import ConnectionPool
from .request import QueryRequest
from .sqltext import prepare

# Statements that would hold a transaction, lock or prepared statement open past the request
# on a connection that the next caller reuses.
SESSION_CONTROL = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE", "XA", "LOCK", "UNLOCK"}
)


class StructuredLogger(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


class QueryService:
    """Runs one statement per request on a cached connection and returns the result document."""

    def __init__(self, catalog: DefinitionCatalog, pool: ConnectionPool, logger: StructuredLogger) -> None:
        self.catalog = catalog
        self.pool = pool
        self._logger = logger

    def list_connections(self) -> list[dict[str, Any]]:
        return [definition.summary() for definition in self.catalog.list()]

    def describe_connection(self, name: str) -> dict[str, Any]:
        return self.catalog.get(name).public_view()

    def query(self, name: str, request: QueryRequest) -> dict[str, Any]:
        """Run the request's statement on connection ``name``; raises RdsgateError subclasses."""
        started = time.perf_counter()
        log: dict[str, Any] = {"connection": name, "engine": None, "statementType": None, "rows": None}
        try:
            result = self._query(name, request, log)
            log["outcome"] = "ok"
            return result
        except RdsgateError as exc:
            log["outcome"] = exc.code
            raise
        except Exception as exc:  # never a stack trace to the caller; the type goes to the log
            log["outcome"] = InternalError.code
            log["exception"] = type(exc).__name__
            raise InternalError("rdsgate failed unexpectedly; see the function's log") from exc
        finally:
            log["durationMs"] = round((time.perf_counter() - started) * 1000, 3)
            self._logger.info("query", extra=log)

    def _query(self, name: str, request: QueryRequest, log: dict[str, Any]) -> dict[str, Any]:
        definition = self.catalog.get(name)
        log["engine"] = definition.engine
        prepared = prepare(request.sql, definition.engine)
        log["statementType"] = prepared.statement_type
        if prepared.statement_type in SESSION_CONTROL:
            raise InvalidRequest(
                f"sql: {prepared.statement_type} is not supported; each request runs in its own transaction", field="sql"
            )
        values = bind_values(prepared.names, request.parameters, request.type_hints)
        max_rows = _smallest(request.max_rows, definition.max_rows)
        started = time.perf_counter()
        connection = self.pool.acquire(definition)
        try:
            outcome = connection.execute(prepared, values, max_rows=max_rows)
        except DatabaseUnavailable:
            self.pool.discard(name)  # the connection is suspect: the next request opens a new one
            raise
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        names = [column["name"] for column in outcome.columns]
        if request.shape == "arrays":
            records: list[Any] = outcome.rows
        else:
            keys = _unique_keys(names)
            records = [dict(zip(keys, row)) for row in outcome.rows]
        log["rows"] = len(records)
        return {
            "columns": outcome.columns,
            "records": records,
            "rowCount": len(records),
            "updatedRows": outcome.updated_rows,
            "truncated": outcome.truncated,
            "durationMs": duration_ms,
        }


def _smallest(*limits: int | None) -> int | None:
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None


def _unique_keys(names: list[str]) -> list[str]:
    """Record keys: a repeated column name gets a suffix (``id``, ``id_2``) so no value is lost."""
    if len(set(names)) == len(names):
        return names
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return keys
