"""Writes a PostgreSQL client pipelines before one Sync, run as one atomic API call by `rdsgate connect`.

PostgreSQL runs the statements between two Syncs in one implicit transaction; drivers
rely on it for batches (asyncpg's and psycopg's ``executemany`` send every row's Bind
and Execute, then one Sync). The tunnel keeps such writes (INSERT, UPDATE, DELETE,
MERGE without RETURNING, outside a transaction block) until the Sync, a Flush or a
statement that must run now, and sends them as one ``/batch`` call (one statement,
many parameter sets) or one ``/transaction`` call, answering each where it was.
Mixed into ``pgwire.PgClient``.
"""

from __future__ import annotations

from typing import Any, Callable

from .gateway import Notice, Outcome, Statement, TunnelError
from .pgframes import Portal

PIPELINED = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"})
# The API's defaults (RDSGATE_MAX_BATCH_SETS, RDSGATE_MAX_TRANSACTION_STATEMENTS): larger pipelines are split.
MAX_BATCH_SETS, MAX_TRANSACTION_STATEMENTS = 1000, 50


class Pipeline:
    """Needs the client's ``wire``, ``session``, ``tunnel``, ``deferred``, ``skipping``, ``_is_local``,
    ``_notices``, ``_complete`` and ``_error``."""

    wire: Any
    session: Any
    tunnel: Any
    deferred: list[tuple[Portal, int]]
    skipping: bool
    _is_local: Callable[..., bool]
    _notices: Callable[..., None]
    _complete: Callable[..., None]
    _error: Callable[..., None]

    def _pipelined(self, portal: Portal) -> bool:
        """A write without RETURNING, outside a transaction block, waits for the Sync (or Flush, or a read)."""
        analysis = portal.prepared.analysis
        return (portal.outcome is None and bool(portal.prepared.sql) and not self.session.in_block
                and analysis.main in PIPELINED and not analysis.returning and not self._is_local(analysis))

    def _run_deferred(self) -> bool:
        """Run the waiting writes as one atomic call (/batch for one statement, /transaction for several) and put
        each one's CommandComplete where it belongs; on a failure, as PostgreSQL does, the statements before
        it are answered, the failing one gets the error and what came after it is skipped until Sync."""
        items, self.deferred = self.deferred, []
        self.wire.hold = False
        statements = [portal.prepared.statement(portal.values) for portal, _ in items]
        notices: list[str] = []
        try:
            counts, error = self._run_writes(statements, notices), None
        except TunnelError as exc:
            error = exc
            counts = [0] * (exc.statement if exc.statement is not None and 0 <= exc.statement < len(items) else 0)
        pieces, at = [], 0
        for index, (portal, offset) in enumerate(items[:len(counts) + (error is not None)]):
            pieces.append(self.wire.out[at:offset])
            at = offset
            if index < len(counts):
                portal.outcome = Outcome(updated=counts[index], notices=notices if index == 0 else [])
                pieces.append(self._captured(lambda o=portal.outcome, a=portal.prepared.analysis: (
                    self._notices(o.notices), self._complete(a, o, 0))))
            else:
                pieces.append(self._captured(lambda: self._error(error)))
        if error is None:
            pieces.append(self.wire.out[at:])
        self.wire.out = bytearray(b"".join(pieces))
        self.skipping = error is not None
        return error is None

    def _run_writes(self, statements: list[Statement], notices: list[str]) -> list[int]:
        if len(statements) == 1:
            return [self.session.execute(statements[0]).updated or 0]
        gateway, session = self.tunnel.gateway, self.session
        same = len({s.sql for s in statements}) == 1
        size = MAX_BATCH_SETS if same else MAX_TRANSACTION_STATEMENTS
        if len(statements) > size:
            notices.append(Notice(f"{len(statements)} statements sent before one Sync ran as "
                                  f"{-(-len(statements) // size)} calls of at most {size}, so not atomically"))
        counts: list[int] = []
        for start in range(0, len(statements), size):
            part = statements[start:start + size]
            try:
                if same:
                    counts += gateway.batch(part[0].sql, [s.parameters for s in part],
                                            read_only=session.default_read_only, timeout_ms=session.timeout_ms)
                else:
                    counts += [r.updated or 0 for r in gateway.transaction(
                        part, read_only=session.default_read_only, timeout_ms=session.timeout_ms)]
            except TunnelError as exc:
                exc.statement = start + (exc.statement or 0)
                raise
        return counts

    def _captured(self, send: Callable[[], Any]) -> bytes:
        """The messages ``send`` writes, as bytes, instead of writing them."""
        saved, self.wire.out = self.wire.out, bytearray()
        try:
            send()
            return bytes(self.wire.out)
        finally:
            self.wire.out = saved
