"""cdk-nag acknowledgements: each names one rule (or one finding) and says why it does not apply."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge `rule` (e.g. 'AwsSolutions-IAM5[Resource::*]') on `scope` and its children."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def acknowledge_function_role(role: IConstruct) -> None:
    """A rdsgate function role: its only wildcard is for ENIs and X-Ray, which cannot be scoped."""
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "Resource '*' is required by the Lambda VPC network-interface actions and by X-Ray's "
        "PutTraceSegments/PutTelemetryRecords, none of which support resource-level permissions; "
        "logs and data access are scoped to their own ARNs",
    )


def acknowledge_runtime(function: IConstruct) -> None:
    acknowledge(
        function,
        "AwsSolutions-L1",
        "The Python runtime is pinned on purpose to the version the bundled wheels are installed for "
        "(infra/bundling.py); the two are upgraded together",
    )


def acknowledge_lambda_invoke(state_machine: IConstruct, function: lambda_.IFunction) -> None:
    """A state machine's LambdaInvoke grants ``<function ARN>:*``: cdk-nag names that resource by the function's
    ``GetAtt`` (``<Id.Arn>``), or by an alias's ``Ref`` (``<AliasId>``, the SnapStart target)."""
    arn = cdk.Stack.of(state_machine).resolve(function.function_arn)
    resource = f"{arn['Fn::GetAtt'][0]}.Arn" if "Fn::GetAtt" in arn else arn["Ref"]
    acknowledge(state_machine, f"AwsSolutions-IAM5[Resource::<{resource}>:*]",
                "LambdaInvoke grants the invoke function's versions and aliases (ARN:*), nothing else")
