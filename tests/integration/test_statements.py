"""Asynchronous statements on both engines (issue 17): submit, status, paged and downloaded results that match
/query value for value, cancel mid-statement, SQL errors, visibility, expiry, and the Step Functions forms."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import urllib.request
from typing import Any

import boto3
import pytest

from rdsgate import api, errors, invoke, result_reader, result_writer, statements
from rdsgate.worker import LOCAL_RUNNER
from rdsgate_devstack.http_server import build_event, identity_of
from rdsgate_devstack.statements_local import create_resources
from tests.conftest import ENGINES, REGION, iam_definition, run_query

ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/data-engineer/bob"
MALLORY = "arn:aws:sts::999999999999:assumed-role/intruder/mallory"
TABLE, BUCKET = "rdsgate-statements-test", "rdsgate-results-test"

TYPED = {
    "postgres": (
        "SELECT g AS id, g * 1.5::numeric AS amount, (g % 2 = 0) AS even, 'row ' || g || ', \"quoted\"' AS label, "
        "CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS maybe, '2026-01-02T03:04:05Z'::timestamptz + g * interval '1 hour' AS at, "
        "jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g)) AS doc, ARRAY[g, g + 1] AS pair, "
        "9007199254740993::int8 + g AS big, decode('00ff', 'hex') AS raw, 'line\nbreak' AS multiline "
        "FROM generate_series(1, :n) g ORDER BY g"
    ),
    "mysql": (
        "SELECT seq AS id, seq * CAST(1.5 AS DECIMAL(10,1)) AS amount, (seq % 2 = 0) AS even, "
        "CONCAT('row ', seq, ', \"quoted\"') AS label, CASE WHEN seq % 3 = 0 THEN NULL ELSE seq END AS maybe, "
        "TIMESTAMP('2026-01-02 03:04:05') + INTERVAL seq HOUR AS at, JSON_OBJECT('g', seq) AS doc, "
        "9007199254740993 + seq AS big, UNHEX('00ff') AS raw, 'line\nbreak' AS multiline "
        "FROM seq_1_to_100000 WHERE seq <= :n ORDER BY seq"
    ),
}
SLEEP = {"postgres": "SELECT pg_sleep(2.5) IS NULL AS slept, 42 AS answer", "mysql": "SELECT SLEEP(2.5) AS slept, 42 AS answer"}
ENDLESS = {
    "postgres": "SELECT a.a * 1000000 + b.b AS n, repeat('x', 200) AS pad FROM generate_series(1, 1000) a(a) CROSS JOIN generate_series(1, 1000000) b(b)",
    "mysql": "SELECT a.seq * 1000000 + b.seq AS n, REPEAT('x', 200) AS pad FROM seq_1_to_1000 a, seq_1_to_1000000 b",
}


@pytest.fixture(scope="session")
def results_store(aws):
    create_resources(lambda service: boto3.client(service, region_name=REGION), table=TABLE, bucket=BUCKET)
    return TABLE, BUCKET


@pytest.fixture
def env(runtime, results_store, monkeypatch):
    monkeypatch.setenv("RDSGATE_STATEMENTS_TABLE", TABLE)
    monkeypatch.setenv("RDSGATE_RESULTS_BUCKET", BUCKET)
    monkeypatch.setenv("RDSGATE_WORKER", "thread")
    monkeypatch.setenv("RDSGATE_WORKER_TIMEOUT_SECONDS", "120")
    yield runtime
    LOCAL_RUNNER.join(timeout=30)


@pytest.fixture
def conn(engine):
    return ENGINES[engine]


def call(method: str, path: str, body: Any = None, caller: str = ALICE) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else b""
    identity = identity_of(caller, source_ip="127.0.0.1", user_agent="pytest", access_key=None)
    event = build_event(method, path, [("Content-Type", "application/json")], data, identity)
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def submit(conn: str, sql: str, caller: str = ALICE, **body: Any) -> str:
    status, answer = call("POST", f"/connections/{conn}/statements", {"sql": sql, **body}, caller)
    assert status == 202, answer
    assert answer["status"] == "SUBMITTED"
    return answer["id"]


def wait(statement_id: str, until: tuple[str, ...] = ("FINISHED", "FAILED", "CANCELLED"), timeout: float = 60, caller: str = ALICE) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        status, view = call("GET", f"/statements/{statement_id}", caller=caller)
        assert status == 200, view
        if view["status"] in until or time.monotonic() > end:
            return view
        time.sleep(0.1)


def pages(statement_id: str, max_records: int | None = None) -> list[Any]:
    records, token, seen = [], None, 0
    while True:
        query = f"?maxRecords={max_records}" if max_records else "?"
        if token:
            query += f"&nextToken={token}"
        status, page = call("GET", f"/statements/{statement_id}/result{query}")
        assert status == 200, page
        assert page["startRow"] == len(records)
        records.extend(page["records"])
        seen += 1
        token = page.get("nextToken")
        if token is None:
            return records


def download(statement_id: str) -> bytes:
    status, answer = call("GET", f"/statements/{statement_id}/result?format=url")
    assert status == 200, answer
    assert answer["expiresIn"] == 900
    with urllib.request.urlopen(answer["url"], timeout=30) as response:
        data = response.read()
    assert len(data) == answer["storedBytes"]
    return gzip.decompress(data) if answer["compression"] == "gzip" else data


def s3():
    return boto3.client("s3", region_name=REGION)


def objects_of(statement_id: str) -> list[str]:
    listed = s3().list_objects_v2(Bucket=BUCKET, Prefix=f"results/{statement_id}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def uploads_of(statement_id: str) -> list[str]:
    listed = s3().list_multipart_uploads(Bucket=BUCKET, Prefix=f"results/{statement_id}/")
    return [u["UploadId"] for u in listed.get("Uploads", [])]


# --- longer than the synchronous limit ----------------------------------------------------


def test_statement_longer_than_the_synchronous_limit_finishes(env, conn, engine, monkeypatch):
    monkeypatch.setenv("RDSGATE_STATEMENT_TIMEOUT_MS", "1000")
    env.reset()
    with pytest.raises(errors.QueryTimeout):
        run_query(env, conn, SLEEP[engine])
    started = time.monotonic()
    statement_id = submit(conn, SLEEP[engine])
    assert time.monotonic() - started < 2  # 202 at once; the statement runs in the worker
    view = wait(statement_id)
    assert view["status"] == "FINISHED", view
    assert view["rowCount"] == 1 and view["error"] is None
    assert view["submittedAt"] <= view["startedAt"] < view["endedAt"]
    assert [c["name"] for c in view["columns"]] == ["slept", "answer"]
    assert pages(statement_id)[0]["answer"] == 42


# --- results: paged and downloaded, as /query encodes them --------------------------------


def test_result_pages_and_download_match_query_value_for_value(env, conn, engine):
    rows = 2500
    expected = run_query(env, conn, TYPED[engine], {"n": rows}, maxRows=rows)
    assert expected["rowCount"] == rows and not expected["truncated"]
    statement_id = submit(conn, TYPED[engine], parameters={"n": rows}, output={"format": "jsonl", "compression": "gzip"})
    view = wait(statement_id)
    assert view["status"] == "FINISHED", view
    assert view["rowCount"] == rows and view["columns"] == expected["columns"]
    assert pages(statement_id, max_records=700) == expected["records"]  # four pages
    lines = download(statement_id).decode().splitlines()
    assert len(lines) == rows and view["bytes"] == sum(len(line.encode()) + 1 for line in lines)
    assert [json.loads(line) for line in lines] == expected["records"]
    # Each line is the JSON /query writes for that record (compact, non-ASCII kept).
    assert lines[0] == json.dumps(expected["records"][0], separators=(",", ":"), ensure_ascii=False)


def test_csv_result_has_a_header_and_the_query_values(env, conn, engine):
    expected = run_query(env, conn, TYPED[engine], {"n": 50}, shape="arrays")
    statement_id = submit(conn, TYPED[engine], parameters={"n": 50}, output={"format": "csv", "compression": "none"})
    assert wait(statement_id)["status"] == "FINISHED"
    table = list(csv.reader(io.StringIO(download(statement_id).decode())))
    assert table[0] == [c["name"] for c in expected["columns"]]
    assert table[1:] == [[result_writer.csv_cell(v) for v in row] for row in expected["records"]]
    assert any("\n" in cell for cell in table[1])  # a value with a newline survives, quoted
    status, page = call("GET", f"/statements/{statement_id}/result")
    assert page["format"] == "csv" and page["records"] == table[1:]


def test_arrays_shape_and_max_rows(env, conn, engine):
    statement_id = submit(conn, TYPED[engine], parameters={"n": 30}, shape="arrays", maxRows=10)
    view = wait(statement_id)
    assert view["status"] == "FINISHED" and view["rowCount"] == 10 and view["truncated"] is True
    assert pages(statement_id) == run_query(env, conn, TYPED[engine], {"n": 30}, shape="arrays", maxRows=10)["records"]


# --- cancel --------------------------------------------------------------------------------


def test_cancel_mid_statement_stops_it_and_deletes_the_partial_output(env, conn, engine):
    statement_id = submit(conn, ENDLESS[engine], output={"format": "jsonl", "compression": "none"})
    end = time.monotonic() + 60
    while not uploads_of(statement_id):  # the first part is in S3: the statement is well under way
        assert time.monotonic() < end, wait(statement_id, timeout=0)
        time.sleep(0.05)
    assert wait(statement_id, timeout=0)["status"] == "RUNNING"
    asked = time.monotonic()
    status, answer = call("DELETE", f"/statements/{statement_id}")
    assert status == 200 and answer == {"id": statement_id, "status": "CANCELLED"}
    while uploads_of(statement_id) or objects_of(statement_id):
        assert time.monotonic() - asked < 2, "partial output still there 2 s after the cancel"
        time.sleep(0.05)
    view = wait(statement_id, timeout=0)
    assert view["status"] == "CANCELLED" and view["endedAt"]
    assert time.monotonic() - asked < 2
    LOCAL_RUNNER.join(timeout=10)
    assert wait(statement_id, timeout=0)["status"] == "CANCELLED"  # the worker did not overwrite it
    # The database is no longer running it.
    activity = ("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE '%generate_series(1, 1000)%' AND pid <> pg_backend_pid() AND state = 'active'"
                if engine == "postgres" else
                "SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE '%seq_1_to_1000 a%' AND ID <> CONNECTION_ID()")
    assert run_query(env, conn, activity)["records"] == [{"n": 0}]
    status, answer = call("DELETE", f"/statements/{statement_id}")
    assert status == 400 and "CANCELLED" in answer["error"]["message"]


def test_cancel_of_a_sleeping_statement_is_prompt(env, conn, engine):
    sql = "SELECT pg_sleep(30) IS NULL AS done" if engine == "postgres" else "SELECT SLEEP(30) AS done"
    statement_id = submit(conn, sql)
    wait(statement_id, until=("RUNNING",), timeout=20)
    time.sleep(0.3)
    call("DELETE", f"/statements/{statement_id}")
    started = time.monotonic()
    LOCAL_RUNNER.join(timeout=10)
    assert time.monotonic() - started < 2  # the server cancelled the sleep: the worker is done
    assert wait(statement_id, timeout=0)["status"] == "CANCELLED"
    assert not objects_of(statement_id)


# --- failures, visibility, expiry ----------------------------------------------------------


def test_failed_statement_carries_its_sql_error(env, conn, engine):
    statement_id = submit(conn, "SELECT * FROM no_such_table_here")
    view = wait(statement_id)
    assert view["status"] == "FAILED"
    assert view["error"]["code"] == "SqlError"
    assert ("sqlstate", "42P01") in view["error"].items() if engine == "postgres" else view["error"]["errno"] == 1146
    assert "no_such_table_here" in view["error"]["message"]
    status, answer = call("GET", f"/statements/{statement_id}/result")
    assert status == 400 and "FAILED" in answer["error"]["message"]
    assert not objects_of(statement_id)


def test_submission_is_governed_before_anything_runs(env, conn):
    status, answer = call("POST", f"/connections/{conn}/statements", {"sql": "SELECT 1"}, caller=MALLORY)
    assert (status, answer["error"]["code"]) in ((403, "Forbidden"), (404, "NotFound")), answer
    assert call("GET", "/statements", caller=MALLORY)[1]["statements"] == []  # nothing was submitted
    status, answer = call("POST", f"/connections/{conn}/statements", {"sql": "BEGIN"})
    assert status == 400
    status, answer = call("POST", f"/connections/{conn}/statements", {"sql": "SELECT 1", "output": {"format": "xml"}})
    assert status == 400 and answer["error"]["field"] == "output"


def test_another_caller_gets_404_unless_the_definition_shares(env, connections, postgres):
    statement_id = submit("pg", "SELECT 1 AS one")
    assert wait(statement_id)["status"] == "FINISHED"
    for method, path in (("GET", f"/statements/{statement_id}"), ("GET", f"/statements/{statement_id}/result"),
                         ("DELETE", f"/statements/{statement_id}")):
        status, answer = call(method, path, caller=BOB)
        assert status == 404 and answer["error"]["code"] == "NotFound", (method, path)
    status, listed = call("GET", "/statements", caller=BOB)
    assert statement_id not in [s["id"] for s in listed["statements"]]
    status, listed = call("GET", "/statements")
    assert statement_id in [s["id"] for s in listed["statements"]]
    # A definition that shares statements: callers allowed on the connection see them; others still do not.
    connections.put(iam_definition("pg-shared", postgres, "postgres", share_statements=True))
    shared_id = submit("pg-shared", "SELECT 2 AS two")
    assert wait(shared_id, caller=BOB)["status"] == "FINISHED"
    assert call("GET", f"/statements/{shared_id}/result", caller=BOB)[0] == 200
    assert call("GET", f"/statements/{shared_id}", caller=MALLORY)[0] == 404
    assert call("GET", "/statements/not-a-real-id")[0] == 404


def test_expired_statement_is_gone(env):
    statement_id = submit("pg", "SELECT 1 AS one")
    assert wait(statement_id)["status"] == "FINISHED"
    view = call("GET", f"/statements/{statement_id}")[1]
    assert view["expiresAt"] > view["submittedAt"]
    boto3.client("dynamodb", region_name=REGION).update_item(
        TableName=TABLE, Key={"id": {"S": statement_id}}, UpdateExpression="SET expires_at = :t",
        ExpressionAttributeValues={":t": {"N": str(int(time.time()) - 1)}})
    assert call("GET", f"/statements/{statement_id}")[0] == 404
    assert call("GET", f"/statements/{statement_id}/result?format=url")[0] == 404


def test_ids_are_unguessable():
    ids = {statements.new_statement_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 36 and i[14] == "4" for i in ids)


# --- Step Functions --------------------------------------------------------------------------


class Recorder:
    """Wraps the real (moto) Step Functions client and records each call."""

    def __init__(self, client: Any) -> None:
        self.client, self.calls = client, []

    def __getattr__(self, name: str) -> Any:
        def record(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return getattr(self.client, name)(**kwargs)

        return record


@pytest.fixture
def sfn(env, monkeypatch):
    recorder = Recorder(boto3.client("stepfunctions", region_name=REGION))
    monkeypatch.setitem(statements.CLIENTS._clients, "stepfunctions", recorder)
    return recorder


def test_step_functions_invoke_with_s3_output_returns_a_pointer(env, conn, engine):
    expected = run_query(env, conn, TYPED[engine], {"n": 300}, maxRows=300)
    pointer = invoke.handler({"connection": conn, "sql": TYPED[engine], "parameters": {"n": 300}, "output": {"s3": True}}, None)
    assert set(pointer) >= {"s3Uri", "rowCount", "bytes", "columns"} and "records" not in pointer
    assert pointer["rowCount"] == 300 and pointer["columns"] == expected["columns"]
    bucket, key = pointer["s3Uri"][5:].split("/", 1)
    assert bucket == BUCKET and key.startswith("results/") and key.endswith(".jsonl.gz")
    body = gzip.decompress(s3().get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(body) == pointer["bytes"]
    assert [json.loads(line) for line in body.decode().splitlines()] == expected["records"]


def test_definition_spills_only_results_over_the_payload_limit(env, connections, postgres):
    connections.put(iam_definition("pg-spill", postgres, "postgres", spill_to_s3=True))
    small = invoke.handler({"connection": "pg-spill", "sql": "SELECT 1 AS one"}, None)
    assert small["records"] == [{"one": 1}] and "s3Uri" not in small
    large = invoke.handler({"connection": "pg-spill", "sql": "SELECT g, repeat('y', 100) AS pad FROM generate_series(1, 5000) g"}, None)
    assert "records" not in large and large["rowCount"] == 5000 and large["bytes"] > 262_144
    # Without the definition's consent, the same input is truncated inline instead.
    inline = invoke.handler({"connection": "pg", "sql": "SELECT g, repeat('y', 100) AS pad FROM generate_series(1, 5000) g"}, None)
    assert inline["truncated"] is True and "s3Uri" not in inline


def test_task_token_form_ends_with_send_task_success(env, sfn, conn, engine):
    answer = invoke.handler({"connection": conn, "sql": TYPED[engine], "parameters": {"n": 20}, "taskToken": "token-ok"}, None)
    assert answer["status"] == "SUBMITTED"
    LOCAL_RUNNER.join(timeout=60)
    assert [name for name, _ in sfn.calls] == ["send_task_success"]
    kwargs = sfn.calls[0][1]
    assert kwargs["taskToken"] == "token-ok"
    pointer = json.loads(kwargs["output"])
    assert pointer["rowCount"] == 20 and pointer["id"] == answer["id"] and pointer["s3Uri"].startswith(f"s3://{BUCKET}/results/")


def test_task_token_form_ends_with_send_task_failure_named_as_the_error_table(env, sfn, conn):
    invoke.handler({"connection": conn, "sql": "SELECT * FROM no_such_table_here", "taskToken": "token-bad"}, None)
    LOCAL_RUNNER.join(timeout=60)
    assert [name for name, _ in sfn.calls] == ["send_task_failure"]
    assert sfn.calls[0][1]["error"] == "SqlError" and sfn.calls[0][1]["taskToken"] == "token-bad"
    assert "no_such_table_here" in sfn.calls[0][1]["cause"]


# --- the writer and the reader on their own: multipart, many members, pages across them ----------


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_multipart_result_reads_back_page_by_page_across_members(results_store, compression):
    import os as _os

    key = f"results/{statements.new_statement_id()}/result.jsonl" + (".gz" if compression == "gzip" else "")
    uploads = []
    writer = result_writer.ResultWriter(s3(), BUCKET, key, output=statements.Output("jsonl", compression),
                                     part_bytes=5 * 1024 * 1024, member_bytes=256 * 1024, on_upload=uploads.append)
    encoder = result_writer.RecordEncoder("jsonl")
    records = [[n, _os.urandom(48).hex()] for n in range(120_000)]  # ~13 MB of text that gzip cannot shrink much
    for start in range(0, len(records), 1000):
        batch = records[start:start + 1000]
        writer.write(encoder.encode(batch), len(batch))
    summary = writer.finish()
    assert len(uploads) == 1 and writer.upload_id == uploads[0]  # a real multipart upload
    assert summary["rowCount"] == len(records) and summary["bytes"] > 12_000_000
    head = s3().head_object(Bucket=BUCKET, Key=key)
    assert head["ContentLength"] == summary["storedBytes"]
    body = s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    text = (gzip.decompress(body) if compression == "gzip" else body).decode()
    assert text.splitlines() == [json.dumps(r, separators=(",", ":")) for r in records]
    reader = result_reader.ResultReader(s3(), BUCKET, key)
    assert len(reader.index["members"]) >= 40
    collected, row = [], 0
    while row is not None:
        page, row, fmt = reader.page(row, max_records=7_777, limit_bytes=400_000)  # pages end inside members
        assert fmt == "jsonl" and 0 < len(page) <= 7_777
        collected.extend(page)
    assert [json.loads(line) for line in collected] == records
    assert reader.page(len(records), max_records=10, limit_bytes=1000)[:2] == ([], None)


def test_aborted_writer_leaves_nothing(results_store):
    key = f"results/{statements.new_statement_id()}/result.jsonl"
    writer = result_writer.ResultWriter(s3(), BUCKET, key, output=statements.Output("jsonl", "none"),
                                     part_bytes=5 * 1024 * 1024, member_bytes=1024 * 1024)
    writer.write("x" * (12 * 1024 * 1024) + "\n", 1)
    end = time.monotonic() + 30
    while writer.upload_id is None:  # the first part is on its way
        assert time.monotonic() < end
        time.sleep(0.05)
    writer.abort()
    assert not s3().list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads")
    assert not s3().list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents")


def test_tokens_and_output_are_validated():
    assert result_reader.decode_token(result_reader.encode_token(12345)) == 12345
    for bad in ("nope", result_reader.encode_token(-1), "eyJyb3ciOiAiMSJ9"):
        with pytest.raises(errors.InvalidRequest):
            result_reader.decode_token(bad)
    assert statements.parse_output(None) == statements.Output("jsonl", "gzip")
    with pytest.raises(errors.InvalidRequest, match="compression"):
        statements.parse_output({"compression": "zip"})
    assert [result_writer.csv_cell(v) for v in (None, True, False, 1.5, {"a": [1]}, "x,y")] == ["", "true", "false", "1.5", '{"a":[1]}', "x,y"]


def test_definition_max_rows_caps_an_asynchronous_statement(env, connections, postgres):
    connections.put(iam_definition("pg-capped", postgres, "postgres", max_rows=25))
    statement_id = submit("pg-capped", "SELECT g FROM generate_series(1, 100) g")
    view = wait(statement_id)
    assert view["status"] == "FINISHED" and view["rowCount"] == 25 and view["truncated"] is True


def test_status_reads_downloads_and_cancels_are_audited(env, caplog):
    statement_id = submit("pg", "SELECT 1 AS one")
    assert wait(statement_id)["status"] == "FINISHED"
    caplog.clear()
    call("GET", f"/statements/{statement_id}/result?format=url")
    call("DELETE", f"/statements/{statement_id}")  # refused: it has ended; recorded all the same
    records = [r.__dict__ for r in caplog.records if getattr(r, "statementId", None) == statement_id]
    kinds = [(r.get("statementType"), r.get("outcome")) for r in records]
    assert kinds == [("STATEMENT RESULT", "ok"), ("STATEMENT CANCEL", "InvalidRequest")], kinds
    assert all(r["caller"] == ALICE and r["connection"] == "pg" for r in records)
    submitted = [r.__dict__ for r in caplog.records if str(getattr(r, "statementType", "")).startswith("SUBMIT")]
    assert submitted == []  # nothing submitted meanwhile
