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

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from rdsgate.errors import InvalidDefinition
from rdsgate.runbooks.catalog import load_runbooks_file
from rdsgate.runbooks.connections import check_connection_fields
from rdsgate.runbooks.definition import check_against_connections

from .access import DeployedConnection
from .api import add_collection, lambda_integration
from .data import seed_table
from .primitives import kept_table
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
        self.seed = seed_table(
            self, self.table, self.items, table_kind="runbooks", what="runbooks", resource_id="Runbooks",
            resource_type="Custom::RdsgateRunbooks", code=code, settings=settings,
        )  # fmt: skip

    def add_routes(self, rest_api: apigw.RestApi, function: lambda_.IFunction) -> None:
        """/runbooks, /runbooks/{name} and /runbooks/{name}/run: grant ``…/POST/runbooks/<name>/run`` per runbook."""
        integration = lambda_integration(function)
        one = add_collection(rest_api.root, "runbooks", "{name}", integration)
        one.add_resource("run").add_method("POST", integration)
