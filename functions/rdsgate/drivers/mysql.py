"""MySQL and MariaDB through PyMySQL over TLS, text results to JSON.

PyMySQL binds parameters by escaping them client-side (the server has no say), so
only ``%(name)s`` placeholders produced by ``rdsgate.sql.text`` reach it, always with a
mapping. The connection runs in autocommit: each statement is its own
transaction. MariaDB and MySQL differ in the statement-timeout variable and in
JSON (MariaDB's is LONGTEXT with a ``json_valid`` check); the server is told
apart by its version string. PyMySQL's internals are used only in ``pymysql_wire``, values
are converted in ``mysql_values``; driver errors are mapped to rdsgate's in ``mysql_errors``.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any, Mapping

from pymysql.constants import SERVER_STATUS

from .. import errors
from ..sql.constants import MYSQL_IMPLICIT_COMMIT as IMPLICIT_COMMIT
from ..sql.text import PreparedSql
from .base import STREAM_BATCH_ROWS, ConnectParams, ExecutionOptions, RowBudget, StatementResult
from .held import HeldTransactionBase, naming_statement
from .mysql_errors import map_error
from .mysql_values import _CONVERSIONS, _lean_converters, _post_converter, _to_python, column_type, json_candidate
from .pymysql_wire import MysqlWire, read_rows
from .session import COM_RESET_CONNECTION, SessionPolicy, check_mysql_sql_mode, mysql_setup, mysql_timeout

# Server status bits that tell whether a statement left work uncommitted: after a statement in
# autocommit mode only AUTOCOMMIT may be set.
_LEFT_OPEN = SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS.SERVER_STATUS_IN_TRANS

class MysqlConnection:
    """One PyMySQL connection, TLS required before any credential is sent.

    Every request finds a clean session: after each request the connection sends
    COM_RESET_CONNECTION (temporary tables, user variables, prepared statements, locks,
    HANDLERs, LOCK TABLES, autocommit and every session variable) and the setup SET of
    the request's session policy (``session.mysql_setup``); a request whose policy sets
    something else sends the reset and its own setup ahead of its statement. The reset keeps
    the default database, which only a top-level USE can change, and USE is refused
    (``rdsgate.sql.text``): stored routines and prepared statements cannot run it. The replies are
    read before the next command, so neither costs the warm path a round trip of its own.
    """

    engine = "mysql"

    def __init__(self, params: ConnectParams) -> None:
        self._iam = params.iam
        self.login_session = params.session  # the definition's policy: a request's applies on top of it
        self.session = params.session  # the policy the session has now: its setup runs after each reset
        try:
            self._conn = MysqlWire.login(params, _CONVERSIONS)
            self.is_mariadb = "mariadb" in self._conn.get_server_info().lower()
            self._setup = mysql_setup(self.session, self.is_mariadb)
            self._conn.query(self._setup)
            sql_mode = self._conn.session_sql_mode()
        except Exception as exc:
            raise map_error(exc, login=True, iam=self._iam) from None
        try:
            check_mysql_sql_mode(sql_mode)
        except errors.InvalidDefinition:
            self._conn.close()
            raise
        self._json_columns: dict[tuple[str, str], frozenset[str]] = {}

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        return self._execute([(prepared, values)], options, transaction=False)[0]

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """Every statement in one transaction: all commit or none do."""
        for index, (prepared, _) in enumerate(statements):
            if prepared.statement_type in IMPLICIT_COMMIT or prepared.statement_type == "CALL":
                why = "may commit" if prepared.statement_type == "CALL" else "commits implicitly"
                raise errors.InvalidRequest(
                    f"statements[{index}]: {prepared.statement_type} {why} on MySQL, "
                    "so it cannot be part of an atomic request",
                    field="statements",
                )
        return self._execute(statements, options, transaction=True)

    def execute_stream(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions, sink: Any) -> StatementResult:
        """Run a statement and hand its rows to ``sink`` in batches, keeping none (results written to S3).

        ``sink.start(template)`` gets the result without rows once the columns are known, then
        ``sink.rows(batch)`` each batch. On MariaDB the statement is described first, so that its
        JSON columns are known before rows arrive (they cannot be looked up while rows stream).
        """
        if self.is_mariadb:
            try:
                self.describe(prepared)
            except errors.RdsgateError:
                pass  # the statement's own run reports what is wrong with it
        budget_options = ExecutionOptions(max_rows=options.max_rows, records_as_objects=False, session=options.session)
        return self._execute([(prepared, values)], budget_options, transaction=False, sink=sink)[0]

    def backend_id(self) -> int | None:
        """The server thread of this session (what ``KILL QUERY`` takes)."""
        return self._conn.server_thread_id[0] if self._conn.server_thread_id else None

    def hold_transaction(self, read_only: bool) -> MysqlTransaction:
        """``START TRANSACTION`` (the session read-only if asked), held across calls until the returned transaction ends."""
        return MysqlTransaction(self, read_only)

    def apply(self, policy: SessionPolicy) -> None:
        """Queue what gives the session ``policy`` (on the login's), unless it has that already: the reset and its setup.

        Sent with the next command; their replies are read before its own. Later resets keep this setup.
        """
        policy = policy.within(self.login_session)
        setup = mysql_setup(policy, self.is_mariadb)
        if setup != self._setup:
            self._conn.queue_command(COM_RESET_CONNECTION)
            self._conn.queue_query(setup)
            self._setup = setup
        self.session = policy

    def _execute(self, statements, options: ExecutionOptions, *, transaction: bool, sink: Any = None) -> list[StatementResult]:
        self.apply(options.session)
        json_as_text = self.session.json_as_text
        timeout_ms = self.session.statement_timeout_ms
        if transaction:
            self._conn.queue_query("START TRANSACTION")
        self._conn.set_timeout(self.session.socket_timeout())
        budget = RowBudget(options)
        results, index = [], 0
        try:
            try:
                for index, (prepared, values) in enumerate(statements):
                    args = {name: _to_python(values[name]) for name in prepared.names}
                    results.append(self._run(prepared.text, args, budget, json_as_text, drain=transaction, sink=sink))
                if transaction:
                    self._conn.query("COMMIT")
                elif self._conn.open and self._conn.server_status & _LEFT_OPEN != SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT:
                    raise errors.InvalidRequest(
                        "sql: the statement switched autocommit off or left a transaction open; "
                        "its changes were rolled back",
                        field="sql",
                    )
            except BaseException:
                if transaction and self._conn.open:
                    self._conn.query("ROLLBACK")
                raise
            finally:
                self._reset()
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(f"the statement ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            raise naming_statement(map_error(exc, login=False, iam=self._iam), index if transaction else None) from None
        return results

    def _reset(self) -> None:
        """Send the session reset now; its replies are read before the next command (``MysqlWire``)."""
        if not self._conn.open:
            return
        self._conn.queue_command(COM_RESET_CONNECTION)
        self._conn.queue_query(self._setup)
        try:
            self._conn.send_queued()
        except Exception:
            self.close()

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        """What the server's COM_STMT_PREPARE reports: parameter count and result columns (nothing runs)."""
        text = prepared.text % {name: "?" for name in prepared.names}  # also turns '%%' back into '%'
        try:
            _, fields = self._conn.prepare_describe(text)
        except Exception as exc:
            raise map_error(exc, login=False, iam=self._iam) from None
        return ["unknown"] * len(prepared.names), [self._column(field) for field in fields]

    def _run(self, sql: str, args: dict[str, Any], budget: RowBudget, json_as_text: bool, *, drain: bool = False, sink: Any = None) -> StatementResult:
        """Run one statement and read its rows as the budget admits them (JSON as its text if ``json_as_text``)."""
        cursor, result = self._conn.unbuffered(sql, args)
        fields = result.fields if cursor.description else []
        budget.start([field.name for field in fields])
        # Column types are known now unless one needs a catalog query (MariaDB JSON), which must
        # wait for the result's end; known types convert as rows are read, the others afterwards.
        known = not self._needs_json_lookup(fields)
        columns = [self._column(field) for field in fields] if known else None
        converters = _lean_converters(result.converters, columns, fields, json_as_text=json_as_text) if fields else []
        rows: list[list[Any]] = []
        truncated = False
        if sink is not None:
            sink.start(StatementResult(columns=columns or [self._column(f, lookup=False) for f in fields], rows=[], truncated=False, updated_rows=None))
        while fields:  # in batches: one JSON measurement per batch, one more row read than fits
            batch, ended = read_rows(self._conn, result, converters, min(STREAM_BATCH_ROWS, max(budget.rows_left, 0) + 1))
            kept, truncated = budget.take(batch)
            if sink is None:
                rows.extend(kept)
            elif kept:
                try:
                    sink.rows(kept)
                except BaseException:
                    if not ended:  # rows are still coming: only dropping the connection stops them
                        self._conn.abandon(cursor)
                        self.close()
                    raise
            if truncated or ended:
                break
        updated = None if fields else cursor.rowcount
        if truncated and not drain and known:
            self._conn.abandon(cursor)  # closing the cursor would read every remaining row
            self.close()
        else:
            cursor.close()
        encoded = budget.encoded(rows)
        if columns is None:
            columns = [self._column(field) for field in fields] if self._conn.open else [self._column(f, lookup=False) for f in fields]
            for index, column in enumerate(columns):
                convert = _post_converter(column["type"], fields[index], json_as_text=json_as_text)
                if convert is not None:
                    encoded = None  # measured before this conversion
                    for row in rows:
                        if row[index] is not None:
                            row[index] = convert(row[index])
        return StatementResult(
            columns=columns, rows=rows, truncated=truncated, updated_rows=updated, encoded=encoded,
            last_insert_id=cursor.lastrowid or None,
            sources=[(f.db.lower(), f.org_table.lower(), f.org_name.lower()) if f.org_table else None for f in fields],
        )

    def _needs_json_lookup(self, fields: list[Any]) -> bool:
        return any(self._json_candidate(f) and (f.db, f.org_table) not in self._json_columns for f in fields)

    def _json_candidate(self, field: Any) -> bool:
        return self.is_mariadb and json_candidate(field)

    def is_usable(self) -> bool:
        """Open, and the server has not closed it: nothing waiting on the socket but the reset's replies.

        Replies still on their way mean a live server busy with the reset: the next command is
        sent at once and queues behind it (its replies are read first), so a warm request does
        not wait for the reset to finish before sending.
        """
        if not self._conn.open:
            return False
        if self._conn.owes_replies():
            if self._conn.socket_idle():
                return True
            try:
                self._conn.read_owed()
            except Exception:
                self.close()
                return False
        return self._conn.socket_idle()

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # the server may already be gone
            pass

    def _column(self, field: Any, lookup: bool = True) -> dict[str, str]:
        return {"name": field.name, "type": column_type(field, self._is_json if lookup else None)}

    def _is_json(self, field: Any) -> bool:
        """MariaDB's JSON is LONGTEXT checked by json_valid(); look the table up once."""
        if not self._json_candidate(field):
            return False
        key = (field.db, field.org_table)
        if key not in self._json_columns:
            with self._conn.cursor() as lookup:
                lookup.execute(
                    "SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS "
                    "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s AND CHECK_CLAUSE LIKE 'json_valid(%%'",
                    key,
                )
                self._json_columns[key] = frozenset(row[0] for row in lookup.fetchall())
        return field.org_name in self._json_columns[key]


class MysqlTransaction(HeldTransactionBase):
    """``START TRANSACTION`` held until ``commit`` or ``rollback`` (``held``): statements run inside it, one by one.

    A statement that commits implicitly (DDL, a procedure's COMMIT) commits the work before it, as
    MySQL does, and the transaction goes on in a new one (``implicit_commits``); an error that rolled
    the whole transaction back (a deadlock) marks it ``aborted``, so nothing after it can commit alone.
    """

    engine = "mysql"

    def __init__(self, connection: MysqlConnection, read_only: bool) -> None:
        super().__init__(connection)
        self._conn = connection._conn

        def run() -> None:
            # The session's read-only as the hold asks (a reset and its setup, queued ahead, if it differs).
            connection.apply(dataclasses.replace(connection.session, read_only=read_only))
            self._conn.query("START TRANSACTION")

        self._guarded(run, None)
        self._began(self._in_transaction())

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        return self._execute([(prepared, values)], options, many=False)[0]

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        return self._execute(statements, options, many=True)

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        return self._guarded(lambda: self.connection.describe(prepared), None)

    def commit(self) -> bool:
        """COMMIT, then the clean-session reset; False when the database had rolled the transaction back (``aborted``)."""
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

    def _execute(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions, *, many: bool) -> list[StatementResult]:
        if self.aborted:
            raise errors.SqlError(
                "the database rolled this transaction back after an earlier error (a deadlock or lock wait timeout); "
                "roll the session back and start again", errno=1213,
            )
        connection = self.connection
        timeout_ms = options.session.within(connection.login_session).statement_timeout_ms
        scoped = ""
        if timeout_ms != connection.session.statement_timeout_ms and timeout_ms:
            setting = mysql_timeout(timeout_ms, connection.is_mariadb)
            if connection.is_mariadb:
                scoped = f"SET STATEMENT {setting} FOR "
            else:  # a session variable: the reset when the transaction ends restores it
                self._conn.queue_query(f"SET SESSION {setting}")
        budget = RowBudget(options)
        results = []
        for index, (prepared, values) in enumerate(statements):
            args = {name: _to_python(values[name]) for name in prepared.names}
            try:
                results.append(self._guarded(
                    lambda: connection._run(scoped + prepared.text, args, budget, options.session.json_as_text, drain=True), timeout_ms
                ))
            except errors.RdsgateError as exc:
                naming_statement(exc, index if many else None)
                self._after_error()
                raise
            self._after_success()
        return results

    def _in_transaction(self) -> bool:
        return bool((self._conn.server_status or 0) & SERVER_STATUS.SERVER_STATUS_IN_TRANS)

    def _after_success(self) -> None:
        if self._conn.open and not self._in_transaction():
            # The statement committed what came before it (DDL, or a procedure's COMMIT), as MySQL does:
            # the work goes on in a new transaction, so what follows still commits or rolls back as one.
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

    def _open(self) -> bool:
        return self._conn.open

    def _set_timeout(self, seconds: float | None) -> None:
        self._conn.set_timeout(seconds)

    def _map_error(self, exc: BaseException) -> errors.RdsgateError:
        return map_error(exc, login=False, iam=self.connection._iam)
