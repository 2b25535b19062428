"""The small pieces every construct is built of: log groups, function roles and DynamoDB tables.

A module of their own (not compute.py) so that the network, the API and the rest use them without
importing the functions' module, which itself needs the network: no cycle.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from . import nag


def log_group(scope: Construct, construct_id: str, retention_days: int) -> logs.LogGroup:
    """A log group with the configured retention (any CloudWatch value, not only RetentionDays' members)."""
    group = logs.LogGroup(scope, construct_id, retention=logs.RetentionDays.ONE_MONTH)
    group.node.default_child.add_property_override("RetentionInDays", retention_days)
    return group


def function_role(scope: Construct, construct_id: str, *, description: str, in_vpc: bool) -> iam.Role:
    """A role with no managed policy: logging is granted per log group, the rest per resource."""
    role = iam.Role(
        scope, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
    )
    if in_vpc:
        role.add_to_principal_policy(iam.PolicyStatement(actions=nag.ENI_ACTIONS, resources=["*"]))
    return role


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def kept_table(
    scope: Construct, construct_id: str, partition_key: str, *, sort_key: str | None = None, ttl_attribute: str | None = None
) -> dynamodb.Table:
    """A table whose items outlive the stack (kept when it goes), with point-in-time recovery."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=_string(partition_key),
        sort_key=_string(sort_key) if sort_key else None,
        time_to_live_attribute=ttl_attribute,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )


def transient_table(
    scope: Construct, construct_id: str, partition_key: str, *, ttl_attribute: str, why_no_recovery: str
) -> dynamodb.Table:
    """A table of expiring items that mean nothing without the stack: it goes with the stack and has no
    point-in-time recovery (`why_no_recovery` acknowledges cdk-nag's DDB3)."""
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=_string(partition_key),
        time_to_live_attribute=ttl_attribute,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    nag.acknowledge(table, "AwsSolutions-DDB3", why_no_recovery)
    return table
