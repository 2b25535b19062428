"""Data: the connections table (and the custom resource that writes the file's definitions into it),
the audit table and the idempotency table."""

from __future__ import annotations

from typing import Any, Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .access import DeployedConnection
from .compute import helper_function
from .primitives import kept_table, transient_table
from .settings import Settings


class ConnectionsTable(Construct):
    """The DynamoDB table of connection definitions, keyed by `name`, kept when the stack goes."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Definitions added by hand live only here: never delete them with the stack.
        self.table = kept_table(self, "Table", "name")

    def seed(
        self, connections: Sequence[DeployedConnection], *, code: lambda_.Code, settings: Settings
    ) -> cdk.CustomResource:
        """Make each deploy write the definitions, and remove those dropped from the file since the last one."""
        return seed_table(
            self,
            self.table,
            [dict(c.item) for c in connections],
            table_kind="connections",
            what="connection definitions",
            resource_id="Definitions",
            resource_type="Custom::RdsgateDefinitions",
            code=code,
            settings=settings,
        )


def seed_table(
    scope: Construct,
    table: dynamodb.ITable,
    items: Any,
    *,
    table_kind: str,
    what: str,
    resource_id: str,
    resource_type: str,
    code: lambda_.Code,
    settings: Settings,
) -> cdk.CustomResource:
    """A custom resource whose function (rdsgate.seed) writes `items` into `table` on each deploy and removes
    those dropped since the last one (`table_kind` and `what` the items are name them in the descriptions)."""
    role, function = helper_function(
        scope,
        "Seed",
        code=code,
        handler="rdsgate.seed.handler",
        settings=settings,
        description=f"rdsgate: writes the deployed {what} into the table",
        role_description=f"rdsgate: seeds the {table_kind} table",
        grant=lambda role: table.grant(role, "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
    )
    resource = cdk.CustomResource(
        scope,
        resource_id,
        service_token=function.function_arn,
        resource_type=resource_type,
        properties={
            "TableName": table.table_name,
            # One JSON string, because CloudFormation would turn every number and boolean into a string.
            "Definitions": cdk.Stack.of(scope).to_json_string(items),
        },
    )
    resource.node.add_dependency(role)  # its grants must exist before the first invocation
    return resource


class AuditTable(Construct):
    """One item per audited statement: partition `connection`, sort `at` (ISO-8601 UTC time + `#<requestId>`).

    Items expire through DynamoDB TTL on `expires_at` (epoch seconds), set by
    the functions to `auditTtlDays` after the statement. The trail outlives the
    stack, like the definitions it refers to.
    """

    PARTITION_KEY = "connection"
    SORT_KEY = "at"
    TTL_ATTRIBUTE = "expires_at"

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # An audit trail must survive the stack that wrote it (and a replacement of the table).
        self.table = kept_table(self, "Table", self.PARTITION_KEY, sort_key=self.SORT_KEY, ttl_attribute=self.TTL_ATTRIBUTE)


class IdempotencyTable(Construct):
    """Powertools idempotency records (DynamoDBPersistenceLayer's default schema: key `id`, TTL `expiration`).

    The records are transient: each expires shortly after its request, and
    without the functions they serve they mean nothing. So the table goes with
    the stack and has no point-in-time recovery: there is nothing worth restoring.
    """

    PARTITION_KEY = "id"
    TTL_ATTRIBUTE = "expiration"

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = transient_table(
            self,
            "Table",
            self.PARTITION_KEY,
            ttl_attribute=self.TTL_ATTRIBUTE,
            why_no_recovery="Idempotency records are short-lived (an hour by default) and worthless once expired or once the "
            "functions are gone; restoring them could only replay stale responses, so point-in-time recovery is off",
        )
