"""The driver interface: one physical connection that runs one prepared statement at a time.

The shared types live in ``base`` and the session policy in ``session``; this package
re-exports them and picks the engine. Each engine's module (``postgres``, ``mysql``) is
imported only when its engine is first used, so a function serving one engine never loads
the other driver; the engines import ``base`` and ``session``, never this package.
"""

from __future__ import annotations

from .base import (
    SINGLE_TRIP_ROWS,
    STREAM_BATCH_ROWS,
    ConnectParams,
    DriverConnection,
    ExecutionOptions,
    HeldTransaction,
    RowBudget,
    RowSink,
    StatementResult,
    socket_is_idle,
)
from .session import SOCKET_GRACE_SECONDS, SessionPolicy

__all__ = [
    "SINGLE_TRIP_ROWS",
    "SOCKET_GRACE_SECONDS",
    "STREAM_BATCH_ROWS",
    "ConnectParams",
    "DriverConnection",
    "ExecutionOptions",
    "RowBudget",
    "RowSink",
    "SessionPolicy",
    "StatementResult",
    "open_connection",
    "socket_is_idle",
]


def open_connection(engine: str, params: ConnectParams) -> DriverConnection:
    """Open a connection with the engine's driver, imported on first use."""
    if engine == "postgres":
        from .postgres import PostgresConnection

        return PostgresConnection(params)
    from .mysql import MysqlConnection

    return MysqlConnection(params)
