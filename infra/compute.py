"""Lambda functions: the two query functions (API and invoke) sharing one role, what every function that runs
statements shares, and a factory for the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import nag
from .access import DbConnectPolicies, DeployedConnection
from .bundling import ARCHITECTURE, RUNTIME
from .primitives import function_role, log_group
from .settings import Settings

if TYPE_CHECKING:
    from .network import Network

LIVE_ALIAS = "live"  # the alias callers invoke when SnapStart is on
AUDIT_ACTIONS = ("dynamodb:PutItem", "dynamodb:Query")
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


def rdsgate_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str,
    role: iam.Role,
    settings: Settings,
    description: str,
    environment: Mapping[str, str] | None = None,
    network: Network | None = None,
    security_group: ec2.ISecurityGroup | None = None,
    memory_size: int | None = None,
    timeout: cdk.Duration | None = None,
    snap_start: bool = False,
) -> lambda_.Function:
    """One function of the rdsgate asset, with its own log group; in the VPC's private subnets if `network`."""
    logs_group = log_group(scope, f"{construct_id}Logs", settings.log_retention_days)
    logs_group.grant_write(role)
    vpc_props = {}
    if network is not None:
        vpc_props = dict(
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[security_group or network.security_group],
        )
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=code,
        handler=handler,
        role=role,
        memory_size=memory_size or settings.memory_size,
        timeout=timeout or cdk.Duration.seconds(settings.timeout_seconds),
        environment={
            # The logs' service field and the metrics' service dimension: the stack, so stacks keep apart.
            "POWERTOOLS_SERVICE_NAME": settings.stack_name,
            "POWERTOOLS_LOG_LEVEL": settings.log_level,
            **({"POWERTOOLS_LOGGER_SAMPLE_RATE": str(settings.log_sample_rate / 100)} if settings.log_sample_rate else {}),
            **(environment or {}),
        },
        tracing=lambda_.Tracing.ACTIVE,
        log_group=logs_group,
        # SnapStart (docs/OPERATIONS.md): a snapshot after init, restored for each new environment of a version.
        snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
        **vpc_props,
    )
    nag.acknowledge_runtime(function)
    return function


def helper_function(
    scope: Construct,
    name: str,
    *,
    code: lambda_.Code,
    handler: str,
    settings: Settings,
    description: str,
    role_description: str,
    grant: Callable[[iam.Role], object],
    environment: Mapping[str, str] | None = None,
    network: Network | None = None,
    security_group: ec2.ISecurityGroup | None = None,
) -> tuple[iam.Role, lambda_.Function]:
    """A small function (256 MB, two minutes) behind a custom resource or a schedule: `<name>Role`, which
    `grant` fills before `<name>Function` exists; in the VPC if `network`."""
    role = function_role(scope, f"{name}Role", description=role_description, in_vpc=network is not None)
    grant(role)
    function = rdsgate_function(
        scope,
        f"{name}Function",
        code=code,
        handler=handler,
        role=role,
        settings=settings,
        description=description,
        environment=environment,
        network=network,
        security_group=security_group,
        memory_size=256,
        timeout=cdk.Duration.minutes(2),
    )
    nag.acknowledge_function_role(role)
    return role, function


def definitions_environment(connections_table: dynamodb.ITable, audit_table: dynamodb.ITable, settings: Settings) -> dict[str, str]:
    """Where every function that runs statements reads the definitions and writes the audit trail."""
    return {
        "RDSGATE_CONNECTIONS_TABLE": connections_table.table_name,
        "RDSGATE_AUDIT_TABLE": audit_table.table_name,
        "RDSGATE_AUDIT_TTL_DAYS": str(settings.audit_ttl_days),
    }


@dataclass(frozen=True)
class StatementRunners:
    """What the functions that run statements besides the query functions (the statements worker, the session
    runner) share: the asset, the network, the definitions and audit tables and the deployed connections."""

    code: lambda_.Code
    network: Network
    settings: Settings
    connections_table: dynamodb.ITable
    audit_table: dynamodb.ITable
    connections: Sequence[DeployedConnection]

    def role(self, scope: Construct, construct_id: str, *, description: str) -> iam.Role:
        """A role in the VPC that reads the definitions, appends audit records and connects as the connections'
        database users (`DbConnect` beside it); the caller adds what is the function's own."""
        role = function_role(scope, construct_id, description=description, in_vpc=True)
        self.connections_table.grant_read_data(role)
        self.audit_table.grant(role, *AUDIT_ACTIONS)
        DbConnectPolicies(scope, "DbConnect", role=role, connections=self.connections)
        return role

    def function(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role: iam.Role,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        memory_size: int,
        timeout_seconds: int,
        max_event_age: cdk.Duration,
    ) -> lambda_.Function:
        """The function, started by an asynchronous invocation that is never retried: what it runs runs once."""
        function = rdsgate_function(
            scope,
            construct_id,
            code=self.code,
            handler=handler,
            role=role,
            settings=self.settings,
            description=description,
            environment={**definitions_environment(self.connections_table, self.audit_table, self.settings), **environment},
            network=self.network,
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(timeout_seconds),
        )
        function.configure_async_invoke(retry_attempts=0, max_event_age=max_event_age)
        return function


class QueryFunctions(Construct):
    """rdsgate.api.handler behind API Gateway and rdsgate.invoke.handler for Step Functions, in the VPC."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        network: Network,
        table: dynamodb.ITable,
        audit_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        # One role for both: they run the same queries, so they need the same rds-db:connect grants.
        self.role = function_role(self, "Role", description="rdsgate query functions", in_vpc=True)
        table.grant_read_data(self.role)
        # Exactly what the functions do with each table: append and read the trail (never scan or erase it),
        # and Powertools' idempotency record life cycle.
        audit_table.grant(self.role, *AUDIT_ACTIONS)
        idempotency_table.grant(self.role, *IDEMPOTENCY_ACTIONS)
        nag.acknowledge_function_role(self.role)
        environment = {
            **definitions_environment(table, audit_table, settings),
            "RDSGATE_IDEMPOTENCY_TABLE": idempotency_table.table_name,
        }
        if settings.definition_ttl_seconds is not None:
            environment["RDSGATE_DEFINITION_TTL_SECONDS"] = str(settings.definition_ttl_seconds)
        # rdsgate.telemetry: EMF metrics go to the function's log (no permission beyond the log group's).
        if not settings.metrics:
            environment["RDSGATE_METRICS"] = "false"
        elif not settings.metrics_per_connection:
            environment["RDSGATE_METRICS_PER_CONNECTION"] = "false"
        common = dict(
            code=code, role=self.role, settings=settings, environment=environment, network=network, snap_start=settings.snap_start
        )
        self.api_function = rdsgate_function(
            self, "ApiFunction", handler="rdsgate.api.handler", description="rdsgate REST API", **common
        )
        self.invoke_function = rdsgate_function(
            self, "InvokeFunction", handler="rdsgate.invoke.handler", description="rdsgate direct invoke", **common
        )
        # What callers invoke: with SnapStart an alias of the published version (SnapStart restores versions
        # only, never $LATEST), else the functions themselves.
        self.api_target: lambda_.IFunction = self.api_function
        self.invoke_target: lambda_.IFunction = self.invoke_function
        if settings.snap_start:
            for function in (self.api_function, self.invoke_function):
                cdk.Annotations.of(function).acknowledge_warning(
                    "@aws-cdk/aws-lambda:snapStartRequirePublish", "its current version is published behind the live alias"
                )
            self.api_target = lambda_.Alias(self, "ApiLive", alias_name=LIVE_ALIAS, version=self.api_function.current_version)
            self.invoke_target = lambda_.Alias(
                self, "InvokeLive", alias_name=LIVE_ALIAS, version=self.invoke_function.current_version
            )
