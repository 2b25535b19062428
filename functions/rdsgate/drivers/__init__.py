"""The driver interface: one physical connection that runs one prepared statement at a time.

The shared types live in ``base`` and the session policy in ``session``; this package
re-exports those the rest of rdsgate uses and picks the engine. Each engine's module (``postgres``, ``mysql``) is
imported only when its engine is first used, so a function serving one engine never loads
the other driver; the engines import ``base`` and ``session``, never this package.
"""

from __future__ import annotations

from .base import ConnectParams, DriverConnection, ExecutionOptions, HeldTransaction, RowBudget, StatementResult
from .session import SessionPolicy

__all__ = [
    "ConnectParams",
    "DriverConnection",
    "ExecutionOptions",
    "HeldTransaction",
    "RowBudget",
    "SessionPolicy",
    "StatementResult",
    "open_connection",
]


def open_connection(engine: str, params: ConnectParams) -> DriverConnection:
    """Open a connection with the engine's driver, imported on first use."""
    if engine == "postgres":
        from .postgres import PostgresConnection

        return PostgresConnection(params)
    from .mysql import MysqlConnection

    return MysqlConnection(params)
