"""Reviews in the stack: the table (status index, TTL, kept), its KMS key, the optional SNS topic, exact grants,
the environment of the query functions and the worker, the KMS endpoint, the API routes; cdk-nag clean."""

from __future__ import annotations

import json

import pytest

from infra.settings import ConfigError
from synth_helpers import synthesize


@pytest.fixture(scope="module")
def synth(default_synth):
    return default_synth


@pytest.fixture(scope="module")
def with_topic(tmp_path_factory):
    return synthesize(tmp_path_factory, reviewsTopic="create")


def statements_of(synth, role_path):
    role = synth.logical_id(role_path)
    found = []
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions_on(statements, needle):
    actions = set()
    for statement in statements:
        if needle in json.dumps(statement["Resource"]):
            actions |= set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    return actions


def test_the_reviews_table_has_a_status_index_a_ttl_and_is_kept(synth):
    table = synth.resources[synth.logical_id("Reviews/Table")]
    properties = table["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "status-submittedAt"
    assert index["KeySchema"] == [{"AttributeName": "status", "KeyType": "HASH"}, {"AttributeName": "submittedAt", "KeyType": "RANGE"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"
    key = synth.resources[synth.logical_id("Reviews/Key")]
    assert key["Properties"]["EnableKeyRotation"] is True


def test_the_query_role_has_exactly_the_review_grants(synth):
    statements = statements_of(synth, "Functions/Role")
    table, key = synth.logical_id("Reviews/Table"), synth.logical_id("Reviews/Key")
    item_grants = {a for s in statements if s["Resource"] == {"Fn::GetAtt": [table, "Arn"]}
                   for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert item_grants == {"dynamodb:GetItem", "dynamodb:PutItem"}  # never Scan, never DeleteItem
    assert actions_on(statements, "/index/status-submittedAt") == {"dynamodb:Query"}
    assert actions_on(statements, key) == {"kms:Encrypt", "kms:Decrypt"}
    assert not [s for s in statements if "sns:Publish" in json.dumps(s["Action"])]  # no topic, no publish


def test_the_functions_and_the_worker_know_the_table(synth):
    table, key = synth.logical_id("Reviews/Table"), synth.logical_id("Reviews/Key")
    for name in ("Functions/ApiFunction", "Functions/InvokeFunction"):
        variables = synth.resources[synth.logical_id(name)]["Properties"]["Environment"]["Variables"]
        assert variables["RDSGATE_REVIEWS_TABLE"] == {"Ref": table}
        assert variables["RDSGATE_REVIEWS_KMS_KEY"] == {"Fn::GetAtt": [key, "Arn"]}
        assert "RDSGATE_REVIEWS_TOPIC" not in variables
    worker = synth.resources[synth.logical_id("Statements/WorkerFunction")]["Properties"]["Environment"]["Variables"]
    assert worker["RDSGATE_REVIEWS_TABLE"] == {"Ref": table} and "RDSGATE_REVIEWS_KMS_KEY" not in worker
    assert actions_on(statements_of(synth, "Statements/WorkerRole"), table) == {"dynamodb:GetItem"}


def test_kms_is_reached_through_an_interface_endpoint(synth):
    endpoints = [e["Properties"] for e in synth.of_type("AWS::EC2::VPCEndpoint").values()]
    kms = [e for e in endpoints if "kms" in json.dumps(e["ServiceName"])]
    assert len(kms) == 1 and kms[0]["VpcEndpointType"] == "Interface" and kms[0]["PrivateDnsEnabled"] is True
    assert not [e for e in endpoints if ".sns" in json.dumps(e["ServiceName"])]


def test_the_api_has_the_review_routes(synth):
    resources = synth.of_type("AWS::ApiGateway::Resource")
    parts = {k: r["Properties"]["PathPart"] for k, r in resources.items()}
    root = next(k for k, v in parts.items() if v == "reviews")
    one = next(k for k, r in resources.items() if r["Properties"]["ParentId"] == {"Ref": root})
    children = {parts[k] for k, r in resources.items() if r["Properties"]["ParentId"] == {"Ref": one}}
    assert parts[one] == "{id}" and children == {"approve", "reject"}
    methods = {(m["Properties"]["ResourceId"]["Ref"], m["Properties"]["HttpMethod"]): m["Properties"]["AuthorizationType"]
               for m in synth.of_type("AWS::ApiGateway::Method").values() if "Ref" in m["Properties"]["ResourceId"]}
    assert methods[(root, "GET")] == methods[(one, "GET")] == "AWS_IAM"


def test_an_optional_topic_encrypted_with_the_reviews_key(with_topic):
    (topic,) = with_topic.of_type("AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [with_topic.logical_id("Reviews/Key"), "Arn"]}
    variables = with_topic.resources[with_topic.logical_id("Functions/ApiFunction")]["Properties"]["Environment"]["Variables"]
    assert variables["RDSGATE_REVIEWS_TOPIC"] == {"Ref": with_topic.logical_id("Reviews/Topic")}
    assert "sns:Publish" in json.dumps(statements_of(with_topic, "Functions/Role"))
    endpoints = [e["Properties"] for e in with_topic.of_type("AWS::EC2::VPCEndpoint").values()]
    assert [e for e in endpoints if ".sns" in json.dumps(e["ServiceName"])]
    assert [(v.rule_name, v.severity) for v in with_topic.nag_report().violations] == []


def test_a_bad_topic_setting_fails_the_synth(tmp_path_factory):
    with pytest.raises(ConfigError, match="'reviewsTopic' must be 'create' or an SNS topic ARN"):
        synthesize(tmp_path_factory, reviewsTopic="slack")


def test_cdk_nag_is_clean_with_reviews(synth):
    assert [(v.rule_name, v.severity, [r.construct_path for r in v.violating_resources]) for v in synth.nag_report().violations] == []


def test_a_scheduled_sweeper_expires_overdue_reviews(synth, with_topic):
    function = synth.resources[synth.logical_id("Reviews/SweeperFunction")]["Properties"]
    assert function["Handler"] == "rdsgate.reviews.sweep_handler" and "VpcConfig" not in function
    assert function["Environment"]["Variables"]["RDSGATE_REVIEWS_TABLE"] == {"Ref": synth.logical_id("Reviews/Table")}
    (rule,) = [r["Properties"] for r in synth.of_type("AWS::Events::Rule").values() if r["Properties"].get("ScheduleExpression") == "rate(15 minutes)"]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [synth.logical_id("Reviews/SweeperFunction"), "Arn"]}
    statements = statements_of(synth, "Reviews/SweeperRole")
    table = synth.logical_id("Reviews/Table")
    assert actions_on(statements, table) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"}
    assert not [s for s in statements if "kms:Decrypt" in json.dumps(s["Action"])]  # it never reads parameters
    assert "sns:Publish" in json.dumps(statements_of(with_topic, "Reviews/SweeperRole"))
