"""A pooled driver connection, held in one open transaction for a whole session.

The drivers run every request as its own transaction and reset the session after it
(PostgreSQL ``BEGIN … COMMIT`` then ``DISCARD ALL``; MySQL ``COM_RESET_CONNECTION``). A session
runner needs the opposite between its BEGIN and its COMMIT: statements that run inside one
transaction and leave it open. These facades give the query service (``DriverConnection``'s
``execute``, ``execute_many``, ``describe``) exactly that, on the same connection, with the
driver's own value conversion, row budget and error mapping; ``commit`` and ``rollback`` end
the transaction and then run the driver's clean-session reset, so the connection the runner
keeps for its next session is as clean as after any request.

PostgreSQL: each statement is Parse/Bind/Describe/Execute and Sync, with ``SET LOCAL
statement_timeout`` in the same round trip; an error fails the transaction until it is rolled
back, as in PostgreSQL. MySQL: the transaction is ``START TRANSACTION``; a statement that
commits implicitly (DDL, a procedure's COMMIT) commits the work before it, as MySQL does, and the
session continues in a new transaction; an error that rolled the whole transaction back
(a deadlock) marks the session failed, so nothing after it can commit alone.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any, Mapping

from .. import errors
from ..drivers import SINGLE_TRIP_ROWS, SOCKET_GRACE_SECONDS, STREAM_BATCH_ROWS, ExecutionOptions, RowBudget, StatementResult
from ..sql.text import PreparedSql

ABORTED_MESSAGE = "the transaction was aborted by an earlier error and has been rolled back; nothing was committed"


def session_connection(connection: Any) -> Any:
    """The facade for a driver connection of either engine."""
    if getattr(connection, "engine", None) == "postgres":
        return PostgresSession(connection)
    return MysqlSession(connection)


class PostgresSession:
    """One PostgreSQL connection inside ``BEGIN`` until ``commit`` or ``rollback``."""

    engine = "postgres"

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.broken = False  # the connection was lost: the transaction is gone with it
        self.aborted = False  # an error failed the transaction (PostgreSQL's 25P02 state)
        self.implicit_commits = 0  # never on PostgreSQL

    @property
    def _wire(self) -> Any:
        return self.connection._wire

    def begin(self, read_only: bool) -> None:
        self._guarded(lambda: self._wire.simple([b"BEGIN READ ONLY" if read_only else b"BEGIN"]), None)
        self._check_open()

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        from ..drivers import postgres as pg

        texts, oids = pg._wire_values(prepared, values)
        prefix, timeout_ms = self._settings(options)
        budget = RowBudget(options)

        def run() -> StatementResult:
            if options.max_rows <= SINGLE_TRIP_ROWS:
                context = self._wire.send(prepared.text, texts, oids, prefix, options.max_rows + 1)
                self._wire.sync(context)
                self._learn([column["type_oid"] for column in context.columns or []])
                rows, truncated = self.connection._admit(context.columns, context.rows, budget, learn=False)
            else:
                context, rows, truncated = self._stream(prepared.text, texts, oids, prefix, budget)
            main = context.completions[len(prefix)] if len(context.completions) > len(prefix) else (b"", 0)
            return self.connection._result(context.columns, rows, truncated, main, budget.encoded(rows))

        return self._guarded(run, timeout_ms)

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """The statements in one round trip, inside the session's transaction (an error fails it, as any error does)."""
        from ..drivers import postgres as pg
        from ..drivers.pg8000_wire import new_context

        prefix, timeout_ms = self._settings(options)
        budget = RowBudget(options)

        def run() -> list[StatementResult]:
            context = new_context()
            context.statements = []
            pipeline = [(prepared.text, *pg._wire_values(prepared, values)) for prepared, values in statements]
            self._wire.send_many(pipeline, prefix, options.max_rows + 1)
            try:
                self._wire.sync(context)
            except Exception as exc:
                exc.completed_statements = len(context.statements) - len(prefix)
                raise
            done = context.statements[len(prefix) : len(prefix) + len(statements)]
            self._learn([c["type_oid"] for _, _, columns, _ in done for c in columns or []])
            results = []
            for tag, count, columns, raw_rows in done:
                rows, truncated = self.connection._admit(columns, raw_rows, budget, learn=False)
                results.append(self.connection._result(columns, rows, truncated, (tag, count), budget.encoded(rows)))
            return results

        return self._guarded(run, timeout_ms, many=True)

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        def run() -> tuple[list[str], list[dict[str, str]]]:
            context = self._wire.describe(prepared.text)
            columns = context.columns or []
            self._learn(context.parameter_oids + [column["type_oid"] for column in columns])
            names = self.connection._type_names
            return [names.get(oid, "unknown") for oid in context.parameter_oids], self.connection._result(columns, [], False, (b"", 0)).columns

        return self._guarded(run, None)

    def commit(self) -> bool:
        """COMMIT, then the clean-session reset; False when PostgreSQL rolled back instead (a failed transaction)."""
        from ..drivers.pg8000_wire import new_context

        context = new_context()
        self._guarded(lambda: self._wire.end_request(context), None)
        self._after_end()
        return bool(context.completions) and context.completions[0][0] == b"COMMIT"

    def rollback(self) -> None:
        from ..drivers.pg8000_wire import new_context

        context = new_context()

        def run() -> None:
            self._wire.send_many([], ["ROLLBACK"], 0)
            self._wire.end_request(context)  # a COMMIT with nothing to commit, then the reset

        self._guarded(run, None)
        self._after_end()

    def close(self) -> None:
        self.broken = True
        self.connection.close()

    def is_usable(self) -> bool:
        return not self.broken and self._wire.is_open()

    # -- internals ----------------------------------------------------------------------------

    def _settings(self, options: ExecutionOptions) -> tuple[list[str], int | None]:
        timeout_ms = options.session.within(self.connection.login_session).statement_timeout_ms
        prefix = [f"SET LOCAL statement_timeout = {int(timeout_ms)}"] if timeout_ms else []
        return prefix, timeout_ms

    def _guarded(self, run: Any, timeout_ms: int | None, *, many: bool = False) -> Any:
        from ..drivers import postgres as pg

        if self.broken:
            raise errors.DatabaseUnavailable("the session's connection was lost; its transaction was rolled back by the database")
        self._wire.set_timeout(None if timeout_ms is None else timeout_ms / 1000 + SOCKET_GRACE_SECONDS)
        try:
            return run()
        except (socket.timeout, TimeoutError):
            self.close()  # the server never answered in time: the connection, and the transaction, are gone
            raise errors.QueryTimeout(
                f"the statement ran longer than {timeout_ms} ms; the session's connection was closed, rolling its transaction back"
            ) from None
        except Exception as exc:
            mapped = pg._map_error(exc, login=False, iam=self.connection._iam)
            done = getattr(exc, "completed_statements", None)
            if many and done is not None and isinstance(mapped, errors.SqlError | errors.ReadOnlyViolation | errors.QueryTimeout):
                mapped.details["statement"] = done
            if isinstance(mapped, errors.DatabaseUnavailable):
                self.close()
            raise mapped from None
        finally:
            self._note_state()

    def _note_state(self) -> None:
        if not self._wire.is_open():
            self.broken = True
        elif self._wire.transaction_failed():
            self.aborted = True

    def _check_open(self) -> None:
        if not self._wire.in_transaction():
            self.close()
            raise errors.DatabaseUnavailable("the session's transaction did not begin")

    def _after_end(self) -> None:
        if self._wire.needs_closing():
            self.connection.close()  # never reused unless the reset worked
            self.broken = True

    def _stream(self, statement: str, texts: list[Any], oids: list[int], prefix: list[str], budget: RowBudget) -> Any:
        """Larger limits: batches through the open portal (as the driver streams), ended by a Sync, not a COMMIT."""
        context = self._wire.send(statement, texts, oids, prefix, STREAM_BATCH_ROWS)
        self._wire.read_ahead(context, len(prefix) + 1)
        rows: list[list[Any]] = []
        truncated, first = False, True
        while context.error is None:
            batch, truncated = self.connection._admit(context.columns, context.rows, budget, learn=False, start=first)
            first = False
            rows.extend(batch)
            context.rows = []
            if truncated or not context.suspended:
                break
            self._wire.send_execute(context, STREAM_BATCH_ROWS)
            self._wire.read_ahead(context, len(context.completions) + 1)
        suspended = context.suspended
        self._wire.sync(context)
        self._learn([column["type_oid"] for column in context.columns or []])
        return context, rows, truncated or suspended

    def _learn(self, oids: list[int]) -> None:
        """Look up type names the connection does not know yet, inside the transaction (no COMMIT, no reset)."""
        self.connection._learn_types(oids, in_transaction=True)


class MysqlSession:
    """One MySQL or MariaDB connection inside ``START TRANSACTION`` until ``commit`` or ``rollback``."""

    engine = "mysql"

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.broken = False
        self.aborted = False
        self.implicit_commits = 0  # statements that committed the work before them (DDL, a procedure's COMMIT)

    @property
    def _conn(self) -> Any:
        return self.connection._conn

    def begin(self, read_only: bool) -> None:
        def run() -> None:
            # The session's read-only as the begin asks (a reset and its setup, queued ahead, if it differs).
            self.connection.apply(dataclasses.replace(self.connection.session, read_only=read_only))
            self._conn.query("START TRANSACTION")

        self._guarded(run, None)
        if not self._in_transaction():
            self.close()
            raise errors.DatabaseUnavailable("the session's transaction did not begin")

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        return self._execute([(prepared, values)], options, many=False)[0]

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        return self._execute(statements, options, many=True)

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        return self._guarded(lambda: self.connection.describe(prepared), None)

    def commit(self) -> bool:
        if self.aborted:
            self.rollback()
            return False
        try:
            self._guarded(lambda: self._conn.query("COMMIT"), None)
        finally:
            self._reset()
        return True

    def rollback(self) -> None:
        try:
            self._guarded(lambda: self._conn.query("ROLLBACK"), None)
        finally:
            self._reset()

    def close(self) -> None:
        self.broken = True
        self.connection.close()

    def is_usable(self) -> bool:
        return not self.broken and self._conn.open

    # -- internals ----------------------------------------------------------------------------

    def _execute(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions, *, many: bool) -> list[StatementResult]:
        from ..drivers.mysql import _to_python

        if self.aborted:
            raise errors.SqlError(
                "the database rolled this transaction back after an earlier error (a deadlock or lock wait timeout); "
                "roll the session back and start again", errno=1213,
            )
        timeout_ms = options.session.within(self.connection.login_session).statement_timeout_ms
        scoped = ""
        if timeout_ms != self.connection.session.statement_timeout_ms and timeout_ms:
            if self.connection.is_mariadb:
                scoped = f"SET STATEMENT max_statement_time = {timeout_ms / 1000:.3f} FOR "
            else:  # a session variable: the reset when the session ends restores it
                self._conn.queue_query(f"SET SESSION max_execution_time = {int(timeout_ms)}")
        budget = RowBudget(options)
        results = []
        for index, (prepared, values) in enumerate(statements):
            args = {name: _to_python(values[name]) for name in prepared.names}
            try:
                results.append(self._guarded(lambda: self.connection._run(scoped + prepared.text, args, budget, drain=True), timeout_ms))
            except errors.RdsgateError as exc:
                if many and isinstance(exc, (errors.SqlError, errors.ReadOnlyViolation, errors.QueryTimeout)):
                    exc.details["statement"] = index
                self._after_error()
                raise
            self._after_success()
        return results

    def _guarded(self, run: Any, timeout_ms: int | None) -> Any:
        from ..drivers.mysql import _map_error

        if self.broken or not self._conn.open:
            self.broken = True
            raise errors.DatabaseUnavailable("the session's connection was lost; its transaction was rolled back by the database")
        self._conn.set_timeout(None if timeout_ms is None else timeout_ms / 1000 + SOCKET_GRACE_SECONDS)
        try:
            return run()
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(
                f"the statement ran longer than {timeout_ms} ms; the session's connection was closed, rolling its transaction back"
            ) from None
        except errors.RdsgateError:
            raise
        except Exception as exc:
            mapped = _map_error(exc, login=False, iam=self.connection._iam)
            if not self._conn.open or isinstance(mapped, errors.DatabaseUnavailable):
                self.close()
            raise mapped from None

    def _in_transaction(self) -> bool:
        from pymysql.constants import SERVER_STATUS

        return bool((self._conn.server_status or 0) & SERVER_STATUS.SERVER_STATUS_IN_TRANS)

    def _after_success(self) -> None:
        if self._conn.open and not self._in_transaction():
            # The statement committed what came before it (DDL, or a procedure's COMMIT), as MySQL does:
            # the session goes on in a new transaction, so what follows still commits or rolls back as one.
            self.implicit_commits += 1
            self._guarded(lambda: self._conn.query("START TRANSACTION"), None)

    def _after_error(self) -> None:
        """Did the error roll the whole transaction back (a deadlock)? An OK packet says whether one is open."""
        if self.broken or not self._conn.open:
            self.broken = True
            return
        try:
            self._conn.query("DO 0")
        except Exception:
            self.close()
            return
        if not self._in_transaction():
            self.aborted = True

    def _reset(self) -> None:
        if self._conn.open:
            self.connection._reset()
        if not self._conn.open:
            self.broken = True
