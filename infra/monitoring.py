"""Monitoring: alarms on rdsgate's EMF metrics and on the AWS services around it, and one dashboard.

The metric names, the namespace and the dimensions come from ``rdsgate.telemetry``, which
writes them; the ``service`` dimension is the stack name (the functions' POWERTOOLS_SERVICE_NAME),
so two stacks in one account keep apart. Each alarm's description names its runbook in
docs/OPERATIONS.md. On by default; ``-c monitoring=false`` leaves all of it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from rdsgate import telemetry

from .settings import CREATE_TOPIC, MonitoringSettings

PERIOD = cdk.Duration.minutes(5)
RUNBOOK = "docs/OPERATIONS.md#"
API_5XX_THRESHOLD = 5  # 5xx responses in five minutes


@dataclass(frozen=True)
class Monitored:
    """What the alarms watch besides rdsgate's own metrics."""

    api_stage: apigw.Stage
    functions: dict[str, lambda_.Function]  # label -> function


class Monitoring(Construct):
    """The alarms (each with the topic as its action, if any) and the dashboard."""

    def __init__(
        self, scope: Construct, construct_id: str, *, service: str, settings: MonitoringSettings, monitored: Monitored
    ) -> None:
        super().__init__(scope, construct_id)
        self.service = service
        self.settings = settings
        self.topic = self._topic(settings.topic)
        self.alarms: dict[str, cw.Alarm] = {}
        self._alarms(monitored)
        if self.topic is not None:
            for alarm in self.alarms.values():
                alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
                alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        self.dashboard = self._dashboard(monitored)

    # -- metrics ---------------------------------------------------------------------------------

    def metric(self, name: str, statistic: str = "Sum", label: str | None = None, **dimensions: str) -> cw.Metric:
        """One of rdsgate's metrics for this stack, without a connection unless one is given."""
        return cw.Metric(
            namespace=telemetry.NAMESPACE,
            metric_name=name,
            dimensions_map={telemetry.SERVICE: self.service, **dimensions},
            statistic=statistic,
            period=PERIOD,
            label=label,
        )

    def errors(self, code: str) -> cw.Metric:
        return self.metric(telemetry.ERRORS, **{telemetry.ERROR_CODE: code})

    def search(self, metric: str, dimension: str, statistic: str) -> cw.MathExpression:
        """Every series of `metric` split by `dimension` (connection or errorCode), found at display time,
        each labelled with its dimension's value."""
        schema = f"{{{telemetry.NAMESPACE},{dimension},{telemetry.SERVICE}}}"
        query = f"{schema} MetricName=\"{metric}\" {telemetry.SERVICE}=\"{self.service}\""
        return cw.MathExpression(
            expression=f"SEARCH('{query}', '{statistic}', {int(PERIOD.to_seconds())})",
            using_metrics={},
            label=f"${{PROP('Dim.{dimension}')}}",
            period=PERIOD,
        )

    def searched(self, title: str, metric: str, dimension: str, statistic: str, **options) -> cw.GraphWidget:
        """A graph of every series of `metric` split by `dimension` (see `search`)."""
        return cw.GraphWidget(title=title, left=[self.search(metric, dimension, statistic)], **options)

    # -- the topic -------------------------------------------------------------------------------

    def _topic(self, topic: str | None) -> sns.ITopic | None:
        if topic is None:
            return None
        if topic != CREATE_TOPIC:
            return sns.Topic.from_topic_arn(self, "AlarmTopic", topic)
        # CloudWatch can publish to an encrypted topic only with a customer managed key that lets it.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{self.service}: encrypts the alarm notifications topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        created = sns.Topic(
            self, "AlarmTopic", display_name=f"{self.service} alarms", master_key=key, enforce_ssl=True
        )
        stack = cdk.Stack.of(self)
        created.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[created.topic_arn],
                conditions={
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        cdk.CfnOutput(self, "AlarmTopicArn", value=created.topic_arn, description="Subscribe to rdsgate's alarms")
        return created

    # -- the alarms ------------------------------------------------------------------------------

    def _alarm(self, name: str, metric: cw.IMetric, threshold: float, description: str, runbook: str, *,
               periods: int = 1, datapoints: int | None = None) -> cw.Alarm:  # fmt: skip
        alarm = cw.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints or periods,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=f"{description} Runbook: {RUNBOOK}{runbook}",
        )
        self.alarms[name] = alarm
        return alarm

    def _alarms(self, monitored: Monitored) -> None:
        settings = self.settings
        server_errors = {f"e{i}": self.errors(code) for i, code in enumerate(telemetry.SERVER_ERROR_CODES)}
        rate = cw.MathExpression(
            expression="100 * (" + " + ".join(f"FILL({key}, 0)" for key in server_errors) + ") / requests",
            using_metrics={"requests": self.metric(telemetry.REQUESTS), **server_errors},
            label="server-side errors per request (%)",
            period=PERIOD,
        )
        self._alarm(
            "ErrorRate", rate, settings.error_rate_percent,
            f"More than {settings.error_rate_percent}% of requests failed on rdsgate's or the database's side "
            f"({', '.join(telemetry.SERVER_ERROR_CODES)}) in two of three 5-minute periods.",
            "error-rate", periods=3, datapoints=2,
        )  # fmt: skip
        self._alarm(
            "LoginFailures", self.metric(telemetry.LOGIN_FAILURES), 1,
            "The database refused rdsgate's IAM token (or password) in the last 5 minutes.", "login-failures",
        )  # fmt: skip
        self._alarm(
            "DatabaseUnavailable", self.errors("DatabaseUnavailable"), 1,
            "A database could not be reached or refused connections in the last 5 minutes.", "database-unavailable",
        )  # fmt: skip
        self._alarm(
            "DurationP99",
            self.metric(telemetry.DURATION, statistic="p99"),
            settings.duration_p99_ms,
            f"rdsgate's request duration p99 was over {settings.duration_p99_ms} ms in two of three 5-minute periods.",
            "slow-requests", periods=3, datapoints=2,
        )  # fmt: skip
        self._alarm(
            "AuditWriteFailures", self.metric(telemetry.AUDIT_WRITE_FAILURES), 1,
            "Audit records could not be written to the audit table in the last 5 minutes (they are in the log).",
            "audit-write-failures",
        )  # fmt: skip
        self._alarm(
            "Api5xx", monitored.api_stage.metric_server_error(period=PERIOD, statistic="Sum"), API_5XX_THRESHOLD,
            f"API Gateway answered {API_5XX_THRESHOLD} or more 5xx responses in the last 5 minutes.", "api-5xx",
        )  # fmt: skip
        for label, function in monitored.functions.items():
            self._alarm(
                f"{label}Throttles", function.metric_throttles(period=PERIOD, statistic="Sum"), 1,
                f"Lambda throttled the {label} function in the last 5 minutes.", "throttles",
            )  # fmt: skip

    # -- the dashboard -----------------------------------------------------------------------------

    def _dashboard(self, monitored: Monitored) -> cw.Dashboard:
        stack = cdk.Stack.of(self)
        dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=cdk.Fn.join("-", [self.service, stack.region]),
            default_interval=cdk.Duration.hours(3),
        )
        wide, half, third = 24, 12, 8
        functions = list(monitored.functions.values())
        dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# {self.service}\nrdsgate's metrics (namespace `{telemetry.NAMESPACE}`, "
                f"service `{self.service}`). What each graph means and the runbooks: docs/OPERATIONS.md.",
                width=wide,
                height=2,
            )
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Requests and errors",
                left=[self.metric(telemetry.REQUESTS, label="requests"), self.metric(telemetry.ERRORS, label="errors")],
                width=third,
            ),
            self.searched("Errors by code", telemetry.ERRORS, telemetry.ERROR_CODE, "Sum", width=third),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=third, height=6),
        )
        dashboard.add_widgets(
            self.searched("Duration p50 per connection (ms)", telemetry.DURATION, telemetry.CONNECTION, "p50", width=third),
            self.searched(
                "Duration p99 per connection (ms)", telemetry.DURATION, telemetry.CONNECTION, "p99", width=third,
                left_annotations=[cw.HorizontalAnnotation(value=self.settings.duration_p99_ms, label="alarm")],
            ),
            self.searched("Database time p99 per connection (ms)", telemetry.DATABASE_TIME, telemetry.CONNECTION, "p99", width=third),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Connections opened vs reused",
                left=[
                    self.metric(telemetry.CONNECTIONS_OPENED, label="opened"),
                    self.metric(telemetry.CONNECTIONS_REUSED, label="reused"),
                    self.metric(telemetry.TOKENS_SIGNED, label="tokens signed"),
                    self.metric(telemetry.LOGIN_FAILURES, label="login failures"),
                ],
                width=third,
            ),
            self.searched("Denials by kind", telemetry.DENIED, telemetry.ERROR_CODE, "Sum", width=third),
            cw.GraphWidget(
                title="Rows and response bytes",
                left=[self.metric(telemetry.ROWS, label="rows")],
                right=[self.metric(telemetry.RESPONSE_BYTES, label="response bytes")],
                width=third,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda concurrency and throttles",
                left=[f.metric("ConcurrentExecutions", statistic="Maximum", period=PERIOD, label=label)
                      for label, f in monitored.functions.items()],
                right=[f.metric_throttles(period=PERIOD, statistic="Sum", label=f"{label} throttles")
                       for label, f in monitored.functions.items()],
                width=half,
            ),  # fmt: skip
            cw.GraphWidget(
                title="API Gateway",
                left=[
                    monitored.api_stage.metric_count(period=PERIOD, statistic="Sum", label="requests"),
                    monitored.api_stage.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
                    monitored.api_stage.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
                ],
                right=[monitored.api_stage.metric_latency(period=PERIOD, statistic="p99", label="latency p99")],
                width=half,
            ),
        )
        dashboard.add_widgets(
            cw.LogQueryWidget(
                title="Cold starts: Init duration (ms) per 5 minutes",
                log_group_names=[f.log_group.log_group_name for f in functions],
                query_lines=COLD_START_QUERY,
                view=cw.LogQueryVisualizationType.LINE,
                width=wide,
            )
        )
        cdk.CfnOutput(self, "DashboardName", value=dashboard.dashboard_name)
        return dashboard


COLD_START_QUERY = [
    "filter @type = \"REPORT\"",
    "stats count(@initDuration) as coldStarts, avg(@initDuration) as avgInitMs, "
    "max(@initDuration) as maxInitMs by bin(5m)",
]
