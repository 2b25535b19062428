"""Starting a session runner: an asynchronous Lambda invocation, or a local stand-in.

Deployed, the API and invoke functions call ``lambda:InvokeFunction`` with
``InvocationType=Event`` on the runner function (through the VPC's Lambda interface
endpoint); the runner function retries nothing (a begin that gave up is final). Locally,
``rdsgate serve`` and the tests register a launcher that runs the same ``runner.handler``
in worker processes (``rdsgate_devstack.sessions_local``).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from ..botoclients import CLIENTS
from ..errors import DatabaseUnavailable

__all__ = ["launcher_for", "use_local_launcher"]


class Launcher(Protocol):
    def launch(self, event: dict[str, Any]) -> None: ...


class LambdaLauncher:
    """Invokes the runner function asynchronously (botocore; the client is made on first use, by default the
    process's shared Lambda client: ``botoclients.CLIENTS``)."""

    def __init__(self, function: str, client_factory: Any = None) -> None:
        self.function = function
        self._client_factory = client_factory
        self._client: Any = None

    def launch(self, event: dict[str, Any]) -> None:
        if self._client is None:
            self._client = self._client_factory() if self._client_factory is not None else CLIENTS.get("lambda")
        try:
            self._client.invoke(FunctionName=self.function, InvocationType="Event", Payload=json.dumps(event).encode())
        except Exception as exc:
            raise DatabaseUnavailable(f"the session runner could not be started ({type(exc).__name__})", retry_after=1) from exc


_LOCAL: Launcher | None = None
_LAMBDA: dict[str, LambdaLauncher] = {}  # one per runner function, kept for the process: its client serves every BEGIN
_LAMBDA_LOCK = threading.Lock()


def use_local_launcher(launcher: Launcher | None) -> None:
    """Register (or, with None, remove) the launcher used when no runner function is configured."""
    global _LOCAL
    _LOCAL = launcher


def launcher_for(function: str | None) -> Launcher:
    if function:
        with _LAMBDA_LOCK:
            launcher = _LAMBDA.get(function)
            if launcher is None:
                launcher = _LAMBDA[function] = LambdaLauncher(function)
        return launcher
    if _LOCAL is not None:
        return _LOCAL
    raise DatabaseUnavailable("sessions have no runner: set RDSGATE_SESSION_RUNNER to the runner function")
