"""The seeding custom resource's logic, against moto's DynamoDB, and its CloudFormation responses."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from rdsgate import seed

TABLE = "connections"
ORDERS = {"name": "orders", "engine": "postgres", "host": "orders.example", "port": 5432, "read_only": True,
          "user": "_aws_iam_rds:app", "password": "_aws_iam_rds:authtoken", "resource_id": "db-ABC"}  # fmt: skip
BILLING = {**ORDERS, "name": "billing", "host": "billing.example", "statement_timeout_ms": 2.5}


def event(request_type: str, items: list[dict], old_items: list[dict] | None = None, table: str = TABLE) -> dict:
    body = {
        "RequestType": request_type,
        "ResourceProperties": {"ServiceToken": "arn", "TableName": table, "Definitions": json.dumps(items)},
        "StackId": "stack", "RequestId": "req", "LogicalResourceId": "Definitions",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/presigned",
    }  # fmt: skip
    if old_items is not None:
        body["OldResourceProperties"] = {"TableName": TABLE, "Definitions": json.dumps(old_items)}
        body["PhysicalResourceId"] = f"{TABLE}/definitions"
    return body


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    # The session's moto server may be configured as the endpoint; this test wants mock_aws.
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    with mock_aws():
        resource = boto3.resource("dynamodb")
        resource.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield resource


def names(dynamodb) -> set[str]:
    return {item["name"] for item in dynamodb.Table(TABLE).scan()["Items"]}


def test_create_writes_every_definition_with_its_types(dynamodb):
    physical_id = seed.sync_definitions(event("Create", [ORDERS, BILLING]), dynamodb)
    assert physical_id == f"{TABLE}/definitions"
    stored = dynamodb.Table(TABLE).get_item(Key={"name": "orders"})["Item"]
    assert stored == {**ORDERS, "port": Decimal(5432)}  # numbers and booleans keep their type
    assert dynamodb.Table(TABLE).get_item(Key={"name": "billing"})["Item"]["statement_timeout_ms"] == Decimal("2.5")


def test_update_writes_the_new_file_and_removes_only_names_dropped_from_it(dynamodb):
    table = dynamodb.Table(TABLE)
    table.put_item(Item={"name": "by-hand", "engine": "mysql"})  # a static connection added by hand
    seed.sync_definitions(event("Create", [ORDERS, BILLING]), dynamodb)
    changed = {**ORDERS, "host": "orders-2.example"}
    seed.sync_definitions(event("Update", [changed], old_items=[ORDERS, BILLING]), dynamodb)
    assert names(dynamodb) == {"orders", "by-hand"}
    assert table.get_item(Key={"name": "orders"})["Item"]["host"] == "orders-2.example"


def test_update_to_another_table_deletes_nothing_from_the_new_one(dynamodb):
    seed.sync_definitions(event("Create", [ORDERS, BILLING]), dynamodb)
    moved = event("Update", [ORDERS], old_items=[ORDERS, BILLING])
    moved["OldResourceProperties"]["TableName"] = "old-table"
    seed.sync_definitions(moved, dynamodb)
    assert names(dynamodb) == {"orders", "billing"}


def test_delete_keeps_the_definitions_of_the_retained_table(dynamodb):
    seed.sync_definitions(event("Create", [ORDERS]), dynamodb)
    delete = event("Delete", [ORDERS])
    delete["PhysicalResourceId"] = "given-id"
    assert seed.sync_definitions(delete, dynamodb) == "given-id"
    assert names(dynamodb) == {"orders"}


def test_malformed_definitions_are_rejected():
    with pytest.raises(ValueError, match="'name'"):
        seed.definitions_of({"Definitions": json.dumps([{"engine": "postgres"}])})


class FakeReply:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self):
        return b""


@pytest.fixture
def responses(monkeypatch):
    sent = []

    def urlopen(request, timeout):
        sent.append({"url": request.full_url, "method": request.get_method(), "body": json.loads(request.data)})
        return FakeReply()

    monkeypatch.setattr(seed.urllib.request, "urlopen", urlopen)
    return sent


def test_the_handler_reports_success_to_cloudformation(dynamodb, responses):
    seed.handler(event("Create", [ORDERS]), None)
    (response,) = responses
    assert response["method"] == "PUT" and response["url"].endswith("/presigned")
    assert response["body"]["Status"] == "SUCCESS"
    assert response["body"]["PhysicalResourceId"] == f"{TABLE}/definitions"
    assert names(dynamodb) == {"orders"}


def test_the_handler_reports_failure_instead_of_hanging_the_deploy(dynamodb, responses):
    seed.handler(event("Create", [ORDERS], table="missing-table"), None)
    (response,) = responses
    assert response["body"]["Status"] == "FAILED"
    assert "ResourceNotFoundException" in response["body"]["Reason"]
    assert response["body"]["PhysicalResourceId"] == "Definitions"


def test_demo_user_statements_create_an_iam_user_idempotently():
    statements = seed.demo_user_statements("rdsgate_demo", "rdsgate")
    assert 'CREATE USER "rdsgate_demo"' in statements[0] and "IF NOT EXISTS" in statements[0]
    assert 'GRANT rds_iam TO "rdsgate_demo"' in statements


@pytest.mark.parametrize("user", ['x"; DROP TABLE t; --', "Upper", "1abc", ""])
def test_demo_user_statements_refuse_anything_but_plain_identifiers(user):
    with pytest.raises(ValueError, match="identifier"):
        seed.demo_user_statements(user, "rdsgate")


def test_the_demo_user_delete_does_nothing(responses):
    delete = {"RequestType": "Delete", "ResourceProperties": {"Database": "rdsgate", "DbUser": "rdsgate_demo"},
              "PhysicalResourceId": "rdsgate/rdsgate_demo", "StackId": "s", "RequestId": "r",
              "LogicalResourceId": "IamUser", "ResponseURL": "https://example/presigned"}  # fmt: skip
    seed.db_user_handler(delete, None)
    assert responses[0]["body"]["Status"] == "SUCCESS"
