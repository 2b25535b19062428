"""The driver interface's shared types: results, login parameters, options, the row budget, the protocols.

The engines' modules (``postgres``, ``mysql``) and the session facades import these from here,
never from the package, whose ``__init__`` picks the engine (``open_connection``).
"""

from __future__ import annotations

import select
import ssl
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from ..encoding import EncodedRecords, dumps, unique_keys, utf8_length
from ..errors import ResultTooLarge
from ..sql.text import PreparedSql
from .session import SessionPolicy

# Up to this many rows are read in the statement's single round trip; larger limits stream
# in batches so that memory stays flat whatever the result's size.
SINGLE_TRIP_ROWS = 10_000
STREAM_BATCH_ROWS = 1_000


@dataclass
class StatementResult:
    """What a statement returned, with every value already JSON-safe."""

    columns: list[dict[str, str]]  # [{"name": ..., "type": ...}], type in the engine's own vocabulary
    rows: list[list[Any]]
    truncated: bool
    updated_rows: int | None
    encoded: EncodedRecords | None = None  # the rows as records, with their JSON text (RowBudget.encoded)
    last_insert_id: int | None = None  # MySQL: the AUTO_INCREMENT id the statement set (OK packet), if any
    # Where each column comes from, as the server says (None for expressions): PostgreSQL's
    # (table OID, attribute number), MySQL's (schema, table, column) in lower case. Masking uses it.
    sources: list[Any] | None = None


@dataclass(frozen=True)
class ConnectParams:
    """What a driver needs to log in, and nothing more; built by the pool from a definition.

    A request's own session policy comes with each call (``ExecutionOptions.session``).
    """

    host: str
    port: int
    database: str | None
    user: str
    password: str = field(repr=False)  # a password or an IAM token: never in a log
    ssl_context: ssl.SSLContext
    connect_timeout: float
    iam: bool  # picks the hint reported when the login is refused
    # The definition's own session policy: what the session is at login and after each reset.
    session: SessionPolicy = SessionPolicy()


@dataclass(frozen=True)
class ExecutionOptions:
    """How one call runs: the result's limits and shape, and the request's session policy."""

    max_rows: int
    max_bytes: int | None = None
    records_as_objects: bool = True  # object records repeat every column name: it counts
    session: SessionPolicy = SessionPolicy()


def _json_string_size(text: str) -> int:
    """The size of ``text`` as a JSON string: its length and the quotes, unless something needs escaping."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2
    return utf8_length(dumps(text))


class RowBudget:
    """Admits result rows while they stay within ``max_rows`` and ``max_bytes`` of JSON.

    To measure the JSON, ``take`` encodes each batch of rows in the records' final shape
    (objects keyed by column, or arrays) and keeps the records and their text: the result
    document then uses both (``encoded()``), so each row is shaped and encoded once.
    """

    def __init__(self, options: ExecutionOptions) -> None:
        self.rows_left = options.max_rows
        self.bytes_left = options.max_bytes
        self.objects = options.records_as_objects
        self.overhead = 1  # the comma between records
        self.admitted = 0
        self._keys: list[str] | None = None
        self._records: list[Any] | None = None  # this statement's admitted records, while each batch was encoded
        self._texts: list[str] = []  # their JSON, one batch each, without the brackets

    def start(self, column_names: list[str]) -> None:
        """Called once per statement, when its columns are known: object records carry each name as a key."""
        if self.objects:
            self._keys = unique_keys(column_names)
            self.overhead = 1 + sum(_json_string_size(key) + 1 for key in self._keys)
        self._records = [] if self.bytes_left is not None else None
        self._texts = []

    def admit(self, row: list[Any]) -> bool:
        """True if ``row`` fits; False once the result must be truncated before it."""
        self._records = None  # a row admitted on its own has no text kept
        return self._admit(row)

    def _admit(self, row: list[Any]) -> bool:
        if self.rows_left <= 0:
            return False
        if self.bytes_left is not None:
            size = utf8_length(dumps(row)) + self.overhead
            if size > self.bytes_left:
                if self.admitted == 0:
                    raise ResultTooLarge(
                        f"a single row is {size} bytes, over the result limit of {self.bytes_left} bytes; "
                        "select fewer or smaller columns"
                    )
                self.rows_left = 0
                return False
            self.bytes_left -= size
        self.rows_left -= 1
        self.admitted += 1
        return True

    def take(self, rows: list[list[Any]]) -> tuple[list[list[Any]], bool]:
        """The leading ``rows`` that fit, and whether any had to be left out.

        The same cut as ``admit`` row by row, measured with one JSON encoding per batch:
        only the batch where the budget runs out is measured row by row.
        """
        if not rows:
            return rows, False
        if len(rows) > STREAM_BATCH_ROWS:  # measure in slices: an overflow wastes at most one slice's encoding
            kept: list[list[Any]] = []
            for start in range(0, len(rows), STREAM_BATCH_ROWS):
                part, cut = self.take(rows[start : start + STREAM_BATCH_ROWS])
                kept.extend(part)
                if cut:
                    return kept, True
            return kept, False
        if len(rows) > self.rows_left:  # the row limit cuts this batch
            return (self.take(rows[: self.rows_left])[0] if self.rows_left > 0 else []), True
        if self.bytes_left is None:
            self.rows_left -= len(rows)
            self.admitted += len(rows)
            return rows, False
        records = [dict(zip(self._keys, row)) for row in rows] if self._keys is not None else rows
        text = dumps(records)
        # "[r1,r2,...]": each record's JSON, a comma each, the brackets; as admit counts, less one.
        size = utf8_length(text) - 1
        if size <= self.bytes_left:
            self.bytes_left -= size
            self.rows_left -= len(rows)
            self.admitted += len(rows)
            self._keep(records, text)
            return rows, False
        for index, row in enumerate(rows):
            if not self._admit(row):
                if index:
                    self._keep(records[:index], dumps(records[:index]))
                return rows[:index], True
        self._keep(records, text)  # not reached: the batch as a whole did not fit
        return rows, False

    def _keep(self, records: list[Any], text: str) -> None:
        if self._records is not None:
            self._records.extend(records)
            self._texts.append(text[1:-1])

    def encoded(self, rows: list[list[Any]]) -> EncodedRecords | None:
        """This statement's ``rows`` as records with their JSON text, if every batch was measured whole."""
        if self._records is None or len(self._records) != len(rows) or (self.objects and self._keys is None):
            return None
        return EncodedRecords(self._records, "[" + ",".join(t for t in self._texts if t) + "]", self.objects)


class RowSink(Protocol):
    """Where ``execute_stream`` hands rows: the result without rows once columns are known, then batches."""

    def start(self, template: StatementResult) -> None: ...

    def rows(self, batch: list[list[Any]]) -> None: ...


class HeldTransaction(Protocol):
    """A transaction held open across calls on one connection (``DriverConnection.hold_transaction``; ``held``).

    ``execute``, ``execute_many`` and ``describe`` are the connection's, run inside the transaction and
    leaving it open, so the query service takes this in place of a connection (an interactive
    session: ``sessions.runner``); ``commit`` or ``rollback`` ends it with the clean-session reset.
    """

    engine: str
    broken: bool  # the connection was lost, and the transaction with it: the pool must drop the connection
    implicit_commits: int  # statements that committed the work before them (MySQL's DDL); the caller sets it back to 0

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult: ...

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """The statements in order, in the held transaction; ``details["statement"]`` of an error names the one that failed."""
        ...

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]: ...

    def commit(self) -> bool:
        """COMMIT, then the session reset; False when the database rolled back instead (an earlier error failed it)."""
        ...

    def rollback(self) -> None:
        """ROLLBACK, then the session reset."""
        ...

    def is_usable(self) -> bool: ...

    def close(self) -> None:
        """Close the connection: the database rolls the transaction back."""
        ...


class DriverConnection(Protocol):
    """One open database connection: everything the service, the workers, the pool and the session runner call.

    Each call applies ``options.session`` (its request's ``SessionPolicy``) at its start, runs on a
    clean session and leaves one behind (see ``session`` and each engine's module).
    """

    engine: str

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult: ...

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """Every statement in one transaction: all commit or none do."""
        ...

    def execute_stream(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions, sink: RowSink) -> StatementResult:
        """The statement's rows handed to ``sink`` in batches, none kept (results written to S3)."""
        ...

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        """Parameter types and result columns, without running the statement."""
        ...

    def hold_transaction(self, read_only: bool) -> HeldTransaction:
        """Begin a transaction (read-only if asked) that stays open across calls until its commit or rollback."""
        ...

    def backend_id(self) -> int | None:
        """The server's id of this session, for a cancel from a second connection (``pg_cancel_backend``, ``KILL QUERY``)."""
        ...

    def is_usable(self) -> bool:
        """Open and not closed by the server, checked without a round trip (the pool's check before reuse)."""
        ...

    def close(self) -> None: ...


def socket_is_idle(sock: Any) -> bool:
    """True when an idle connection's socket has nothing to read.

    A server that closed the connection (restart, idle kill, failover) leaves an EOF
    or an error message waiting; a zero-timeout poll finds it without a round trip.
    """
    if sock is None or sock.fileno() < 0:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
