"""pg8000's private internals, in one place: the wire adapter the PostgreSQL driver runs on.

``PgWire`` subclasses pg8000's ``CoreConnection`` and uses what pg8000 does not publish: the
module functions ``_flush``/``_read``/``_write``, the connection's ``_sock``/``_usock``,
``_transaction_status``, ``_backend_key_data``, ``_send_message``, ``send_PARSE``/``send_BIND``/
``send_DESCRIBE_STATEMENT``, ``handle_messages``/``message_types`` and its ``handle_*`` hooks, and
``Context``. ``tests/unit/test_driver_contract.py`` checks each against the pinned release.
Value conversion is ``pg_values``'s and error mapping ``pg_errors``'s, not this module's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

from pg8000.core import (
    BIND,
    DESCRIBE,
    EXECUTE,
    FLUSH_MSG,
    IDLE,
    IN_FAILED_TRANSACTION,
    IN_TRANSACTION,
    NULL_BYTE,
    PARSE,
    PORTAL,
    READY_FOR_QUERY,
    SYNC_MSG,
    Context,
    CoreConnection,
    _flush,
    _read,
    _write,
    H_pack,
    ci_unpack,
    i_pack,
)
from pg8000.exceptions import DatabaseError

from .base import ConnectParams, socket_is_idle
from .session import POSTGRES_READING, POSTGRES_RESET


def new_context(statement: str | None = None) -> Context:
    """A pg8000 context as this adapter's reads fill it: completions, and whether a portal was suspended."""
    context = Context(statement)
    context.completions, context.suspended = [], False
    return context


class PgWire(CoreConnection):
    """pg8000's core connection plus a pipelined extended-protocol execute."""

    reset_failed = False  # set by end_request: the session could not be reset, so it is not reused

    @classmethod
    def login(cls, params: ConnectParams, startup: dict[str, str], convert: Callable[[str], Any]) -> PgWire:
        """Log in over TLS; every value then reaches the caller as the server's text, through ``convert``."""
        wire = cls(
            params.user, host=params.host, port=params.port, database=params.database, password=params.password,
            ssl_context=params.ssl_context, timeout=params.connect_timeout, application_name="rdsgate",
            startup_params=startup,
        )
        wire.pg_types = defaultdict(lambda: convert)  # pg8000 would parse values into Python objects
        return wire

    # -- the connection's state, without pg8000's private names --------------------------------

    def set_timeout(self, seconds: float | None) -> None:
        self._usock.settimeout(seconds)

    def is_open(self) -> bool:
        return self._sock is not None

    def is_idle(self) -> bool:
        """Open, and nothing from the server waiting on the socket (a closed session leaves an EOF or error)."""
        return self._sock is not None and socket_is_idle(self._usock)

    def in_transaction(self) -> bool:
        return self._transaction_status == IN_TRANSACTION

    def transaction_failed(self) -> bool:
        return self._transaction_status == IN_FAILED_TRANSACTION

    def needs_closing(self) -> bool:
        """Open but not fit for the next request: its reset failed, or it is still in a transaction."""
        return self._sock is not None and (self.reset_failed or self._transaction_status not in (None, IDLE))

    def backend_pid(self) -> int | None:
        key = getattr(self, "_backend_key_data", None)
        return int.from_bytes(key[:4], "big") if key else None

    # -- requests ----------------------------------------------------------------------------------

    def run(self, statement: str, params: list[str | None], oids: list[int], prefix: list[str], row_limit: int) -> Context:
        """The request's prefix (BEGIN …), the statement, then the end of the request: one round trip."""
        context = self.send(statement, params, oids, prefix, row_limit)
        self.end_request(context)
        return context

    def end_request(self, context: Context) -> None:
        """COMMIT and Sync, then the session reset and a second Sync, all in one write.

        The request ran inside BEGIN … COMMIT, so procedural COMMIT/ROLLBACK (DO blocks,
        procedures) fails instead of escaping read-only or atomicity. Whatever the request
        did to the session (temporary tables, cursors WITH HOLD, prepared statements,
        advisory locks, LISTEN, settings, role) is undone by DISCARD ALL after the Sync,
        which runs even when the request failed (the server skips only to the Sync); the
        ROLLBACK before it closes the transaction block a failed statement leaves open.
        The request's own error is raised after both parts are read; a failed reset
        marks the connection as not reusable.
        """
        self._simple(b"COMMIT")
        _write(self._sock, SYNC_MSG)
        for statement in POSTGRES_RESET:
            self._simple(statement)
        _write(self._sock, SYNC_MSG)
        _flush(self._sock)
        self._read_until_ready(context)
        reset = new_context()
        self._read_until_ready(reset)
        self.reset_failed = reset.error is not None or self._transaction_status != IDLE
        if context.error is not None:
            raise context.error

    def _simple(self, statement: bytes) -> None:
        """Parse, Bind and Execute a parameterless statement on the unnamed statement and portal."""
        self._send_message(PARSE, NULL_BYTE + statement + NULL_BYTE + H_pack(0))
        self._send_message(BIND, NULL_BYTE + NULL_BYTE + H_pack(0) + H_pack(0) + H_pack(0))
        self._send_message(EXECUTE, NULL_BYTE + i_pack(0))

    def _read_until_ready(self, context: Context) -> None:
        code = None
        while code != READY_FOR_QUERY:
            code, data_len = ci_unpack(_read(self._sock, 5))
            self.message_types[code](_read(self._sock, data_len - 4), context)

    def run_many(
        self, statements: list[tuple[str, list[str | None], list[int]]], prefix: list[str], row_limit: int, *, in_transaction: bool = False,
    ) -> Context:
        """The prefix, several statements, then the end of the request: one transaction, one round trip.

        ``in_transaction``: only a Sync ends the round trip, and the transaction stays open (a held one).
        The error raised names the statement that failed (``completed_statements``, 0 for the first).
        ``POSTGRES_READING`` runs between the statements (the server parses each after running the one
        before); its completions are dropped, so ``statements`` holds the prefix's and the statements'.
        """
        context = new_context()
        context.statements = []
        self.send_many(statements, prefix, row_limit, between=POSTGRES_READING)
        try:
            if in_transaction:
                self.sync(context)
            else:
                self.end_request(context)
        except DatabaseError as exc:
            done = len(context.statements) - len(prefix)  # completions past the prefix: a statement, a reading, …
            exc.completed_statements = (done + 1) // 2 if done > 0 else done
            raise
        ran = 2 * len(statements) - 1
        context.statements[len(prefix) : len(prefix) + ran] = context.statements[len(prefix) : len(prefix) + ran : 2]
        return context

    def send_many(
        self, statements: list[tuple[str, list[str | None], list[int]]], prefix: list[str], row_limit: int, *, between: bytes | None = None,
    ) -> None:
        """Send the prefix and each statement's Parse/Bind/Describe/Execute, without a Sync (``between``: a
        parameterless statement ahead of each statement but the first)."""
        for setting in prefix:
            self._simple(setting.encode("ascii"))
        for index, (statement, params, oids) in enumerate(statements):
            if index and between:
                self._simple(between)
            self.send_PARSE(NULL_BYTE, statement, oids)
            self.send_BIND(NULL_BYTE, params)
            self._send_message(DESCRIBE, PORTAL + NULL_BYTE)
            self._send_message(EXECUTE, NULL_BYTE + i_pack(row_limit))

    def sync(self, context: Context) -> None:
        """End the round trip: Sync, and read up to ReadyForQuery; the statement's error, if any, is raised."""
        _write(self._sock, SYNC_MSG)
        _flush(self._sock)
        self._read_until_ready(context)
        if context.error is not None:
            raise context.error

    def describe(self, statement: str) -> Context:
        """Parse and describe the unnamed statement: its parameter types and result columns."""
        context = Context(statement)
        context.parameter_oids = []
        self.send_PARSE(NULL_BYTE, statement, ())
        self.send_DESCRIBE_STATEMENT(NULL_BYTE)
        _write(self._sock, SYNC_MSG)
        _flush(self._sock)
        self.handle_messages(context)
        return context

    def simple(self, statements: list[bytes]) -> Context:
        """Parameterless statements in one round trip (BEGIN, ROLLBACK); their error, if any, is raised."""
        context = new_context()
        for statement in statements:
            self._simple(statement)
        self.sync(context)
        return context

    def handle_PARAMETER_DESCRIPTION(self, data: bytes, context: Context) -> None:
        count = int.from_bytes(data[:2], "big")
        context.parameter_oids = [int.from_bytes(data[2 + 4 * i : 6 + 4 * i], "big") for i in range(count)]

    def send_execute(self, context: Context, batch: int) -> None:
        """Ask the suspended portal for up to ``batch`` more rows."""
        context.suspended = False
        self._send_message(EXECUTE, NULL_BYTE + i_pack(batch))

    def send(self, statement: str, params: list[str | None], oids: list[int], prefix: list[str], row_limit: int) -> Context:
        """Send the prefix and the statement, without a Sync; a row limit suspends the portal (rows past it are never sent)."""
        self.send_many([(statement, params, oids)], prefix, row_limit)
        return new_context(statement)

    def read_ahead(self, context: Context, completions: int) -> None:
        """Flush, then read until the portal is suspended, the statement completes, or the server reports an error."""
        _write(self._sock, FLUSH_MSG)  # ask the server for the output so far, without ending the transaction
        _flush(self._sock)
        while context.error is None and not context.suspended and len(context.completions) < completions:
            code, data_len = ci_unpack(_read(self._sock, 5))
            self.message_types[code](_read(self._sock, data_len - 4), context)

    def handle_PORTAL_SUSPENDED(self, data: bytes, context: Context) -> None:
        context.suspended = True
        self._end_statement(context, b"", 0)

    def handle_COMMAND_COMPLETE(self, data: bytes, context: Context) -> None:
        words = data[:-1].split(b" ")
        count = int(words[-1]) if words[-1].isdigit() else 0
        context.completions.append((words[0], count))
        self._end_statement(context, words[0], count)

    @staticmethod
    def _end_statement(context: Context, tag: bytes, count: int) -> None:
        # In run_many, each statement's columns and rows are set aside as it ends.
        statements = getattr(context, "statements", None)
        if statements is not None:
            statements.append((tag, count, context.columns, context.rows or []))
            context.columns, context.rows, context.input_funcs = None, None, []
