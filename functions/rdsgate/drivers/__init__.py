"""The driver interface: one physical connection that runs one prepared statement at a time.

Each engine's module (``postgres``, ``mysql``) is imported only when its engine is
first used, so a function serving one engine never loads the other driver.
"""

from __future__ import annotations

import select
import ssl
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from ..sqltext import PreparedSql


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


class DriverConnection(Protocol):
    """One open database connection."""

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], *, max_rows: int | None) -> StatementResult: ...

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
