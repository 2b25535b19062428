"""Session settings, resolved from the environment (``RDSGATE_SESSION*``) at each call on purpose.

The environment can change between invocations (tests, a local server reconfigured); the gateway and
the runner resolve the settings per call and build their store and runner again only when they differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

# Defaults: the RDS Data API's idle timeout (3 minutes); the rest sized for Lambda (docs/SCALING.md).
DEFAULT_IDLE_SECONDS = 180.0
DEFAULT_LEASE_SECONDS = 10.0
DEFAULT_POLL_MS = 10.0
DEFAULT_START_SECONDS = 20.0
DEFAULT_MAX_PER_CONNECTION = 20
DEFAULT_MAX_PER_CALLER = 10


@dataclass(frozen=True)
class SessionSettings:
    """How sessions behave; ``table`` None means sessions are off."""

    table: str | None = None
    runner_function: str | None = None  # the runner's Lambda function (name or ARN); None: a local launcher
    idle_seconds: float = DEFAULT_IDLE_SECONDS  # no call for this long: the transaction is rolled back
    lease_seconds: float = DEFAULT_LEASE_SECONDS  # a runner not heard from for this long is gone
    poll_ms: float = DEFAULT_POLL_MS  # how often each side reads the channel while it waits
    start_seconds: float = DEFAULT_START_SECONDS  # how long a begin waits for its runner to hold BEGIN
    max_per_connection: int = DEFAULT_MAX_PER_CONNECTION
    max_per_caller: int = DEFAULT_MAX_PER_CALLER

    @property
    def enabled(self) -> bool:
        return bool(self.table)

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> SessionSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable, kind, minimum in (
            ("table", "RDSGATE_SESSIONS_TABLE", str, None),
            ("runner_function", "RDSGATE_SESSION_RUNNER", str, None),
            ("idle_seconds", "RDSGATE_SESSION_IDLE_SECONDS", float, 0.1),
            ("lease_seconds", "RDSGATE_SESSION_LEASE_SECONDS", float, 0.5),
            ("poll_ms", "RDSGATE_SESSION_POLL_MS", float, 1.0),
            ("start_seconds", "RDSGATE_SESSION_START_SECONDS", float, 0.5),
            ("max_per_connection", "RDSGATE_MAX_SESSIONS_PER_CONNECTION", int, 1),
            ("max_per_caller", "RDSGATE_MAX_SESSIONS_PER_CALLER", int, 1),
        ):
            if explicit.get(name) is not None:
                values[name] = explicit[name]
            elif env.get(variable):
                try:
                    value = kind(env[variable])
                except ValueError:
                    raise ValueError(f"environment variable {variable} must be a {kind.__name__}") from None
                if minimum is not None and value < minimum:
                    raise ValueError(f"environment variable {variable} must be at least {minimum}")
                values[name] = value
        return cls(**values)
