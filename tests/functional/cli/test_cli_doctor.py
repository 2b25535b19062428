"""`rdsgate doctor` against the IAM-verifying test servers: one broken definition for each step that can fail.

With an endpoint the checks run inside the handler (GET /connections/{name}/diagnose);
without one they run here and unreachable network steps are only warnings. The
credentials, token and policy steps cannot be broken by a definition: they are
covered with botocore's Stubber in tests/unit/test_diagnose.py.
"""

import json
import socket

import pytest

from rdsgate import api
from rdsgate.diagnose import STEPS
from rdsgate_devstack.http_server import LocalApiServer
from tests.conftest import TABLE, iam_definition


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BROKEN = {
    "definition": ({"engine": "oracle"}, "'engine'"),
    "signing-host": ({"iam_host": "orders.c0ffee.eu-west-1.rds.amazonaws.com", "tls": "require"}, "eu-west-1"),
    "dns": ({"host": "no-such-host.invalid"}, "does not resolve"),
    "tcp": ({"port": "closed"}, "refused"),
    "tls": ({"ca_bundle": None}, "does not verify against the RDS CA bundle"),
    "login": ({"user": "_aws_iam_rds:nobody_here"}, "refused the login"),
}


@pytest.mark.parametrize("step", list(BROKEN))
def test_each_broken_step_fails_with_a_fix_inside_the_function(step, endpoint, connections, postgres, cli):
    fields, expected = BROKEN[step]
    fields = {key: (closed_port() if value == "closed" else value) for key, value in fields.items()}
    name = f"doctor-{step}"
    item = {**iam_definition(name, postgres, "postgres"), **fields}
    item = {key: value for key, value in item.items() if value is not None}
    connections.put(item)
    try:
        code, out, err = cli("doctor", name, "--endpoint", endpoint, "--json")
    finally:
        connections.delete(name)
    assert code == 1 and err == ""
    report = json.loads(out)
    assert report["where"] == "function" and report["ok"] is False
    found = {check["step"]: check for check in report["checks"]}
    assert found[step]["status"] == "fail" and expected in found[step]["detail"] and found[step]["fix"]
    for earlier in STEPS[: STEPS.index(step)]:
        assert found[earlier]["status"] != "fail", found[earlier]


def test_a_sound_connection_passes_inside_the_function(endpoint, cli):
    code, out, _ = cli("doctor", "pg-alias", "--endpoint", endpoint)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "rdsgate doctor pg-alias: checks ran inside the function"
    for step in ("definition", "signing-host", "credentials", "token", "dns", "tcp", "tls", "login"):
        assert any(line.startswith(f"  PASS  {step} ") for line in lines), (step, out)
    assert lines[-1].startswith("no step failed")


def test_the_report_is_readable_with_fixes(endpoint, cli):
    code, out, _ = cli("doctor", "pg-wrong-user", "--endpoint", endpoint)
    assert code == 1
    assert "  FAIL  login " in out and "fix: create the user or give it the IAM grant" in out
    assert out.splitlines()[-1].startswith("1 step failed")


def test_doctor_respects_allowed_principals(runtime, cli):
    server = LocalApiServer(api.handler, port=0, identity="arn:aws:iam::999999999999:user/stranger",
                            access_log=False).serve_in_background()
    try:
        code, out, err = cli("doctor", "pg", "--endpoint", server.url)
    finally:
        server.close()
    assert code == 1 and out == "" and "NotFound" in err


def test_here_with_the_users_credentials(runtime, cli, monkeypatch):
    import os

    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", os.environ["AWS_ENDPOINT_URL_STS"])
    monkeypatch.delenv("RDSGATE_ENDPOINT", raising=False)
    code, out, _ = cli("doctor", "my", "--table", TABLE, "--json")
    report = json.loads(out)
    assert code == 0 and report["where"] == "here"
    found = {check["step"]: check["status"] for check in report["checks"]}
    assert found["tls"] == found["login"] == found["credentials"] == "pass"


def test_here_an_unreachable_database_is_a_warning(runtime, connections, postgres, cli, monkeypatch):
    monkeypatch.delenv("RDSGATE_ENDPOINT", raising=False)
    connections.put(iam_definition("doctor-far", postgres, "postgres", port=closed_port()))
    try:
        code, out, _ = cli("doctor", "doctor-far", "--table", TABLE)
    finally:
        connections.delete("doctor-far")
    assert code == 0
    assert "  WARN  tcp " in out and "not reachable from here" in out and "--endpoint" in out


def test_the_saved_diagnose_event_through_the_handler(runtime):
    from tests.conftest import load_event

    response = api.handler(load_event("api_diagnose.json"), None)
    assert response["statusCode"] == 200
    report = json.loads(response["body"])
    assert (report["connection"], report["where"]) == ("pg", "function")
    assert [check["step"] for check in report["checks"]] == list(STEPS)
    assert "authtoken" not in response["body"] and "X-Amz-Signature" not in response["body"]
