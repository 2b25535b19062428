"""Deploy settings: CDK context and the connections file, resolved and validated once, at the edge.

Over 400 lines on purpose: every context key's parsing and check in one place, one function per section.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import aws_cdk as cdk

from rdsgate.definitions import ConnectionDefinition, parse_definition
from rdsgate.sql import DEFAULT_PORTS, RDS_ENDPOINT
from rdsgate.errors import InvalidDefinition

ROOT = Path(__file__).resolve().parent.parent

# Every context key the app reads, with its default. `cdk.json` may set any of them; `-c key=value` overrides.
DEFAULTS: dict[str, Any] = {
    "stackName": "rdsgate",
    "account": None,  # both account and region unset: an environment-agnostic stack
    "region": None,
    "azs": None,  # required with account/region when rdsgate creates the VPC, so synth never looks AZs up
    "connections": "infra/connections.example.json",
    "vpcId": None,  # set vpcId + subnetIds to import a VPC instead of creating one
    "subnetIds": None,
    "securityGroupId": None,  # imported VPC only; without it the stack creates the functions' group
    "demo": False,
    "proxy": None,  # name of the connection to put an RDS Proxy in front of
    "proxyTarget": None,  # the proxied DB instance/cluster identifier, if not the first label of its host
    "memorySize": 512,
    "timeoutSeconds": 30,
    "logLevel": "INFO",
    "logSampleRate": 0,  # percent of invocations logged at DEBUG whatever logLevel says (0: none)
    "logRetentionDays": 30,
    "definitionTtlSeconds": None,
    "auditTtlDays": 90,  # how long audit records are kept (DynamoDB TTL)
    "stageName": "v1",
    "throttleRateLimit": 50,
    "throttleBurstLimit": 100,
    "corsOrigins": None,
    # The web console (docs/CONSOLE.md): S3 + CloudFront, Cognito sign-in, one IAM role per group.
    "console": False,
    "consoleGroups": None,  # {"group": ["connection", …] or ["*"]}; default {"rdsgate-users": ["*"]}
    "consoleDomainPrefix": None,  # the hosted UI's domain prefix; default "<stackName>-<account id>"
    # Production monitoring (docs/OPERATIONS.md): rdsgate's EMF metrics, alarms and a dashboard.
    "metrics": True,  # RDSGATE_METRICS: the functions write EMF metrics (namespace rdsgate)
    "metricsPerConnection": True,  # RDSGATE_METRICS_PER_CONNECTION: also one series per connection
    "monitoring": True,  # the alarms and the dashboard
    "alarmTopic": None,  # "create" (a new SNS topic) or an existing topic's ARN: where alarms notify
    "alarmErrorRatePercent": 5,  # server-side errors per request, over 5 minutes
    "alarmDurationP99Ms": 5000,  # rdsgate's Duration p99, over 5 minutes
    # Hashed masks' key (docs/SECURITY.md): one per deployment, in Secrets Manager, read by the functions that mask.
    "maskingKey": "auto",  # "auto": when a connection of the file has "mask": "hash"; "create": always; "none": never
    # Lambda SnapStart for the query functions (docs/OPERATIONS.md, SnapStart): off by default.
    "snapStart": False,
}

DEMO_CONNECTION = "demo"
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
AUDIT_TTL_DAYS_MAX = 3653  # ten years; DynamoDB TTL has no limit, but a larger value is surely a typo
LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"})
_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
CREATE_TOPIC = "create"


class ConfigError(ValueError):
    """The context or the connections file is invalid; the message names the key or connection."""


@dataclass(frozen=True)
class Connection:
    """One connection of the file: the item as written (what the table stores) and its parsed form."""

    item: Mapping[str, Any]
    definition: ConnectionDefinition

    @property
    def name(self) -> str:
        return self.definition.name


@dataclass(frozen=True)
class ImportedVpc:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    security_group_id: str | None


@dataclass(frozen=True)
class ProxySettings:
    connection: str
    target: str | None  # DB instance or cluster identifier; None for the demo database


@dataclass(frozen=True)
class ConsoleGroup:
    """A Cognito group of the console and the connections its IAM role may use."""

    name: str
    connections: tuple[str, ...]


@dataclass(frozen=True)
class ConsoleSettings:
    groups: tuple[ConsoleGroup, ...]
    domain_prefix: str | None  # None: "<stackName>-<account id>"


@dataclass(frozen=True)
class MonitoringSettings:
    """The alarms and the dashboard (infra/monitoring.py)."""

    topic: str | None  # None: alarms notify nobody; CREATE_TOPIC; or an existing topic's ARN
    error_rate_percent: int
    duration_p99_ms: int


@dataclass(frozen=True)
class Settings:
    stack_name: str
    account: str | None
    region: str | None
    azs: tuple[str, ...] | None
    connections_file: Path
    connections: tuple[Connection, ...]
    vpc: ImportedVpc | None
    demo: bool
    proxy: ProxySettings | None
    memory_size: int
    timeout_seconds: int
    log_level: str
    log_sample_rate: int  # percent; Powertools' POWERTOOLS_LOGGER_SAMPLE_RATE when above 0
    log_retention_days: int
    definition_ttl_seconds: int | None
    audit_ttl_days: int
    stage_name: str
    throttle_rate_limit: int
    throttle_burst_limit: int
    cors_origins: tuple[str, ...] = field(default=())
    console: ConsoleSettings | None = None
    metrics: bool = True
    metrics_per_connection: bool = True
    monitoring: MonitoringSettings | None = None
    masking_key_secret: bool = False  # the stack creates the masking key (context maskingKey)
    snap_start: bool = False

    @property
    def environment(self) -> cdk.Environment | None:
        if self.account is None and self.region is None:
            return None
        return cdk.Environment(account=self.account, region=self.region)

    @property
    def az_lookup_context(self) -> dict[str, list[str]]:
        """The cached answer of the AZ lookup, so that a concrete-environment synth needs no credentials."""
        if self.account and self.region and self.azs:
            return {f"availability-zones:account={self.account}:region={self.region}": list(self.azs)}
        return {}

    @classmethod
    def from_context(cls, get: Callable[[str], Any], *, root: Path = ROOT) -> Settings:
        """Resolve every setting from `get` (a node's try_get_context), falling back to DEFAULTS."""
        ctx = _Context(get)
        account, region = ctx.text("account"), ctx.text("region")
        if (account is None) != (region is None):
            raise ConfigError("context: set both 'account' and 'region', or neither (environment-agnostic stack)")
        azs = ctx.texts("azs")
        vpc = _imported_vpc(ctx)
        if vpc is None and region is not None and not azs:
            raise ConfigError(
                "context: 'azs' is required when 'region' is set and rdsgate creates the VPC "
                f"(e.g. -c azs={region}a,{region}b), so that synth needs no AWS lookup"
            )
        connections_file = root / ctx.text("connections")
        connections = load_connections(connections_file)
        demo = ctx.boolean("demo")
        if demo and any(c.name == DEMO_CONNECTION for c in connections):
            raise ConfigError(f"{connections_file}: the connection name {DEMO_CONNECTION!r} is reserved with demo=true")
        log_retention_days = ctx.integer("logRetentionDays")
        if log_retention_days not in LOG_RETENTION_DAYS:
            raise ConfigError(f"context: 'logRetentionDays' must be one of {sorted(LOG_RETENTION_DAYS)}")
        log_level = ctx.text("logLevel").upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"context: 'logLevel' must be one of {sorted(LOG_LEVELS)}")
        return cls(
            stack_name=ctx.text("stackName"),
            account=account,
            region=region,
            azs=tuple(azs) if azs else None,
            connections_file=connections_file,
            connections=connections,
            vpc=vpc,
            demo=demo,
            proxy=_proxy(ctx, connections, demo),
            memory_size=ctx.integer("memorySize", minimum=128, maximum=10240),
            timeout_seconds=ctx.integer("timeoutSeconds", minimum=1, maximum=900),
            log_level=log_level,
            log_sample_rate=ctx.integer("logSampleRate", minimum=0, maximum=100),
            log_retention_days=log_retention_days,
            definition_ttl_seconds=ctx.integer("definitionTtlSeconds", minimum=0, optional=True),
            audit_ttl_days=ctx.integer("auditTtlDays", minimum=1, maximum=AUDIT_TTL_DAYS_MAX),
            stage_name=ctx.text("stageName"),
            throttle_rate_limit=ctx.integer("throttleRateLimit", minimum=1),
            throttle_burst_limit=ctx.integer("throttleBurstLimit", minimum=1),
            cors_origins=tuple(ctx.texts("corsOrigins") or ()),
            console=_console(ctx, connections, demo),
            metrics=ctx.boolean("metrics"),
            metrics_per_connection=ctx.boolean("metricsPerConnection"),
            monitoring=_monitoring(ctx),
            masking_key_secret=_masking_key(ctx, connections),
            snap_start=ctx.boolean("snapStart"),
        )


def load_connections(path: Path) -> tuple[Connection, ...]:
    """Read and validate the connections file with rdsgate's own parser plus the deploy-time rules."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"connections file {path} does not exist (context 'connections')") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    items = document.get("connections") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected an object with a 'connections' list")
    connections: list[Connection] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: connections[{index}] must be an object")
        try:
            definition = parse_definition(item)
        except InvalidDefinition as exc:
            raise ConfigError(f"{path}: {exc.message}") from None
        _check_deployable(path, definition)
        if definition.name in seen:
            raise ConfigError(f"{path}: connection {definition.name!r} is defined twice")
        seen.add(definition.name)
        connections.append(Connection(item=dict(item), definition=definition))
    return tuple(connections)


def _check_deployable(path: Path, definition: ConnectionDefinition) -> None:
    """The rules that only the deploy file has: it grants IAM access and must never hold a secret."""
    prefix = f"{path}: connection {definition.name!r}:"
    if not definition.uses_iam:
        raise ConfigError(
            f"{prefix} literal passwords are refused in the deploy configuration; "
            "add static-password (development) connections to the table by hand"
        )
    if definition.resource_id is None:
        raise ConfigError(
            f"{prefix} 'resource_id' is required for an IAM definition: the DbiResourceId (db-…) of an "
            "instance, the resource id (cluster-…) of an Aurora cluster, or the id (prx-…) of an RDS Proxy"
        )


def _imported_vpc(ctx: _Context) -> ImportedVpc | None:
    vpc_id, subnet_ids = ctx.text("vpcId"), ctx.texts("subnetIds")
    security_group_id = ctx.text("securityGroupId")
    if vpc_id is None:
        if subnet_ids or security_group_id:
            raise ConfigError("context: 'subnetIds' and 'securityGroupId' need 'vpcId'")
        return None
    if not subnet_ids:
        raise ConfigError("context: 'subnetIds' (the private subnets for the functions) is required with 'vpcId'")
    return ImportedVpc(vpc_id=vpc_id, subnet_ids=tuple(subnet_ids), security_group_id=security_group_id)


def _proxy(ctx: _Context, connections: tuple[Connection, ...], demo: bool) -> ProxySettings | None:
    name, target = ctx.text("proxy"), ctx.text("proxyTarget")
    if name is None:
        if target is not None:
            raise ConfigError("context: 'proxyTarget' needs 'proxy' (the connection to put the proxy in front of)")
        return None
    if name == DEMO_CONNECTION and demo:
        return ProxySettings(connection=name, target=None)
    connection = next((c for c in connections if c.name == name), None)
    if connection is None:
        raise ConfigError(f"context: 'proxy' names {name!r}, which is not a connection of the file (nor the demo)")
    definition = connection.definition
    if definition.resource_id.startswith("prx-"):
        raise ConfigError(f"context: connection {name!r} already goes through a proxy ({definition.resource_id})")
    if target is None:
        match = RDS_ENDPOINT.match(definition.host.lower())
        if match is None or match.group("kind") not in (None, "cluster-", "cluster-ro-"):  # an instance or a cluster
            raise ConfigError(
                f"context: set 'proxyTarget' to the instance or cluster identifier of connection {name!r}; "
                f"it cannot be read from its host {definition.host!r}"
            )
        target = match.group("name")
    return ProxySettings(connection=name, target=target)


CONSOLE_DEFAULT_GROUP = "rdsgate-users"
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
CONSOLE_MAX_GROUPS = 25


def _console(ctx: _Context, connections: tuple[Connection, ...], demo: bool) -> ConsoleSettings | None:
    """The console's groups, each with the connections its role may call; "*" is every deployed connection."""
    enabled = ctx.boolean("console")
    groups_value, prefix = ctx.raw("consoleGroups"), ctx.text("consoleDomainPrefix")
    if not enabled:
        if groups_value is not None or prefix is not None:
            raise ConfigError("context: 'consoleGroups' and 'consoleDomainPrefix' need 'console=true'")
        return None
    if isinstance(groups_value, str):
        try:
            groups_value = json.loads(groups_value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context: 'consoleGroups' is not valid JSON: {exc}") from None
    if groups_value is None:
        groups_value = {CONSOLE_DEFAULT_GROUP: ["*"]}
    if not isinstance(groups_value, dict) or not groups_value:
        raise ConfigError('context: \'consoleGroups\' must be an object such as {"analysts": ["orders", "reports"]}')
    if len(groups_value) > CONSOLE_MAX_GROUPS:
        raise ConfigError(f"context: 'consoleGroups' has more than {CONSOLE_MAX_GROUPS} groups")
    known = [c.name for c in connections] + ([DEMO_CONNECTION] if demo else [])
    groups = []
    for name, members in groups_value.items():
        if not _GROUP_NAME.match(name):
            raise ConfigError(f"context: console group {name!r}: use 1 to 64 letters, digits, '_', '.' or '-'")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"context: console group {name!r} must list connection names (or \"*\")")
        if "*" in members:
            members = known
        unknown = [m for m in members if m not in known]
        if unknown:
            raise ConfigError(
                f"context: console group {name!r} names {unknown[0]!r}, which is not a deployed connection"
            )
        groups.append(ConsoleGroup(name=name, connections=tuple(dict.fromkeys(members))))
    if prefix is not None:
        prefix = prefix.lower()
        if not _DOMAIN_PREFIX.match(prefix) or any(word in prefix for word in ("aws", "amazon", "cognito")):
            raise ConfigError(
                f"context: 'consoleDomainPrefix' {prefix!r} must be lower-case letters, digits and '-' (at most 63), "
                "without 'aws', 'amazon' or 'cognito'"
            )
    return ConsoleSettings(groups=tuple(groups), domain_prefix=prefix)


def _monitoring(ctx: _Context) -> MonitoringSettings | None:
    """Alarms and dashboard, on by default; they read rdsgate's own metrics, so they need them."""
    topic = ctx.text("alarmTopic")
    rate = ctx.integer("alarmErrorRatePercent", minimum=1, maximum=100)
    p99 = ctx.integer("alarmDurationP99Ms", minimum=1, maximum=900_000)
    if not ctx.boolean("monitoring"):
        if ctx.raw("alarmTopic") is not None:
            raise ConfigError("context: 'alarmTopic' needs 'monitoring=true'")
        return None
    if not ctx.boolean("metrics"):
        raise ConfigError("context: 'monitoring' alarms on rdsgate's metrics: set 'metrics=true', or 'monitoring=false'")
    if topic is not None and topic != CREATE_TOPIC and not _SNS_TOPIC_ARN.match(topic):
        raise ConfigError(f"context: 'alarmTopic' must be {CREATE_TOPIC!r} or an SNS topic ARN (got {topic!r})")
    return MonitoringSettings(topic=topic, error_rate_percent=rate, duration_p99_ms=p99)


MASKING_KEY_CHOICES = ("auto", "create", "none")


def _masking_key(ctx: _Context, connections: tuple[Connection, ...]) -> bool:
    """Whether the stack creates the key of hashed masks: asked for, or a deployed connection hashes."""
    choice = (ctx.text("maskingKey") or "").lower()
    if choice not in MASKING_KEY_CHOICES:
        raise ConfigError(f"context: 'maskingKey' must be one of {', '.join(MASKING_KEY_CHOICES)} (got {choice!r})")
    return choice == "create" or (choice == "auto" and any(c.definition.mask == "hash" for c in connections))


def proxy_port(engine: str) -> int:
    """An RDS Proxy listens on its engine family's default port, whatever the database's port."""
    return DEFAULT_PORTS[engine]


class _Context:
    """Typed reads of context values, which are strings with `-c` and JSON values in cdk.json."""

    def __init__(self, get: Callable[[str], Any]) -> None:
        self._get = get

    def raw(self, key: str) -> Any:
        value = self._get(key)
        return DEFAULTS[key] if value is None or value == "" else value

    def text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"context: {key!r} must be a string")
        return str(value)

    def texts(self, key: str) -> list[str] | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = json.loads(value) if value.startswith("[") else value.split(",")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"context: {key!r} must be a list of strings or a comma-separated string")
        return [v.strip() for v in value if v.strip()]

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"context: {key!r} must be true or false")
        return value

    def integer(self, key: str, *, minimum: int = 0, maximum: int | None = None, optional: bool = False) -> Any:
        value = self.raw(key)
        if value is None and optional:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            raise ConfigError(f"context: {key!r} must be a whole number {bound} (got {value!r})")
        return value
