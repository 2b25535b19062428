"""The driver interface: one physical connection that runs one prepared statement at a time.

Each engine's module (``postgres``, ``mysql``) is imported only when its engine is
first used, so a function serving one engine never loads the other driver.
"""

from __future__ import annotations

import select
import ssl
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from ..encoding import dumps
from ..errors import ResultTooLarge
from ..sqltext import PreparedSql

# Up to this many rows are read in the statement's single round trip; larger limits stream
# in batches so that memory stays flat whatever the result's size.
SINGLE_TRIP_ROWS = 10_000
STREAM_BATCH_ROWS = 1_000
# The client waits this much longer than the statement timeout: the server cancels first.
SOCKET_GRACE_SECONDS = 2.0


@dataclass
class StatementResult:
    """What a statement returned, with every value already JSON-safe."""

    columns: list[dict[str, str]]  # [{"name": ..., "type": ...}], type in the engine's own vocabulary
    rows: list[list[Any]]
    truncated: bool
    updated_rows: int | None


@dataclass(frozen=True)
class ConnectParams:
    """Everything a driver needs to open one connection; built by the pool from a definition."""

    host: str
    port: int
    database: str | None
    user: str
    password: str
    ssl_context: ssl.SSLContext
    connect_timeout: float
    statement_timeout_ms: int | None
    iam: bool  # picks the hint reported when the login is refused
    read_only: bool = False


@dataclass(frozen=True)
class ExecutionOptions:
    """How one statement runs: limits, read-only, and its statement timeout."""

    max_rows: int
    max_bytes: int | None = None
    read_only: bool = False
    timeout_ms: int | None = None
    records_as_objects: bool = True  # object records repeat every column name: it counts


class RowBudget:
    """Admits result rows while they stay within ``max_rows`` and ``max_bytes`` of JSON."""

    def __init__(self, options: ExecutionOptions) -> None:
        self.rows_left = options.max_rows
        self.bytes_left = options.max_bytes
        self.objects = options.records_as_objects
        self.overhead = 1  # the comma between records
        self.admitted = 0

    def start(self, column_names: list[str]) -> None:
        """Called once the columns are known: object records carry each name as a key."""
        if self.objects:
            self.overhead = 1 + sum(len(dumps(name).encode("utf-8")) + 1 for name in column_names)

    def admit(self, row: list[Any]) -> bool:
        """True if ``row`` fits; False once the result must be truncated before it."""
        if self.rows_left <= 0:
            return False
        if self.bytes_left is not None:
            size = len(dumps(row).encode("utf-8")) + self.overhead
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


class DriverConnection(Protocol):
    """One open database connection."""

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult: ...

    def is_usable(self) -> bool: ...

    def close(self) -> None: ...


def open_connection(engine: str, params: ConnectParams) -> DriverConnection:
    """Open a connection with the engine's driver, imported on first use."""
    if engine == "postgres":
        from .postgres import PostgresConnection

        return PostgresConnection(params)
    from .mysql import MysqlConnection

    return MysqlConnection(params)


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
