"""Asynchronous statements (issue 17): the results bucket, the statements table, the worker function, the
API routes, the VPC endpoints the functions need without a NAT, and a sample state machine with both
Step Functions forms (results in S3, and the callback pattern).

Grants are per resource and per action: the query functions (API and invoke) read and write status
items, read results and write under the results prefix (invoke's ``"output": {"s3": true}``), delete
under it (a cancel) and invoke the worker; the worker updates status items, writes and deletes only
under the prefix and answers task tokens. Nobody may list or read the bucket beyond the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from . import nag
from .api import add_collection, lambda_integration
from .compute import StatementRunners
from .network import Network, prefix_list_id
from .primitives import log_group, transient_table
from .settings import ConfigError, Settings
from .workflow import RETRIED_ERRORS, error_names

RESULTS_PREFIX = "results/"
CALLER_INDEX = "caller-submittedAt"
STATUS_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query")
WORKER_STATUS_ACTIONS = ("dynamodb:GetItem", "dynamodb:UpdateItem")
WRITE_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject")
TASK_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat")

DEFAULTS = {"workerTimeoutSeconds": 900, "workerMemorySize": 1024, "resultsExpiryDays": 7, "resultsKms": False}


@dataclass(frozen=True)
class StatementsSettings:
    """Context: ``workerTimeoutSeconds`` (the longest statement, ≤ 900), ``workerMemorySize``,
    ``resultsExpiryDays`` (the bucket's lifecycle and the status items' TTL) and ``resultsKms``
    (a customer managed key for the results instead of S3-managed keys)."""

    worker_timeout_seconds: int = 900
    worker_memory_size: int = 1024
    results_expiry_days: int = 7
    results_kms: bool = False

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> StatementsSettings:
        def value(key: str) -> Any:
            found = get(key)
            return DEFAULTS[key] if found is None or found == "" else found

        def integer(key: str, low: int, high: int) -> int:
            raw = value(key)
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"context: '{key}' must be a whole number") from None
            if isinstance(raw, bool) or not low <= number <= high:
                raise ConfigError(f"context: '{key}' must be from {low} to {high}")
            return number

        kms_flag = value("resultsKms")
        if isinstance(kms_flag, str):
            if kms_flag.lower() not in ("true", "false"):
                raise ConfigError("context: 'resultsKms' must be true or false")
            kms_flag = kms_flag.lower() == "true"
        return cls(
            worker_timeout_seconds=integer("workerTimeoutSeconds", 60, 900),
            worker_memory_size=integer("workerMemorySize", 256, 10240),
            results_expiry_days=integer("resultsExpiryDays", 1, 3650),
            results_kms=bool(kms_flag),
        )


class AsyncStatements(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runners: StatementRunners,
        context: Callable[[str], Any],
        query_role: iam.IRole,
        query_functions: Iterable[lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        settings = runners.settings
        options = StatementsSettings.from_context(context)
        self.options = options
        self._log_retention_days = settings.log_retention_days
        self.key = kms.Key(self, "ResultsKey", enable_key_rotation=True, description="rdsgate results") if options.results_kms else None
        self.bucket = s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.KMS if self.key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=self.key,
            bucket_key_enabled=bool(self.key),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireResults",
                    prefix=RESULTS_PREFIX,
                    expiration=cdk.Duration.days(options.results_expiry_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Results are short-lived query output that expires by lifecycle; every read and write goes through "
            "the functions (audited) or a 15-minute pre-signed URL they issued, and CloudTrail data events can "
            "record object access where an account requires it",
        )
        self.table = transient_table(
            self,
            "Table",
            "id",
            ttl_attribute="expires_at",
            why_no_recovery="Statement status items expire with their results (resultsExpiryDays) and mean nothing "
            "without them; point-in-time recovery would restore pointers to deleted objects",
        )
        self.table.add_global_secondary_index(
            index_name=CALLER_INDEX,
            partition_key=dynamodb.Attribute(name="caller", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="submittedAt", type=dynamodb.AttributeType.STRING),
        )

        environment = {
            "RDSGATE_STATEMENTS_TABLE": self.table.table_name,
            "RDSGATE_RESULTS_BUCKET": self.bucket.bucket_name,
            "RDSGATE_RESULTS_PREFIX": RESULTS_PREFIX,
            "RDSGATE_RESULTS_EXPIRY_DAYS": str(options.results_expiry_days),
            "RDSGATE_WORKER_TIMEOUT_SECONDS": str(options.worker_timeout_seconds),
        }
        if self.key is not None:
            environment["RDSGATE_RESULTS_KMS_KEY"] = self.key.key_arn

        # The worker: its own role, with the same database grants as the query functions and nothing of theirs.
        self.worker_role = runners.role(self, "WorkerRole", description="rdsgate statements worker")
        self._grant_items(self.worker_role, WORKER_STATUS_ACTIONS)
        self._grant_objects(self.worker_role, WRITE_ACTIONS)
        self.worker_role.add_to_principal_policy(iam.PolicyStatement(actions=list(TASK_ACTIONS), resources=["*"]))
        nag.acknowledge(
            self.worker_role,
            "AwsSolutions-IAM5[Resource::*]",
            "Resource '*' is required by the Lambda VPC network-interface actions, X-Ray, and states:SendTask*, "
            "which take a task token rather than a resource ARN; data access is scoped to its own ARNs",
        )
        self._acknowledge_prefix(self.worker_role)
        self.worker = runners.function(
            self,
            "WorkerFunction",
            role=self.worker_role,
            handler="rdsgate.worker.handler",
            description="rdsgate statements worker: long statements, results to S3",
            environment=environment,
            memory_size=options.worker_memory_size,
            timeout_seconds=options.worker_timeout_seconds,
            max_event_age=cdk.Duration.hours(1),  # a statement runs once: no automatic retry
        )

        # The query functions: submit, read status and results, cancel; invoke's S3 output writes under the prefix.
        self._grant_items(query_role, STATUS_ACTIONS, index=True)
        self._grant_objects(query_role, ("s3:GetObject", *WRITE_ACTIONS))
        query_role.add_to_principal_policy(  # the function itself, not its versions or aliases
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.worker.function_arn]))
        self._acknowledge_prefix(query_role)
        for function in query_functions:
            for name, value in {**environment, "RDSGATE_WORKER_FUNCTION": self.worker.function_name}.items():
                function.add_environment(name, value)

        if settings.vpc is None:
            self._endpoints(runners.network)

    def _grant_items(self, role: iam.IRole, actions: Iterable[str], *, index: bool = False) -> None:
        """Items of the table by its ARN; ``Query`` on the caller index only (listing a caller's statements)."""
        role.add_to_principal_policy(iam.PolicyStatement(actions=[a for a in actions if a != "dynamodb:Query"],
                                                         resources=[self.table.table_arn]))
        if index:
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{self.table.table_arn}/index/{CALLER_INDEX}"]))

    def _grant_objects(self, role: iam.IRole, actions: Iterable[str]) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(actions), resources=[self.bucket.arn_for_objects(f"{RESULTS_PREFIX}*")])
        )
        if self.key is not None:
            self.key.grant_encrypt_decrypt(role)

    def _acknowledge_prefix(self, role: iam.IRole) -> None:
        arn = cdk.Stack.of(self).resolve(self.bucket.bucket_arn)["Fn::GetAtt"][0]
        nag.acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{arn}.Arn>/{RESULTS_PREFIX}*]",
            "Objects under the results prefix only: each statement's result and index are named by its id",
        )
        if self.key is not None:
            nag.acknowledge(role, "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "KMS data keys for the results key only")
            nag.acknowledge(role, "AwsSolutions-IAM5[Action::kms:ReEncrypt*]", "Granted by grant_encrypt_decrypt on the results key only")

    def _endpoints(self, network: Network) -> None:
        """No NAT: S3 through a gateway endpoint; Lambda (API → worker) and Step Functions (worker → task
        tokens) through interface endpoints that only the functions' security group may reach."""
        network.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[network.subnets])
        if network.owns_security_group:
            s3_addresses = prefix_list_id(self, "S3PrefixList", "s3", self._log_retention_days)
            network.security_group.add_egress_rule(ec2.Peer.prefix_list(s3_addresses), ec2.Port.tcp(443), "S3 (gateway endpoint)")
        group = network.endpoints_group(self, "EndpointsSecurityGroup", what="rdsgate interface endpoints",
                                        egress="Lambda and Step Functions endpoints")  # fmt: skip
        network.add_interface_endpoints(group, [("Lambda", ec2.InterfaceVpcEndpointAwsService.LAMBDA_),
                                                ("StepFunctions", ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS)])  # fmt: skip

    def add_routes(self, rest_api: apigw.RestApi, function: lambda_.IFunction) -> None:
        """/statements, /statements/{id} and /statements/{id}/result (/connections/{name}/statements is a
        connection route, so per-connection policies cover it)."""
        integration = lambda_integration(function)
        one = add_collection(rest_api.root, "statements", "{id}", integration)
        one.add_method("DELETE", integration)
        one.add_resource("result").add_method("GET", integration)
        connection = rest_api.root.get_resource("connections").get_resource("{name}")
        connection.add_resource("statements").add_method("POST", integration)


class StatementsWorkflow(Construct):
    """A sample state machine with both forms: ``{"connection", "sql", "callback": false|true}``.

    - ``callback`` false: ``LambdaInvoke`` of the invoke function with ``"output": {"s3": true}``;
      the state's output is the pointer ``{"s3Uri", "rowCount", "bytes", "columns", …}``.
    - ``callback`` true: ``lambda:invoke.waitForTaskToken``; the worker runs the statement (up to its
      timeout) and answers ``SendTaskSuccess`` with the pointer or ``SendTaskFailure`` with the error name.
    """

    def __init__(self, scope: Construct, construct_id: str, *, function: lambda_.IFunction, settings: Settings,
                 worker_timeout_seconds: int) -> None:
        super().__init__(scope, construct_id)
        failed = sfn.Fail(self, "ExportFailed", error_path="$.Error", cause_path="$.Cause")
        done = sfn.Succeed(self, "Exported")
        inline = tasks.LambdaInvoke(
            self, "ExportToS3", lambda_function=function, payload_response_only=True, retry_on_service_exceptions=True,
            payload=sfn.TaskInput.from_object({
                "connection": sfn.JsonPath.string_at("$.connection"),
                "sql": sfn.JsonPath.string_at("$.sql"),
                "output": {"s3": True, "format": "jsonl", "compression": "gzip"},
                "caller": sfn.JsonPath.string_at("$$.Execution.Id"),
            }),
        )
        callback = tasks.LambdaInvoke(
            self, "ExportWithCallback", lambda_function=function, retry_on_service_exceptions=True,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            task_timeout=sfn.Timeout.duration(cdk.Duration.seconds(worker_timeout_seconds + 120)),
            payload=sfn.TaskInput.from_object({
                "connection": sfn.JsonPath.string_at("$.connection"),
                "sql": sfn.JsonPath.string_at("$.sql"),
                "output": {"format": "jsonl", "compression": "gzip"},
                "taskToken": sfn.JsonPath.task_token,
                "caller": sfn.JsonPath.string_at("$$.Execution.Id"),
            }),
        )
        for task in (inline, callback):
            task.add_retry(errors=list(RETRIED_ERRORS), interval=cdk.Duration.seconds(2), backoff_rate=2, max_attempts=5,
                           max_delay=cdk.Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
            task.add_catch(failed, errors=[*error_names(), "Cancelled", "States.Timeout"])
            task.next(done)
        asked = sfn.Condition.and_(sfn.Condition.is_present("$.callback"), sfn.Condition.boolean_equals("$.callback", True))
        choose = sfn.Choice(self, "Callback?").when(asked, callback).otherwise(inline)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(choose),
            timeout=cdk.Duration.minutes(30),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", settings.log_retention_days),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,
            ),
        )
        nag.acknowledge(self.state_machine, "AwsSolutions-IAM5[Resource::*]",
                        "Step Functions log delivery and X-Ray actions support no resource-level permissions")
        nag.acknowledge_lambda_invoke(self.state_machine, function)
