"""Warm connection reuse: one open connection per definition, replaced when it dies or changes.

A new physical connection gets a freshly signed IAM token (or the definition's
static password). A cached connection is checked without a round trip before use;
one that the server closed (restart, idle kill, failover) is replaced, so the
request still succeeds. A changed definition replaces its cached connection. A connection
logs in with its definition's session policy; each request hands the driver its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .definitions import ConnectionDefinition, PasswordAuth
from .drivers import ConnectParams, DriverConnection, SessionPolicy, open_connection
from .errors import AuthenticationFailed
from .telemetry import NoopRecorder, Recorder
from .tracing import TRACING
from .tls import client_context
from .tokens import TokenSigner


@dataclass
class _Entry:
    definition: ConnectionDefinition
    connection: DriverConnection


@dataclass
class PoolStats:
    """Counters for the reuse benchmark and for tests."""

    opened: int = 0
    reused: int = 0
    replaced: int = 0


class ConnectionPool:
    """Hands out the cached connection for a definition, opening one when needed."""

    def __init__(
        self,
        signer: TokenSigner,
        *,
        connect_timeout: float = 5.0,
        default_statement_timeout_ms: int | None = None,
        opener: Callable[[str, ConnectParams], DriverConnection] = open_connection,
        metrics: Recorder | None = None,
    ) -> None:
        self._signer = signer
        self._metrics = metrics or NoopRecorder()
        self._connect_timeout = connect_timeout
        self._default_statement_timeout_ms = default_statement_timeout_ms
        self._opener = opener
        self._entries: dict[str, _Entry] = {}
        self.stats = PoolStats()

    def acquire(self, definition: ConnectionDefinition) -> DriverConnection:
        """The open connection for ``definition``: the cached one if it is still good."""
        entry = self._entries.get(definition.name)
        if entry is not None:
            if (entry.definition is definition or entry.definition == definition) and entry.connection.is_usable():
                self.stats.reused += 1
                self._metrics.connection_reused(definition.name)
                return entry.connection
            self.discard(definition.name)
            self.stats.replaced += 1
        connection = self._open(definition)
        self._entries[definition.name] = _Entry(definition, connection)
        return connection

    def discard(self, name: str) -> None:
        """Close and forget the cached connection for ``name`` (after a connection-level failure)."""
        entry = self._entries.pop(name, None)
        if entry is not None:
            entry.connection.close()

    def open_separate(self, definition: ConnectionDefinition) -> DriverConnection:
        """A new connection for ``definition``, not cached: the caller closes it (a cancel from a second session)."""
        return self._open(definition)

    def close_all(self) -> None:
        for name in list(self._entries):
            self.discard(name)

    def _open(self, definition: ConnectionDefinition) -> DriverConnection:
        name, engine = definition.name, definition.engine
        if isinstance(definition.auth, PasswordAuth):
            password = definition.auth.password
        else:
            with TRACING.subsegment("sign_token", connection=name, engine=engine):
                password = self._signer.token_for(definition)
            self._metrics.token_signed(name)
        params = ConnectParams(
            host=definition.host,
            port=definition.port,
            database=definition.database,
            user=definition.db_user,
            password=password,
            ssl_context=client_context(definition.tls, definition.ca_bundle, definition.iam_host),
            connect_timeout=self._connect_timeout,
            iam=not isinstance(definition.auth, PasswordAuth),
            session=SessionPolicy.for_request(definition, default_timeout_ms=self._default_statement_timeout_ms),
        )
        with TRACING.subsegment("connect", connection=name, engine=engine):
            try:
                connection = self._opener(engine, params)
            except AuthenticationFailed:
                self._metrics.login_failed(name)
                raise
        self.stats.opened += 1
        self._metrics.connection_opened(name)
        return connection
