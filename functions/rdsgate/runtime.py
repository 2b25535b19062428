"""The process-wide service for the Lambda entry points, configured at the edge.

Configuration is resolved here and only here: explicit argument, then the
environment, then the default. The core below takes plain arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from .catalog import DefinitionCatalog
from .pool import ConnectionPool
from .service import QueryService, StructuredLogger
from .tokens import TokenSigner

API_RESPONSE_LIMIT_BYTES = 6_000_000  # Lambda's 6 MB response limit, less room for the envelope
STEP_FUNCTIONS_LIMIT_BYTES = 262_144  # Step Functions' 256 KiB payload limit


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with."""

    connections_table: str
    region: str | None = None
    definition_ttl_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    statement_timeout_ms: int | None = None
    max_request_bytes: int = 1_048_576

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Explicit keyword arguments win, then ``RDSGATE_*`` variables, then the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable, kind in (
            ("connections_table", "RDSGATE_CONNECTIONS_TABLE", str),
            ("region", "AWS_REGION", str),
            ("definition_ttl_seconds", "RDSGATE_DEFINITION_TTL_SECONDS", float),
            ("connect_timeout_seconds", "RDSGATE_CONNECT_TIMEOUT_SECONDS", float),
            ("statement_timeout_ms", "RDSGATE_STATEMENT_TIMEOUT_MS", int),
            ("max_request_bytes", "RDSGATE_MAX_REQUEST_BYTES", int),
        ):
            if explicit.get(name) is not None:
                values[name] = explicit[name]
            elif env.get(variable):
                try:
                    values[name] = kind(env[variable])
                except ValueError:
                    raise ValueError(f"environment variable {variable} must be a {kind.__name__}") from None
        if not values.get("connections_table"):
            raise ValueError("RDSGATE_CONNECTIONS_TABLE is not set: name the DynamoDB connections table")
        values.setdefault("region", env.get("AWS_DEFAULT_REGION"))
        return cls(**values)


def build_service(settings: Settings, logger: StructuredLogger) -> QueryService:
    """Wire the core from settings."""
    catalog = DefinitionCatalog(settings.connections_table, ttl_seconds=settings.definition_ttl_seconds)
    pool = ConnectionPool(
        TokenSigner(settings.region),
        connect_timeout=settings.connect_timeout_seconds,
        default_statement_timeout_ms=settings.statement_timeout_ms,
    )
    return QueryService(catalog, pool, logger)


class ServiceHolder:
    """Builds the service on first use, so importing a handler touches no AWS API."""

    def __init__(self, logger: StructuredLogger) -> None:
        self._logger = logger
        self._service: QueryService | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.resolve()
        return self._settings

    def get(self) -> QueryService:
        if self._service is None:
            self._service = build_service(self.settings, self._logger)
        return self._service

    def reset(self) -> None:
        """Forget the service and its connections (tests, or a changed environment)."""
        if self._service is not None:
            self._service.pool.close_all()
        self._service = None
        self._settings = None


def _make_logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "rdsgate")


LOGGER = _make_logger()
SERVICE = ServiceHolder(LOGGER)
