"""Runbooks (issue 19): the runbooks table, the custom resource that seeds it from the runbooks file, and the
API routes.

The file is CDK context ``runbooks`` (default ``infra/runbooks.example.json``), next to the connections
file. It is validated at synth with rdsgate's own parser (``rdsgate.runbooks``): every runbook's fields,
its parameter schema, its connection (one of the deployed ones) and its SQL against the declared
parameters in that connection's engine. The connections' own runbook fields (``adhoc``, ``approval``)
are checked here too. Each deploy writes the file's runbooks and removes those dropped from it, with
the same seeding code as the connections (``rdsgate.seed``); runbooks added by hand are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from rdsgate.errors import InvalidDefinition
from rdsgate.runbooks import check_against_connections, check_connection_fields, load_runbooks_file

from . import nag
from .access import DeployedConnection
from .compute import rdsgate_function
from .primitives import function_role, kept_table
from .settings import ROOT, ConfigError, Settings

DEFAULT_FILE = "infra/runbooks.example.json"
READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Scan")


def load_runbooks(path: Path, connections: Iterable[DeployedConnection]) -> list[dict[str, Any]]:
    """The runbooks file's items, once every runbook and every connection's runbook fields are valid."""
    connections = list(connections)
    try:
        for connection in connections:
            check_connection_fields(connection.item)
        items, runbooks = load_runbooks_file(path)
        check_against_connections(runbooks, {c.name: c.engine for c in connections}, str(path))
    except InvalidDefinition as exc:
        raise ConfigError(exc.message) from None
    return items


class Runbooks(Construct):
    """The runbooks table (key ``name``), seeded on every deploy, readable by the query functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        settings: Settings,
        context: Callable[[str], Any],
        query_role: iam.IRole,
        query_functions: Iterable[lambda_.Function],
        connections: Iterable[DeployedConnection],
    ) -> None:
        super().__init__(scope, construct_id)
        self.file = ROOT / (context("runbooks") or DEFAULT_FILE)
        self.items = load_runbooks(self.file, connections)
        self.table = kept_table(self, "Table", "name")  # runbooks added by hand live only here, like definitions
        self.table.grant(query_role, *READ_ACTIONS)
        for function in query_functions:
            function.add_environment("RDSGATE_RUNBOOKS_TABLE", self.table.table_name)
        role = function_role(self, "SeedRole", description="rdsgate: seeds the runbooks table", in_vpc=False)
        self.table.grant(role, "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        seed = rdsgate_function(
            self, "SeedFunction", code=code, handler="rdsgate.seed.handler", role=role, settings=settings,
            description="rdsgate: writes the deployed runbooks into the table", memory_size=256,
            timeout=cdk.Duration.minutes(2),
        )
        nag.acknowledge_function_role(role)
        self.seed = cdk.CustomResource(
            self,
            "Runbooks",
            service_token=seed.function_arn,
            resource_type="Custom::RdsgateRunbooks",
            properties={
                "TableName": self.table.table_name,
                # One JSON string: CloudFormation would turn every number and boolean into a string.
                "Definitions": cdk.Stack.of(self).to_json_string(self.items),
            },
        )
        self.seed.node.add_dependency(role)

    def add_routes(self, rest_api: apigw.RestApi, function: lambda_.IFunction) -> None:
        """/runbooks, /runbooks/{name} and /runbooks/{name}/run: grant ``…/POST/runbooks/<name>/run`` per runbook."""
        integration = apigw.LambdaIntegration(function, scope_permission_to_method=False)
        root = rest_api.root.add_resource("runbooks")
        root.add_method("GET", integration)
        one = root.add_resource("{name}")
        one.add_method("GET", integration)
        one.add_resource("run").add_method("POST", integration)
