"""The API side of sessions: begin, run a statement in, commit and roll back a session.

Every entry point (the REST routes, the Data API operations, the invoke handler) calls these.
A session is bound to its caller and its connection: a session id used by anyone else, or on
another connection, is answered exactly as an unknown one (TransactionNotFound), and audited.
Statements are audited by the runner that runs them; begin, commit, rollback and every call
refused here are audited here.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from .. import errors
from ..request import AtomicRequest, QueryRequest
from ..runbooks.connections import check_session
from ..service import Invocation
from . import codec
from .launcher import launcher_for
from .settings import SessionSettings
from .store import DynamoDBSessionStore
from .table import COMMITTED, EXPIRED, FAILED, LOST, OPEN, ROLLED_BACK, STARTING, fingerprint, now_ms

# The longest a runner lives: Lambda's 15 minutes. Limit entries of a session count until then at most.
MAX_LIFE_MS = 900_000
# A call answers this long before its function's time runs out; without a known deadline it waits this long.
ANSWER_MARGIN_MS = 1000
DEFAULT_WAIT_MS = 30_000
NOT_FOUND = "no open transaction has this id for this caller and connection"
DISABLED = (
    "sessions (transactions across calls) are not enabled on this deployment; send the whole transaction in one call "
    "to POST /connections/{name}/transaction, or deploy with sessions on (-c sessions=true, the default)"
)


def caller_id(invocation: Invocation) -> str:
    """Who a session is bound to: the SigV4 signer; for an invoke, the caller it claims (or the function)."""
    if invocation.caller.arn:
        return invocation.caller.arn
    facts = getattr(invocation, "audit_context", None) or {}
    return "invoke:" + str(facts.get("claimedCaller") or facts.get("invokedFunctionArn") or "-")


class SessionGateway:
    """Sessions as the API and invoke functions use them."""

    def __init__(self, settings: SessionSettings, store: DynamoDBSessionStore, service_holder: Any) -> None:
        self.settings, self.store, self._holder = settings, store, service_holder

    @property
    def service(self) -> Any:
        return self._holder.get()

    def begin(self, name: str, invocation: Invocation, *, read_only: bool = False) -> dict[str, Any]:
        """Start a runner for a new session and wait until it holds BEGIN: ``{"sessionId"}``."""

        def work(record: dict[str, Any]) -> dict[str, Any]:
            definition = self.service._governed(name, invocation, record)
            record["statementType"] = "BEGIN"
            check_session(definition)  # not on runbook-only connections, nor where statements wait for reviews
            session_id = codec.new_session_id()
            key = codec.key_of(session_id)
            record["session"] = fingerprint(key)
            now = now_ms()
            self.store.create(
                key, connection=name, caller=caller_id(invocation), engine=definition.engine,
                read_only=bool(definition.read_only or read_only),
                start_until=int(now + (self.settings.start_seconds + self.settings.lease_seconds) * 1000),
                deadline=int(now + self.settings.start_seconds * 1000 + MAX_LIFE_MS),
                limits=(self.settings.max_per_connection, self.settings.max_per_caller),
            )
            try:
                launcher_for(self.settings.runner_function).launch({"key": key})
                self._wait_open(key, until=self._until(invocation, cap_ms=self.settings.start_seconds * 1000))
            except BaseException:
                self.store.abandon(key)
                self.store.release(key, name, caller_id(invocation))
                raise
            return {"sessionId": session_id}

        return self.service._audited(name, "BEGIN", invocation, work)

    def run(self, session_id: Any, name: str, request: QueryRequest | AtomicRequest, invocation: Invocation) -> dict[str, Any]:
        """Run a statement (or a batch) in the session; its result document, as outside a session."""
        if request.idempotency_key is not None:
            raise errors.InvalidRequest("idempotencyKey: not supported in a session (its statements run once, in order)", field="idempotencyKey")
        key = codec.key_of(session_id)
        kind = "atomic" if isinstance(request, AtomicRequest) else "query"
        until = self._until(invocation)
        document = {
            "kind": kind,
            "request": dataclasses.asdict(request),
            "caller": invocation.caller.arn,
            "governed": invocation.caller.governed,
            "requestId": invocation.request_id,
            "route": getattr(invocation, "route", None),
            "auditContext": dict(getattr(invocation, "audit_context", None) or {}),
            "limitBytes": invocation.result_limit_bytes,
            "until": until,
        }
        if kind == "atomic":
            document["request"]["statements"] = [dataclasses.asdict(s) for s in request.statements]
        payload = codec.encode_request(document)
        seq = self.store.post(key, caller=caller_id(invocation), connection=name, op="run", payload=payload) if key else None
        if seq is None:
            error = self._explain(key, name, caller_id(invocation)) if key else errors.TransactionNotFound(NOT_FOUND)
            self._audit_refusal(key, name, invocation, error)
            raise error
        return self._wait_answer(key, seq, until, name, invocation)

    def end(self, session_id: Any, invocation: Invocation, *, commit: bool, name: str | None = None) -> dict[str, Any]:
        """Commit or roll back: ``{"status": "committed" | "rolledback"}``. ``name``: the connection the call names."""
        key = codec.key_of(session_id)
        item = self.store.get(key) if key else None
        owned = item is not None and item.caller == caller_id(invocation) and (name is None or item.connection == name)
        # Recorded against the session's own connection even when another caller tried it: its auditors see that.
        connection = name or (item.connection if item is not None else "-")
        verb = "COMMIT" if commit else "ROLLBACK"

        def work(record: dict[str, Any]) -> dict[str, Any]:
            record["statementType"] = verb
            record["session"] = fingerprint(key) if key else None
            if not owned:
                raise errors.TransactionNotFound(NOT_FOUND)
            record["engine"] = item.engine or None
            until = self._until(invocation)
            seq = self.store.post(key, caller=item.caller, connection=item.connection, op=verb.lower(), payload=b"{}")
            if seq is None:
                raise self._explain(key, item.connection, caller_id(invocation))
            return self._wait_answer(key, seq, until, connection, invocation, audited=False)

        return self.service._audited(connection, verb, invocation, work)

    # -- internals ----------------------------------------------------------------------------

    def _until(self, invocation: Invocation, cap_ms: float | None = None) -> int:
        wait = DEFAULT_WAIT_MS if invocation.remaining_ms is None else invocation.remaining_ms - ANSWER_MARGIN_MS
        if cap_ms is not None:
            wait = min(wait, cap_ms)
        return int(now_ms() + max(wait, 1))

    def _wait_open(self, key: str, until: int) -> None:
        pause = self.settings.poll_ms / 1000
        time.sleep(pause * 2)
        while True:
            item = self.store.get(key)
            if item is None:
                raise errors.InternalError("the session vanished while it started")
            if item.state == OPEN:
                return
            if item.state == FAILED:
                raise codec.decode_error(item.error or {})
            if item.state != STARTING:
                raise errors.DatabaseUnavailable(f"the session could not begin ({item.state})", retry_after=1)
            if now_ms() >= until:
                raise errors.DatabaseUnavailable(
                    "the session's runner did not begin a transaction in time; retry", retry_after=2
                )
            time.sleep(pause)

    def _wait_answer(self, key: str, seq: int, until: int, name: str, invocation: Invocation, *, audited: bool = True) -> dict[str, Any]:
        pause = self.settings.poll_ms / 1000
        time.sleep(pause)
        while True:
            item = self.store.poll_answer(key)
            now = now_ms()
            if item is not None and item.done >= seq and item.result is not None:
                kind, data = self.store.unpack(item.result)
                if kind == "error":
                    error = codec.decode_error(data)
                    error.audited = audited  # type: ignore[attr-defined]  # the runner wrote the statement's record
                    raise error
                return codec.decode_result(data)
            failure: errors.RdsgateError | None = None
            if item is None:
                failure = errors.TransactionNotFound(NOT_FOUND)
            elif item.state != OPEN:
                failure = self._ended(item)
            elif item.lease_until < now:
                failure = self._lost(item)
            elif now >= until:
                failure = errors.QueryTimeout(
                    "no answer from the session before this call's time ran out; the statement may still be running, "
                    "and the transaction stays open"
                )
            if failure is not None:
                if audited:
                    self._audit_refusal(key, name, invocation, failure)
                raise failure
            time.sleep(pause)

    def _audit_refusal(self, key: str | None, name: str, invocation: Invocation, error: errors.RdsgateError) -> None:
        def work(record: dict[str, Any]) -> dict[str, Any]:
            record["statementType"] = "SESSION"
            record["session"] = fingerprint(key) if key else None
            raise error

        try:
            self.service._audited(name, None, invocation, work)
        except errors.RdsgateError:
            pass

    def _explain(self, key: str | None, name: str, caller: str) -> errors.RdsgateError:
        """Why a request could not be posted: the same answer for a foreign session as for an unknown one."""
        item = self.store.get(key) if key else None
        if item is None or item.caller != caller or item.connection != name:
            return errors.TransactionNotFound(NOT_FOUND)
        if item.state == OPEN:
            if item.lease_until < now_ms():
                return self._lost(item)
            if item.request is not None:
                return errors.InvalidRequest("the transaction is running another statement; wait for its result before sending the next")
            return errors.InvalidRequest("the transaction was busy; retry")
        return self._ended(item)

    def _ended(self, item: Any) -> errors.RdsgateError:
        if item.state == EXPIRED:
            why = "no call came for %g seconds" % self.settings.idle_seconds if item.reason == "idle" else "its runner reached its time limit"
            return errors.TransactionExpired(f"the transaction was rolled back: {why}")
        if item.state in (COMMITTED, ROLLED_BACK):
            return errors.TransactionNotFound(f"{NOT_FOUND}: it has ended ({'committed' if item.state == COMMITTED else 'rolled back'})")
        if item.state == LOST:
            return errors.TransactionNotFound(
                f"{NOT_FOUND}: its runner stopped, and the database rolled its transaction back when the connection closed"
            )
        return errors.TransactionNotFound(NOT_FOUND)  # starting, abandoned, failed

    def _lost(self, item: Any) -> errors.RdsgateError:
        if self.store.mark_lost(item.key, item.lease_until):
            self.store.release(item.key, item.connection, item.caller)
        return errors.TransactionNotFound(
            f"{NOT_FOUND}: its runner stopped answering, and the database rolled its transaction back when the connection closed"
        )


class SessionsHolder:
    """Builds the gateway on first use and again when the settings change (tests, ``rdsgate serve``)."""

    def __init__(self, service_holder: Any) -> None:
        self._service_holder = service_holder
        self._gateway: SessionGateway | None = None

    def get(self) -> SessionGateway:
        settings = SessionSettings.resolve()
        if not settings.enabled:
            raise errors.InvalidRequest(DISABLED)
        if self._gateway is None or self._gateway.settings != settings:
            self._gateway = SessionGateway(settings, DynamoDBSessionStore(settings.table), self._service_holder)
        return self._gateway

    def enabled(self) -> bool:
        return SessionSettings.resolve().enabled
