"""Runbooks in the stack: the table and its seeding custom resource, the query functions' read grant and
environment, the API routes, and the runbooks file validated at synth with rdsgate's own parser."""

from __future__ import annotations

import json

import pytest

from infra.settings import ROOT, ConfigError
from synth_helpers import synthesize

EXAMPLE = json.loads((ROOT / "infra" / "runbooks.example.json").read_text())


@pytest.fixture(scope="module")
def synth(default_synth):
    return default_synth


def test_the_runbooks_table_is_kept_with_the_stack_and_recoverable(synth):
    table = synth.resources[synth.logical_id("Runbooks/Table")]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["Properties"]["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain"


def test_each_deploy_seeds_the_files_runbooks_with_the_connections_seeding_code(synth):
    (resource,) = synth.of_type("Custom::RdsgateRunbooks").values()
    properties = resource["Properties"]
    assert properties["TableName"] == {"Ref": synth.logical_id("Runbooks/Table")}
    assert json.loads(properties["Definitions"]) == EXAMPLE["runbooks"]  # numbers and booleans keep their type
    function = synth.resources[properties["ServiceToken"]["Fn::GetAtt"][0]]
    assert function["Properties"]["Handler"] == "rdsgate.seed.handler"
    policy = [p for p in synth.of_type("AWS::IAM::Policy").values()
              if p["Properties"]["Roles"] == [{"Ref": synth.logical_id("Runbooks/SeedRole")}]]
    actions = {a for p in policy for s in p["Properties"]["PolicyDocument"]["Statement"]
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) if a.startswith("dynamodb:")}
    assert actions == {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}


def test_the_query_functions_read_runbooks_and_nothing_more(synth):
    table = synth.logical_id("Runbooks/Table")
    granted = set()
    for policy in synth.of_type("AWS::IAM::Policy").values():
        if policy["Properties"]["Roles"] != [{"Ref": synth.logical_id("Functions/Role")}]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if any(table in json.dumps(r) for r in resources):
                granted |= set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    assert granted == {"dynamodb:GetItem", "dynamodb:Scan"}
    for name in ("Functions/ApiFunction", "Functions/InvokeFunction"):
        function = synth.resources[synth.logical_id(name)]
        assert function["Properties"]["Environment"]["Variables"]["RDSGATE_RUNBOOKS_TABLE"] == {"Ref": table}


def test_the_api_has_the_runbook_routes_with_iam_authorization(synth):
    resources = synth.of_type("AWS::ApiGateway::Resource")
    path_parts = {logical_id: r["Properties"]["PathPart"] for logical_id, r in resources.items()}
    runbooks = next(k for k, v in path_parts.items() if v == "runbooks")
    one = next(k for k, r in resources.items() if r["Properties"]["ParentId"] == {"Ref": runbooks})
    run = next(k for k, r in resources.items() if r["Properties"]["ParentId"] == {"Ref": one})
    assert (path_parts[one], path_parts[run]) == ("{name}", "run")
    methods = {(m["Properties"]["ResourceId"]["Ref"], m["Properties"]["HttpMethod"]): m["Properties"]["AuthorizationType"]
               for m in synth.of_type("AWS::ApiGateway::Method").values() if "Ref" in m["Properties"]["ResourceId"]}
    assert methods[(runbooks, "GET")] == methods[(one, "GET")] == methods[(run, "POST")] == "AWS_IAM"


def write(tmp_path, runbooks, connections=None):
    path = tmp_path / "runbooks.json"
    path.write_text(json.dumps({"runbooks": runbooks}))
    context = {"runbooks": str(path)}
    if connections is not None:
        connections_path = tmp_path / "connections.json"
        connections_path.write_text(json.dumps({"connections": connections}))
        context["connections"] = str(connections_path)
    return context


ORDERS = json.loads((ROOT / "infra" / "connections.example.json").read_text())["connections"][0]
VALID = EXAMPLE["runbooks"][0]


@pytest.mark.parametrize("change, message", [
    ({"connection": "nowhere"}, "runbook 'orders-by-status': 'connection' names 'nowhere', which is not a deployed connection"),
    ({"sql": "SELECT * FROM orders WHERE status = :state"}, "'sql' uses :state, which 'parameters' does not declare"),
    ({"parameters": [{"name": "status", "type": "text"}]}, "'parameters.status.type' must be one of string, integer"),
    ({"parameters": [{"name": "status", "type": "integer", "pattern": "x"}]}, "'parameters.status.pattern' applies to string parameters only"),
    ({"parameters": [{"name": "status", "type": "string", "enum": ["a", 1]}]}, "'parameters.status.enum' holds 1"),
    ({"approval": {"required_for": ["SELCT"]}}, "'approval.required_for' names 'SELCT'"),
    ({"maxRows": 0}, "'maxRows' must be a whole number of at least 1"),
    ({"sql": "SELECT 1; SELECT 2"}, "runbook 'orders-by-status': 'sql'"),
])
def test_an_invalid_runbooks_file_fails_the_synth_naming_the_runbook_and_field(tmp_path, tmp_path_factory, change, message):
    item = {**VALID, **change}
    if "sql" in change and "parameters" not in change:
        item["parameters"] = [{"name": "status", "type": "string"}] if ":status" in item["sql"] else []
    with pytest.raises(ConfigError) as caught:
        synthesize(tmp_path_factory, **write(tmp_path, [item]))
    assert message in str(caught.value)


def test_a_connections_runbook_fields_are_checked_at_synth(tmp_path, tmp_path_factory):
    with pytest.raises(ConfigError, match="connection 'orders': 'adhoc' must be true or false"):
        synthesize(tmp_path_factory, **write(tmp_path, [VALID], [{**ORDERS, "adhoc": "no"}]))
    with pytest.raises(ConfigError, match="'approval.min_approvals' must be a whole number"):
        synthesize(tmp_path_factory, **write(tmp_path, [VALID], [{**ORDERS, "approval": {"required_for": "all", "min_approvals": 0}}]))


def test_a_runbook_only_connection_deploys_with_its_runbooks(tmp_path, tmp_path_factory):
    synth = synthesize(tmp_path_factory, **write(tmp_path, [VALID], [{**ORDERS, "adhoc": False}]))
    (resource,) = synth.of_type("Custom::RdsgateRunbooks").values()
    assert [r["name"] for r in json.loads(resource["Properties"]["Definitions"])] == ["orders-by-status"]
    (seed,) = synth.of_type("Custom::RdsgateDefinitions").values()
    assert json.loads(seed["Properties"]["Definitions"])[0]["adhoc"] is False
    assert [(v.rule_name, v.severity) for v in synth.nag_report().violations] == []


def test_seeding_adds_changes_and_removes_runbooks(monkeypatch):
    """The connections' seeding code, on the runbooks table: a deploy writes the file's runbooks and removes
    those the previous file had and the new one has not; one added by hand stays."""
    import boto3
    from moto import mock_aws

    from rdsgate import seed

    def event(kind, items, old=None):
        body = {"RequestType": kind, "ResourceProperties": {"TableName": "runbooks", "Definitions": json.dumps(items)},
                "StackId": "s", "RequestId": "r", "LogicalResourceId": "Runbooks", "ResponseURL": "https://example.invalid/"}
        if old is not None:
            body["OldResourceProperties"] = {"TableName": "runbooks", "Definitions": json.dumps(old)}
        return body

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        dynamodb.create_table(TableName="runbooks", KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        first, second, third = EXAMPLE["runbooks"]
        seed.sync_definitions(event("Create", [first, second]), dynamodb)
        dynamodb.Table("runbooks").put_item(Item={"name": "by-hand", "connection": "orders", "sql": "SELECT 1"})
        changed = {**first, "maxRows": 50}
        seed.sync_definitions(event("Update", [changed, third], old=[first, second]), dynamodb)
        stored = {item["name"]: item for item in dynamodb.Table("runbooks").scan()["Items"]}
        assert set(stored) == {"orders-by-status", "stock-for-sku", "by-hand"}  # cancel-order removed
        assert stored["orders-by-status"]["maxRows"] == 50
        from rdsgate.runbooks.definition import parse_runbook

        assert parse_runbook(stored["orders-by-status"]).version == parse_runbook(changed).version  # the same definition
