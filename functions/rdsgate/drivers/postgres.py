"""PostgreSQL through pg8000's core protocol: one round trip per statement, text values to JSON.

The connection's own settings are sent in the startup packet (no extra round trip): UTC,
ISO dates and ISO 8601 intervals, and the login policy's statement timeout. Each request runs
as its session policy's prefix (``BEGIN [READ ONLY]``, ``SET LOCAL statement_timeout`` for
another timeout) and Parse/Bind/Describe/Execute, then COMMIT and the session reset, in one
round trip (``pg8000_wire``, the only user of pg8000's internals).
Values arrive as text and are converted once, per column, straight to their JSON form
(``pg_values``); driver errors are mapped to rdsgate's in ``_map_error``.
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Any, Callable, Mapping

from pg8000.exceptions import DatabaseError, InterfaceError

from .. import errors
from ..sql.text import PreparedSql
from .base import SINGLE_TRIP_ROWS, STREAM_BATCH_ROWS, ConnectParams, ExecutionOptions, RowBudget, StatementResult
from .pg8000_wire import PgWire
from .pg_values import ARRAY_ELEMENTS, TYPE_NAMES, _identity, _wire_values, converter
from .session import SessionPolicy, postgres_prefix

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
    _json_as_text = False  # set per request (SessionPolicy.json_as_text)

    def __init__(self, params: ConnectParams) -> None:
        self._iam = params.iam
        self.login_session = params.session  # its timeout rides in the startup packet; DISCARD ALL returns to it
        startup = {"TimeZone": "UTC", "DateStyle": "ISO", "IntervalStyle": "iso_8601", "extra_float_digits": "1"}
        if params.session.statement_timeout_ms:
            startup["statement_timeout"] = str(params.session.statement_timeout_ms)
        try:
            # Values stay the server's text; _admit converts them once.
            self._wire = PgWire.login(params, startup, _identity)
        except Exception as exc:
            raise _map_error(exc, login=True, iam=self._iam) from None
        self._type_names = dict(TYPE_NAMES)
        self._array_elements = dict(ARRAY_ELEMENTS)

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        texts, oids = _wire_values(prepared, values)
        budget = RowBudget(options)
        policy = options.session.within(self.login_session)
        timeout_ms = policy.statement_timeout_ms
        try:
            prefix = self._apply(policy, prepared)
            if options.max_rows <= SINGLE_TRIP_ROWS:
                context = self._wire.run(prepared.text, texts, oids, prefix, row_limit=options.max_rows + 1)
                rows, truncated = self._admit(context.columns, context.rows, budget)
            else:
                context, rows, truncated = self._stream(prepared.text, texts, oids, prefix, budget)
        except (socket.timeout, TimeoutError):
            self.close()  # the server never answered in time: this connection cannot be trusted
            raise errors.QueryTimeout(f"the statement ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            raise _map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()
        main = context.completions[len(prefix)] if len(context.completions) > len(prefix) else (b"", 0)
        return self._result(context.columns, rows, truncated, main, budget.encoded(rows))

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """Every statement in one implicit transaction and one round trip: all commit or none do."""
        policy = options.session.within(self.login_session)
        prefix, timeout_ms = self._apply(policy), policy.statement_timeout_ms
        pipeline = [(prepared.text, *_wire_values(prepared, values)) for prepared, values in statements]
        budget = RowBudget(options)
        try:
            context = self._wire.run_many(pipeline, prefix, options.max_rows + 1)
            results = []
            for tag, count, columns, raw_rows in context.statements[len(prefix) : len(prefix) + len(pipeline)]:
                rows, truncated = self._admit(columns, raw_rows, budget)
                results.append(self._result(columns, rows, truncated, (tag, count), budget.encoded(rows)))
            return results
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(f"the statements ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            mapped = _map_error(exc, login=False, iam=self._iam)
            done = getattr(exc, "completed_statements", None)
            if done is not None and isinstance(mapped, errors.SqlError | errors.ReadOnlyViolation | errors.QueryTimeout):
                mapped.details["statement"] = done - len(prefix)
            raise mapped from None
        finally:
            self._ensure_idle()

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        """Parameter types (in ``prepared.names`` order) and result columns, without running the statement."""
        try:
            context = self._wire.describe(prepared.text)
            columns = context.columns or []
            self._learn_types(context.parameter_oids + [column["type_oid"] for column in columns])
        except Exception as exc:
            raise _map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()
        parameters = [self._type_names.get(oid, "unknown") for oid in context.parameter_oids]
        return parameters, self._result(columns, [], False, (b"", 0)).columns

    def _apply(self, policy: SessionPolicy, prepared: PreparedSql | None = None) -> list[str]:
        """Apply the request's session policy (on the login's): the prefix that rides ahead of its statements.

        PostgreSQL refuses a few utility commands in a block: a writable request runs one of those
        alone, with the login's timeout.
        """
        self._json_as_text = policy.json_as_text
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

    def _stream(self, statement, texts, oids, prefix, budget):
        """Fetch in batches through the open portal, stopping as soon as the budget is spent."""
        context = self._wire.open_portal(statement, texts, oids, prefix, STREAM_BATCH_ROWS)
        rows: list[list[Any]] = []
        first = True
        while True:
            batch, truncated = self._admit(context.columns, context.rows, budget, learn=False, start=first)
            first = False
            rows.extend(batch)
            context.rows = []
            if truncated or not context.suspended:
                break
            self._wire.fetch_more(context, STREAM_BATCH_ROWS)
        self._wire.finish(context)
        self._learn_types([column["type_oid"] for column in context.columns or []])
        return context, rows, truncated or context.suspended

    def _admit(self, columns: list[dict[str, Any]] | None, raw_rows: list[list[Any]] | None, budget: RowBudget, *, learn: bool = True, start: bool = True) -> tuple[list[list[Any]], bool]:
        """Convert the fetched rows to JSON values and keep those the budget admits.

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
            convert = self._converter(column["type_oid"])
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
        timeout_ms = policy.statement_timeout_ms
        budget = RowBudget(ExecutionOptions(max_rows=options.max_rows, records_as_objects=False, session=options.session))
        truncated = False
        try:
            prefix = self._apply(policy, prepared)
            # Learn the columns' types first (user-defined arrays, enums): no other query can run while the portal streams.
            try:
                described = self._wire.describe(prepared.text)
                self._learn_types([column["type_oid"] for column in described.columns or []])
            except DatabaseError:
                pass  # the statement's own run reports what is wrong with it
            context = self._wire.open_portal(prepared.text, texts, oids, prefix, EXPORT_BATCH_ROWS)
            first = True
            while True:
                batch, truncated = self._admit(context.columns, context.rows, budget, learn=False, start=first)
                if first:
                    sink.start(self._result(context.columns, [], False, (b"", 0)))
                    first = False
                context.rows = []
                if batch:
                    sink.rows(batch)
                if truncated or not context.suspended:
                    break
                self._wire.fetch_more(context, EXPORT_BATCH_ROWS)
            truncated = truncated or context.suspended
            self._wire.finish(context)
            self._learn_types([column["type_oid"] for column in context.columns or []])
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(f"the statement ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            raise _map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()  # a sink that failed mid-stream leaves the portal open: the connection goes
        main = context.completions[len(prefix)] if len(context.completions) > len(prefix) else (b"", 0)
        return self._result(context.columns, [], truncated, main)

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

    def _converter(self, oid: int) -> Callable[[str], Any]:
        return converter(oid, self._array_elements, self._json_as_text)


# --- errors: the one place pg8000's exceptions become rdsgate's -------------------------------

def _map_error(exc: BaseException, *, login: bool, iam: bool) -> errors.RdsgateError:
    if isinstance(exc, errors.RdsgateError):
        return exc
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        sqlstate, message, hint = fields.get("C", ""), fields.get("M", "database error"), fields.get("H")
        if sqlstate.startswith("28"):
            return errors.AuthenticationFailed(
                f"the database refused the login: {message}",
                sqlstate=sqlstate,
                hint=errors.IAM_LOGIN_HINT if iam else errors.STATIC_LOGIN_HINT,
            )
        if sqlstate == "25006":
            return errors.ReadOnlyViolation(f"the connection is read-only: {message}", sqlstate=sqlstate)
        if sqlstate == "57014":
            return errors.QueryTimeout(f"the statement was cancelled: {message}", sqlstate=sqlstate)
        if sqlstate == "53300":  # too_many_connections: no slot free (max_connections, or the role's limit)
            return errors.DatabaseUnavailable(
                f"the database has too many connections: {message}", sqlstate=sqlstate, retry_after=1
            )
        if sqlstate in ("53400", "57P03") or sqlstate.startswith(("08", "57P")):
            return errors.DatabaseUnavailable(f"the database is unavailable: {message}", sqlstate=sqlstate, retry_after=1)
        if login:
            return errors.DatabaseUnavailable(f"the database refused the connection: {message}", sqlstate=sqlstate)
        # "P": where in the statement the server found the error (1-based), for the Data API's "; Position: n".
        return errors.SqlError(message, sqlstate=sqlstate, hint=hint, position=fields.get("P"))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return errors.DatabaseUnavailable(f"TLS verification of the database failed: {exc.verify_message}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return errors.DatabaseUnavailable("the database did not answer in time", retry_after=1)
    if isinstance(exc, InterfaceError) and "refuses SSL" in str(exc):
        return errors.DatabaseUnavailable("the database does not offer TLS; rdsgate never connects without it")
    if isinstance(exc, (InterfaceError, OSError, ssl.SSLError, EOFError)):
        return errors.DatabaseUnavailable(f"the database could not be reached ({type(exc).__name__})", retry_after=1)
    return errors.InternalError(f"unexpected driver failure ({type(exc).__name__})")
