"""Metrics of the service: what operators alarm on, and nothing a caller sent.

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

The traces are :mod:`rdsgate.tracing`'s, which shares the checked connection dimension.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from typing import Any, Mapping, Protocol

from .errors import RdsgateError

__all__ = [
    "NAMESPACE", "MAX_VALUES", "SERVICE", "CONNECTION", "ERROR_CODE", "REQUESTS", "ERRORS", "DURATION",
    "DATABASE_TIME", "ROWS", "RESPONSE_BYTES", "CONNECTIONS_OPENED", "CONNECTIONS_REUSED", "TOKENS_SIGNED",
    "LOGIN_FAILURES", "DENIED", "AUDIT_WRITE_FAILURES", "UNITS", "ERROR_CODES", "OTHER_CODE", "DENIAL_KINDS",
    "SERVER_ERROR_CODES", "env_flag", "error_code_dimension", "connection_dimension", "Recorder", "NoopRecorder",
    "EmfRecorder", "recorder",
]

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

def env_flag(environ: Mapping[str, str], name: str, default: bool = True) -> bool:
    """A true/false setting from the environment; unset or empty: `default`."""
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


_UNANSWERED = object()  # EmfRecorder: no request recorded since the last response or flush


class EmfRecorder:
    """CloudWatch EMF, one document per (connection, error code) per flush, in the shape of Powertools' EMF
    provider (written here: the provider's checks and enum lookups cost a warm request ~40 µs).

    Counts and timings go to a document whose dimension sets are ``[service]`` and, per connection,
    ``[service, connection]``; ``Errors`` and ``Denied`` go to one that adds ``[service, errorCode]``.
    """

    def __init__(self, service: str = NAMESPACE, *, per_connection: bool = True, namespace: str = NAMESPACE) -> None:
        self.service = service
        self.per_connection = per_connection
        self.namespace = namespace
        self._documents: dict[tuple[str | None, str | None], dict[str, list[float]]] = {}
        self._answered: Any = _UNANSWERED  # the connection dimension of this invocation's last request (None: no connection)

    # -- what the core reports -------------------------------------------------------------------

    def request(self, connection, error_code, duration_ms, database_ms=None, rows=None, response_bytes=None) -> None:
        code = error_code_dimension(error_code)
        name = connection_dimension(connection, code)
        self._answered = name
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
        if self._answered is not _UNANSWERED:
            self._add(self._answered, None, RESPONSE_BYTES, size)
            self._answered = _UNANSWERED

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
        self._answered = _UNANSWERED
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
    if not (env_flag(env, "RDSGATE_METRICS") if enabled is None else enabled):
        return NoopRecorder()
    return EmfRecorder(
        service or env.get("POWERTOOLS_SERVICE_NAME") or NAMESPACE,
        per_connection=env_flag(env, "RDSGATE_METRICS_PER_CONNECTION") if per_connection is None else per_connection,
    )
