"""Data: the connections table (and the custom resource that writes the file's definitions into it),
the audit table and the idempotency table."""

from __future__ import annotations

from typing import Sequence

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import nag
from .access import DeployedConnection
from .compute import rdsgate_function
from .primitives import function_role, kept_table, transient_table
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
        role = function_role(self, "SeedRole", description="rdsgate: seeds the connections table", in_vpc=False)
        self.table.grant(role, "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem")
        function = rdsgate_function(
            self,
            "SeedFunction",
            code=code,
            handler="rdsgate.seed.handler",
            role=role,
            settings=settings,
            description="rdsgate: writes the deployed connection definitions into the table",
            memory_size=256,
            timeout=cdk.Duration.minutes(2),
        )
        nag.acknowledge_function_role(role)
        resource = cdk.CustomResource(
            self,
            "Definitions",
            service_token=function.function_arn,
            resource_type="Custom::RdsgateDefinitions",
            properties={
                "TableName": self.table.table_name,
                # One JSON string, because CloudFormation would turn every number and boolean into a string.
                "Definitions": cdk.Stack.of(self).to_json_string([dict(c.item) for c in connections]),
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
