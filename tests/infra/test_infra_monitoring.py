"""Alarms and the dashboard: on by default (cdk.json's context), with a created topic, and what they watch."""

from __future__ import annotations

import json
import re

import pytest

from rdsgate import telemetry

from synth_helpers import ROOT, render, synthesize

OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
ALARMS = {"ErrorRate", "LoginFailures", "DatabaseUnavailable", "DurationP99", "AuditWriteFailures", "Api5xx",
          "ApiThrottles", "InvokeThrottles"}  # fmt: skip


def alarms_of(synth) -> dict[str, dict]:
    """Construct id below Monitoring -> the alarm's properties."""
    return {name: synth.resources[synth.logical_id(f"Monitoring/{name}")]["Properties"] for name in ALARMS}


def dashboard_of(synth) -> dict:
    (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
    return json.loads(render(dashboard["Properties"]["DashboardBody"]))


@pytest.fixture(scope="module")
def alarms(default_synth):
    return alarms_of(default_synth)


def test_every_alarm_is_there_and_no_other(default_synth, alarms):
    assert len(default_synth.of_type("AWS::CloudWatch::Alarm")) == len(ALARMS)
    for name, alarm in alarms.items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert "AlarmActions" not in alarm and "OKActions" not in alarm, name  # no topic by default


def test_rdsgate_metric_alarms_read_this_stacks_series(alarms):
    expected = {
        "LoginFailures": ("LoginFailures", {"service": "rdsgate"}, 1),
        "DatabaseUnavailable": ("Errors", {"service": "rdsgate", "errorCode": "DatabaseUnavailable"}, 1),
        "AuditWriteFailures": ("AuditWriteFailures", {"service": "rdsgate"}, 1),
    }
    for name, (metric, dimensions, threshold) in expected.items():
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("rdsgate", metric, "Sum"), name
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dimensions, name
        assert (alarm["Period"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (300, threshold, 1), name
        assert metric in telemetry.UNITS


def test_the_duration_alarm_is_on_p99_against_the_context_threshold(alarms):
    alarm = alarms["DurationP99"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == ("rdsgate", "Duration", "p99")
    assert "Statistic" not in alarm
    assert alarm["Threshold"] == 5000 and (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "rdsgate"}]


def test_the_error_rate_is_server_side_errors_over_requests(alarms):
    alarm = alarms["ErrorRate"]
    assert alarm["Threshold"] == 5 and (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    (expression,) = [q for q in queries.values() if "Expression" in q]
    assert expression["ReturnData"] is True
    codes = {}
    for query_id, query in queries.items():
        if "MetricStat" not in query:
            continue
        assert query["ReturnData"] is False
        stat = query["MetricStat"]
        assert (stat["Metric"]["Namespace"], stat["Period"], stat["Stat"]) == ("rdsgate", 300, "Sum")
        dimensions = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
        assert dimensions.pop("service") == "rdsgate"
        codes[query_id] = (stat["Metric"]["MetricName"], dimensions.get("errorCode"))
    assert codes.pop("requests") == ("Requests", None)
    assert sorted(code for _, code in codes.values()) == sorted(telemetry.SERVER_ERROR_CODES)
    assert {metric for metric, _ in codes.values()} == {"Errors"}
    # 100 × (every server error, missing counted as 0) / requests
    terms = re.fullmatch(r"100 \* \((.*)\) / requests", expression["Expression"]).group(1).split(" + ")
    assert sorted(terms) == sorted(f"FILL({query_id}, 0)" for query_id in codes)


def test_api_5xx_and_throttles_are_watched_on_the_stage_and_each_query_function(default_synth, alarms):
    api5xx = alarms["Api5xx"]
    assert (api5xx["Namespace"], api5xx["MetricName"], api5xx["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Sum")
    dims = {d["Name"]: d["Value"] for d in api5xx["Dimensions"]}
    assert dims["Stage"] == {"Ref": default_synth.logical_id("Api/RestApi/DeploymentStage.v1")}
    assert api5xx["Threshold"] == 5
    for label in ("Api", "Invoke"):
        alarm = alarms[f"{label}Throttles"]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("AWS/Lambda", "Throttles", 1)
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": default_synth.logical_id(f"Functions/{label}Function")}}]


def test_each_alarm_names_a_runbook_that_exists(alarms):
    text = OPERATIONS.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#{2,4} (.+)$", text, flags=re.M)
    }
    for name, alarm in alarms.items():
        match = re.search(r"Runbook: docs/OPERATIONS\.md#([a-z0-9-]+)$", alarm["AlarmDescription"])
        assert match, name
        assert match.group(1) in anchors, (name, match.group(1))


def test_the_dashboard_shows_what_operators_ask_first(default_synth):
    body = dashboard_of(default_synth)
    widgets = {w["properties"].get("title"): w for w in body["widgets"]}
    expressions = {title: [m[0]["expression"] for m in w["properties"].get("metrics", []) if "expression" in m[0]]
                   for title, w in widgets.items() if w["type"] == "metric"}  # fmt: skip
    search = "SEARCH('{rdsgate,%s,service} MetricName=\"%s\" service=\"rdsgate\"', '%s', 300)"
    assert expressions["Errors by code"] == [search % ("errorCode", "Errors", "Sum")]
    assert expressions["Duration p50 per connection (ms)"] == [search % ("connection", "Duration", "p50")]
    assert expressions["Duration p99 per connection (ms)"] == [search % ("connection", "Duration", "p99")]
    assert expressions["Denials by kind"] == [search % ("errorCode", "Denied", "Sum")]
    reuse = [m[1] for m in widgets["Connections opened vs reused"]["properties"]["metrics"]]
    assert reuse == ["ConnectionsOpened", "ConnectionsReused", "TokensSigned", "LoginFailures"]
    concurrency = widgets["Lambda concurrency and throttles"]["properties"]["metrics"]
    assert sorted(m[1] for m in concurrency) == ["ConcurrentExecutions", "ConcurrentExecutions", "Throttles", "Throttles"]
    assert len(widgets["Alarms"]["properties"]["alarms"]) == len(ALARMS)
    (logs,) = [w for w in body["widgets"] if w["type"] == "log"]
    query = logs["properties"]["query"]
    sources, rest = query.split(' | filter @type = "REPORT"\n')
    assert rest.startswith("| stats count(@initDuration) as coldStarts") and "by bin(5m)" in rest
    groups = [default_synth.logical_id(f"Functions/{name}Logs") for name in ("ApiFunction", "InvokeFunction")]
    assert sources == " | ".join("SOURCE '${%s}'" % group for group in groups)  # both query functions' logs


# --- with a topic, and another stack name ----------------------------------------------------------


@pytest.fixture(scope="module")
def with_topic(tmp_path_factory):
    return synthesize(tmp_path_factory, stackName="gate-prod", alarmTopic="create", alarmDurationP99Ms="1200",
                      alarmErrorRatePercent="2")  # fmt: skip


def test_a_created_topic_is_every_alarms_action_and_cloudwatch_may_use_it(with_topic):
    topic = with_topic.logical_id("Monitoring/AlarmTopic")
    for name, alarm in alarms_of(with_topic).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}] and alarm["OKActions"] == [{"Ref": topic}], name
    key = with_topic.logical_id("Monitoring/AlarmTopicKey")
    assert with_topic.resources[topic]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert with_topic.resources[key]["Properties"]["EnableKeyRotation"] is True
    key_statements = with_topic.resources[key]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"} and "kms:GenerateDataKey" in s["Action"]
               for s in key_statements)  # fmt: skip
    (policy,) = with_topic.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    publish = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(publish) == 1 and publish[0]["Action"] == "sns:Publish"
    assert ":alarm:*" in render(publish[0]["Condition"]["ArnLike"]["aws:SourceArn"])
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)


def test_the_service_dimension_and_thresholds_follow_the_context(with_topic):
    alarms = alarms_of(with_topic)
    assert alarms["DurationP99"]["Threshold"] == 1200 and alarms["ErrorRate"]["Threshold"] == 2
    assert alarms["LoginFailures"]["Dimensions"] == [{"Name": "service", "Value": "gate-prod"}]
    function = with_topic.resources[with_topic.logical_id("Functions/ApiFunction")]
    assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "gate-prod"
    assert 'service=\\"gate-prod\\"' in json.dumps(dashboard_of(with_topic))


def test_cdk_nag_finds_nothing_with_the_topic(with_topic):
    assert [(v.rule_name, v.severity) for v in with_topic.nag_report().violations] == []
