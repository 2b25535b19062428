"""Sessions (issue 15): transactions held across calls. The session table, the runner function, its grants,
the API routes and the VPC endpoint it needs; all of it behind the context flag ``sessions`` (on by default).

The API and invoke functions start a runner with an asynchronous ``lambda:InvokeFunction`` (through the
Lambda interface endpoint: no NAT) and talk to it through the session table (DynamoDB, through the
gateway endpoint). The runner has its own role: the same ``rds-db:connect`` grants as the query
functions, reading definitions, appending audit records, and the session table's items; nothing else.

Context: ``sessions`` (true/false), ``sessionIdleSeconds`` (180: the Data API's idle timeout),
``sessionRunnerTimeoutSeconds`` (900: a session's longest life, Lambda's maximum), ``sessionRunnerMemorySize``
(512), ``maxSessionsPerConnection`` (20) and ``maxSessionsPerCaller`` (10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import nag
from .api import lambda_integration
from .compute import StatementRunners
from .network import Network
from .primitives import transient_table
from .settings import ConfigError

# What each side does with the session table's items (rdsgate.sessions.store): the API side creates a
# session with its limits (TransactWriteItems of Puts), posts requests and reads answers; the runner
# reads requests and writes answers, leases and its end. Large payloads travel as chunk items.
QUERY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")
RUNNER_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem")
DEFAULTS: dict[str, Any] = {
    "sessions": True,
    "sessionIdleSeconds": 180,
    "sessionRunnerTimeoutSeconds": 900,
    "sessionRunnerMemorySize": 512,
    "maxSessionsPerConnection": 20,
    "maxSessionsPerCaller": 10,
}


@dataclass(frozen=True)
class SessionsSettings:
    enabled: bool = True
    idle_seconds: int = 180
    runner_timeout_seconds: int = 900
    runner_memory_size: int = 512
    max_per_connection: int = 20
    max_per_caller: int = 10

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> SessionsSettings:
        def value(key: str) -> Any:
            found = get(key)
            return DEFAULTS[key] if found is None or found == "" else found

        def integer(key: str, low: int, high: int) -> int:
            raw = value(key)
            if isinstance(raw, bool):
                raise ConfigError(f"context: '{key}' must be a whole number")
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"context: '{key}' must be a whole number") from None
            if not low <= number <= high:
                raise ConfigError(f"context: '{key}' must be from {low} to {high}")
            return number

        flag = value("sessions")
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise ConfigError("context: 'sessions' must be true or false")
        settings = cls(
            enabled=flag,
            idle_seconds=integer("sessionIdleSeconds", 1, 3600),
            runner_timeout_seconds=integer("sessionRunnerTimeoutSeconds", 60, 900),
            runner_memory_size=integer("sessionRunnerMemorySize", 128, 10240),
            max_per_connection=integer("maxSessionsPerConnection", 1, 10_000),
            max_per_caller=integer("maxSessionsPerCaller", 1, 10_000),
        )
        if settings.idle_seconds >= settings.runner_timeout_seconds:
            raise ConfigError("context: 'sessionIdleSeconds' must be shorter than 'sessionRunnerTimeoutSeconds'")
        return settings


class Sessions(Construct):
    """The session table and the runner function, wired to the query functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runners: StatementRunners,
        options: SessionsSettings,
        query_role: iam.IRole,
        query_functions: Iterable[lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.options = options
        self.table = transient_table(
            self,
            "Table",
            "id",
            ttl_attribute="expires_at",
            why_no_recovery="Session items live as long as a session (15 minutes at most) and a day after for its answer; "
            "restoring them could only revive sessions whose database transactions are gone, so point-in-time "
            "recovery is off",
        )
        shared = {
            "RDSGATE_SESSIONS_TABLE": self.table.table_name,
            "RDSGATE_SESSION_IDLE_SECONDS": str(options.idle_seconds),
        }

        self.runner_role = runners.role(self, "RunnerRole", description="rdsgate session runner")
        self.table.grant(self.runner_role, *RUNNER_ACTIONS)
        nag.acknowledge_function_role(self.runner_role)
        self.runner = runners.function(
            self,
            "RunnerFunction",
            role=self.runner_role,
            handler="rdsgate.sessions.runner.handler",
            description="rdsgate session runner: holds one database transaction across calls",
            environment=shared,
            memory_size=options.runner_memory_size,
            timeout_seconds=options.runner_timeout_seconds,
            # A begin that gave up is final: a late or repeated runner would find its session abandoned.
            max_event_age=cdk.Duration.seconds(60),
        )

        self.table.grant(query_role, *QUERY_ACTIONS)
        query_role.add_to_principal_policy(  # the function itself, not its versions or aliases
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.runner.function_arn]))
        environment = {
            **shared,
            "RDSGATE_SESSION_RUNNER": self.runner.function_name,
            "RDSGATE_MAX_SESSIONS_PER_CONNECTION": str(options.max_per_connection),
            "RDSGATE_MAX_SESSIONS_PER_CALLER": str(options.max_per_caller),
        }
        for function in query_functions:
            for name, value in environment.items():
                function.add_environment(name, value)
        if runners.settings.vpc is None:
            self._lambda_endpoint(runners.network)

    def _lambda_endpoint(self, network: Network) -> None:
        """The functions reach Lambda's API (to start a runner) through an interface endpoint, never a NAT.
        One may already exist (asynchronous statements create it): a second with private DNS would clash."""
        if network.vpc.node.try_find_child("Lambda") is not None:
            return
        group = network.endpoints_group(self, "EndpointSecurityGroup", what="rdsgate Lambda endpoint", egress="Lambda endpoint")
        network.add_interface_endpoints(group, [("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_)])

    def add_routes(self, rest_api: apigw.RestApi, function: lambda_.IFunction) -> None:
        """/connections/{name}/sessions (a connection route: per-connection policies cover it), and
        /sessions/{id}/commit and /sessions/{id}/rollback."""
        integration = lambda_integration(function)
        connection = rest_api.root.get_resource("connections").get_resource("{name}")
        connection.add_resource("sessions").add_method("POST", integration)
        one = rest_api.root.add_resource("sessions").add_resource("{id}")
        one.add_resource("commit").add_method("POST", integration)
        one.add_resource("rollback").add_method("POST", integration)
