"""The composition root: settings, the one service built from them with its AWS clients, and the process-wide holder.

Configuration is resolved here and only here: explicit argument, then the
environment, then the default. The core below takes plain arguments; the entry
points (``api``, ``invoke``, ``worker``, the routers) only translate (``rdsgate.edge``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .audit import DynamoDBAuditTrail
from .catalog import DefinitionCatalog
from .errors import InternalError
from .idempotency import IdempotentRunner
from .pool import ConnectionPool
from .service import Limits, QueryService, StructuredLogger
from .telemetry import NoopRecorder, Recorder, recorder
from .tokens import TokenSigner
from .tracing import trace_facts

__all__ = [
    "LOGGER",
    "SERVICE",
    "SecretKey",
    "ServiceHolder",
    "Settings",
    "begin_invocation",
    "build_service",
    "cors_origins",
    "trace_facts",
]


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with."""

    connections_table: str
    region: str | None = None
    definition_ttl_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    statement_timeout_ms: int | None = None
    max_request_bytes: int = 1_048_576
    default_max_rows: int = 10_000
    audit_table: str | None = None
    audit_ttl_days: int = 90
    idempotency_table: str | None = None
    idempotency_expiry_seconds: int = 3600
    masking_key: str | None = None
    masking_key_secret_arn: str | None = None
    max_batch_sets: int = 1000
    max_transaction_statements: int = 50

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
            ("default_max_rows", "RDSGATE_DEFAULT_MAX_ROWS", int),
            ("audit_table", "RDSGATE_AUDIT_TABLE", str),
            ("audit_ttl_days", "RDSGATE_AUDIT_TTL_DAYS", int),
            ("idempotency_table", "RDSGATE_IDEMPOTENCY_TABLE", str),
            ("idempotency_expiry_seconds", "RDSGATE_IDEMPOTENCY_EXPIRY_SECONDS", int),
            ("masking_key", "RDSGATE_MASKING_KEY", str),
            ("masking_key_secret_arn", "RDSGATE_MASKING_KEY_SECRET_ARN", str),
            ("max_batch_sets", "RDSGATE_MAX_BATCH_SETS", int),
            ("max_transaction_statements", "RDSGATE_MAX_TRANSACTION_STATEMENTS", int),
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


def build_service(settings: Settings, logger: StructuredLogger, metrics: Recorder | None = None, *, aws: Any = None) -> QueryService:
    """Wire the core from settings; ``metrics`` is the environment's recorder (none: nothing is counted);
    ``aws``: the AWS calls (``dynamodb()``, ``credentials()``, ``client(service, region)``), else ``_AwsSession``'s."""
    aws = aws or _AwsSession(settings.region)
    catalog = DefinitionCatalog(
        settings.connections_table, ttl_seconds=settings.definition_ttl_seconds, client_factory=aws.dynamodb
    )
    pool = ConnectionPool(
        TokenSigner(settings.region, credentials=aws.credentials),
        connect_timeout=settings.connect_timeout_seconds,
        default_statement_timeout_ms=settings.statement_timeout_ms,
        metrics=metrics,
    )
    # The key of hashed masks: RDSGATE_MASKING_KEY, else the deployment's secret (read on the first hashed
    # value, never at init: SnapStart), else one drawn here, on the first request, for this environment only.
    masking_key: bytes | Callable[[], bytes]
    if settings.masking_key:
        masking_key = settings.masking_key.encode()
    elif settings.masking_key_secret_arn:
        masking_key = SecretKey(settings.masking_key_secret_arn, aws)
    else:
        masking_key = os.urandom(32)
    limits = Limits(
        default_max_rows=settings.default_max_rows,
        statement_timeout_ms=settings.statement_timeout_ms,
        masking_key=masking_key,
        max_request_bytes=settings.max_request_bytes,
        max_batch_sets=settings.max_batch_sets,
        max_transaction_statements=settings.max_transaction_statements,
    )
    audit = (
        DynamoDBAuditTrail(settings.audit_table, ttl_days=settings.audit_ttl_days, client_factory=aws.dynamodb)
        if settings.audit_table
        else None
    )
    idempotency = (
        IdempotentRunner(settings.idempotency_table, expires_after_seconds=settings.idempotency_expiry_seconds)
        if settings.idempotency_table
        else None
    )
    return QueryService(catalog, pool, logger, limits=limits, audit_sink=audit, metrics=metrics, idempotency=idempotency)


class _AwsSession:
    """The function's AWS calls: one DynamoDB client and one source of credentials, created on first use.

    The definitions table, the audit trail and the token signer share them. Where it is safe
    (``rdsgate.awsapi.direct_calls_allowed``: Lambda's credentials in the environment, a known
    endpoint, no proxy), DynamoDB is called and tokens are signed without botocore, which
    saves a cold start the ~200 ms of a botocore session, client and signer; otherwise one
    botocore session serves both (never boto3: its import alone costs ~60 ms).
    """

    def __init__(self, region: str | None = None) -> None:
        self._region = region
        self._session: Any = None
        self._dynamodb: Any = None

    def _get(self) -> Any:
        if self._session is None:
            from botocore.session import get_session

            self._session = get_session()
        return self._session

    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            from .awsapi import DynamoDBClient

            self._dynamodb = DynamoDBClient.if_allowed(self._region) or self._get().create_client("dynamodb")
        return self._dynamodb

    def client(self, service: str, region: str | None = None) -> Any:
        """A botocore client of the shared session (services the query path calls rarely: Secrets Manager)."""
        return self._get().create_client(service, region_name=region or self._region)

    def credentials(self) -> Any:
        """The environment's credentials, read now (a SnapStart restore changes them), else botocore's chain."""
        from .awsapi import direct_calls_allowed
        from .awsauth import environment_credentials

        if direct_calls_allowed():
            return environment_credentials()
        return self._get().get_credentials()


class SecretKey:
    """The masking key held in Secrets Manager (the stack's ``MaskingKey``), read through botocore when first
    asked for; the masker keeps what it returns, so it is read once per execution environment."""

    def __init__(self, secret_arn: str, aws: Any) -> None:
        self.secret_arn = secret_arn
        self._aws = aws
        self.reads = 0

    def __call__(self) -> bytes:
        parts = self.secret_arn.split(":")
        region = parts[3] if len(parts) > 6 and parts[2] == "secretsmanager" else None
        try:
            client = self._aws.client("secretsmanager", region)
            response = client.get_secret_value(SecretId=self.secret_arn)
        except Exception as exc:  # say which step failed, never the secret
            raise InternalError(
                f"the masking key could not be read from Secrets Manager ({type(exc).__name__}); "
                "the functions need secretsmanager:GetSecretValue on it and a route to Secrets Manager"
            ) from exc
        self.reads += 1
        value = response.get("SecretString")
        key = value.encode("utf-8") if isinstance(value, str) else bytes(response.get("SecretBinary") or b"")
        if len(key) < 16:
            raise InternalError("the masking key in Secrets Manager is shorter than 16 bytes")
        return key


class ServiceHolder:
    """Builds the service on first use, so importing a handler touches no AWS API."""

    def __init__(self, logger: StructuredLogger, metrics: Recorder | None = None, *,
                 build: Callable[[Settings, StructuredLogger, Recorder], QueryService] = build_service) -> None:
        self._logger = logger
        self._build = build
        self.metrics: Recorder = metrics or NoopRecorder()
        self._service: QueryService | None = None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.resolve()
        return self._settings

    def get(self) -> QueryService:
        if self._service is None:
            self._service = self._build(self.settings, self._logger, self.metrics)
        return self._service

    def reset(self) -> None:
        """Forget the service and its connections (tests, or a changed environment)."""
        if self._service is not None:
            self._service.pool.close_all()
        self._service = None
        self._settings = None


def cors_origins(environ: Mapping[str, str] | None = None) -> list[str]:
    """Origins allowed to call the API from a browser: ``RDSGATE_CORS_ORIGINS``, comma-separated."""
    env = os.environ if environ is None else environ
    return [origin.strip() for origin in env.get("RDSGATE_CORS_ORIGINS", "").split(",") if origin.strip()]


def _make_logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "rdsgate")


LOGGER = _make_logger()
# The environment's metrics (rdsgate.telemetry): RDSGATE_METRICS, RDSGATE_METRICS_PER_CONNECTION and
# POWERTOOLS_SERVICE_NAME, read once; the entry points flush it once per invocation. Nothing is
# imported or written until the first request records something.
METRICS = recorder()
SERVICE = ServiceHolder(LOGGER, METRICS)


def begin_invocation(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """At each invocation's start, at the edge: the log-sampling decision (``POWERTOOLS_LOGGER_SAMPLE_RATE``:
    that share of invocations logs at DEBUG) and the X-Ray trace id, returned for the audit record."""
    env = os.environ if environ is None else environ
    if env.get("POWERTOOLS_LOGGER_SAMPLE_RATE"):
        LOGGER.refresh_sample_rate_calculation()
    return trace_facts(env)

