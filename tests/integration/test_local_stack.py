"""`rdsgate serve` as a person runs it: a separate process that prints where things run, answers over HTTP,
serves the command line, and on Ctrl-C (or SIGTERM) stops, leaving no process, folder or PAM service behind."""

import glob
import json
import os
import pathlib
import re
import signal
import urllib.request

import boto3
import pytest

from rdsgate_cli.cli import main
from tests.local_processes import ROOT, Serve, serve_fixture


def processes_naming(folders):
    """PIDs (other than this one) whose command line names one of the folders."""
    found = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        pid = int(cmdline.split("/")[2])
        try:
            text = pathlib.Path(cmdline).read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pid != os.getpid() and any(folder in text for folder in folders):
            found.append((pid, text))
    return found


def pam_services_naming(folders):
    """PAM service files (written by the local servers) that belong to one of the folders."""
    found = []
    for path in glob.glob("/etc/pam.d/rdsgate-*"):
        try:
            text = pathlib.Path(path).read_text()
        except OSError:
            continue
        if any(folder in text for folder in folders):
            found.append(path)
    return found


def assert_nothing_left(serve):
    assert serve.folders, serve.text
    assert [f for f in serve.folders if os.path.exists(f)] == []
    assert processes_naming(serve.folders) == []
    assert pam_services_naming(serve.folders) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(serve.url + "/health", timeout=2)


def post(url, document):
    request = urllib.request.Request(url, data=json.dumps(document).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


serve = serve_fixture()


def test_prints_what_runs_where(serve):
    assert serve.url.startswith("http://127.0.0.1:")
    for label in ("PostgreSQL", "MariaDB", "DynamoDB"):
        assert re.search(rf"^  {label}\s+\S", serve.text, re.M), serve.text
    assert "connections demo (postgres), demo-hoop (postgres), demo-mysql (mysql), demo-reviewed (postgres)" in serve.text
    assert "every caller is arn:aws:iam::000000000000:user/local" in serve.text


def test_the_readme_curl_works_unsigned(serve):
    status, body = post(serve.url + "/connections/demo/query", {"sql": "select 1"})
    assert status == 200 and body["records"] == [{"?column?": 1}]


@pytest.mark.parametrize(
    "connection, sql, types",
    [
        ("demo", "select * from products", {"uuid", "numeric", "float8", "_text", "jsonb", "bytea"}),
        ("demo-hoop", "select * from orders", {"int8", "order_status", "timestamptz", "date", "interval"}),
        ("demo-mysql", "select * from products", {"decimal", "double", "set", "json", "varbinary"}),
        ("demo-mysql", "select * from orders", {"enum", "datetime", "year", "date"}),
    ],
)
def test_demo_data_shows_varied_types(serve, connection, sql, types):
    status, body = post(f"{serve.url}/connections/{connection}/query", {"sql": sql})
    assert status == 200 and body["rowCount"] == 3
    assert types <= {column["type"] for column in body["columns"]}


def test_query_from_the_command_line(serve, capsys):
    code, out, _ = cli(capsys, "query", "demo", "select id, status, total from orders where status = :status",
                       "-p", "status=shipped", "--endpoint", serve.url)
    assert code == 0
    assert out.splitlines()[2].split(" | ") == [" 2", "shipped", "45.00"] and out.splitlines()[-1] == "(1 row)"
    code, out, _ = cli(capsys, "connections", "--endpoint", serve.url, "--json")
    assert [c["name"] for c in json.loads(out)] == ["demo", "demo-hoop", "demo-mysql", "demo-reviewed"]


def test_policy_from_the_command_line(serve, capsys):
    code, out, _ = cli(capsys, "policy", "demo", "--endpoint", serve.url, "--account", "000000000000", "--json")
    assert code == 0
    described = json.loads(out)
    assert described["resource"] == "arn:aws:rds-db:us-east-1:000000000000:dbuser:db-RDSGATELOCALDEMO0000000001/demo_app"
    assert 'GRANT rds_iam TO "demo_app";' in described["sql"]


def test_doctor_from_the_command_line(serve, capsys):
    code, out, _ = cli(capsys, "doctor", "demo", "--endpoint", serve.url, "--json")
    assert code == 0
    statuses = {check["step"]: check["status"] for check in json.loads(out)["checks"]}
    assert statuses.pop("policy") == "warn"  # moto cannot simulate policies
    assert statuses.pop("privileges") == "skip"  # demo is not read_only
    assert set(statuses.values()) == {"pass"}


def test_doctor_finds_a_broken_definition_in_the_stack(serve, capsys):
    moto = serve.find(r"DynamoDB\s+moto on (http://[^,\s]+),")
    table = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
        "dynamodb", endpoint_url=moto)
    item = table.get_item(TableName="rdsgate-local-connections", Key={"name": {"S": "demo-mysql"}})["Item"]
    item.update(name={"S": "demo-broken"}, user={"S": "_aws_iam_rds:nobody"})
    table.put_item(TableName="rdsgate-local-connections", Item=item)
    code, out, _ = cli(capsys, "doctor", "demo-broken", "--endpoint", serve.url)
    assert code == 1 and "  FAIL  login " in out and "fix: " in out


def test_doctor_finds_write_privileges_behind_a_read_only_definition(serve, capsys):
    moto = serve.find(r"DynamoDB\s+moto on (http://[^,\s]+),")
    table = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
        "dynamodb", endpoint_url=moto)
    item = table.get_item(TableName="rdsgate-local-connections", Key={"name": {"S": "demo"}})["Item"]
    item.update(name={"S": "demo-read-only"}, read_only={"BOOL": True})
    table.put_item(TableName="rdsgate-local-connections", Item=item)
    code, out, _ = cli(capsys, "doctor", "demo-read-only", "--endpoint", serve.url)
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("  FAIL  privileges "))
    assert "the connection is read_only, but demo_app can write: " in line and "public.customers" in line


def test_openapi_document_is_served(serve):
    with urllib.request.urlopen(serve.url + "/openapi.json", timeout=10) as response:
        served = json.load(response)
    assert served == json.loads((ROOT / "docs" / "openapi.json").read_text())


def test_a_session_holds_a_transaction_across_calls(serve):
    """Sessions end to end as `rdsgate serve` runs them: the session table on moto, a runner process per session."""
    begun = post(serve.url + "/connections/demo/sessions", {})[1]
    session = begun["sessionId"]
    query = serve.url + "/connections/demo/query"
    post(query, {"sql": "CREATE TABLE session_probe (n int)", "sessionId": session})
    post(query, {"sql": "INSERT INTO session_probe VALUES (1), (2)", "sessionId": session})
    assert post(query, {"sql": "SELECT sum(n) AS s FROM session_probe", "sessionId": session})[1]["records"] == [{"s": 2 + 1}]
    with pytest.raises(urllib.error.HTTPError) as outside:  # not committed: nobody else sees the table
        post(query, {"sql": "SELECT * FROM session_probe"})
    assert outside.value.code == 422
    assert post(serve.url + f"/sessions/{session}/rollback", {}) == (200, {"status": "rolledback"})
    with pytest.raises(urllib.error.HTTPError) as gone:
        post(query, {"sql": "SELECT * FROM session_probe"})
    assert gone.value.code == 422
    assert "Sessions    moto on" in serve.text


def test_ctrl_c_stops_and_leaves_nothing_behind(serve):
    assert processes_naming(serve.folders) and pam_services_naming(serve.folders)  # all there until now
    assert serve.stop(signal.SIGINT) == 0
    assert "rdsgate: stopped" in serve.text
    assert_nothing_left(serve)


def test_sigv4_and_sigterm(capsys, monkeypatch):
    serve = Serve("--auth", "sigv4", "--no-mysql")
    try:
        assert "MariaDB     not started: not asked for (--no-mysql)" in serve.text
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            post(serve.url + "/connections/demo/query", {"sql": "select 1"})
        assert unsigned.value.code == 403
        credentials_file = serve.find(r"export AWS_SHARED_CREDENTIALS_FILE=(\S+)")
        assert os.path.dirname(credentials_file) in serve.folders  # removed with the server's folder
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", credentials_file)
        code, out, _ = cli(capsys, "query", "demo", "select 1 as one", "--endpoint", serve.url,
                           "--profile", "rdsgate-local", "--region", "us-east-1", "--json")
        assert code == 0 and json.loads(out)["records"] == [{"one": 1}]
        assert "assumed-role/rdsgate-local-caller/local" in serve.text  # the signer's ARN reached the handler
        assert serve.stop(signal.SIGTERM) == 0
        assert_nothing_left(serve)
    finally:
        serve.kill()
