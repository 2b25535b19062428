"""botocore clients made on first use, one session per process: what the statements, reviews and sessions modules call AWS with."""

from __future__ import annotations

import threading
from typing import Any, Callable


class Clients:
    """One botocore client per service, created when first asked for; ``configure(service)``: its botocore Config."""

    def __init__(self, configure: Callable[[str], Any] | None = None) -> None:
        self._configure = configure
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                from botocore.session import get_session

                if self._session is None:
                    self._session = get_session()
                options = {"config": self._configure(service)} if self._configure is not None else {}
                self._clients[service] = self._session.create_client(service, **options)
            return self._clients[service]

    def reset(self) -> None:
        """Forget the clients and the session (tests, a changed environment)."""
        with self._lock:
            self._clients.clear()
            self._session = None


# Clients without a Config of their own, shared by the modules that need one (the session runner's Lambda client).
CLIENTS = Clients()


def dynamodb_client() -> Any:
    """A new DynamoDB client: the default of the tables that are not handed one (botocore directly:
    boto3's import, s3transfer and the resource layer, costs a cold start ~20 ms)."""
    from botocore.session import get_session

    return get_session().create_client("dynamodb")
