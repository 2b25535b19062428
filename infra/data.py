"""Data: the connections table, and the custom resource that writes the file's definitions into it."""

from __future__ import annotations

from typing import Sequence

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import nag
from .access import DeployedConnection
from .compute import function_role, rdsgate_function
from .settings import Settings


class ConnectionsTable(Construct):
    """The DynamoDB table of connection definitions, keyed by `name`, kept when the stack goes."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="name", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Definitions added by hand live only here: never delete them with the stack.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

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
