"""Reviews (issue 19): the reviews table, the KMS key of the parameters they keep, an optional SNS topic for
new and decided reviews, the grants, the VPC endpoints (KMS, SNS) and the API routes.

Context: ``reviewsTopic`` — unset (no notifications), ``"create"`` (a new topic, encrypted with the reviews
key) or an existing topic's ARN. AWS Chatbot subscribes the topic to Slack or Microsoft Teams
(docs/REVIEWS.md).

Grants: the query functions read, write and list review items (by the status index) and decrypt what
they encrypted; they answer held task tokens (SendTaskFailure on reject or expiry) and publish to the
topic. The statements worker only reads a review, to check that what it runs is what was approved.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from . import nag
from .api import add_collection, lambda_integration
from .compute import helper_function
from .network import Network
from .primitives import kept_table
from .settings import ConfigError, Settings

STATUS_INDEX = "status-submittedAt"
ITEM_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")


def topic_setting(context: Callable[[str], Any]) -> str | None:
    value = context("reviewsTopic")
    if value in (None, ""):
        return None
    if not isinstance(value, str) or (value != "create" and not _TOPIC_ARN.match(value)):
        raise ConfigError(f"context: 'reviewsTopic' must be 'create' or an SNS topic ARN (got {value!r})")
    return value


class Reviews(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        context: Callable[[str], Any],
        network: Network,
        query_role: iam.IRole,
        query_functions: Iterable[lambda_.Function],
        worker_role: iam.IRole | None = None,
        worker: lambda_.Function | None = None,
        endpoint_group: ec2.ISecurityGroup | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        topic_value = topic_setting(context)
        self.key = kms.Key(self, "Key", enable_key_rotation=True, description="rdsgate reviews: the parameters a review keeps")
        # Who asked and who approved outlives the stack, as the audit does.
        self.table = kept_table(self, "Table", "id", ttl_attribute="expires_at")
        self.table.add_global_secondary_index(
            index_name=STATUS_INDEX,
            partition_key=dynamodb.Attribute(name="status", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="submittedAt", type=dynamodb.AttributeType.STRING),
        )
        self.topic: sns.ITopic | None = None
        if topic_value == "create":
            self.topic = sns.Topic(self, "Topic", display_name="rdsgate reviews", master_key=self.key, enforce_ssl=True)
        elif topic_value is not None:
            self.topic = sns.Topic.from_topic_arn(self, "Topic", topic_value)

        # A policy of its own, so that its statements never merge into the role's other grants.
        statements = [
            iam.PolicyStatement(actions=list(ITEM_ACTIONS), resources=[self.table.table_arn]),
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{self.table.table_arn}/index/{STATUS_INDEX}"]),
            iam.PolicyStatement(actions=["kms:Encrypt", "kms:Decrypt"], resources=[self.key.key_arn]),
            iam.PolicyStatement(actions=["states:SendTaskFailure"], resources=["*"]),
        ]
        environment = {"RDSGATE_REVIEWS_TABLE": self.table.table_name, "RDSGATE_REVIEWS_KMS_KEY": self.key.key_arn}
        if self.topic is not None:
            statements.append(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
            if topic_value == "create":
                statements.append(iam.PolicyStatement(actions=["kms:GenerateDataKey*"], resources=[self.key.key_arn]))
            environment["RDSGATE_REVIEWS_TOPIC"] = self.topic.topic_arn
        self.policy = iam.Policy(self, "QueryPolicy", statements=statements, roles=[query_role])
        for function in query_functions:
            for name, value in environment.items():
                function.add_environment(name, value)
        if worker_role is not None and worker is not None:
            worker_role.add_to_principal_policy(iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[self.table.table_arn]))
            worker.add_environment("RDSGATE_REVIEWS_TABLE", self.table.table_name)
        nag.acknowledge(self.policy, "AwsSolutions-IAM5[Resource::*]",
                        "Task tokens name no resource: states:SendTaskFailure cannot be scoped (held Step Functions tasks)")
        if topic_value == "create":
            nag.acknowledge(self.policy, "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                            "Publishing to the reviews topic, which the reviews key encrypts; that key only")
        if settings.vpc is None:
            self._endpoints(network, endpoint_group, sns_needed=self.topic is not None)
        if code is not None:
            self._sweeper(code, settings, environment)

    def _sweeper(self, code: lambda_.Code, settings: Settings, environment: dict[str, str]) -> None:
        """Every 15 minutes, expire overdue reviews so that the Step Functions tasks they hold fail with
        ReviewExpired even when nobody reads them. Outside the VPC: it reaches no database."""
        statements = [
            iam.PolicyStatement(actions=list(ITEM_ACTIONS), resources=[self.table.table_arn]),
            iam.PolicyStatement(actions=["dynamodb:Query"], resources=[f"{self.table.table_arn}/index/{STATUS_INDEX}"]),
            iam.PolicyStatement(actions=["states:SendTaskFailure"], resources=["*"]),
        ]
        if self.topic is not None:
            statements.append(iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]))
            statements.append(iam.PolicyStatement(actions=["kms:GenerateDataKey*", "kms:Decrypt"], resources=[self.key.key_arn]))
        policy = iam.Policy(self, "SweeperPolicy", statements=statements)
        _, self.sweeper = helper_function(
            self, "Sweeper", code=code, handler="rdsgate.reviews.sweep_handler", settings=settings,
            description="rdsgate: expires overdue reviews and fails the tasks they hold",
            role_description="rdsgate: expires overdue reviews",
            grant=policy.attach_to_role,
            environment={k: v for k, v in environment.items() if k != "RDSGATE_REVIEWS_KMS_KEY"},
        )  # fmt: skip
        events.Rule(self, "SweepSchedule", schedule=events.Schedule.rate(cdk.Duration.minutes(15)),
                    targets=[targets.LambdaFunction(self.sweeper)])
        nag.acknowledge(policy, "AwsSolutions-IAM5[Resource::*]",
                        "Task tokens name no resource: states:SendTaskFailure cannot be scoped (held Step Functions tasks)")
        if self.topic is not None:
            nag.acknowledge(policy, "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                            "Publishing to the reviews topic, which the reviews key encrypts; that key only")

    def _endpoints(self, network: Network, group: ec2.ISecurityGroup | None, *, sns_needed: bool) -> None:
        """No NAT: KMS (and SNS with a topic) through interface endpoints only the functions may reach (in the
        group of the statements' endpoints, when there is one)."""
        if group is None:
            group = network.endpoints_group(self, "EndpointsSecurityGroup", what="rdsgate reviews endpoints",
                                            egress="KMS and SNS endpoints (reviews)")  # fmt: skip
        services = [("Kms", ec2.InterfaceVpcEndpointAwsService.KMS)]
        if sns_needed:
            services.append(("Sns", ec2.InterfaceVpcEndpointAwsService.SNS))
        network.add_interface_endpoints(group, services)

    def add_routes(self, rest_api: apigw.RestApi, function: lambda_.IFunction) -> None:
        """/reviews, /reviews/{id}, /reviews/{id}/approve and /reviews/{id}/reject."""
        integration = lambda_integration(function)
        one = add_collection(rest_api.root, "reviews", "{id}", integration)
        one.add_resource("approve").add_method("POST", integration)
        one.add_resource("reject").add_method("POST", integration)
