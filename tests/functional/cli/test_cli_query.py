"""`rdsgate query` and `rdsgate connections` through the local HTTP server to the real handler and test servers."""

import csv
import io
import json
import socket
import sys

import pytest



def test_a_table_by_default(endpoint, cli):
    code, out, err = cli("query", "pg", "select 1 as id, 'Ada' as name, null::text as note", "--endpoint", endpoint)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split(" | ") == ["id", "name", "note"]
    assert lines[2].split(" | ") == [" 1", "Ada ", "NULL"]
    assert lines[-1] == "(1 row)"


def test_parameters_and_type_hints(endpoint, cli):
    sql = "select :n + 1 as n, :s as s, :d as d, :flag as flag, :doc as doc"
    code, out, _ = cli("query", "pg", sql, "-p", "n=41", "-p", "s=007", "-p", "d=2026-01-02", "-t", "d=DATE",
                       "-p", "flag=true", "-p", 'doc={"a": [1]}', "--json", "--endpoint", endpoint)
    assert code == 0
    assert json.loads(out)["records"] == [{"n": 42, "s": "007", "d": "2026-01-02", "flag": True, "doc": {"a": [1]}}]


def test_csv_output(endpoint, cli):
    code, out, _ = cli("query", "my", "select 1 as id, 'a,b' as t, null as n, cast(2.50 as decimal(5,2)) as d",
                       "--csv", "--endpoint", endpoint)
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [["id", "t", "n", "d"], ["1", "a,b", "", "2.50"]]


def test_sql_from_standard_input_and_endpoint_from_the_environment(endpoint, cli, monkeypatch):
    monkeypatch.setenv("RDSGATE_ENDPOINT", endpoint)
    monkeypatch.setattr(sys, "stdin", io.StringIO("select 'from stdin' as source"))
    code, out, _ = cli("query", "pg-hoop", "-", "--json")
    assert code == 0 and json.loads(out)["records"] == [{"source": "from stdin"}]


def test_row_counts_truncation_and_updates(endpoint, cli):
    code, out, _ = cli("query", "pg", "select generate_series(1, 5) as n", "--max-rows", "2", "--endpoint", endpoint)
    assert code == 0 and out.splitlines()[-1] == "(2 rows, truncated: more rows exist; raise --max-rows)"


@pytest.mark.parametrize(
    "connection, sql, expected",
    [
        ("pg", "select * from no_such_table", 'rdsgate: SqlError: relation "no_such_table" does not exist (sqlstate 42P01)'),
        ("nope", "select 1", "rdsgate: NotFound: connection 'nope' does not exist"),
        ("pg-wrong-user", "select 1", "rdsgate: AuthenticationFailed:"),
    ],
)
def test_errors_are_messages_with_a_failing_exit_code(endpoint, cli, connection, sql, expected):
    code, out, err = cli("query", connection, sql, "--endpoint", endpoint)
    assert code == 1 and out == ""
    assert err.startswith(expected) and "Traceback" not in err
    if connection == "pg-wrong-user":
        assert "\nhint: " in err


def test_usage_errors_exit_with_2(cli, monkeypatch):
    monkeypatch.delenv("RDSGATE_ENDPOINT", raising=False)
    code, _, err = cli("query", "pg", "select 1")
    assert code == 2 and "RDSGATE_ENDPOINT" in err
    code, _, err = cli("query", "pg", "select :x", "-p", "novalue", "--endpoint", "http://127.0.0.1:1")
    assert code == 2 and "name=value" in err


def test_an_unreachable_endpoint(cli):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = cli("query", "pg", "select 1", "--endpoint", f"http://127.0.0.1:{port}")
    assert code == 1 and err.startswith(f"rdsgate: cannot reach http://127.0.0.1:{port}")


def test_connections_are_listed(endpoint, cli):
    code, out, _ = cli("connections", "--endpoint", endpoint)
    assert code == 0 and [cell.strip() for cell in out.splitlines()[0].split(" | ")] == ["name", "engine", "description"]
    names = {line.split(" | ")[0].strip() for line in out.splitlines()[2:]}
    assert {"pg", "pg-hoop", "my", "my-hoop"} <= names
    code, out, _ = cli("connections", "--json", "--endpoint", endpoint)
    listed = {c["name"]: c for c in json.loads(out)}
    assert (listed["pg"]["engine"], listed["pg"]["description"]) == ("postgres", "postgres test database")
