"""Governance on both engines against the real servers: read-only, guardrails, masking, limits,
audit records and idempotent retries."""

import json

import boto3
import pytest

from rdsgate import errors
from rdsgate.access import Caller
from rdsgate.request import parse_query
from rdsgate.service import Invocation
from tests.conftest import ENGINEER_ROLE, ENGINES, fresh_table, iam_definition, run_query

ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"


@pytest.fixture
def ledger(runtime, engine):
    """A table ``ledger`` with two rows, on the writable IAM connection of the engine."""
    for conn in fresh_table(runtime, ENGINES[engine], "ledger", "id INT PRIMARY KEY, owner VARCHAR(40), ssn VARCHAR(20), api_token VARCHAR(40)"):
        run_query(runtime, conn, "INSERT INTO ledger VALUES (1, 'ann', '123-45-6789', 'tok-a'), (2, 'bob', '123-45-6789', 'tok-b')")
        yield conn


def define(connections, server, engine, name, **fields):
    connections.put(iam_definition(name, server, engine, **fields))
    return name


def rows(runtime, conn):
    return run_query(runtime, conn, "SELECT id, owner FROM ledger ORDER BY id")["records"]


# --- read-only ---------------------------------------------------------------------------

@pytest.mark.parametrize("sql", ["INSERT INTO ledger (id, owner) VALUES (3, 'eve')", "UPDATE ledger SET owner = 'eve'", "DELETE FROM ledger WHERE id = 1", "DROP TABLE ledger", "CREATE TABLE sneaky (id INT)"])
def test_read_only_connection_refuses_writes_and_ddl(runtime, connections, server, engine, ledger, sql):
    before = rows(runtime, ledger)
    reader = define(connections, server, engine, f"{ledger}-reader", read_only=True)
    with pytest.raises(errors.ReadOnlyViolation):
        run_query(runtime, reader, sql)
    assert rows(runtime, ledger) == before
    assert run_query(runtime, reader, "SELECT count(*) AS n FROM ledger")["records"] == [{"n": 2}]


def test_read_only_request_on_a_writable_connection(runtime, ledger):
    with pytest.raises(errors.ReadOnlyViolation):
        run_query(runtime, ledger, "UPDATE ledger SET owner = 'eve' WHERE id = 1", readOnly=True)
    assert rows(runtime, ledger)[0] == {"id": 1, "owner": "ann"}
    # The connection is writable again for the next request.
    assert run_query(runtime, ledger, "UPDATE ledger SET owner = 'zed' WHERE id = 1")["updatedRows"] == 1


def test_read_only_mysql_session_cannot_be_switched_back(runtime, connections, mariadb, ledger):
    if ledger != "my":
        pytest.skip("MySQL-specific: PostgreSQL enforces read-only per transaction")
    reader = define(connections, mariadb, "mysql", "my-reader-set", read_only=True)
    with pytest.raises(errors.InvalidRequest, match="SET"):
        run_query(runtime, reader, "SET SESSION TRANSACTION READ WRITE")


# --- guardrails --------------------------------------------------------------------------

GUARDRAILS = [
    {"name": "no-ddl", "deny_statements": ["DROP", "TRUNCATE", "ALTER", "GRANT"]},
    {"name": "safe-writes", "require_where": True},
    {"name": "no-pii", "deny_pattern": "(?i)credit_card"},
]


@pytest.mark.parametrize(
    "sql, rule",
    [
        ("/* tidy up */ DrOp TABLE ledger", "no-ddl"),
        ("TRUNCATE TABLE ledger", "no-ddl"),
        ("DELETE FROM ledger", "safe-writes"),
        ("update ledger set owner = 'x'", "safe-writes"),
        ("SELECT 1 AS credit_card", "no-pii"),
    ],
)
def test_guardrails_refuse_before_anything_runs(runtime, connections, server, engine, ledger, sql, rule):
    guarded = define(connections, server, engine, f"{ledger}-guarded", guardrails=GUARDRAILS)
    with pytest.raises(errors.GuardrailViolation) as caught:
        run_query(runtime, guarded, sql)
    assert caught.value.details["rule"] == rule
    assert len(rows(runtime, ledger)) == 2
    assert run_query(runtime, guarded, "UPDATE ledger SET owner = 'ok' WHERE id = 2")["updatedRows"] == 1


# --- masking -----------------------------------------------------------------------------

def test_masked_columns(runtime, connections, server, engine, ledger):
    fixed = define(connections, server, engine, f"{ledger}-masked", masked_columns=["SSN*", "*_token"])
    result = run_query(runtime, fixed, "SELECT id, ssn, api_token AS api_token FROM ledger ORDER BY id")
    assert [r["ssn"] for r in result["records"]] == ["****", "****"] and result["records"][0]["api_token"] == "****"
    hashed = define(connections, server, engine, f"{ledger}-hashed", masked_columns=["ssn"], mask="hash")
    records = run_query(runtime, hashed, "SELECT ssn, owner FROM ledger ORDER BY id")["records"]
    assert records[0]["ssn"] == records[1]["ssn"] != "123-45-6789" and records[0]["owner"] == "ann"


# --- limits ------------------------------------------------------------------------------

def test_timeout_is_504_and_the_next_request_succeeds(runtime, engine):
    conn = ENGINES[engine]
    slow = "SELECT pg_sleep(2)" if engine == "postgres" else "SELECT SLEEP(2)"
    with pytest.raises(errors.QueryTimeout):
        run_query(runtime, conn, slow, timeoutMs=200)
    assert run_query(runtime, conn, "SELECT 1 AS one")["records"] == [{"one": 1}]


def test_request_cannot_raise_the_definition_timeout(runtime, connections, server, engine):
    name = define(connections, server, engine, f"{ENGINES[engine]}-short", statement_timeout_ms=200)
    slow = "SELECT pg_sleep(1)" if engine == "postgres" else "SELECT SLEEP(1)"
    with pytest.raises(errors.QueryTimeout):
        run_query(runtime, name, slow, timeoutMs=60_000)


def test_timeout_stays_below_the_function_deadline(runtime, engine):
    request = parse_query({"sql": "SELECT pg_sleep(5)" if engine == "postgres" else "SELECT SLEEP(5)"})
    invocation = Invocation(caller=Caller(None, governed=False), result_limit_bytes=10**6, remaining_ms=2000)
    with pytest.raises(errors.QueryTimeout):
        runtime.get().query(ENGINES[engine], request, invocation)


def big_select(engine, count):
    if engine == "postgres":
        return f"SELECT g AS n, repeat('x', 100) AS pad FROM generate_series(1, {count}) g"
    return f"SELECT seq AS n, REPEAT('x', 100) AS pad FROM seq_1_to_{count}"


@pytest.mark.parametrize("max_rows", [5, 20_000])  # one round trip, and streamed in batches
def test_truncation_at_max_rows(runtime, engine, max_rows):
    result = run_query(runtime, ENGINES[engine], big_select(engine, 30_000), maxRows=max_rows)
    assert (result["rowCount"], result["truncated"]) == (max_rows, True)
    assert [r["n"] for r in result["records"][:3]] == [1, 2, 3]
    assert run_query(runtime, ENGINES[engine], "SELECT 1 AS one")["records"] == [{"one": 1}]


@pytest.mark.parametrize("source", ["request", "definition"])
def test_truncation_at_max_bytes(runtime, connections, server, engine, source):
    name = ENGINES[engine]
    options = {"maxBytes": 5000}
    if source == "definition":
        name = define(connections, server, engine, f"{name}-bytes", max_bytes=5000)
        options = {}
    result = run_query(runtime, name, big_select(engine, 500), **options)
    assert result["truncated"] is True and 10 < result["rowCount"] < 50
    assert len(json.dumps(result["records"], separators=(",", ":"))) <= 5000


# --- audit trail -------------------------------------------------------------------------

def ensure_table(name, hash_key, range_key=None):
    """Create a DynamoDB table on the session's moto server once."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    if name not in client.list_tables()["TableNames"]:
        keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in keys],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    return name


@pytest.fixture
def audited(runtime, aws, monkeypatch):
    monkeypatch.setenv("RDSGATE_AUDIT_TABLE", ensure_table("rdsgate-audit-test", "connection", "at"))
    runtime.reset()


def test_audit_records_for_allowed_denied_and_failed_requests(runtime, audited, connections, postgres):
    name = define(connections, postgres, "postgres", "pg-audited")
    service = runtime.get()
    alice = Invocation(caller=Caller(ALICE, governed=True), result_limit_bytes=10**6, request_id="req-ok")
    mallory = Invocation(caller=Caller("arn:aws:iam::123456789012:user/mallory", governed=True), result_limit_bytes=10**6, request_id="req-denied")
    service.query(name, parse_query({"sql": "SELECT :secret AS s", "parameters": {"secret": "hunter2"}}), alice)
    with pytest.raises(errors.ConnectionNotFound):
        service.query(name, parse_query({"sql": "SELECT 1"}), mallory)
    with pytest.raises(errors.SqlError):
        service.query(name, parse_query({"sql": "SELECT * FROM nowhere"}), Invocation(caller=alice.caller, result_limit_bytes=10**6, request_id="req-failed"))
    records = runtime.get().audit_records(name, Caller(ALICE, governed=True), None)
    by_id = {r["requestId"]: r for r in records}
    assert by_id["req-ok"]["outcome"] == "ok" and by_id["req-ok"]["rows"] == 1 and by_id["req-ok"]["caller"] == ALICE
    assert by_id["req-denied"]["outcome"] == "NotFound" and by_id["req-denied"]["reason"] == "Forbidden"
    assert by_id["req-failed"]["outcome"] == "SqlError" and by_id["req-failed"]["sql"] == "SELECT * FROM nowhere"
    assert all(r["connection"] == name and r["engine"] == "postgres" and r["durationMs"] >= 0 for r in records)
    assert "hunter2" not in json.dumps(records) and "X-Amz-Signature" not in json.dumps(records)
    with pytest.raises(errors.ConnectionNotFound):
        runtime.get().audit_records(name, mallory.caller, None)


def test_parameters_are_audited_only_when_the_definition_opts_in(runtime, audited, connections, postgres):
    name = define(connections, postgres, "postgres", "pg-audit-params", audit_parameters=True)
    run_query(runtime, name, "SELECT :v AS v", {"v": "visible-value"})
    records = runtime.get().audit_records(name, Caller(ALICE, governed=True), "2000-01-01T00:00:00Z")
    assert records[-1]["parameters"] == {"v": "visible-value"}


def test_audit_write_failure_is_logged_and_the_request_still_succeeds(runtime, connections, postgres, monkeypatch, caplog):
    monkeypatch.setenv("RDSGATE_AUDIT_TABLE", "no-such-audit-table")
    runtime.reset()
    assert run_query(runtime, "pg", "SELECT 1 AS one")["records"] == [{"one": 1}]
    failures = [r for r in caplog.records if r.getMessage() == "audit write failed"]
    assert failures and failures[0].audit["sql"] == "SELECT 1 AS one"


# --- idempotency -------------------------------------------------------------------------

@pytest.fixture
def idempotent(runtime, aws, monkeypatch):
    monkeypatch.setenv("RDSGATE_IDEMPOTENCY_TABLE", ensure_table("rdsgate-idempotency-test", "id"))
    runtime.reset()


def test_idempotent_retry_writes_once(runtime, idempotent, ledger, engine):
    def insert(key="write-3", owner="carl"):
        request = parse_query({"sql": "INSERT INTO ledger (id, owner) VALUES (3, :owner)", "parameters": {"owner": owner}, "idempotencyKey": key})
        return runtime.get().query(ledger, request, Invocation(caller=Caller(ALICE, governed=False), result_limit_bytes=10**6))

    first = insert()
    second = insert()  # a Step Functions retry: the stored result, no second INSERT (which would fail)
    assert first == second and first["updatedRows"] == 1
    assert len(rows(runtime, ledger)) == 3
    with pytest.raises(errors.InvalidRequest, match="different request"):
        insert(owner="someone else")
