"""Reviews on both engines against the real servers: submit → pending → self-approval refused → approval by
another identity → the statement runs (asynchronous statements) → result; reject; expiry; a tampered
review; batches; a reviewed runbook on a runbook-only connection; a Step Functions task held by a review;
and the audit record of each step."""

from __future__ import annotations

import json
import os
import time
import types
from decimal import Decimal

import boto3
import pytest

from rdsgate import api, invoke, reviews, statements as statements_module
from rdsgate.reviews.decisions import sweep
from rdsgate.reviews.item import CLIENTS as REVIEW_CLIENTS, ReviewStore
from rdsgate.runbooks.definition import parse_runbook
from rdsgate.worker import LOCAL_RUNNER
from rdsgate_devstack import reviews_local
from rdsgate_devstack.http_server import build_event, identity_of
from rdsgate_devstack.statements_local import create_resources as create_statement_resources
from tests.conftest import ENGINEER_ROLE, ENGINES, iam_definition, run_query
from tests.integration.test_data_api import SECRET, arn, endpoint, use_execute_api_signing  # noqa: F401 (endpoint: a fixture)
from tests.integration.test_governance import ensure_table
from tests.integration.test_runbooks import Runbooks

ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/data-engineer/bob"
DAVE = "arn:aws:sts::123456789012:assumed-role/dba/dave"
DBA_ROLE = "arn:aws:iam::123456789012:role/dba"
REVIEWS_TABLE = "rdsgate-reviews-test"
STATEMENTS_TABLE, BUCKET = "rdsgate-statements-reviews", "rdsgate-results-reviews"
AUDIT_TABLE = "rdsgate-audit-reviews"
RUNBOOKS_TABLE = "rdsgate-runbooks-reviews"
RULE = {"required_for": ["INSERT", "UPDATE", "DELETE", "DDL"], "approvers": [DBA_ROLE], "min_approvals": 1}


@pytest.fixture(scope="session")
def review_resources(aws):
    endpoint = os.environ["AWS_ENDPOINT_URL_DYNAMODB"]

    def client(service):
        return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)

    environment = reviews_local.create_resources(client, table=REVIEWS_TABLE, endpoint=endpoint)
    create_statement_resources(client, table=STATEMENTS_TABLE, bucket=BUCKET)
    return environment


@pytest.fixture
def env(runtime, review_resources, monkeypatch):
    for name, value in {**review_resources, "RDSGATE_STATEMENTS_TABLE": STATEMENTS_TABLE, "RDSGATE_RESULTS_BUCKET": BUCKET,
                        "RDSGATE_WORKER": "thread", "RDSGATE_WORKER_TIMEOUT_SECONDS": "120",
                        "RDSGATE_AUDIT_TABLE": ensure_table(AUDIT_TABLE, "connection", "at"),
                        "RDSGATE_RUNBOOKS_TABLE": ensure_table(RUNBOOKS_TABLE, "name")}.items():
        monkeypatch.setenv(name, value)
    REVIEW_CLIENTS.reset()
    runtime.reset()
    yield runtime
    LOCAL_RUNNER.join(timeout=30)
    REVIEW_CLIENTS.reset()


@pytest.fixture
def ledger(env, connections, server, engine):
    """Table rv_ledger on a connection whose writes need one approval by the DBA role."""
    conn = ENGINES[engine]
    run_query(env, conn, "DROP TABLE IF EXISTS rv_ledger")
    run_query(env, conn, "CREATE TABLE rv_ledger (id int PRIMARY KEY, owner varchar(20))")
    run_query(env, conn, "INSERT INTO rv_ledger VALUES (1, 'ann'), (2, 'bob')")
    name = f"{conn}-reviewed"
    connections.put(iam_definition(name, server, engine, approval=RULE))
    yield types.SimpleNamespace(conn=conn, name=name, engine=engine, server=server)
    run_query(env, conn, "DROP TABLE IF EXISTS rv_ledger")


def call(method, path, body=None, caller=ALICE, request_id=None):
    data = json.dumps(body).encode() if body is not None else b""
    event = build_event(method, path, [("Content-Type", "application/json")], data,
                        identity_of(caller, source_ip="127.0.0.1", user_agent="pytest", access_key=None))
    if request_id:
        event["requestContext"]["requestId"] = request_id
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def owners(env, ledger):
    return [r["owner"] for r in run_query(env, ledger.conn, "SELECT owner FROM rv_ledger ORDER BY id")["records"]]


def submit_update(ledger, owner="zed", request_id=None):
    status, answer = call("POST", f"/connections/{ledger.name}/query",
                          {"sql": "UPDATE rv_ledger SET owner = :owner WHERE id = :id", "parameters": {"owner": owner, "id": 1}},
                          request_id=request_id)
    assert status == 202, answer
    assert answer["status"] == "PENDING" and answer["reviewId"].startswith("r-")
    return answer["reviewId"]


def wait_statement(statement_id, caller=ALICE, timeout=60):
    end = time.monotonic() + timeout
    while True:
        status, view = call("GET", f"/statements/{statement_id}", caller=caller)
        assert status == 200, view
        if view["status"] in ("FINISHED", "FAILED", "CANCELLED") or time.monotonic() > end:
            return view
        time.sleep(0.1)


def audit(env, connection, **match):
    return [r for r in env.get()._audit_sink.read(connection, None) if all(r.get(k) == v for k, v in match.items())]


def test_a_review_cycle_submit_pending_self_approval_refused_approved_result(env, ledger):
    review_id = submit_update(ledger, request_id=f"{ledger.conn}-submit")
    assert owners(env, ledger) == ["ann", "bob"]  # nothing ran
    # Reads need no review.
    status, read = call("POST", f"/connections/{ledger.name}/query", {"sql": "SELECT count(*) AS n FROM rv_ledger"})
    assert status == 200 and read["records"] == [{"n": 2}]

    status, listed = call("GET", "/reviews?status=PENDING", caller=DAVE)
    assert review_id in [r["reviewId"] for r in listed["reviews"]]
    status, listed = call("GET", "/reviews?status=PENDING", caller=ALICE)
    assert review_id not in [r["reviewId"] for r in listed["reviews"]]  # she may not decide her own
    status, mine = call("GET", "/reviews?status=PENDING&mine=true", caller=ALICE)
    assert review_id in [r["reviewId"] for r in mine["reviews"]]

    status, shown = call("GET", f"/reviews/{review_id}", caller=ALICE)
    assert status == 200 and shown["status"] == "PENDING" and shown["requester"] == ALICE
    assert shown["request"]["sql"] == "UPDATE rv_ledger SET owner = :owner WHERE id = :id"
    assert shown["request"]["parameters"].startswith("hidden")  # no audit_parameters on the connection
    assert shown["statementKinds"] == ["UPDATE"] and len(shown["requestSha256"]) == 64
    # The parameters are kept encrypted (KMS), never in the clear.
    stored = boto3.client("dynamodb", region_name="us-east-1").get_item(TableName=REVIEWS_TABLE, Key={"id": {"S": review_id}})["Item"]
    assert "zed" not in stored["review"]["S"] and '"kms"' in stored["review"]["S"]

    status, refused = call("POST", f"/reviews/{review_id}/approve", {}, caller=ALICE, request_id=f"{ledger.conn}-self")
    assert (status, refused["error"]["code"], refused["error"]["rule"]) == (403, "Forbidden", "four-eyes")
    status, hidden = call("POST", f"/reviews/{review_id}/approve", {}, caller=BOB)
    assert (status, hidden["error"]["code"]) == (404, "NotFound")  # not an approver, not the requester
    assert owners(env, ledger) == ["ann", "bob"]

    status, approved = call("POST", f"/reviews/{review_id}/approve", {"comment": "ok"}, caller=DAVE, request_id=f"{ledger.conn}-approve")
    assert status == 200, approved
    assert approved["status"] == "EXECUTED" and approved["decisions"][0]["by"] == DAVE and approved["decisions"][0]["comment"] == "ok"
    finished = wait_statement(approved["statementId"])
    assert finished["status"] == "FINISHED" and finished["updatedRows"] == 1
    assert owners(env, ledger) == ["zed", "bob"]
    status, again = call("GET", f"/reviews/{review_id}", caller=ALICE)
    assert again["status"] == "EXECUTED" and again["statementId"] == approved["statementId"]

    # The audit trail: the submission (held), the refused self-approval, the approval, the run as the requester.
    (submitted,) = audit(env, ledger.name, requestId=f"{ledger.conn}-submit")
    assert submitted["outcome"] == "ReviewPending" and submitted["reviewId"] == review_id and submitted["caller"] == ALICE
    (self_approval,) = audit(env, ledger.name, requestId=f"{ledger.conn}-self")
    assert self_approval["outcome"] == "Forbidden" and self_approval["reason"] == "OwnRequest"
    (approval,) = audit(env, ledger.name, requestId=f"{ledger.conn}-approve", statementType="APPROVE")
    assert approval["outcome"] == "ok" and approval["caller"] == DAVE and approval["reviewId"] == review_id
    runs = audit(env, ledger.name, review=review_id, statementType="UPDATE")
    assert len(runs) == 1 and runs[0]["caller"] == ALICE and runs[0]["outcome"] == "ok"


def test_a_rejected_review_never_runs(env, ledger):
    review_id = submit_update(ledger, owner="eve")
    status, rejected = call("POST", f"/reviews/{review_id}/reject", {"comment": "not today"}, caller=DAVE)
    assert status == 200 and rejected["status"] == "REJECTED" and rejected["decisions"][0]["comment"] == "not today"
    status, late = call("POST", f"/reviews/{review_id}/approve", {}, caller=DAVE)
    assert status == 400 and "REJECTED" in late["error"]["message"]
    assert owners(env, ledger) == ["ann", "bob"]
    (record,) = audit(env, ledger.name, reviewId=review_id, statementType="REJECT")
    assert record["caller"] == DAVE and record["comment"] == "not today"


def test_an_expired_review_never_runs(env, connections, ledger):
    name = f"{ledger.conn}-reviewed-soon"
    connections.put(iam_definition(name, ledger.server, ledger.engine, approval={**RULE, "expires_after_hours": Decimal("0.0003")}))
    status, answer = call("POST", f"/connections/{name}/query", {"sql": "DELETE FROM rv_ledger WHERE id = 2"})
    assert status == 202
    time.sleep(1.5)
    status, shown = call("GET", f"/reviews/{answer['reviewId']}", caller=ALICE)
    assert shown["status"] == "EXPIRED"
    status, refused = call("POST", f"/reviews/{answer['reviewId']}/approve", {}, caller=DAVE)
    assert (status, refused["error"]["code"]) in ((410, "ReviewExpired"), (400, "InvalidRequest"))
    assert owners(env, ledger) == ["ann", "bob"]


def test_a_tampered_review_does_not_run(env, ledger):
    review_id = submit_update(ledger, owner="mal")
    table = boto3.client("dynamodb", region_name="us-east-1")
    stored = table.get_item(TableName=REVIEWS_TABLE, Key={"id": {"S": review_id}})["Item"]
    item = json.loads(stored["review"]["S"])
    item["request"]["sql"] = "UPDATE rv_ledger SET owner = :owner WHERE id = :id OR 1 = 1"
    stored["review"] = {"S": json.dumps(item)}
    table.put_item(TableName=REVIEWS_TABLE, Item=stored)
    status, answer = call("POST", f"/reviews/{review_id}/approve", {}, caller=DAVE)
    assert status == 200 and answer["status"] == "FAILED"
    assert "no longer matches its hash" in answer["error"]["message"]
    LOCAL_RUNNER.join(timeout=10)
    assert owners(env, ledger) == ["ann", "bob"]


def test_a_data_api_call_that_needs_a_review_answers_400_and_opens_one_review(env, ledger, endpoint):
    """boto3's rds-data client with its default retries: a 500 would be retried, each retry opening another review."""
    client = boto3.client("rds-data", endpoint_url=endpoint, region_name="us-east-1")
    client.meta.events.register("before-sign.rds-data", use_execute_api_signing)
    store = ReviewStore.configured()
    before = {item["id"] for item in store.list_status("PENDING", limit=1000)}
    with pytest.raises(client.exceptions.BadRequestException, match=r"review r-\S+ is PENDING") as raised:
        client.execute_statement(resourceArn=arn(ledger.name), secretArn=SECRET, sql="UPDATE rv_ledger SET owner = 'zed' WHERE id = 1")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    opened = [item for item in store.list_status("PENDING", limit=1000) if item["id"] not in before and item["connection"] == ledger.name]
    assert len(opened) == 1 and opened[0]["id"] in str(raised.value)
    assert owners(env, ledger) == ["ann", "bob"]  # nothing ran


def test_a_reviewed_batch_runs_whole_once_approved(env, ledger):
    status, answer = call("POST", f"/connections/{ledger.name}/batch",
                          {"sql": "INSERT INTO rv_ledger VALUES (:id, :owner)", "parameterSets": [{"id": 3, "owner": "cy"}, {"id": 4, "owner": "di"}]})
    assert status == 202 and owners(env, ledger) == ["ann", "bob"]
    status, approved = call("POST", f"/reviews/{answer['reviewId']}/approve", {}, caller=DAVE)
    assert status == 200 and approved["status"] == "EXECUTED" and approved["result"]["updatedRows"] == 2
    assert owners(env, ledger) == ["ann", "bob", "cy", "di"]


def test_a_reviewed_runbook_on_a_runbook_only_connection(env, connections, ledger, moto_aws):
    name = f"{ledger.conn}-rb-only"
    connections.put(iam_definition(name, ledger.server, ledger.engine, adhoc=False, allowed_principals=[]))
    runbook = Runbooks(moto_aws, RUNBOOKS_TABLE).put({
        "name": f"{ledger.conn}-rename", "connection": name, "sql": "UPDATE rv_ledger SET owner = :owner WHERE id = :id",
        "parameters": [{"name": "owner", "type": "string", "pattern": "[a-z]{2,10}"}, {"name": "id", "type": "integer", "min": 1}],
        "allowed_principals": [ENGINEER_ROLE], "approval": {"required_for": "all", "approvers": [DBA_ROLE]},
    })
    status, answer = call("POST", f"/runbooks/{runbook.name}/run", {"parameters": {"owner": "rue", "id": 2}})
    assert status == 202, answer
    status, approved = call("POST", f"/reviews/{answer['reviewId']}/approve", {}, caller=DAVE)
    assert status == 200 and approved["status"] == "EXECUTED", approved
    assert approved["runbook"] == runbook.name and approved["runbookVersion"] == runbook.version
    # It ran during the approval, its result kept with the review (ALICE may not read the connection's statements).
    assert approved["result"]["updatedRows"] == 1 and "statementId" not in approved
    status, shown = call("GET", f"/reviews/{answer['reviewId']}", caller=ALICE)
    assert shown["status"] == "EXECUTED" and shown["result"]["updatedRows"] == 1
    assert owners(env, ledger) == ["ann", "rue"]
    runs = audit(env, name, review=answer["reviewId"], statementType="UPDATE")
    assert len(runs) == 1 and runs[0]["runbook"] == runbook.name and runs[0]["caller"] == ALICE


class Recorder:
    """A stand-in Step Functions client that records SendTaskSuccess/Failure."""

    def __init__(self):
        self.calls = []

    def send_task_failure(self, **kwargs):
        self.calls.append(("failure", kwargs))

    def send_task_success(self, **kwargs):
        self.calls.append(("success", kwargs))


def test_a_step_functions_task_waits_for_the_review(env, ledger, monkeypatch):
    recorder = Recorder()
    monkeypatch.setitem(REVIEW_CLIENTS._clients, "stepfunctions", recorder)
    monkeypatch.setitem(statements_module.CLIENTS._clients, "stepfunctions", recorder)
    context = types.SimpleNamespace(aws_request_id="sfn-1", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:rdsgate-invoke",
                                    get_remaining_time_in_millis=lambda: 30_000)
    sql = "UPDATE rv_ledger SET owner = 'sam' WHERE id = 1"
    held = invoke.handler({"connection": ledger.name, "sql": sql, "taskToken": "token-reject"}, context)
    assert held["status"] == "PENDING" and owners(env, ledger) == ["ann", "bob"]
    call("POST", f"/reviews/{held['reviewId']}/reject", {"comment": "no"}, caller=DAVE)
    assert recorder.calls == [("failure", {"taskToken": "token-reject", "error": "ReviewRejected", "cause": recorder.calls[0][1]["cause"]})]

    held = invoke.handler({"connection": ledger.name, "sql": sql, "taskToken": "token-approve"}, context)
    status, approved = call("POST", f"/reviews/{held['reviewId']}/approve", {}, caller=DAVE)
    assert status == 200 and approved["status"] == "EXECUTED"
    LOCAL_RUNNER.join(timeout=30)
    kind, sent = recorder.calls[-1]
    assert kind == "success" and sent["taskToken"] == "token-approve"
    assert json.loads(sent["output"])["s3Uri"].startswith(f"s3://{BUCKET}/")
    assert owners(env, ledger) == ["sam", "bob"]


def test_the_sweeper_expires_a_review_nobody_read_and_fails_its_task(env, connections, ledger, monkeypatch):
    recorder = Recorder()
    monkeypatch.setitem(REVIEW_CLIENTS._clients, "stepfunctions", recorder)
    name = f"{ledger.conn}-reviewed-sweep"
    connections.put(iam_definition(name, ledger.server, ledger.engine, approval={**RULE, "expires_after_hours": Decimal("0.0003")}))
    context = types.SimpleNamespace(aws_request_id="sfn-sweep", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
                                    get_remaining_time_in_millis=lambda: 30_000)
    held = invoke.handler({"connection": name, "sql": "DELETE FROM rv_ledger", "taskToken": "token-expire"}, context)
    assert held["status"] == "PENDING" and held["reviewId"] not in sweep()  # not overdue yet
    time.sleep(1.5)
    assert held["reviewId"] in reviews.sweep_handler({}, None)["expired"]
    assert recorder.calls[-1][0] == "failure" and recorder.calls[-1][1]["error"] == "ReviewExpired"
    assert recorder.calls[-1][1]["taskToken"] == "token-expire"
    assert held["reviewId"] not in sweep()  # once
    assert owners(env, ledger) == ["ann", "bob"]
