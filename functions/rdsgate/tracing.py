"""Traces of the service: X-Ray subsegments of each step, annotated with checked values only.

:meth:`Tracing.subsegment` records an X-Ray subsegment when tracing is on (in
Lambda, unless turned off with ``POWERTOOLS_TRACE_DISABLED`` or ``RDSGATE_TRACING=false``)
and the invocation is sampled: :class:`DaemonEmitter` sends it to the X-Ray daemon Lambda
runs beside the function, under the invocation's segment, without the X-Ray SDK (a test
or a caller may pass an SDK recorder instead). Its only annotations are ``connection``,
``engine`` and ``statementType``, each checked; a failure flags the subsegment without
sending the exception (whose message may quote a statement); the database drivers are
never instrumented (the SDK's patches would send statement text to X-Ray).

Nothing here imports Powertools or the X-Ray SDK unless an SDK recorder is passed in.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, NamedTuple

from .telemetry import _ENCODER, NAMESPACE, connection_dimension, env_flag

__all__ = [
    "STATEMENT_TYPES", "OTHER_STATEMENT", "ENGINES", "SPANS", "annotations", "Tracing", "DaemonEmitter",
    "tracing_available", "TRACING", "TraceHeader", "trace_header", "trace_facts",
]

# Statement types that may be annotated on a trace; any other first word is OTHER_STATEMENT.
STATEMENT_TYPES = frozenset(
    {
        "SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "INSERT", "UPDATE", "DELETE",
        "MERGE", "REPLACE", "UPSERT", "CALL", "DO", "COPY", "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME",
        "COMMENT", "GRANT", "REVOKE", "ANALYZE", "VACUUM", "LOCK", "BATCH", "TRANSACTION",
    }
)  # fmt: skip
OTHER_STATEMENT = "OTHER"
ENGINES = frozenset({"postgres", "mysql"})
# Subsegment names: fixed, so that no text of a request can become one.
SPANS = frozenset({"definition", "sign_token", "connect", "execute", "encode", "audit"})


class TraceHeader(NamedTuple):
    """Lambda's ``_X_AMZN_TRACE_ID`` (``Root=…;Parent=…;Sampled=…``), read."""

    root: str | None  # the trace id: correlation in the audit record and the logs
    sampled: tuple[str, str] | None  # (trace id, parent segment id) when this invocation is sampled


_NO_HEADER = TraceHeader(None, None)
_last_header: tuple[str | None, TraceHeader] = (None, _NO_HEADER)  # the last header read and its parse


def trace_header(environ: Mapping[str, str] | None = None) -> TraceHeader:
    """This invocation's trace header; it is parsed when it changes (once per invocation at most)."""
    global _last_header
    header = (os.environ if environ is None else environ).get("_X_AMZN_TRACE_ID")
    seen, parsed = _last_header
    if header == seen:
        return parsed
    fields = dict(part.strip().partition("=")[::2] for part in (header or "").split(";") if "=" in part)
    root, parent = fields.get("Root") or None, fields.get("Parent") or None
    parsed = TraceHeader(root, (root, parent) if root and parent and fields.get("Sampled") == "1" else None)
    _last_header = (header, parsed)
    return parsed


def trace_facts(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"traceId": …}`` for an audit record, when the invocation has a trace header."""
    root = trace_header(environ).root
    return {"traceId": root} if root else {}


class _NoSubsegment:
    """What :func:`subsegment` yields with tracing off: annotations go nowhere."""

    def annotate(self, *, connection: str | None = None, engine: str | None = None, statement_type: str | None = None) -> None:
        pass


class _NoSpan:
    """The context :meth:`Tracing.subsegment` returns with tracing off."""

    __slots__ = ()
    _handle = _NoSubsegment()

    def __enter__(self) -> _NoSubsegment:
        return self._handle

    def __exit__(self, *exc_info: Any) -> None:
        return None


_NO_SPAN = _NoSpan()


class _Subsegment:
    def __init__(self, segment: Any) -> None:
        self._segment = segment

    def annotate(self, *, connection: str | None = None, engine: str | None = None, statement_type: str | None = None) -> None:
        """Annotate the subsegment; the keyword arguments are the only annotations there are."""
        for key, value in annotations(connection=connection, engine=engine, statement_type=statement_type).items():
            self._segment.put_annotation(key, value)


def annotations(*, connection: str | None = None, engine: str | None = None, statement_type: str | None = None) -> dict[str, str]:
    """The annotations a subsegment may carry, each checked: a definition's name, an engine and a
    statement keyword from a fixed list (any other first word of the SQL is OTHER_STATEMENT)."""
    out: dict[str, str] = {}
    name = connection_dimension(connection)
    if name is not None:
        out["connection"] = name
    if engine in ENGINES:
        out["engine"] = engine
    if statement_type is not None:
        kind = statement_type.upper()
        out["statementType"] = kind if kind in STATEMENT_TYPES else OTHER_STATEMENT
    return out


class Tracing:
    """rdsgate's subsegments: sent to the X-Ray daemon by :class:`DaemonEmitter` in Lambda, or through an X-Ray
    recorder passed as ``provider`` (the SDK's, or a test's) via Powertools' Tracer; no-ops when tracing is off."""

    def __init__(self, environ: Mapping[str, str] | None = None, provider: Any = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._provider = provider  # an X-Ray recorder with in_subsegment(name); None: rdsgate's own emitter
        self._enabled: bool | None = None
        self._tracer: Any = None
        self._emitter: DaemonEmitter | None = None

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            self._enabled = self._provider is not None or tracing_available(self._environ)
        return self._enabled

    def _get(self) -> Any:
        if self._tracer is None:
            from aws_lambda_powertools.tracing import Tracer

            # auto_patch=False: the SDK's pg8000/PyMySQL patches record SQL text.
            self._tracer = Tracer(
                service=self._environ.get("POWERTOOLS_SERVICE_NAME") or NAMESPACE,
                disabled=False,
                auto_patch=False,
                provider=self._provider,
            )
        return self._tracer

    def subsegment(
        self, span: str, *, connection: str | None = None, engine: str | None = None, statement_type: str | None = None
    ) -> Any:
        """``with TRACING.subsegment("execute", connection=..., engine=...) as s: ...``; ``span`` is one of SPANS.

        With tracing off it returns one shared no-op context (the warm path pays a call, not a generator)."""
        if span not in SPANS:
            raise ValueError(f"unknown span {span!r}; add it to rdsgate.tracing.SPANS")
        if not self.enabled:
            return _NO_SPAN
        if self._provider is None:
            emitter = self._emitter
            if emitter is None:
                emitter = self._emitter = DaemonEmitter(self._environ)
            trace = emitter.trace()
            if trace is None:  # this invocation is not sampled
                return _NO_SPAN
            return _EmittedSpan(emitter, trace, span, annotations(connection=connection, engine=engine, statement_type=statement_type))
        return self._traced(span, connection, engine, statement_type)

    @contextmanager
    def _traced(
        self, span: str, connection: str | None, engine: str | None, statement_type: str | None
    ) -> Iterator[_Subsegment]:
        failure: BaseException | None = None
        with self._get().provider.in_subsegment(f"## {span}") as segment:
            handle = _Subsegment(segment)
            handle.annotate(connection=connection, engine=engine, statement_type=statement_type)
            try:
                yield handle
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                # Flag the subsegment, but keep the exception from the SDK, which would record its
                # message (a database's message can quote the statement) and stack.
                failure = exc
                flag = getattr(segment, "add_error_flag", None)
                if flag is not None:
                    flag()
        if failure is not None:
            raise failure


class _EmittedSpan:
    """One subsegment for :class:`DaemonEmitter`: timed, annotated with checked values, flagged on failure
    (the exception itself, whose message may quote a statement, is never sent)."""

    __slots__ = ("_emitter", "_trace", "_name", "values", "_started")

    def __init__(self, emitter: DaemonEmitter, trace: tuple[str, str], span: str, values: dict[str, str]) -> None:
        self._emitter, self._trace, self._name, self.values = emitter, trace, span, values

    def __enter__(self) -> _EmittedSpan:
        self._started = time.time()
        return self

    def annotate(self, *, connection: str | None = None, engine: str | None = None, statement_type: str | None = None) -> None:
        self.values.update(annotations(connection=connection, engine=engine, statement_type=statement_type))

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._emitter.send(self._name, self._trace, self._started, time.time(), self.values, exc_type is not None)


class DaemonEmitter:
    """Subsegments sent as X-Ray segment documents over UDP to the daemon Lambda runs beside the function
    (``AWS_XRAY_DAEMON_ADDRESS``), under the invocation's segment (``_X_AMZN_TRACE_ID``: its root, its
    parent, sampled or not). What the X-Ray SDK does for a subsegment, without the SDK in the asset and
    at a tenth of its cost (its Lambda context parses the trace header six times per subsegment)."""

    HEADER = b'{"format":"json","version":1}\n'

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._socket: Any = None
        self._address: Any = None
        self.sent = 0

    def trace(self) -> tuple[str, str] | None:
        """(trace id, parent segment id) of this invocation when it is sampled."""
        return trace_header(self._environ).sampled

    def send(self, span: str, trace: tuple[str, str], started: float, ended: float, values: dict[str, str], failed: bool) -> None:
        document: dict[str, Any] = {
            "name": f"## {span}", "id": os.urandom(8).hex(), "trace_id": trace[0], "parent_id": trace[1],
            "start_time": started, "end_time": ended, "type": "subsegment",
        }  # fmt: skip
        if values:
            document["annotations"] = values
        if failed:
            document["error"] = True
        try:
            if self._socket is None:  # made on the first send: never before a SnapStart snapshot
                self._connect()
            self._socket.sendto(self.HEADER + _ENCODER.encode(document).encode("utf-8"), self._address)
            self.sent += 1
        except OSError:  # a trace never fails a request
            pass

    def _connect(self) -> None:
        import socket

        configured = self._environ.get("AWS_XRAY_DAEMON_ADDRESS") or "127.0.0.1:2000"
        parts = configured.split()
        address = next((p[4:] for p in parts if p.startswith("udp:")), parts[0] if parts else "127.0.0.1:2000")
        host, _, port = address.rpartition(":")
        family, kind, protocol, _, target = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, protocol)
        sock.setblocking(False)
        self._socket, self._address = sock, target


def tracing_available(environ: Mapping[str, str]) -> bool:
    """Tracing is on in Lambda (its daemon receives the subsegments of sampled invocations), unless turned off
    with ``RDSGATE_TRACING=false`` or ``POWERTOOLS_TRACE_DISABLED=true``."""
    if not env_flag(environ, "RDSGATE_TRACING") or env_flag(environ, "POWERTOOLS_TRACE_DISABLED", default=False):
        return False
    return bool(environ.get("LAMBDA_TASK_ROOT"))


# The process-wide instances the entry points are meant to use (see docs/OPERATIONS.md).
TRACING = Tracing()
