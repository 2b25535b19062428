"""`rdsgate query --async`, `rdsgate statements`, `rdsgate result` and `rdsgate cancel` against the local server,
the real handler, moto's S3 and the test databases."""

from __future__ import annotations

import csv
import io
import json
import time

import boto3
import pytest

from rdsgate_cli.statements_cli import Progress
from rdsgate_devstack.statements_local import create_resources
from rdsgate.worker import LOCAL_RUNNER
from tests.conftest import REGION, run_query

TABLE, BUCKET = "rdsgate-statements-cli", "rdsgate-results-cli"
SQL = "SELECT g AS id, g * 0.5 AS half, 'n' || g AS name, g % 2 = 0 AS even FROM generate_series(1, 5000) g ORDER BY g"


@pytest.fixture(scope="module")
def resources(aws):
    create_resources(lambda service: boto3.client(service, region_name=REGION), table=TABLE, bucket=BUCKET)


@pytest.fixture
def api_url(endpoint, resources, monkeypatch):
    monkeypatch.setenv("RDSGATE_STATEMENTS_TABLE", TABLE)
    monkeypatch.setenv("RDSGATE_RESULTS_BUCKET", BUCKET)
    monkeypatch.setenv("RDSGATE_WORKER", "thread")
    yield endpoint
    LOCAL_RUNNER.join(timeout=30)


def test_async_query_then_result_to_a_file(cli, api_url, runtime, tmp_path):
    code, out, err = cli("query", "pg", SQL, "--async", "--endpoint", api_url)
    assert code == 0, err
    statement_id = out.strip()
    assert len(statement_id) == 36
    target = tmp_path / "result.jsonl"
    code, out, err = cli("result", statement_id, "--out", str(target), "--endpoint", api_url)
    assert code == 0, err
    assert out == ""
    expected = run_query(runtime, "pg", SQL, maxRows=5000)["records"]
    assert [json.loads(line) for line in target.read_text().splitlines()] == expected
    assert "5,000/5,000 rows" in err and "done in" in err  # the progress line's last state
    code, out, err = cli("statements", "--endpoint", api_url)
    assert code == 0 and statement_id in out and "FINISHED" in out
    code, out, err = cli("statements", statement_id, "--json", "--endpoint", api_url)
    assert json.loads(out)["rowCount"] == 5000


def test_async_csv_to_standard_output(cli, api_url, runtime):
    code, out, err = cli("query", "pg", SQL, "--async", "--csv", "--compression", "none", "--endpoint", api_url)
    assert code == 0, err
    code, out, err = cli("result", out.strip(), "--quiet", "--endpoint", api_url)
    assert code == 0, err
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["id", "half", "name", "even"] and len(table) == 5001
    assert table[1] == ["1", "0.5", "n1", "false"]


def test_cancel_then_result_fails_naming_the_status(cli, api_url):
    code, out, err = cli("query", "pg", "SELECT pg_sleep(30)", "--async", "--endpoint", api_url)
    statement_id = out.strip()
    end = time.monotonic() + 20
    while json.loads(cli("statements", statement_id, "--json", "--endpoint", api_url)[1])["status"] != "RUNNING":
        assert time.monotonic() < end
        time.sleep(0.1)
    code, out, err = cli("cancel", statement_id, "--endpoint", api_url)
    assert (code, out.strip()) == (0, f"{statement_id} CANCELLED")
    code, out, err = cli("result", statement_id, "--endpoint", api_url)
    assert code == 1 and "CANCELLED" in err
    code, out, err = cli("cancel", statement_id, "--endpoint", api_url)
    assert code == 1 and "only a SUBMITTED or RUNNING statement can be cancelled" in err


def test_progress_line_shows_rate_and_eta_when_the_total_is_known():
    progress = Progress(1000, 4096, quiet=True)
    progress.started -= 2
    progress.stored(1024)
    progress.lines(251, header_lines=1)  # the CSV header is not a row
    line = progress.line()
    assert line.startswith("250/1,000 rows  1.0 KB/4.0 KB")
    assert "/s" in line and "ETA 6 s" in line
    progress.stored(3072)
    assert "ETA" not in progress.line()
