"""The session runner: one asynchronous invocation that owns one database session for its whole life.

``handler({"key": …}, context)`` is started by a begin (``gateway.SessionGateway.begin``). It
opens (or reuses) its environment's pooled connection for the session's definition, holds a
transaction on it (``hold_transaction``: BEGIN, READ ONLY when the connection or the begin says
so; ``drivers.held``), marks the session ``open`` and serves the session's channel: each request is a statement (or batch) run by the query service with the
session's connection in place of the pool's, so access checks, SQL checks, guardrails,
masking, limits and the audit record are the same as for any request. It ends on COMMIT or
ROLLBACK, when no call came for ``idle_seconds``, or shortly before its own time limit, rolling
back first; a lease it refreshes from a second thread tells callers it is alive. When it ends,
the connection has had the driver's clean-session reset and stays in the environment's pool
for the next session (or request) this environment serves.

This module is the runner function's entry point, so it takes the process-wide service from
``rdsgate.runtime`` (the composition root); nothing in the core imports it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import time
from typing import Any

from .. import errors
from ..access import Caller
from ..drivers.held import ABORTED_MESSAGE
from ..edge import remaining_ms
from ..guardrails import check_guardrails
from ..params import bind_values
from ..request import AtomicRequest, QueryRequest, Statement
from ..service import Invocation, QueryService
from ..sql.text import prepare
from . import codec
from .settings import SessionSettings
from .sqlcheck import check_session_statement, session_only
from .store import DynamoDBSessionStore
from .table import COMMITTED, EXPIRED, LOST, OPEN, ROLLED_BACK, STARTING, fingerprint, now_ms

# The runner stops serving this long before its function's time limit: enough to roll back and say so.
END_MARGIN_MS = 3000
# Read the channel every poll_ms while calls come; after this long without one, four times less often.
FAST_POLL_SECONDS = 10.0


class _InSession(QueryService):
    """The query service with the session's connection in place of the pool's.

    Built from the environment's own service (same catalog, masker, limits and audit sink);
    only where statements run changes, and which statement kinds a session adds.
    """

    def __init__(self, base: QueryService, session: Any, key: str) -> None:
        self.__dict__.update(base.__dict__)
        self._session = session
        self._fingerprint = fingerprint(key)

    def _on_connection(self, definition: Any, work: Any) -> Any:
        return work(self._session)

    def _checked(self, definition: Any, statement: Any, where: str = "sql") -> Any:
        prepared = prepare(statement.sql, definition.engine)
        if session_only(prepared, statement.sql, definition.engine):
            check_guardrails(definition.guardrails, statement.sql, definition.engine)
            return prepared, bind_values(prepared.names, statement.parameters, statement.type_hints)
        check_session_statement(prepared, statement.sql, definition.engine, where)
        return super()._checked(definition, statement, where)

    def _audit(self, record: dict[str, Any]) -> None:
        record["session"] = self._fingerprint
        super()._audit(record)


class SessionRunner:
    """Serves one session; the environment's service and store are shared by the sessions it runs in turn."""

    def __init__(self, service: QueryService, store: DynamoDBSessionStore, settings: SessionSettings, logger: Any) -> None:
        self.service, self.store, self.settings, self.logger = service, store, settings, logger

    def run(self, key: str, remaining_ms: int, runner_id: str) -> str:
        """Serve session ``key``; the outcome ("committed", "rolledback", "expired", …)."""
        item = self.store.get(key)
        if item is None or item.state != STARTING:
            self.logger.info("session runner: nothing to start", extra={"session": fingerprint(key)})
            return "not-starting"
        started = now_ms()
        deadline = started + int(remaining_ms) - END_MARGIN_MS
        service = self.service
        try:
            definition = service.catalog.get(item.connection)
            session = service.pool.acquire(definition).hold_transaction(item.read_only)
        except Exception as exc:  # noqa: BLE001 - the begin reports it
            error = exc if isinstance(exc, errors.RdsgateError) else errors.InternalError("the session could not begin")
            if isinstance(error, errors.DatabaseUnavailable):
                service.pool.discard(item.connection)
            self.store.fail(key, {"class": type(error).__name__, "message": error.message, "details": error.details})
            self.store.release(key, item.connection, item.caller)
            self.logger.info("session runner: begin failed", extra={"session": item.fingerprint, "outcome": error.code})
            return "failed"  # the begin, which waits for it, raises the error and audits it
        lease = self.settings.lease_seconds * 1000
        idle = self.settings.idle_seconds * 1000
        now = now_ms()
        if not self.store.open(key, runner=runner_id, lease_until=int(now + lease), idle_until=int(now + idle), deadline=deadline):
            self._end_connection(session, definition.name)  # the begin gave up waiting
            self.store.release(key, item.connection, item.caller)
            return "abandoned"
        self._read_only = bool(item.read_only)
        self._deadline = deadline
        heartbeat = _Heartbeat(self.store, key, lease)
        heartbeat.start()
        in_session = _InSession(service, session, key)
        try:
            outcome = self._serve(key, in_session, session, definition, deadline)
        except BaseException:
            self._end_connection(session, definition.name)
            self.store.end(key, LOST, "the session's runner failed")
            raise
        finally:
            heartbeat.stop()
            self.store.release(key, item.connection, item.caller)
        self._audit(item, "SESSION", outcome, started, runner_id)
        return outcome

    def _serve(self, key: str, in_session: _InSession, session: Any, definition: Any, deadline: int) -> str:
        fast = self.settings.poll_ms / 1000
        idle_ms = self.settings.idle_seconds * 1000
        last_call = time.monotonic()
        while True:
            current = self.store.poll_request(key)
            now = now_ms()
            if current is None or current.state != OPEN:  # declared lost meanwhile: nobody is waiting
                self._end_connection(session, definition.name)
                return LOST
            if current.request is not None and current.seq > current.done:
                last_call = time.monotonic()
                op, payload = self.store.unpack(current.request)
                if now >= deadline:
                    self._end_connection(session, definition.name)
                    self._answer_error(key, current.seq, _expired("its runner reached its time limit"), state=EXPIRED,
                                       reason="time limit")
                    return EXPIRED
                ended = self._handle(key, current.seq, op, payload, in_session, session, definition)
                if ended is not None:
                    return ended
                continue
            if now >= deadline:
                if self.store.end(key, EXPIRED, "time limit", only_if_idle=True):
                    self._end_connection(session, definition.name)
                    return EXPIRED
                continue
            if now >= current.idle_until:
                if self.store.end(key, EXPIRED, "idle", only_if_idle=True):
                    self._end_connection(session, definition.name)
                    return EXPIRED
                continue
            quiet = time.monotonic() - last_call
            pause = fast if quiet < FAST_POLL_SECONDS else fast * 4
            time.sleep(min(pause, max(0.0, (min(deadline, current.idle_until) - now) / 1000)))

    def _handle(self, key: str, seq: int, op: str, payload: bytes, in_session: _InSession, session: Any, definition: Any) -> str | None:
        idle_until = int(now_ms() + self.settings.idle_seconds * 1000)
        if op == "commit":
            try:
                committed = session.commit()
            except errors.RdsgateError as exc:
                self._end_connection(session, definition.name)
                self._answer_error(key, seq, exc, state=ROLLED_BACK, reason="commit failed")
                return ROLLED_BACK
            self._after_end(session, definition.name)
            if not committed:
                self._answer_error(key, seq, errors.SqlError(ABORTED_MESSAGE, sqlstate="25P02"), state=ROLLED_BACK,
                                   reason="aborted transaction")
                return ROLLED_BACK
            self.store.answer(key, seq, "ok", codec.encode_result({"status": COMMITTED}), idle_until=idle_until,
                              state=COMMITTED, reason="commit")
            return COMMITTED
        if op == "rollback":
            self._end_connection(session, definition.name)
            self.store.answer(key, seq, "ok", codec.encode_result({"status": ROLLED_BACK}), idle_until=idle_until,
                              state=ROLLED_BACK, reason="rollback")
            return ROLLED_BACK
        try:
            document = codec.decode_request(payload)
            request, invocation = _call(document, self._deadline)
            if request.read_only and not self._read_only:
                raise errors.InvalidRequest(
                    "readOnly: a session is read-only or not from its begin; begin a read-only session instead",
                    field="readOnly",
                )
            if isinstance(request, AtomicRequest):
                result = in_session.run_atomic(definition.name, request, invocation)
            else:
                result = in_session.query(definition.name, request, invocation)
            if session.implicit_commits:
                result = dict(result)
                result.setdefault("rdsgate", {})["implicitCommits"] = session.implicit_commits
                session.implicit_commits = 0
        except Exception as exc:  # noqa: BLE001 - the caller gets it; the session goes on unless its connection is gone
            error = exc if isinstance(exc, errors.RdsgateError) else errors.InternalError("the statement failed unexpectedly")
            if session.broken:
                self.service.pool.discard(definition.name)
                self._answer_error(key, seq, error, state=LOST, reason="connection lost")
                return LOST
            self._answer_error(key, seq, error)
            return None
        self.store.answer(key, seq, "ok", codec.encode_result(result), idle_until=int(now_ms() + self.settings.idle_seconds * 1000))
        ENVIRONMENT.flush_metrics()
        return None

    def _answer_error(self, key: str, seq: int, error: BaseException, *, state: str | None = None, reason: str | None = None) -> None:
        idle_until = int(now_ms() + self.settings.idle_seconds * 1000)
        self.store.answer(key, seq, "error", codec.encode_error(error), idle_until=idle_until, state=state, reason=reason)

    def _end_connection(self, session: Any, name: str) -> None:
        """Roll the transaction back (and reset the session); a connection that cannot be is closed."""
        if not session.broken:
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 - closing it rolls back too
                session.close()
        self._after_end(session, name)

    def _after_end(self, session: Any, name: str) -> None:
        if session.broken:
            self.service.pool.discard(name)

    def _audit(self, item: Any, statement_type: str, outcome: str, started: int, runner_id: str) -> None:
        record = {
            "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "requestId": runner_id,
            "caller": item.caller,
            "connection": item.connection,
            "engine": item.engine or None,
            "sql": None,
            "statementType": statement_type,
            "rows": None,
            "outcome": outcome,
            "session": item.fingerprint,
            "durationMs": now_ms() - started,
        }
        self.service._audit(record)


class _Heartbeat:
    """Refreshes the session's lease from its own thread, so a long statement does not look like a dead runner."""

    def __init__(self, store: DynamoDBSessionStore, key: str, lease_ms: float) -> None:
        self.store, self.key, self.lease_ms = store, key, lease_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rdsgate-session-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_ms / 3000):
            try:
                if not self.store.heartbeat(self.key, int(now_ms() + self.lease_ms)):
                    return  # the session ended
            except Exception:  # noqa: BLE001 - try again at the next beat; the lease has room for two misses
                continue


def _expired(why: str) -> errors.TransactionExpired:
    return errors.TransactionExpired(f"the transaction was rolled back: {why}")


def _call(document: dict[str, Any], deadline: int) -> tuple[QueryRequest | AtomicRequest, Invocation]:
    """The request and the facts of the call that carries it, as the API function sent them."""
    fields = dict(document["request"])
    if document.get("kind") == "atomic":
        statements = tuple(Statement(s["sql"], s.get("parameters") or {}, s.get("type_hints") or {}) for s in fields.pop("statements"))
        request: QueryRequest | AtomicRequest = AtomicRequest(statements=statements, **fields)
    else:
        request = QueryRequest(**fields)
    remaining = max(1, min(int(document["until"]), deadline) - now_ms())
    facts: dict[str, Any] = {
        "caller": Caller(arn=document.get("caller"), governed=bool(document.get("governed"))),
        "result_limit_bytes": int(document["limitBytes"]),
        "request_id": document.get("requestId"),
        "remaining_ms": remaining,
    }
    known = {f.name for f in dataclasses.fields(Invocation)}
    for name, value in (("route", document.get("route")), ("audit_context", document.get("auditContext"))):
        if name in known and value:
            facts[name] = value
    return request, Invocation(**facts)


# -- the Lambda entry point ------------------------------------------------------------------


class _Environment:
    """What one execution environment keeps between the sessions it runs."""

    def __init__(self) -> None:
        self._runner: SessionRunner | None = None
        self._settings: SessionSettings | None = None

    def runner(self) -> SessionRunner:
        from ..runtime import LOGGER, SERVICE

        settings = SessionSettings.resolve()
        if self._runner is None or settings != self._settings:
            if not settings.enabled:
                raise errors.InvalidRequest("sessions are not enabled (RDSGATE_SESSIONS_TABLE is not set)")
            self._settings = settings
            self._runner = SessionRunner(SERVICE.get(), DynamoDBSessionStore(settings.table), settings, LOGGER)
        self._runner.service = SERVICE.get()
        return self._runner

    def flush_metrics(self) -> None:
        """The statements' metrics (rdsgate.telemetry), written as each answer goes out and when the session ends."""
        from ..runtime import SERVICE

        try:
            SERVICE.metrics.flush()
        except Exception:  # noqa: BLE001 - metrics never cost a session
            pass


ENVIRONMENT = _Environment()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (asynchronous invocation): ``{"key": <session key>}``."""
    key = event.get("key") if isinstance(event, dict) else None
    if not isinstance(key, str) or len(key) != 64:
        return {"outcome": "invalid"}
    remaining = remaining_ms(context)
    if remaining is None:  # not Lambda's context: a local runner's time is its own
        remaining = 900_000
    runner_id = getattr(context, "aws_request_id", None) or f"pid:{os.getpid()}"
    try:
        return {"outcome": ENVIRONMENT.runner().run(key, remaining, runner_id)}
    finally:
        ENVIRONMENT.flush_metrics()
