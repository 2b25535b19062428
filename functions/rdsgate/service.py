"""The query service: the one object every entry point calls to list connections and run statements.

It owns the request flow (request limits → idempotency → definition → access → SQL checks
and guardrails → parameters → limits and deadline → connection → execution → masking →
result document) and the one audit record per request, allowed, denied or failed. It knows
nothing of API Gateway, Step Functions or the Lambda context: the entry points translate
their events into requests and an ``Invocation`` (the remaining time a plain number), and
its answers and errors into their transport (``rdsgate.edge``). Over ~400 lines: QueryService is the one
request flow, whose steps share one audit record; what it is given is in ``rdsgate.invocation``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .access import Caller
from .audit import AuditSink, fit, new_record
from .catalog import DefinitionCatalog
from .definitions import ConnectionDefinition
from .drivers import ExecutionOptions, SessionPolicy
from .encoding import unique_keys
from .errors import ConnectionNotFound, DatabaseUnavailable, InternalError, InvalidRequest, QueryTimeout, RdsgateError, SqlError
from .guardrails import check_guardrails
from .invocation import Idempotency, Invocation, Limits, StructuredLogger
from .masking import NO_MASKING, Masker, MaskPlan
from .params import bind_values
from .pool import ConnectionPool
from .request import BATCH_FIELDS, TRANSACTION_FIELDS, AtomicRequest, QueryRequest, Statement, parse_batch, parse_transaction
from .reviews.gate import review_gate
from .runbooks.connections import check_free_sql
from .results import _PausedGc, _StreamBatches, _with_insert_id
from .sql.text import check_statement_kind, prepare
from .telemetry import DENIAL_KINDS, NoopRecorder, Recorder
from .tracing import TRACING

__all__ = ["QueryService", "Invocation", "Limits", "Idempotency", "StructuredLogger", "CATALOG_QUERIES", "ENVELOPE_BYTES"]

# What GET /connections/{name}/schema reads; information_schema shows only what the user may see.
CATALOG_QUERIES = {
    "postgres": (
        "SELECT c.table_schema::text, c.table_name::text, t.table_type::text, c.column_name::text, c.udt_name::text, "
        "c.is_nullable::text FROM information_schema.columns c JOIN information_schema.tables t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY c.table_schema, c.table_name, c.ordinal_position"
    ),
    "mysql": (
        "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, t.TABLE_TYPE, c.COLUMN_NAME, c.DATA_TYPE, c.IS_NULLABLE "
        "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
        "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
        "WHERE c.TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') "
        "ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
    ),
}
# Room left for the result document's envelope (columns, counters) within a byte limit.
ENVELOPE_BYTES = 4096
# The statement must end this long before the function does, so the caller gets a clean 504.
DEADLINE_MARGIN_MS = 1500
# Facts a request's audit record carries to `_audit` for the metrics only: removed before it is written.
_DATABASE_MS = "_databaseMs"  # time spent in the driver running the request's statements
_UNTIMED = "_untimed"  # refused before the service ran: no duration to report


def _hidden(name: str) -> ConnectionNotFound:
    """What a caller who may not use a connection is told: the same as for a name that does not exist."""
    return ConnectionNotFound(f"connection {name!r} does not exist")


def _as_invocation(invocation: Invocation | Caller) -> Invocation:
    return invocation if isinstance(invocation, Invocation) else Invocation(caller=invocation, result_limit_bytes=0)


class QueryService:
    """Runs one statement per request on a cached connection and returns the result document."""

    def __init__(
        self,
        catalog: DefinitionCatalog,
        pool: ConnectionPool,
        logger: StructuredLogger,
        *,
        limits: Limits = Limits(),
        audit_sink: AuditSink | None = None,
        metrics: Recorder | None = None,
        idempotency: Idempotency | None = None,
    ) -> None:
        self.catalog = catalog
        self._idempotency = idempotency  # none: requests with an idempotencyKey are refused
        self._metrics = metrics or NoopRecorder()
        self.pool = pool
        self.limits = limits
        self._logger = logger
        self._audit_sink = audit_sink
        self._masker = Masker(limits.masking_key, catalog_rows=limits.max_rows_ceiling)
        self.audit_write_failures = 0  # counted, and logged with the record: an audit write never fails silently

    def list_connections(self, invocation: Invocation | Caller) -> list[dict[str, Any]]:
        """The connections the caller may use."""
        invocation = _as_invocation(invocation)

        def work(record: dict[str, Any]) -> list[dict[str, Any]]:
            record["statementType"] = "LIST"
            listed = [d.summary() for d in self.catalog.list() if invocation.caller.may_use(d)]
            record["rows"] = len(listed)
            return listed

        return self._audited(None, None, invocation, work)

    def describe_connection(self, name: str, invocation: Invocation | Caller) -> dict[str, Any]:
        """The definition without any secret, if the caller may use it."""
        invocation = _as_invocation(invocation)

        def work(record: dict[str, Any]) -> dict[str, Any]:
            record["statementType"] = "GET"
            return self._governed(name, invocation, record).public_view()

        return self._audited(name, None, invocation, work)

    def authorize(self, name: str, caller: Caller, database: str | None = None) -> ConnectionDefinition:
        """The definition, if the caller may use it; one the caller may not use does not exist (404).

        ``database`` (the Data API's field): the database the caller expects the connection to serve."""
        definition = self.catalog.get(name)  # traced where DynamoDB is read (catalog._get_item)
        if not caller.may_use(definition):
            error = _hidden(name)  # the caller is told 404, as for a name that does not exist; the record says why
            error.audit = {"engine": definition.engine, "reason": "Forbidden"}  # type: ignore[attr-defined]
            raise error
        if database and definition.database and database != definition.database:
            raise InvalidRequest(f"database: connection {name!r} serves database {definition.database!r}, not {database!r}")
        return definition

    def batch_request(self, document: Any, allowed: frozenset[str] = BATCH_FIELDS) -> AtomicRequest:
        """The request-limits step of a batch: at most ``max_batch_sets`` parameter sets."""
        return parse_batch(document, max_sets=self.limits.max_batch_sets, allowed=allowed)

    def transaction_request(self, document: Any, allowed: frozenset[str] = TRANSACTION_FIELDS) -> AtomicRequest:
        """The request-limits step of a transaction: at most ``max_transaction_statements`` statements."""
        return parse_transaction(document, max_statements=self.limits.max_transaction_statements, allowed=allowed)

    def audited(self, name: str | None, kind: str, invocation: Invocation, work: Callable[[ConnectionDefinition], Any]) -> Any:
        """Run ``work`` on a definition the caller may use, with one audit record (diagnose, audit reads, …)."""

        def governed(record: dict[str, Any]) -> Any:
            record["statementType"] = kind
            return work(self._governed(name, invocation, record))

        return self._audited(name, None, invocation, governed)

    def audit_records(self, name: str, invocation: Invocation | Caller, since: str | None) -> list[dict[str, Any]]:
        """The audit records of a connection the caller may use (oldest first)."""
        invocation = _as_invocation(invocation)

        def read(definition: ConnectionDefinition) -> list[dict[str, Any]]:
            reader = getattr(self._audit_sink, "read", None)
            if reader is None:
                raise InvalidRequest("the audit table is not configured (RDSGATE_AUDIT_TABLE)")
            return reader(name, since)

        return self.audited(name, "AUDIT", invocation, read)

    def record_failure(self, name: str | None, invocation: Invocation, error: RdsgateError) -> None:
        """The audit record of a request refused before the service ran it (a malformed body, a bad route)."""
        if getattr(error, "audited", False):
            return
        record = new_record(name, None, invocation)
        record["statementType"] = "INVALID" if isinstance(error, InvalidRequest) else None
        record["outcome"] = error.code
        record["durationMs"] = 0.0
        record.update(getattr(error, "audit", None) or {})  # a refusal by authorize(): the record says so
        record[_UNTIMED] = True
        error.audited = True  # type: ignore[attr-defined]
        self._audit(record)

    def query(self, name: str, request: QueryRequest, invocation: Invocation) -> dict[str, Any]:
        """Run the request's statement on connection ``name``, at most once per ``idempotencyKey``; raises RdsgateError subclasses."""
        return self._at_most_once(
            name, request.idempotency_key, invocation,
            lambda: {"sql": request.sql, "parameters": request.parameters, "typeHints": request.type_hints},
            lambda: self._audited(name, request.sql, invocation, lambda record: self._query(name, request, invocation, record)),
        )

    def run_atomic(self, name: str, request: AtomicRequest, invocation: Invocation) -> dict[str, Any]:
        """Run a batch or a transaction: every statement commits, or none does (at most once per ``idempotencyKey``)."""
        sql: Any = request.statements[0].sql if request.batch else [s.sql for s in request.statements]
        return self._at_most_once(
            name, request.idempotency_key, invocation,
            lambda: {"statements": [(s.sql, s.parameters, s.type_hints) for s in request.statements]},
            lambda: self._audited(name, sql, invocation, lambda record: self._run_atomic(name, request, invocation, record)),
        )

    def _at_most_once(self, name: str, key: str | None, invocation: Invocation, payload: Callable[[], dict[str, Any]],
                      work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The idempotency step: with a key, ``work`` runs once per caller, connection and key (``payload``: what
        a repeat must match, built only then)."""
        if key is None:
            return work()
        if self._idempotency is None:
            raise InvalidRequest("idempotencyKey: idempotent requests are not enabled (no idempotency table)", field="idempotencyKey")
        scope = {"caller": invocation.caller.arn, "connection": name, "idempotencyKey": key}
        return self._idempotency.run(scope, payload(), work, invocation.remaining_ms)

    def describe(self, name: str, sql: str, invocation: Invocation) -> dict[str, Any]:
        """The parameters and result columns of a statement, without running it."""

        def work(record: dict[str, Any]) -> dict[str, Any]:
            definition = self._governed(name, invocation, record)
            check_free_sql(definition, None)
            prepared = prepare(sql, definition.engine)
            record["statementType"] = "DESCRIBE"
            check_statement_kind(prepared, definition.engine)
            check_guardrails(definition.guardrails, sql, definition.engine)
            types, columns = self._on_connection(definition, lambda connection: connection.describe(prepared))
            return {"parameters": [{"name": n, "type": t} for n, t in zip(prepared.names, types)], "columns": columns}

        return self._audited(name, sql, invocation, work)

    def schema(self, name: str, invocation: Invocation) -> dict[str, Any]:
        """Schemas, tables and columns the connection's database user can see (information_schema)."""

        def work(record: dict[str, Any]) -> dict[str, Any]:
            definition = self._governed(name, invocation, record)
            record["statementType"] = "SCHEMA"
            prepared = prepare(CATALOG_QUERIES[definition.engine], definition.engine)
            options = ExecutionOptions(max_rows=self.limits.max_rows_ceiling, records_as_objects=False,
                                       session=self._policy(definition, None, invocation))
            outcome = self._on_connection(definition, lambda connection: connection.execute(prepared, {}, options))
            schemas: dict[str, dict[str, dict[str, Any]]] = {}
            for schema_name, table, table_type, column, data_type, nullable in outcome.rows:
                tables = schemas.setdefault(schema_name, {})
                entry = tables.setdefault(table, {"name": table, "type": table_type, "columns": []})
                entry["columns"].append({"name": column, "type": data_type, "nullable": nullable == "YES"})
            record["rows"] = len(outcome.rows)
            return {
                "schemas": [{"name": s, "tables": list(t.values())} for s, t in schemas.items()],
                "truncated": outcome.truncated,
            }

        return self._audited(name, "information_schema", invocation, work)

    def stream(
        self, name: str, request: QueryRequest, invocation: Invocation, sink: Any, *,
        max_rows: int, on_connection: Callable[[Any], None] | None = None,
    ) -> dict[str, Any]:
        """Run the statement as ``query`` does (access, SQL checks, guardrails, read-only, masking, audit,
        clean session) but hand its records, masked, to ``sink.records(records)`` batch by batch
        (after ``sink.start(columns)``) instead of returning them: asynchronous statements, S3 output.

        Its statement timeout is the request's ``timeoutMs`` and the invocation's remaining time,
        not the synchronous one; rows stop at ``max_rows`` (``truncated``). ``on_connection`` sees
        the connection just before the statement runs (to record its backend for a cancel).
        Returns the document of ``query`` without ``records``.
        """
        return self._audited(name, request.sql, invocation, lambda record: self._stream(name, request, invocation, sink, max_rows, on_connection, record))

    def check_statement(self, name: str, request: QueryRequest, invocation: Invocation) -> None:
        """Access, SQL checks and guardrails of a statement submitted to run later (audited as SUBMIT)."""

        def work(record: dict[str, Any]) -> dict[str, Any]:
            definition = self._governed(name, invocation, record)
            prepared, _ = self._checked(definition, request)
            record["statementType"] = f"SUBMIT {prepared.statement_type}"
            review_gate(definition, request, invocation, record)  # an approval rule holds it for review (202)
            return {}

        self._audited(name, request.sql, invocation, work)

    def cancel_backend(self, name: str, backend_id: int) -> None:
        """Cancel what session ``backend_id`` of connection ``name`` runs, from a second connection of the same
        definition: PostgreSQL ``pg_cancel_backend``, MySQL ``KILL QUERY``. The caller must have checked access."""
        definition = self.catalog.get(name)
        sql = "SELECT pg_cancel_backend(CAST(:backend AS integer))" if definition.engine == "postgres" else "KILL QUERY :backend"
        connection = self.pool.open_separate(definition)
        try:
            connection.execute(prepare(sql, definition.engine), {"backend": int(backend_id)}, ExecutionOptions(max_rows=1, session=SessionPolicy(statement_timeout_ms=5000)))
        finally:
            connection.close()

    def _stream(self, name: str, request: QueryRequest, invocation: Invocation, sink: Any, max_rows: int, on_connection: Any, record: dict[str, Any]) -> dict[str, Any]:
        definition, prepared, values = self._admitted(name, request, invocation, record)
        max_rows = _smallest(max_rows, definition.max_rows)  # the definition's cap holds here too
        options = ExecutionOptions(max_rows=max_rows, records_as_objects=False, session=self._policy(definition, request, invocation, streamed=True))
        batches = _StreamBatches(self, definition, request.shape, sink)
        started = time.perf_counter()

        def work(connection: Any) -> Any:
            batches.plan = self._masker.plans(definition, connection, [request.sql])[0]
            if on_connection is not None:
                on_connection(connection)
            try:
                return connection.execute_stream(prepared, values, options, batches)
            except SqlError as exc:
                self._masker.scrub(exc, [batches.plan])
                raise

        outcome = self._on_connection(definition, work)
        for column, seen in zip(outcome.columns, batches.columns or []):
            if seen.get("masked"):
                column["masked"] = True
        record["rows"] = batches.count
        return _with_insert_id({
            "columns": outcome.columns,
            "rowCount": batches.count,
            "updatedRows": outcome.updated_rows,
            "truncated": outcome.truncated,
            "durationMs": round((time.perf_counter() - started) * 1000, 3),
        }, outcome)

    def _audited(self, name: str, sql: Any, invocation: Invocation, work: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work`` and write its audit record, whether it was allowed, denied or failed."""
        started = time.perf_counter()
        record = new_record(name, sql, invocation)
        try:
            with _PausedGc():
                result = work(record)
            record["outcome"] = "ok"
            return result
        except RdsgateError as exc:
            record["outcome"] = exc.code
            exc.audited = True  # type: ignore[attr-defined]
            raise
        except Exception as exc:  # never a stack trace to the caller; the type goes to the log
            record["outcome"] = InternalError.code
            record["exception"] = type(exc).__name__
            internal = InternalError("rdsgate failed unexpectedly; see the function's log")
            internal.audited = True  # type: ignore[attr-defined]
            raise internal from exc
        finally:
            record["durationMs"] = round((time.perf_counter() - started) * 1000, 3)
            self._audit(record)

    def _governed(self, name: str, invocation: Invocation, record: dict[str, Any]) -> ConnectionDefinition:
        """``authorize`` inside a request: its refusal's facts go into the request's record."""
        try:
            definition = self.authorize(name, invocation.caller)
        except ConnectionNotFound as error:
            record.update(getattr(error, "audit", None) or {})
            raise
        record["engine"] = definition.engine
        return definition

    def _checked(self, definition: ConnectionDefinition, statement: QueryRequest | Statement, where: str = "sql"):
        """The prepared statement and its bound values, after the SQL checks and guardrails."""
        check_free_sql(definition, statement)  # runbook-only connections (adhoc: false) take no SQL of the caller's own
        prepared = prepare(statement.sql, definition.engine)
        check_statement_kind(prepared, definition.engine, where)
        check_guardrails(definition.guardrails, statement.sql, definition.engine)
        return prepared, bind_values(prepared.names, statement.parameters, statement.type_hints)

    def _admitted(self, name: str, request: QueryRequest, invocation: Invocation, record: dict[str, Any]) -> tuple[ConnectionDefinition, Any, Any]:
        """Access, SQL checks, guardrails and the review gate of one statement: its definition, prepared SQL and values."""
        definition = self._governed(name, invocation, record)
        if definition.audit_parameters:
            record["parameters"] = dict(request.parameters)
        prepared, values = self._checked(definition, request)
        record["statementType"] = prepared.statement_type
        review_gate(definition, request, invocation, record)  # an approval rule holds it for review (202)
        return definition, prepared, values

    def _query(self, name: str, request: QueryRequest, invocation: Invocation, record: dict[str, Any]) -> dict[str, Any]:
        definition, prepared, values = self._admitted(name, request, invocation, record)
        options = self._options(definition, request, invocation)
        started = time.perf_counter()
        outcome, plans = self._masked_run(definition, [request.sql], lambda connection: connection.execute(prepared, values, options), record)
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        document = self._document(definition, outcome, request.shape, plans[0])
        record["rows"] = document["rowCount"]
        document["durationMs"] = duration_ms
        return document

    def _run_atomic(self, name: str, request: AtomicRequest, invocation: Invocation, record: dict[str, Any]) -> dict[str, Any]:
        definition = self._governed(name, invocation, record)
        if definition.audit_parameters:
            record["parameters"] = [dict(s.parameters) for s in request.statements]
        checked = []
        for index, statement in enumerate(request.statements):
            where = "sql" if request.batch else f"statements[{index}].sql"
            try:
                checked.append(self._checked(definition, statement, where))
            except RdsgateError as exc:
                if request.batch:
                    exc.message = f"parameterSets[{index}]: {exc.message}"
                    exc.args = (exc.message,)
                exc.details["statement"] = index
                raise
        record["statementType"] = "BATCH" if request.batch else "TRANSACTION"
        review_gate(definition, request, invocation, record)  # an approval rule holds it for review (202)
        options = self._options(definition, request, invocation)
        started = time.perf_counter()
        outcomes, plans = self._masked_run(
            definition, [s.sql for s in request.statements], lambda connection: connection.execute_many(checked, options), record
        )
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        record["rows"] = sum(len(o.rows) for o in outcomes)
        if request.batch:
            return {
                "updateResults": [_with_insert_id({"updatedRows": o.updated_rows}, o) for o in outcomes],
                "updatedRows": sum(o.updated_rows or 0 for o in outcomes),
                "durationMs": duration_ms,
            }
        documents = [self._document(definition, o, request.shape, plan) for o, plan in zip(outcomes, plans)]
        return {"results": documents, "durationMs": duration_ms}

    def _on_connection(self, definition: ConnectionDefinition, work: Callable[[Any], Any]) -> Any:
        connection = self.pool.acquire(definition)
        try:
            return work(connection)
        except DatabaseUnavailable:
            self.pool.discard(definition.name)  # the connection is suspect: the next request opens a new one
            raise

    def _masked_run(
        self, definition: ConnectionDefinition, sqls: list[str], run: Callable[[Any], Any], record: dict[str, Any] | None = None
    ) -> tuple[Any, list[MaskPlan]]:
        """Plan the masking of every statement, run them, and keep masked values out of errors.

        The time ``run`` takes (the driver's) goes to the metrics through ``record``."""
        statement_type = record.get("statementType") if record is not None else None

        def work(connection: Any) -> tuple[Any, list[MaskPlan]]:
            plans = self._masker.plans(definition, connection, sqls)
            started = time.perf_counter()
            try:
                with TRACING.subsegment("execute", connection=definition.name, engine=definition.engine, statement_type=statement_type):
                    return run(connection), plans
            except SqlError as exc:
                self._masker.scrub(exc, plans)
                raise
            finally:
                if record is not None:
                    record[_DATABASE_MS] = (time.perf_counter() - started) * 1000

        return self._on_connection(definition, work)

    def _document(self, definition: ConnectionDefinition, outcome: Any, shape: str, plan: MaskPlan = NO_MASKING) -> dict[str, Any]:
        """The result document of one statement, masked as the definition says."""
        names = [column["name"] for column in outcome.columns]
        encoded = getattr(outcome, "encoded", None)  # the records, built and encoded once by the row budget
        if (definition.masked_columns or definition.mask_detectors) and self._masker.apply(definition, outcome, plan):
            encoded = None
        if encoded is not None and encoded.objects == (shape != "arrays"):
            records: list[Any] = encoded
        elif shape == "arrays":
            records = outcome.rows
        else:
            keys = unique_keys(names)
            records = [dict(zip(keys, row)) for row in outcome.rows]
        return _with_insert_id({
            "columns": outcome.columns,
            "records": records,
            "rowCount": len(records),
            "updatedRows": outcome.updated_rows,
            "truncated": outcome.truncated,
        }, outcome)

    def _options(self, definition: ConnectionDefinition, request: QueryRequest | AtomicRequest, invocation: Invocation) -> ExecutionOptions:
        max_rows = _smallest(request.max_rows, definition.max_rows) or self.limits.default_max_rows
        max_bytes = _smallest(request.max_bytes, definition.max_bytes, invocation.result_limit_bytes - ENVELOPE_BYTES)
        return ExecutionOptions(
            max_rows=min(max_rows, self.limits.max_rows_ceiling),
            max_bytes=max_bytes,
            records_as_objects=request.shape != "arrays",
            session=self._policy(definition, request, invocation),
        )

    def _policy(self, definition: ConnectionDefinition, request: Any, invocation: Invocation, *, streamed: bool = False) -> SessionPolicy:
        """The request's session policy, computed once: read-only, statement timeout (within the deadline), JSON form."""
        return SessionPolicy.for_request(
            definition, request, default_timeout_ms=self.limits.statement_timeout_ms, deadline_ms=self._deadline_ms(invocation),
            streamed=streamed,
        )

    @staticmethod
    def _deadline_ms(invocation: Invocation) -> int | None:
        """The deadline step: the statement must end ``DEADLINE_MARGIN_MS`` before the function does (None: no deadline)."""
        if invocation.remaining_ms is None:
            return None
        available = int(invocation.remaining_ms - DEADLINE_MARGIN_MS)
        if available < 1:
            raise QueryTimeout("the function has no time left to run the statement")
        if available >= 1000:  # whole seconds: consecutive requests ask for the same timeout (MySQL keeps it set)
            available -= available % 1000
        return available

    def _audit(self, record: dict[str, Any]) -> None:
        database_ms, untimed = record.pop(_DATABASE_MS, None), record.pop(_UNTIMED, False)
        fit(record)
        self._logger.info("query", extra=record)
        self._count(record, database_ms, untimed)
        if self._audit_sink is None:
            return
        try:
            with TRACING.subsegment("audit", connection=record.get("connection") if record.get("engine") else None):
                self._audit_sink.write(record)
        except Exception as exc:  # the record must not vanish, and the request's outcome stands
            self.audit_write_failures += 1
            self._metrics.audit_write_failed()
            self._logger.error("audit write failed", extra={"audit": record, "auditWriteFailed": True, "exception": type(exc).__name__})


    def _count(self, record: dict[str, Any], database_ms: float | None, untimed: bool) -> None:
        """The request's metrics, from its audit record: the connection only once its definition was found."""
        outcome = record.get("outcome")
        code = None if outcome == "ok" else outcome
        connection = record.get("connection") if record.get("engine") else None
        rows = record.get("rows")
        self._metrics.request(
            connection, code, None if untimed else record.get("durationMs"), database_ms, rows if isinstance(rows, int) else None
        )
        if code in DENIAL_KINDS:
            self._metrics.denied(connection, code)
        elif code == "NotFound" and record.get("reason") == "Forbidden":  # told 404, counted as the refusal it is
            self._metrics.denied(connection, "Forbidden")


def _smallest(*limits: int | None) -> int | None:
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None
