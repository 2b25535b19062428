"""PostgreSQL through pg8000's core protocol: one round trip per statement, text values to JSON.

The connection's own settings are sent in the startup packet (no extra round trip): UTC,
ISO dates and ISO 8601 intervals, and the login policy's statement timeout. Each request runs
as its session policy's prefix (``BEGIN [READ ONLY]``, ``SET LOCAL statement_timeout`` for
another timeout) and Parse/Bind/Describe/Execute, then COMMIT and the session reset, in one
round trip (``pg8000_wire``, the only user of pg8000's internals).
Values arrive as text and are converted once, per column, straight to their JSON form
(``pg_values``); driver errors are mapped to rdsgate's in ``pg_errors``.
"""

from __future__ import annotations

import re
import socket
from typing import Any, Callable, Mapping

from pg8000.exceptions import DatabaseError

from .. import errors
from ..sql.text import PreparedSql
from .base import SINGLE_TRIP_ROWS, STREAM_BATCH_ROWS, ConnectParams, ExecutionOptions, RowBudget, StatementResult
from .held import HeldTransactionBase, naming_statement
from .pg8000_wire import PgWire, new_context
from .pg_errors import map_error
from .pg_values import ARRAY_ELEMENTS, TYPE_NAMES, _identity, _wire_values, converter
from .session import POSTGRES_READING, SessionPolicy, postgres_prefix, postgres_timeout

# Commands PostgreSQL refuses inside a transaction block. Each is a single utility command
# that runs no procedural COMMIT, so a writable request runs it outside BEGIN … COMMIT
# (with the connection's own statement timeout).
_UTILITY_WORDS = frozenset({"VACUUM", "CREATE", "DROP", "ALTER", "REINDEX", "CLUSTER"})
_OUTSIDE_BLOCK = re.compile(
    r"\s*(?:VACUUM|CLUSTER\s*$|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)|ALTER\s+SYSTEM"
    r"|(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|REINDEX\b[^;]*\bCONCURRENTLY)\b",
    re.IGNORECASE,
)

# Rows per round trip when a statement's rows stream to a sink (execute_stream): fewer, larger batches.
EXPORT_BATCH_ROWS = 2_000


class PostgresConnection:
    """One pg8000 connection over TLS, logged in with its definition's session policy; each request applies its own."""

    engine = "postgres"

    def __init__(self, params: ConnectParams) -> None:
        self._iam = params.iam
        self.login_session = params.session  # its timeout rides in the startup packet; DISCARD ALL returns to it
        # standard_conforming_strings as rdsgate's scanners read strings, over any role or database default.
        startup = {"TimeZone": "UTC", "DateStyle": "ISO", "IntervalStyle": "iso_8601", "extra_float_digits": "1",
                   "standard_conforming_strings": "on"}
        if params.session.statement_timeout_ms:
            startup["statement_timeout"] = str(params.session.statement_timeout_ms)
        try:
            # Values stay the server's text; _admit converts them once.
            self._wire = PgWire.login(params, startup, _identity)
        except Exception as exc:
            raise map_error(exc, login=True, iam=self._iam) from None
        self._type_names = dict(TYPE_NAMES)
        self._array_elements = dict(ARRAY_ELEMENTS)

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        texts, oids = _wire_values(prepared, values)
        budget = RowBudget(options)
        policy = options.session.within(self.login_session)

        def run() -> tuple[Any, list[str], list[list[Any]], bool]:
            prefix = self._apply(policy, prepared)
            if options.max_rows <= SINGLE_TRIP_ROWS:
                context = self._wire.run(prepared.text, texts, oids, prefix, row_limit=options.max_rows + 1)
                rows, truncated = self._admit(context.columns, context.rows, budget, policy.json_as_text)
            else:
                context, rows, truncated = self._stream(prepared.text, texts, oids, prefix, budget, policy.json_as_text)
            return context, prefix, rows, truncated

        context, prefix, rows, truncated = self._guarded(run, policy.statement_timeout_ms)
        return self._result(context.columns, rows, truncated, _completion(context, prefix), budget.encoded(rows))

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """Every statement in one implicit transaction and one round trip: all commit or none do."""
        policy = options.session.within(self.login_session)
        prefix = self._apply(policy)
        pipeline = [(prepared.text, *_wire_values(prepared, values)) for prepared, values in statements]
        budget = RowBudget(options)

        def run() -> list[StatementResult]:
            context = self._wire.run_many(pipeline, prefix, options.max_rows + 1)
            return self._results(context.statements[len(prefix) : len(prefix) + len(pipeline)], budget, policy.json_as_text)

        return self._guarded(run, policy.statement_timeout_ms, what="statements")

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        """Parameter types (in ``prepared.names`` order) and result columns, without running the statement."""
        try:
            return self._describe(prepared)
        except Exception as exc:
            raise map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()

    def hold_transaction(self, read_only: bool) -> PostgresTransaction:
        """``BEGIN [READ ONLY]``, held across calls until the returned transaction's commit or rollback."""
        return PostgresTransaction(self, read_only)

    def _describe(self, prepared: PreparedSql, *, in_transaction: bool = False) -> tuple[list[str], list[dict[str, str]]]:
        context = self._wire.describe(prepared.text)
        columns = context.columns or []
        self._learn_types(context.parameter_oids + [column["type_oid"] for column in columns], in_transaction=in_transaction)
        parameters = [self._type_names.get(oid, "unknown") for oid in context.parameter_oids]
        return parameters, self._result(columns, [], False, (b"", 0)).columns

    def _apply(self, policy: SessionPolicy, prepared: PreparedSql | None = None) -> list[str]:
        """Apply the request's session policy (on the login's): the prefix that rides ahead of its statements.

        PostgreSQL refuses a few utility commands in a block: a writable request runs one of those
        alone, with the login's timeout.
        """
        self._wire.set_timeout(policy.socket_timeout())
        if policy.read_only or prepared is None or prepared.statement_type not in _UTILITY_WORDS or not _OUTSIDE_BLOCK.match(prepared.text):
            return postgres_prefix(policy, self.login_session)
        return []

    def _result(self, columns: list[dict[str, Any]] | None, rows: list[list[Any]], truncated: bool, completion: tuple[bytes, int], encoded: Any = None) -> StatementResult:
        return StatementResult(
            columns=[{"name": c["name"], "type": self._type_names.get(c["type_oid"], "unknown")} for c in columns or []],
            sources=[(c["table_oid"], c["column_attrnum"]) if c["table_oid"] else None for c in columns or []],
            rows=rows,
            truncated=truncated,
            updated_rows=completion[1] if completion[0] in (b"INSERT", b"UPDATE", b"DELETE", b"MERGE") else None,
            encoded=encoded,
        )

    def _results(self, done: list[tuple[bytes, int, Any, Any]], budget: RowBudget, json_as_text: bool, *, in_transaction: bool = False) -> list[StatementResult]:
        """Each pipelined statement's result (``PgWire.run_many``'s ``statements``), as the budget admits its rows."""
        if in_transaction:  # type lookups inside the open transaction, before any row is converted
            self._learn_types([c["type_oid"] for _, _, columns, _ in done for c in columns or []], in_transaction=True)
        results = []
        for tag, count, columns, raw_rows in done:
            rows, truncated = self._admit(columns, raw_rows, budget, json_as_text, learn=not in_transaction)
            results.append(self._result(columns, rows, truncated, (tag, count), budget.encoded(rows)))
        return results

    def _stream(self, statement, texts, oids, prefix, budget, json_as_text, *, in_transaction: bool = False):
        """Fetch in batches through the open portal, stopping as soon as the budget is spent."""
        rows: list[list[Any]] = []
        context, truncated = self._portal(
            statement, texts, oids, prefix, budget, STREAM_BATCH_ROWS, lambda context, batch, first: rows.extend(batch),
            json_as_text, in_transaction=in_transaction,
        )
        return context, rows, truncated

    def _portal(self, statement, texts, oids, prefix, budget, batch_rows, take, json_as_text, *, in_transaction: bool = False):
        """Read the statement's rows through its open portal, ``batch_rows`` per round trip, until the budget is spent.

        ``take(context, batch, first)`` gets each batch the budget admits (json values parsed, or as
        their text when ``json_as_text``). The request then ends (COMMIT and the
        reset), or, ``in_transaction``, only the round trip (a Sync: the held transaction stays open);
        either raises the statement's error. The context, and whether rows were left unread.
        """
        context = self._wire.send(statement, texts, oids, prefix, batch_rows)
        self._wire.read_ahead(context, len(prefix) + 1)
        truncated, first = False, True
        while context.error is None:
            batch, truncated = self._admit(context.columns, context.rows, budget, json_as_text, learn=False, start=first)
            take(context, batch, first)
            first = False
            context.rows = []
            if truncated or not context.suspended:
                break
            self._wire.send_execute(context, batch_rows)
            self._wire.read_ahead(context, len(context.completions) + 1)
        suspended = context.suspended
        if in_transaction:
            self._wire.sync(context)
        else:
            self._wire.end_request(context)
        self._learn_types([column["type_oid"] for column in context.columns or []], in_transaction=in_transaction)
        return context, truncated or suspended

    def _admit(
        self, columns: list[dict[str, Any]] | None, raw_rows: list[list[Any]] | None, budget: RowBudget, json_as_text: bool,
        *, learn: bool = True, start: bool = True,
    ) -> tuple[list[list[Any]], bool]:
        """Convert the fetched rows to JSON values (json/jsonb as their text if ``json_as_text``) and keep those the budget admits.

        While a portal streams, no other query can run on the connection, so types not
        yet known (user-defined enums, domains) keep their text form until it closes.
        """
        columns = columns or []
        if learn:
            self._learn_types([column["type_oid"] for column in columns])
        if start:
            budget.start([column["name"] for column in columns])
        rows = raw_rows or []
        for index, column in enumerate(columns):  # column by column, in place; text columns stay as they are
            convert = self._converter(column["type_oid"], json_as_text)
            if convert is not _identity:
                for row in rows:
                    value = row[index]
                    if value is not None:
                        row[index] = convert(value)
        return budget.take(rows)

    def execute_stream(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions, sink: Any) -> StatementResult:
        """Run a statement and hand its rows to ``sink`` in batches, keeping none (results written to S3).

        ``sink.start(template)`` gets the result without rows once the columns are known;
        ``sink.rows(batch)`` each batch of JSON-safe rows, read through the open portal
        (``EXPORT_BATCH_ROWS`` per round trip). Only ``max_rows`` applies; the result has no rows.
        """
        texts, oids = _wire_values(prepared, values)
        policy = options.session.within(self.login_session)
        budget = RowBudget(ExecutionOptions(max_rows=options.max_rows, records_as_objects=False, session=options.session))

        def run() -> tuple[Any, list[str], bool]:
            prefix = self._apply(policy, prepared)
            # Learn the columns' types first (user-defined arrays, enums): no other query can run while the portal streams.
            try:
                described = self._wire.describe(prepared.text)
                self._learn_types([column["type_oid"] for column in described.columns or []])
            except DatabaseError:
                pass  # the statement's own run reports what is wrong with it

            def take(context: Any, batch: list[list[Any]], first: bool) -> None:
                if first:
                    sink.start(self._result(context.columns, [], False, (b"", 0)))
                if batch:
                    sink.rows(batch)

            return (*self._portal(prepared.text, texts, oids, prefix, budget, EXPORT_BATCH_ROWS, take, policy.json_as_text), prefix)

        # A sink that failed mid-stream leaves the portal open: the guard's check then closes the connection.
        context, truncated, prefix = self._guarded(run, policy.statement_timeout_ms)
        return self._result(context.columns, [], truncated, _completion(context, prefix))

    def _guarded(self, run: Callable[[], Any], timeout_ms: int | None, *, what: str = "statement") -> Any:
        """``run()``, its failure as rdsgate's error (a batch's naming the statement that failed); then the idle check.

        A socket timeout closes the connection: the server never answered in time, so it cannot be trusted.
        """
        try:
            return run()
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(f"the {what} ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            raise naming_statement(map_error(exc, login=False, iam=self._iam), getattr(exc, "completed_statements", None)) from None
        finally:
            self._ensure_idle()

    def backend_id(self) -> int | None:
        """The server process of this session (what ``pg_cancel_backend`` takes)."""
        return self._wire.backend_pid()

    def is_usable(self) -> bool:
        return self._wire.is_idle()

    def close(self) -> None:
        try:
            self._wire.close()
        except Exception:  # closing a dead connection may fail; it is gone either way
            pass

    def _ensure_idle(self) -> None:
        # A session that could not be reset, or is still in a transaction, must not reach the next request.
        if self._wire.needs_closing():
            self.close()

    def _learn_types(self, oids: list[int], *, in_transaction: bool = False) -> None:
        """Look up type names not known yet; ``in_transaction``: inside an open one (no COMMIT, no reset)."""
        unknown = sorted({oid for oid in oids if oid not in self._type_names})
        if not unknown:
            return
        lookup = "SELECT oid::int8, typname::text, typelem::int8 FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])"
        texts = ["{" + ",".join(map(str, unknown)) + "}"]
        if in_transaction:
            context = self._wire.send(lookup, texts, [0], [], 0)
            self._wire.sync(context)
        else:
            context = self._wire.run(lookup, texts, [0], [], 0)
        for oid, name, element in context.rows or []:
            self._type_names[int(oid)] = name
            if int(element) and name.startswith("_"):
                self._array_elements[int(oid)] = int(element)

    def _converter(self, oid: int, json_as_text: bool) -> Callable[[str], Any]:
        return converter(oid, self._array_elements, json_as_text)


def _completion(context: Any, prefix: list[str]) -> tuple[bytes, int]:
    """The statement's own command tag and row count, after its prefix's."""
    return context.completions[len(prefix)] if len(context.completions) > len(prefix) else (b"", 0)


class PostgresTransaction(HeldTransactionBase):
    """``BEGIN [READ ONLY]`` held until ``commit`` or ``rollback`` (``held``): statements run inside it.

    Each call is Parse/Bind/Describe/Execute and a Sync (not a COMMIT), with ``SET LOCAL
    statement_timeout`` in the same round trip; type lookups run inside the transaction. An error
    fails the transaction until it is rolled back, as in PostgreSQL (``aborted``, its 25P02 state):
    COMMIT then rolls back, and ``commit`` says so.
    """

    engine = "postgres"

    def __init__(self, connection: PostgresConnection, read_only: bool) -> None:
        super().__init__(connection)
        self._wire = connection._wire
        self._guarded(lambda: self._wire.simple([b"BEGIN READ ONLY" if read_only else b"BEGIN"]), None)
        self._began(self._wire.in_transaction())

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        texts, oids = _wire_values(prepared, values)
        prefix, timeout_ms = self._settings(options)
        budget = RowBudget(options)
        connection = self.connection
        json_as_text = options.session.json_as_text

        def run() -> StatementResult:
            if options.max_rows <= SINGLE_TRIP_ROWS:
                context = self._wire.send(prepared.text, texts, oids, prefix, options.max_rows + 1)
                self._wire.sync(context)
                connection._learn_types([column["type_oid"] for column in context.columns or []], in_transaction=True)
                rows, truncated = connection._admit(context.columns, context.rows, budget, json_as_text, learn=False)
            else:
                context, rows, truncated = connection._stream(prepared.text, texts, oids, prefix, budget, json_as_text, in_transaction=True)
            return connection._result(context.columns, rows, truncated, _completion(context, prefix), budget.encoded(rows))

        return self._guarded(run, timeout_ms)

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """The statements in one round trip, inside the held transaction (an error fails it, as any error does)."""
        prefix, timeout_ms = self._settings(options)
        budget = RowBudget(options)

        def run() -> list[StatementResult]:
            pipeline = [(prepared.text, *_wire_values(prepared, values)) for prepared, values in statements]
            context = self._wire.run_many(pipeline, prefix, options.max_rows + 1, in_transaction=True)
            done = context.statements[len(prefix) : len(prefix) + len(statements)]
            return self.connection._results(done, budget, options.session.json_as_text, in_transaction=True)

        return self._guarded(run, timeout_ms, many=True)

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        return self._guarded(lambda: self.connection._describe(prepared, in_transaction=True), None)

    def commit(self) -> bool:
        """COMMIT, then the clean-session reset; False when PostgreSQL rolled back instead (a failed transaction)."""
        context = new_context()
        self._guarded(lambda: self._wire.end_request(context), None)
        self._after_end()
        return bool(context.completions) and context.completions[0][0] == b"COMMIT"

    def rollback(self) -> None:
        context = new_context()

        def run() -> None:
            self._wire.send_many([], ["ROLLBACK"], 0)
            self._wire.end_request(context)  # a COMMIT with nothing to commit, then the reset

        self._guarded(run, None)
        self._after_end()

    def _settings(self, options: ExecutionOptions) -> tuple[list[str], int | None]:
        """The prefix of each call: the reading rule again (an earlier call may have switched it), the timeout."""
        timeout_ms = options.session.within(self.connection.login_session).statement_timeout_ms
        return [POSTGRES_READING.decode(), *([postgres_timeout(timeout_ms)] if timeout_ms else [])], timeout_ms

    def _after_end(self) -> None:
        if self._wire.needs_closing():
            self.connection.close()  # never reused unless the reset worked
            self.broken = True

    def _open(self) -> bool:
        return self._wire.is_open()

    def _set_timeout(self, seconds: float | None) -> None:
        self._wire.set_timeout(seconds)

    def _map_error(self, exc: BaseException) -> errors.RdsgateError:
        return map_error(exc, login=False, iam=self.connection._iam)

    def _after_call(self) -> None:
        if not self._wire.is_open():
            self.broken = True
        elif self._wire.transaction_failed():
            self.aborted = True
