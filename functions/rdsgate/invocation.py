"""What the query service is given: the facts of one call, the service-wide limits, and the collaborators it
is handed by the composition root (``rdsgate.runtime``): a logger and an at-most-once runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from .access import Caller


class StructuredLogger(Protocol):
    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...

    def error(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


class Idempotency(Protocol):
    """At-most-once execution per key (``rdsgate.idempotency``): ``work()`` once, later calls get its result."""

    def run(self, scope: dict[str, Any], payload: dict[str, Any], work: Callable[[], dict[str, Any]],
            remaining_ms: float | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Limits:
    """Service-wide defaults; definitions and requests may only lower them."""

    default_max_rows: int = 10_000
    max_rows_ceiling: int = 1_000_000
    statement_timeout_ms: int | None = None
    masking_key: bytes | Callable[[], bytes] = b""  # a callable: the key's source, asked on the first hashed value
    # What a request may hold: its body's bytes, a batch's parameter sets, a transaction's statements.
    max_request_bytes: int = 1_048_576
    max_batch_sets: int = 1000
    max_transaction_statements: int = 50


@dataclass(frozen=True)
class Invocation:
    """Facts about the call that carries a request: who, which request, how much time and room."""

    caller: Caller
    result_limit_bytes: int
    request_id: str | None = None
    remaining_ms: float | None = None  # the function's remaining time, when known
    route: str | None = None  # e.g. "POST /connections/{name}/query", or "invoke"
    # What the audit record carries beside the verified caller: a claimed caller, the
    # invoked function's ARN, a Step Functions execution ARN.
    audit_context: Mapping[str, Any] = field(default_factory=dict)
