"""The audit trail against a caller who tries: every request leaves exactly one record, records
always fit, claimed callers are told apart from verified ones, and failures are counted."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import types

import pytest

from rdsgate import api, errors, invoke
from tests.conftest import ENGINEER_ROLE, iam_definition, load_event
from tests.integration.test_governance import ensure_table

ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"
MALLORY = "arn:aws:iam::123456789012:user/mallory"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:rdsgate-invoke"
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:rdsgate-sample:run-1"


@pytest.fixture
def audited(runtime, aws, monkeypatch, connections, postgres):
    monkeypatch.setenv("RDSGATE_AUDIT_TABLE", ensure_table("rdsgate-audit-hostile", "connection", "at"))
    runtime.reset()
    connections.put(iam_definition("pg-trail", postgres, "postgres", allowed_principals=[ENGINEER_ROLE]))
    return runtime


def event(method, path, resource, *, caller=ALICE, body=None, request_id, name="pg-trail", query=None):
    base = load_event("api_query.json")
    base.update(httpMethod=method, path=path, resource=resource, body=body, isBase64Encoded=False,
                pathParameters={"name": name} if "{name}" in resource else None, queryStringParameters=query)
    base["requestContext"]["identity"]["userArn"] = caller
    base["requestContext"]["requestId"] = request_id
    return base


def records_for(runtime, request_id, connection="pg-trail"):
    """Every stored record of one request, read straight from the table (not through the API)."""
    trail = runtime.get()._audit_sink
    return [r for r in trail.read(connection, None, limit=1000) if r.get("requestId") == request_id]


CASES = [
    ("ok", "POST", "/connections/pg-trail/query", "/connections/{name}/query", ALICE, json.dumps({"sql": "SELECT 1"}), "ok"),
    ("denied", "POST", "/connections/pg-trail/query", "/connections/{name}/query", MALLORY, json.dumps({"sql": "SELECT 1"}), "NotFound"),
    ("invalid", "POST", "/connections/pg-trail/query", "/connections/{name}/query", ALICE, "{not json", "InvalidRequest"),
    ("unknown-field", "POST", "/connections/pg-trail/query", "/connections/{name}/query", ALICE, json.dumps({"sql": "SELECT 1", "x": 1}), "InvalidRequest"),
    ("get", "GET", "/connections/pg-trail", "/connections/{name}", ALICE, None, "ok"),
    ("get-denied", "GET", "/connections/pg-trail", "/connections/{name}", MALLORY, None, "NotFound"),
    ("diagnose", "GET", "/connections/pg-trail/diagnose", "/connections/{name}/diagnose", ALICE, None, "ok"),
    ("guardrail-sql-error", "POST", "/connections/pg-trail/query", "/connections/{name}/query", ALICE, json.dumps({"sql": "SELECT * FROM nowhere"}), "SqlError"),
]


@pytest.mark.parametrize("request_id, method, path, resource, caller, body, outcome", CASES)
def test_every_request_leaves_exactly_one_record(audited, request_id, method, path, resource, caller, body, outcome):
    response = api.handler(event(method, path, resource, caller=caller, body=body, request_id=request_id), None)
    assert response["statusCode"] == {"ok": 200, "NotFound": 404, "InvalidRequest": 400, "SqlError": 422}[outcome]
    found = records_for(audited, request_id)
    assert len(found) == 1, found
    assert found[0]["outcome"] == outcome and found[0]["route"] == f"{method} {resource}"
    assert found[0]["caller"] == caller
    if request_id.endswith("denied"):
        assert found[0]["reason"] == "Forbidden"  # the caller is told 404; the trail keeps the real reason


def test_audit_reads_and_listings_are_records_too(audited):
    api.handler(event("GET", "/connections", "/connections", request_id="list"), None)
    listed = records_for(audited, "list", connection="-")
    assert len(listed) == 1 and listed[0]["statementType"] == "LIST"
    response = api.handler(event("GET", "/audit", "/audit", request_id="read", query={"connection": "pg-trail"}), None)
    assert response["statusCode"] == 200
    read = records_for(audited, "read")
    assert len(read) == 1 and read[0]["statementType"] == "AUDIT"


def test_data_api_denials_are_recorded(audited):
    arn = "arn:aws:rds:us-east-1:123456789012:cluster:pg-trail"
    body = json.dumps({"resourceArn": arn, "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "sql": "SELECT 1"})
    response = api.handler(event("POST", "/Execute", "/Execute", caller=MALLORY, body=body, request_id="dataapi-denied"), None)
    assert response["statusCode"] == 404
    found = [r for r in audited.get()._audit_sink.read("-", None, limit=1000) if r.get("requestId") == "dataapi-denied"]
    found += records_for(audited, "dataapi-denied")
    assert len(found) == 1 and found[0]["outcome"] == "NotFound"


def test_sql_padded_past_the_item_limit_is_recorded_cut_with_its_digest(audited):
    sql = "SELECT 1 /*" + "y" * 600_000 + "*/"  # within the 1 MiB request limit, over DynamoDB's 400 KB item
    response = api.handler(event("POST", "/connections/pg-trail/query", "/connections/{name}/query",
                                 body=json.dumps({"sql": sql}), request_id="long"), None)
    assert response["statusCode"] == 200
    record = records_for(audited, "long")[0]
    assert record["outcome"] == "ok" and record["sqlLength"] == len(sql)
    assert record["sqlSha256"] == hashlib.sha256(sql.encode()).hexdigest() and len(record["sql"]) <= 8193
    assert record["sqlTruncated"] is True


def context(request_id):
    return types.SimpleNamespace(invoked_function_arn=FUNCTION_ARN, aws_request_id=request_id,
                                 get_remaining_time_in_millis=lambda: 60_000)


def test_invoke_callers_are_claimed_not_verified(audited):
    claim = "arn:aws:iam::123456789012:role/admin"
    invoke.handler({"connection": "pg-trail", "sql": "SELECT 1", "caller": claim, "executionArn": EXECUTION_ARN}, context("inv-1"))
    record = records_for(audited, "inv-1")[0]
    assert record["caller"] is None and record["claimedCaller"] == claim
    assert record["invokedFunctionArn"] == FUNCTION_ARN and record["executionArn"] == EXECUTION_ARN
    with pytest.raises(errors.InvalidRequest, match="executionArn"):
        invoke.handler({"connection": "pg-trail", "sql": "SELECT 1", "executionArn": "not-an-arn"}, context("inv-2"))
    refused = records_for(audited, "inv-2")
    assert len(refused) == 1 and refused[0]["outcome"] == "InvalidRequest" and refused[0]["route"] == "invoke"


def test_audit_write_failures_are_counted_and_logged(audited, caplog):
    service = audited.get()

    class Broken:
        def write(self, record):
            raise RuntimeError("table gone")

    service._audit_sink = Broken()
    caplog.set_level(logging.ERROR)
    response = api.handler(event("POST", "/connections/pg-trail/query", "/connections/{name}/query",
                                 body=json.dumps({"sql": "SELECT 1"}), request_id="broken"), None)
    assert response["statusCode"] == 200  # the request's outcome stands
    assert service.audit_write_failures == 1


def test_base64_bodies_that_are_not_utf8_are_recorded_as_invalid(audited):
    raw = event("POST", "/connections/pg-trail/query", "/connections/{name}/query",
                body=base64.b64encode(b'{"sql": "\xff"}').decode(), request_id="b64")
    raw["isBase64Encoded"] = True
    assert api.handler(raw, None)["statusCode"] == 400
    found = records_for(audited, "b64")
    assert len(found) == 1 and found[0]["outcome"] == "InvalidRequest" and found[0]["statementType"] == "INVALID"
