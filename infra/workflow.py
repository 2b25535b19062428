"""Workflow: a sample Standard state machine that runs one query through the invoke function.

Its input is the invoke function's request (e.g. ``{"connection": "orders",
"sql": "SELECT 1"}``) and its output the query result. It retries
``DatabaseUnavailable`` with backoff and sends every other rdsgate error name
to a Fail state that keeps the error and its cause. Copy it into your own
workflows.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from rdsgate.edge import step_functions_name
from rdsgate.errors import ERROR_TABLE

from . import nag
from .primitives import log_group
from .settings import Settings

RETRIED_ERRORS = ("DatabaseUnavailable",)


def error_names() -> list[str]:
    """The Step Functions error names rdsgate reports, from the one error table of the package."""
    names = {step_functions_name(error) for error in ERROR_TABLE}
    return sorted(names)


class SampleWorkflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, function: lambda_.IFunction, settings: Settings):
        super().__init__(scope, construct_id)
        failed = sfn.Fail(self, "QueryFailed", error_path="$.Error", cause_path="$.Cause")
        run_query = tasks.LambdaInvoke(
            self,
            "RunQuery",
            lambda_function=function,
            payload_response_only=True,  # the state's output is the query result itself
            retry_on_service_exceptions=True,
        )
        run_query.add_retry(
            errors=list(RETRIED_ERRORS),
            interval=cdk.Duration.seconds(2),
            backoff_rate=2,
            max_attempts=5,
            max_delay=cdk.Duration.seconds(30),
            jitter_strategy=sfn.JitterType.FULL,
        )
        # DatabaseUnavailable is caught too, once its retries are spent.
        run_query.add_catch(failed, errors=error_names())
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(run_query.next(sfn.Succeed(self, "Done"))),
            timeout=cdk.Duration.minutes(15),
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=log_group(self, "Logs", settings.log_retention_days),
                level=sfn.LogLevel.ALL,
                include_execution_data=False,  # inputs and results may hold sensitive data
            ),
        )
        nag.acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5[Resource::*]",
            "Step Functions log delivery and X-Ray actions support no resource-level permissions",
        )
        nag.acknowledge_lambda_invoke(self.state_machine, function)  # the function, or its alias (SnapStart)
