"""At-most-once execution of requests that carry an ``idempotencyKey`` (Powertools idempotency).

The key is scoped to the caller and the connection; the request's SQL and
parameters are the payload, so reusing a key for a different request is refused
instead of silently returning another request's result.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

from .errors import DatabaseUnavailable, InvalidRequest


class IdempotentRunner:
    """Runs a function once per key within the expiry window; later calls get the stored result.

    Powertools is imported on the first keyed request, not when the service is built (cold start).
    """

    def __init__(self, table_name: str, *, expires_after_seconds: int = 3600) -> None:
        self.table_name = table_name
        self.expires_after_seconds = expires_after_seconds
        self._config: Any = None
        self._run_once: Any = None

    def _build(self) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="payload",
            expires_after_seconds=self.expires_after_seconds,
            raise_on_no_idempotency_key=True,
        )
        persistence = DynamoDBPersistenceLayer(table_name=self.table_name)

        @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=self._config)
        def run_once(request: dict[str, Any], work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return work()

        self._run_once = run_once

    def run(self, key: dict[str, Any], payload: dict[str, Any], work: Callable[[], dict[str, Any]], remaining_ms: float | None = None) -> dict[str, Any]:
        """``work()`` once per ``key``; ``remaining_ms``: the invocation's time left (an in-progress record expires with it)."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        if self._run_once is None:
            self._build()
        if remaining_ms is not None:
            self._config.register_lambda_context(_TimeLeft(remaining_ms))
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        try:
            return self._run_once(request={"key": key, "payload": digest}, work=work)
        except IdempotencyValidationError:
            raise InvalidRequest(
                "idempotencyKey: this key was already used for a different request", field="idempotencyKey"
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise DatabaseUnavailable("a request with this idempotencyKey is still running; retry later", retry_after=2) from None
        except IdempotencyPersistenceLayerError as exc:
            raise DatabaseUnavailable(f"the idempotency table could not be used ({type(exc.__cause__ or exc).__name__})") from None


class _TimeLeft:
    """What Powertools asks of a Lambda context: the time left, counted down from the number the service was given."""

    def __init__(self, remaining_ms: float) -> None:
        self._ends = time.monotonic() * 1000 + remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self._ends - time.monotonic() * 1000), 0)
