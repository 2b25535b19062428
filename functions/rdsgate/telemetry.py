"""Metrics and traces of the service: what operators alarm on, and nothing a caller sent.

The core reports through a :class:`Recorder`; :func:`recorder` picks one from the
environment once per execution environment:

* :class:`EmfRecorder` (the default) writes CloudWatch Embedded Metric Format (the
  documents Powertools' EMF provider writes, built here at a fraction of its cost), in
  namespace ``rdsgate``: the values of one invocation are kept in memory and written as
  one log line per connection (plus one per error code) when the entry point calls
  :meth:`Recorder.flush`, once per invocation.
* :class:`NoopRecorder` when ``RDSGATE_METRICS=false``: nothing is written.

Dimensions are ``service`` (the deployment: ``POWERTOOLS_SERVICE_NAME``, the stack name),
``connection`` (the definition's name; off with ``RDSGATE_METRICS_PER_CONNECTION=false``)
and ``errorCode`` (one of rdsgate's error codes, on ``Errors`` and ``Denied``). Every
metric is published once without a connection, so alarms read one series per deployment.
No SQL text, parameter, caller, host or token reaches a metric: the recorder takes
numbers, a connection name and an error code, and checks the last two.

Traces: :meth:`Tracing.subsegment` records an X-Ray subsegment when tracing is on (in
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

import json
import math
import os
import re
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Protocol

from .errors import RdsgateError

NAMESPACE = "rdsgate"
MAX_VALUES = 100  # values of one metric in one EMF document
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# Dimension names.
SERVICE = "service"
CONNECTION = "connection"
ERROR_CODE = "errorCode"

# Metric names (infra/monitoring.py alarms on these; docs/OPERATIONS.md describes them).
REQUESTS = "Requests"
ERRORS = "Errors"
DURATION = "Duration"
DATABASE_TIME = "DatabaseTime"
ROWS = "Rows"
RESPONSE_BYTES = "ResponseBytes"
CONNECTIONS_OPENED = "ConnectionsOpened"
CONNECTIONS_REUSED = "ConnectionsReused"
TOKENS_SIGNED = "TokensSigned"
LOGIN_FAILURES = "LoginFailures"
DENIED = "Denied"
AUDIT_WRITE_FAILURES = "AuditWriteFailures"

# name -> CloudWatch unit
UNITS: dict[str, str] = {
    REQUESTS: "Count",
    ERRORS: "Count",
    DURATION: "Milliseconds",
    DATABASE_TIME: "Milliseconds",
    ROWS: "Count",
    RESPONSE_BYTES: "Bytes",
    CONNECTIONS_OPENED: "Count",
    CONNECTIONS_REUSED: "Count",
    TOKENS_SIGNED: "Count",
    LOGIN_FAILURES: "Count",
    DENIED: "Count",
    AUDIT_WRITE_FAILURES: "Count",
}



def _known_codes() -> frozenset[str]:
    """The ``code`` of every RdsgateError class loaded (rdsgate.errors' and those modules add)."""
    found, pending = set(), [RdsgateError]
    while pending:
        cls = pending.pop()
        if isinstance(cls.code, str):
            found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return frozenset(found)


# rdsgate's error codes: a code no RdsgateError class declares is OTHER_CODE, so that a caller can never
# choose a dimension value. Read again when a code is missing (a module loaded since may add classes).
ERROR_CODES = _known_codes()
OTHER_CODE = "Other"
# What `denied(connection, kind)` counts: the refusals of the governance layer.
DENIAL_KINDS = frozenset({"Forbidden", "GuardrailViolation", "ReadOnlyViolation"})
# Failures the service (not the caller) is answerable for: the Errors-rate alarm counts these.
SERVER_ERROR_CODES = ("InternalError", "DatabaseUnavailable", "AuthenticationFailed", "QueryTimeout", "InvalidDefinition")
# A connection name as a dimension: what definitions use in practice; anything else is left out.
_CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

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
SPANS = frozenset({"definition", "authorize", "prepare", "sign_token", "connect", "execute", "encode", "audit"})


def _enabled(environ: Mapping[str, str], name: str, default: bool = True) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"environment variable {name} must be true or false (got {value!r})")


def error_code_dimension(code: str | None) -> str | None:
    """The dimension value for an error code: the code itself if rdsgate knows it, else OTHER_CODE."""
    global ERROR_CODES
    if code is None:
        return None
    if code not in ERROR_CODES:
        ERROR_CODES = _known_codes()
    return code if code in ERROR_CODES else OTHER_CODE


def connection_dimension(connection: str | None, code: str | None = None) -> str | None:
    """The connection as a dimension value, or None: unnamed, malformed, or unknown (NotFound)."""
    if connection is None or code == "NotFound" or not _CONNECTION_NAME.match(connection):
        return None
    return connection


class Recorder(Protocol):
    """What the core reports. Every method is cheap, never raises for a bad value, and writes nothing
    until :meth:`flush`.

    ``connection`` is the name of a definition that was found (pass None before the lookup succeeded,
    so that a caller cannot mint dimension values); ``error_code`` is ``RdsgateError.code`` or None.
    """

    def request(
        self,
        connection: str | None,
        error_code: str | None,
        duration_ms: float | None,
        database_ms: float | None = None,
        rows: int | None = None,
        response_bytes: int | None = None,
    ) -> None: ...

    def response(self, size: int) -> None:
        """The encoded size of the answer to this invocation's last request, once the entry point knows it
        (as ``request(..., response_bytes=size)`` would have; nothing when no request was recorded)."""

    def connection_opened(self, connection: str | None) -> None: ...

    def connection_reused(self, connection: str | None) -> None: ...

    def token_signed(self, connection: str | None) -> None: ...

    def login_failed(self, connection: str | None) -> None: ...

    def denied(self, connection: str | None, kind: str) -> None: ...

    def audit_write_failed(self) -> None: ...

    def flush(self) -> None: ...


class NoopRecorder:
    """Metrics off: every call returns at once."""

    enabled = False

    def request(self, connection, error_code, duration_ms, database_ms=None, rows=None, response_bytes=None) -> None:
        pass

    def response(self, size) -> None:
        pass

    def connection_opened(self, connection) -> None:
        pass

    def connection_reused(self, connection) -> None:
        pass

    def token_signed(self, connection) -> None:
        pass

    def login_failed(self, connection) -> None:
        pass

    def denied(self, connection, kind) -> None:
        pass

    def audit_write_failed(self) -> None:
        pass

    def flush(self) -> None:
        pass


class EmfRecorder:
    """CloudWatch EMF, one document per (connection, error code) per flush, in the shape of Powertools' EMF
    provider (written here: the provider's checks and enum lookups cost a warm request ~40 µs).

    Counts and timings go to a document whose dimension sets are ``[service]`` and, per connection,
    ``[service, connection]``; ``Errors`` and ``Denied`` go to one that adds ``[service, errorCode]``.
    """

    enabled = True

    def __init__(self, service: str = NAMESPACE, *, per_connection: bool = True, namespace: str = NAMESPACE) -> None:
        self.service = service
        self.per_connection = per_connection
        self.namespace = namespace
        self._documents: dict[tuple[str | None, str | None], dict[str, list[float]]] = {}
        self._answered: list[str | None] = []  # the connection dimension of this invocation's last request

    # -- what the core reports -------------------------------------------------------------------

    def request(self, connection, error_code, duration_ms, database_ms=None, rows=None, response_bytes=None) -> None:
        code = error_code_dimension(error_code)
        name = connection_dimension(connection, code)
        self._answered[:] = [name]
        self._add(name, None, REQUESTS, 1)
        if duration_ms is not None:  # None: refused before rdsgate timed anything (a malformed body)
            self._add(name, None, DURATION, duration_ms)
        if database_ms is not None:
            self._add(name, None, DATABASE_TIME, database_ms)
        if rows is not None:
            self._add(name, None, ROWS, rows)
        if response_bytes is not None:
            self._add(name, None, RESPONSE_BYTES, response_bytes)
        if code is not None:
            self._add(name, code, ERRORS, 1)

    def response(self, size) -> None:
        if self._answered:
            self._add(self._answered.pop(), None, RESPONSE_BYTES, size)

    def connection_opened(self, connection) -> None:
        self._add(connection_dimension(connection), None, CONNECTIONS_OPENED, 1)

    def connection_reused(self, connection) -> None:
        self._add(connection_dimension(connection), None, CONNECTIONS_REUSED, 1)

    def token_signed(self, connection) -> None:
        self._add(connection_dimension(connection), None, TOKENS_SIGNED, 1)

    def login_failed(self, connection) -> None:
        self._add(connection_dimension(connection), None, LOGIN_FAILURES, 1)

    def denied(self, connection, kind) -> None:
        self._add(connection_dimension(connection), kind if kind in DENIAL_KINDS else OTHER_CODE, DENIED, 1)

    def audit_write_failed(self) -> None:
        self._add(None, None, AUDIT_WRITE_FAILURES, 1)

    def flush(self) -> None:
        """Write what this invocation recorded (one line per document) and start afresh."""
        documents, self._documents = self._documents, {}
        self._answered.clear()
        for (connection, code), metrics in documents.items():
            if metrics:
                self._write(connection, code, metrics)

    # -- the documents ---------------------------------------------------------------------------

    def _add(self, connection: str | None, code: str | None, metric: str, value: float) -> None:
        kind = type(value)
        if (kind is not int and kind is not float) or not math.isfinite(value):  # a metric never fails a request
            return
        if not self.per_connection:
            connection = None
        key = (connection, code)
        metrics = self._documents.get(key)
        if metrics is None:
            metrics = self._documents[key] = {}
        values = metrics.get(metric)
        if values is None:
            metrics[metric] = [float(value)]
        else:
            values.append(float(value))
            if len(values) == MAX_VALUES:  # EMF's limit per metric and document: write these now
                self._write(connection, code, {metric: metrics.pop(metric)})

    def _write(self, connection: str | None, code: str | None, metrics: dict[str, list[float]]) -> None:
        """One EMF document (the shape Powertools' provider writes): a line on standard output, which Lambda
        sends to the function's log group, where CloudWatch turns it into metrics."""
        dimensions = [[SERVICE]]
        values: dict[str, Any] = {SERVICE: self.service}
        if code is not None:
            dimensions.append([SERVICE, ERROR_CODE])
            values[ERROR_CODE] = code
        if connection is not None:
            dimensions.append([SERVICE, CONNECTION])
            values[CONNECTION] = connection
        directive = {"Namespace": self.namespace, "Dimensions": dimensions, "Metrics": [{"Name": n, "Unit": UNITS[n]} for n in metrics]}
        document = {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]}, **values, **metrics}
        sys.stdout.write(_ENCODER.encode(document) + "\n")


def recorder(
    environ: Mapping[str, str] | None = None,
    *,
    enabled: bool | None = None,
    per_connection: bool | None = None,
    service: str | None = None,
) -> Recorder:
    """The recorder asked for, each setting from its argument, else the environment, else the default:
    ``enabled`` / ``RDSGATE_METRICS`` (true), ``per_connection`` / ``RDSGATE_METRICS_PER_CONNECTION``
    (true), ``service`` / ``POWERTOOLS_SERVICE_NAME`` (the stack name when deployed; ``rdsgate``)."""
    env = os.environ if environ is None else environ
    if not (_enabled(env, "RDSGATE_METRICS") if enabled is None else enabled):
        return NoopRecorder()
    return EmfRecorder(
        service or env.get("POWERTOOLS_SERVICE_NAME") or NAMESPACE,
        per_connection=_enabled(env, "RDSGATE_METRICS_PER_CONNECTION") if per_connection is None else per_connection,
    )


# --- traces ------------------------------------------------------------------------------------


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
            raise ValueError(f"unknown span {span!r}; add it to rdsgate.telemetry.SPANS")
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
        self._header: str | None = None
        self._trace: tuple[str, str] | None = None
        self._socket: Any = None
        self._address: Any = None
        self.sent = 0

    def trace(self) -> tuple[str, str] | None:
        """(trace id, parent segment id) of this invocation when it is sampled; the header is parsed when it changes."""
        header = self._environ.get("_X_AMZN_TRACE_ID")
        if header != self._header:
            fields = dict(part.strip().partition("=")[::2] for part in (header or "").split(";") if "=" in part)
            root, parent = fields.get("Root"), fields.get("Parent")
            self._trace = (root, parent) if root and parent and fields.get("Sampled") == "1" else None
            self._header = header
        return self._trace

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
    if not _enabled(environ, "RDSGATE_TRACING") or _enabled(environ, "POWERTOOLS_TRACE_DISABLED", default=False):
        return False
    return bool(environ.get("LAMBDA_TASK_ROOT"))


# The process-wide instances the entry points are meant to use (see docs/OPERATIONS.md).
TRACING = Tracing()
