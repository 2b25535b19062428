"""Sessions in the stack: the table, the runner function and its role, least-privilege grants, the Lambda
endpoint (no NAT), the routes, and the context flag that turns them off."""

from __future__ import annotations

import pytest

from infra.sessions import QUERY_ACTIONS, RUNNER_ACTIONS, SessionsSettings
from infra.settings import ConfigError
from synth_helpers import as_list, policy_statements, rds_connect_policies, render, statements_naming, synthesize


@pytest.fixture(scope="module")
def synth(default_synth):
    return default_synth


def role_of(synth, policy):
    return synth.resources[policy]["Properties"]["Roles"][0]["Ref"]


def test_the_session_table(synth):
    table = synth.resources[synth.logical_id("Sessions/Table")]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST" and props["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Delete"  # transient: a session lives 15 minutes at most


def test_the_runner_function(synth):
    runner = synth.resources[synth.logical_id("Sessions/RunnerFunction")]["Properties"]
    assert runner["Handler"] == "rdsgate.sessions.runner.handler"
    assert (runner["Timeout"], runner["MemorySize"]) == (900, 512)
    assert runner["VpcConfig"]["SecurityGroupIds"] == [{"Fn::GetAtt": [synth.logical_id("Network/FunctionsSecurityGroup"), "GroupId"]}]
    variables = runner["Environment"]["Variables"]
    assert variables["RDSGATE_SESSIONS_TABLE"] == {"Ref": synth.logical_id("Sessions/Table")}
    assert variables["RDSGATE_CONNECTIONS_TABLE"] == {"Ref": synth.logical_id("Data/Table")}
    assert variables["RDSGATE_AUDIT_TABLE"] == {"Ref": synth.logical_id("Audit/Table")}
    assert "RDSGATE_SESSION_RUNNER" not in variables  # a runner starts no runner
    (config,) = synth.of_type("AWS::Lambda::EventInvokeConfig").values() if len(synth.of_type("AWS::Lambda::EventInvokeConfig")) == 1 else [
        c for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": synth.logical_id("Sessions/RunnerFunction")}
    ]
    assert config["Properties"]["MaximumRetryAttempts"] == 0  # a begin that gave up is final


def test_the_runner_role_holds_the_database_grants_and_the_session_items_only(synth):
    runner_role = synth.logical_id("Sessions/RunnerRole")
    query_role = synth.logical_id("Functions/Role")
    runner_grants = sorted(render(s["Resource"]) for statements in rds_connect_policies(synth, runner_role).values() for s in statements)
    query_grants = sorted(render(s["Resource"]) for statements in rds_connect_policies(synth, query_role).values() for s in statements)
    assert runner_grants == query_grants and runner_grants  # the same database users, each by its exact ARN
    table = {"Fn::GetAtt": [synth.logical_id("Sessions/Table"), "Arn"]}
    by_role = {}
    for policy, statement in statements_naming(synth, table):
        by_role.setdefault(role_of(synth, policy), set()).update(as_list(statement["Action"]))
        assert as_list(statement["Resource"]) == [table] and "Condition" not in statement
    assert by_role == {runner_role: set(RUNNER_ACTIONS), query_role: set(QUERY_ACTIONS)}
    assert not {"dynamodb:Scan", "dynamodb:Query", "dynamodb:DeleteItem"} & set().union(*by_role.values())
    runner_actions = {a for logical_id, s in policy_statements(synth) if logical_id.startswith("SessionsRunnerRole")
                      for a in as_list(s["Action"])}
    assert not {a for a in runner_actions if a.startswith(("lambda:", "s3:", "states:"))}  # nothing else of the query role's


def test_only_the_query_role_may_start_a_runner(synth):
    runner = {"Fn::GetAtt": [synth.logical_id("Sessions/RunnerFunction"), "Arn"]}
    invoking = [(policy, s) for policy, s in policy_statements(synth)
                if "lambda:InvokeFunction" in as_list(s["Action"]) and runner in as_list(s["Resource"])]
    assert len(invoking) == 1
    ((policy, statement),) = invoking
    assert role_of(synth, policy) == synth.logical_id("Functions/Role")
    assert as_list(statement["Action"]) == ["lambda:InvokeFunction"]
    # The function itself (merged with the statements worker's grant), no version or alias wildcard.
    assert runner in as_list(statement["Resource"]) and not [r for r in as_list(statement["Resource"]) if "*" in render(r)]


def test_lambda_is_reached_through_one_interface_endpoint(synth):
    lambda_endpoints = [e for e in synth.of_type("AWS::EC2::VPCEndpoint").values()
                        if "lambda" in render(e["Properties"]["ServiceName"])]
    assert len(lambda_endpoints) == 1  # shared with asynchronous statements: two with private DNS would clash
    assert lambda_endpoints[0]["Properties"]["VpcEndpointType"] == "Interface"
    assert lambda_endpoints[0]["Properties"]["PrivateDnsEnabled"] is True
    for forbidden in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway"):
        assert not synth.of_type(forbidden)


def test_outputs_name_the_table_and_the_runner(synth):
    outputs = synth.template.to_json()["Outputs"]
    assert outputs["SessionsTableName"]["Value"] == {"Ref": synth.logical_id("Sessions/Table")}
    assert outputs["SessionRunnerFunctionName"]["Value"] == {"Ref": synth.logical_id("Sessions/RunnerFunction")}


def test_sessions_off(tmp_path_factory):
    off = synthesize(tmp_path_factory, sessions="false")
    assert off.stack.node.try_find_child("Sessions") is None
    functions = [r for r in off.of_type("AWS::Lambda::Function").values()
                 if r["Properties"].get("Handler") in ("rdsgate.api.handler", "rdsgate.invoke.handler")]
    assert functions and all("RDSGATE_SESSIONS_TABLE" not in f["Properties"]["Environment"]["Variables"] for f in functions)
    assert not [r for r in off.of_type("AWS::ApiGateway::Resource").values() if r["Properties"]["PathPart"] == "sessions"]
    assert off.nag_report().violations == []


def test_context_is_checked():
    def get(values):
        return lambda key: values.get(key)

    assert SessionsSettings.from_context(get({})) == SessionsSettings()
    assert SessionsSettings.from_context(get({"sessions": "false"})).enabled is False
    tuned = SessionsSettings.from_context(get({"sessionIdleSeconds": "30", "maxSessionsPerCaller": 2}))
    assert (tuned.idle_seconds, tuned.max_per_caller) == (30, 2)
    for bad, message in (({"sessions": "maybe"}, "'sessions' must be true or false"),
                         ({"sessionRunnerTimeoutSeconds": 901}, "from 60 to 900"),
                         ({"sessionIdleSeconds": 600, "sessionRunnerTimeoutSeconds": 300}, "must be shorter"),
                         ({"maxSessionsPerConnection": True}, "whole number")):
        with pytest.raises(ConfigError, match=message):
            SessionsSettings.from_context(get(bad))
