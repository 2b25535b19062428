"""`rdsgate connect` with real transactions: a transaction block is a session on the API.

When the API offers sessions (README "Transactions across calls"), a client's transaction block
holds one: its statements run in a database transaction that a session runner keeps open, so
``RETURNING``, MySQL's last insert id, savepoints, locking reads and reading your own writes work as
on the database itself, and ``COMMIT`` or ``ROLLBACK`` ends it. The session begins lazily, at the
block's first statement that is not a plain read: reads before it see what is committed, as any
statement of a READ COMMITTED transaction would, and a block that only reads (drivers wrap every
query in one) costs no session. An API without sessions (``-c sessions=false``), or
``--transactions buffered``, keeps the buffered semantics of ``session.Session`` (docs/NATIVE.md).

A client that goes away with a session open has it rolled back at once (not three idle minutes later).
"""

from __future__ import annotations

import threading
import weakref
from .gateway import Gateway, Outcome, Result, Statement, TunnelError
from .session import BEGIN, COMMIT, MYSQL_IMPLICIT_COMMIT, ROLLBACK, Session
from .wiresql import analyse

MODES = ("auto", "session", "buffered")
NOT_ENABLED = "are not enabled"  # the API's words when sessions are off


class SessionCalls:
    """Whether a tunnel's transaction blocks are sessions on the API (one per tunnel: sessions are probed for once)."""

    def __init__(self, gateway: Gateway) -> None:
        if gateway.transactions not in MODES:
            raise ValueError(f"transactions: one of {', '.join(MODES)}")
        self.gateway, self.mode = gateway, gateway.transactions
        self.available: bool | None = None if self.mode != "buffered" else False  # None: not asked yet

    def begin(self, read_only: bool) -> str | None:
        """A new session's id; None when the API has no sessions (then the block is buffered)."""
        if self.available is False:
            return None
        try:
            session_id = self.gateway.begin_session(read_only=read_only)
        except TunnelError as exc:
            if self.mode == "auto" and exc.code == "InvalidRequest" and NOT_ENABLED in exc.message:
                self.available = False
                return None
            raise
        self.available = True
        return session_id

    def query(self, session_id: str, statement: Statement, timeout_ms: int | None) -> Result:
        return self.gateway.query(statement, timeout_ms=timeout_ms, session_id=session_id)

    def end(self, session_id: str, *, commit: bool) -> None:
        self.gateway.end_session(session_id, commit=commit)


class ServerSession(Session):
    """``Session`` whose transaction blocks are sessions on the API, when the API has them."""

    def __init__(self, calls: SessionCalls, dialect: str, *, abort_on_error: bool) -> None:
        super().__init__(calls.gateway, dialect, abort_on_error=abort_on_error)
        self.calls = calls
        self._open: dict[str, str | None] = {"id": None}  # shared with the finalizer below
        weakref.finalize(self, _abandon, self.calls, self._open)
        with _LOCK:  # the client's thread: its sessions end when it does (abandon_thread)
            _BY_THREAD.setdefault(threading.get_ident(), []).append((self.calls, self._open))

    @property
    def session_id(self) -> str | None:
        return self._open["id"]

    @property
    def buffering(self) -> bool:
        """True while a block's writes are queued for COMMIT (no session behind it)."""
        return self.in_block and self.session_id is None and self.calls.available is False

    def _execute(self, statement: Statement) -> Outcome:
        analysis = statement.analysis or analyse(statement.sql, self.dialect)
        keyword = analysis.keyword
        control = keyword in COMMIT or (keyword in ROLLBACK and "TO" not in analysis.words) or keyword in BEGIN
        if control or not self.in_block or self.read_only:
            return super()._execute(statement)
        if self.dialect == "mysql" and keyword in MYSQL_IMPLICIT_COMMIT and self.explicit and self.autocommit:
            return super()._execute(statement)  # MySQL commits the block first, then runs it on its own
        if keyword in ("SAVEPOINT", "RELEASE") or keyword in ROLLBACK:  # ROLLBACK TO SAVEPOINT: in the session
            if keyword not in ROLLBACK:
                self.check_usable(analysis)
            if not self._ensure_session():
                return super()._execute(statement)
            self._run(Statement(statement.sql, statement.parameters, analysis))
            if keyword in ROLLBACK:
                self.failed = False  # ROLLBACK TO SAVEPOINT repairs a failed transaction, as in PostgreSQL
            return Outcome(tag="ROLLBACK" if keyword in ROLLBACK else keyword)
        if self.session_id is None and analysis.reads and not analysis.locks:
            return super()._execute(statement)  # a read before the first write: at once, read-only
        if keyword in ("SET", "RESET") and (self.session_id is not None or self.calls.available is not False):
            raise TunnelError.refused(f"{keyword} in a transaction block is not supported through rdsgate connect: the "
                                      "block is a session on the API, which refuses settings (SET statement_timeout "
                                      "outside the block applies to every later statement)")
        self.check_usable(analysis)
        if keyword in ("XA", "UNLOCK") or (keyword == "LOCK" and self.dialect == "mysql") or (
                keyword == "PREPARE" and "TRANSACTION" in analysis.words):
            return super()._execute(statement)  # refused as before
        if not self._ensure_session():
            return super()._execute(statement)
        return Outcome.of(self._run(statement), analysis)

    def _savepoint(self, keyword: str, sql: str) -> Outcome:
        if not self.in_block or self.read_only or not self._ensure_session():
            return super()._savepoint(keyword, sql)
        self._run(Statement(sql))
        if keyword == "ROLLBACK":
            self.failed = False  # ROLLBACK TO SAVEPOINT repairs a failed transaction, as in PostgreSQL
        return Outcome(tag=keyword)

    def commit(self) -> Outcome:
        session_id = self.session_id
        if session_id is None:
            return super().commit()
        failed = self.failed
        self._end_block()
        try:
            self.calls.end(session_id, commit=not failed)
        except TunnelError as exc:
            if exc.sqlstate == "25P02" or exc.code in ("TransactionExpired", "TransactionNotFound"):
                return Outcome(tag="ROLLBACK", notices=[exc.message])  # as PostgreSQL answers COMMIT in a failed block
            raise
        return Outcome(tag="ROLLBACK" if failed else "COMMIT")

    def rollback(self) -> Outcome:
        session_id = self.session_id
        if session_id is None:
            return super().rollback()
        self._end_block()
        try:
            self.calls.end(session_id, commit=False)
        except TunnelError as exc:
            if exc.code not in ("TransactionExpired", "TransactionNotFound"):
                raise
        return Outcome(tag="ROLLBACK")

    # -- internals ----------------------------------------------------------------------------

    def _ensure_session(self) -> bool:
        if self.session_id is not None:
            return True
        if self.queued:  # writes already queued in this block (sessions came up meanwhile): stay buffered
            return False
        self._open["id"] = self.calls.begin(self.read_only)
        return self.session_id is not None

    def _run(self, statement: Statement) -> Result:
        try:
            return self.calls.query(self.session_id, statement, self.timeout_ms)
        except TunnelError as exc:
            if exc.code in ("TransactionExpired", "TransactionNotFound"):
                # The session is gone (idle too long, or its runner stopped): the block has failed.
                self._open["id"] = None
                self.failed = True
                exc.sqlstate = exc.sqlstate or "25P03"
            raise

    def _end_block(self) -> None:
        self._open["id"] = None
        super()._end_block()


_LOCK = threading.Lock()
_BY_THREAD: dict[int, list[tuple[SessionCalls, dict[str, str | None]]]] = {}


def abandon_thread() -> None:
    """The client served by this thread has gone: roll back whatever session it left open."""
    with _LOCK:
        held = _BY_THREAD.pop(threading.get_ident(), [])
    for calls, open_session in held:
        _abandon(calls, open_session)


def _abandon(calls: SessionCalls, held: dict[str, str | None]) -> None:
    """The client went away with a session open: roll it back now, off the client's thread."""
    session_id = held.get("id")
    if session_id is None:
        return
    held["id"] = None

    def rollback() -> None:
        try:
            calls.end(session_id, commit=False)
        except Exception:  # noqa: BLE001 - the idle timeout rolls it back anyway
            pass

    threading.Thread(target=rollback, name="rdsgate-session-rollback", daemon=True).start()
