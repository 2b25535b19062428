"""Reviews in `rdsgate serve` (PostgreSQL only): the demo's `demo-reviewed`, whose writes need one approval
by any local identity other than the requester, named with X-Rdsgate-Identity (honoured with --auth none only)."""

from __future__ import annotations

import json
import time
import types
import urllib.error
import urllib.request

import pytest

from rdsgate_devstack.http_server import LocalApiServer
from tests.local_processes import serve_fixture

ALICE = "arn:aws:iam::000000000000:user/alice"
BOB = "arn:aws:iam::000000000000:user/bob"


serve = serve_fixture("--no-mysql")


def request(url, method="GET", body=None, identity=None):
    headers = {"Content-Type": "application/json"}
    if identity:
        headers["X-Rdsgate-Identity"] = identity
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_demo_reviewed_needs_another_local_identity(serve):
    assert "demo-reviewed (postgres)" in serve.text
    sql = {"sql": "UPDATE orders SET note = :note WHERE id = 3", "parameters": {"note": "reviewed"}}
    status, held = request(f"{serve.url}/connections/demo-reviewed/query", "POST", sql, identity=ALICE)
    assert status == 202 and held["status"] == "PENDING"
    status, read = request(f"{serve.url}/connections/demo-reviewed/query", "POST", {"sql": "select note from orders where id = 3"}, identity=ALICE)
    assert status == 200 and read["records"] == [{"note": None}]  # reads run at once; the write has not run
    review = held["reviewId"]
    status, own = request(f"{serve.url}/reviews/{review}/approve", "POST", {}, identity=ALICE)
    assert status == 403 and own["error"]["rule"] == "four-eyes"
    status, pending = request(f"{serve.url}/reviews?status=PENDING", identity=BOB)
    assert review in [r["reviewId"] for r in pending["reviews"]]
    status, approved = request(f"{serve.url}/reviews/{review}/approve", "POST", {"comment": "fine"}, identity=BOB)
    assert status == 200 and approved["status"] == "EXECUTED", approved
    deadline = time.monotonic() + 30
    while True:
        status, statement = request(f"{serve.url}/statements/{approved['statementId']}", identity=ALICE)
        if statement["status"] in ("FINISHED", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert statement["status"] == "FINISHED" and statement["updatedRows"] == 1
    status, read = request(f"{serve.url}/connections/demo/query", "POST", {"sql": "select note from orders where id = 3"})
    assert read["records"] == [{"note": "reviewed"}]
    status, refused = request(f"{serve.url}/connections/demo/query", "POST", {"sql": "select 1"}, identity="alice")
    assert status == 400 and "X-Rdsgate-Identity" in refused["message"]


def test_the_identity_header_is_never_honoured_with_sigv4():
    seen = []

    def handler(event, context):
        seen.append(event["requestContext"]["identity"]["userArn"])
        return {"statusCode": 200, "body": "{}"}

    verifier = types.SimpleNamespace(verify=lambda *args: types.SimpleNamespace(access_key_id="AKIA", principal_arn="arn:aws:sts::000000000000:assumed-role/signer/s"))
    signed = LocalApiServer(handler, port=0, verifier=verifier, access_log=False)
    unsigned = LocalApiServer(handler, port=0, identity="arn:aws:iam::000000000000:user/local", access_log=False)
    try:
        headers = [("Host", "127.0.0.1"), ("X-Rdsgate-Identity", ALICE)]
        signed.respond("GET", "/connections", headers, b"", "127.0.0.1")
        unsigned.respond("GET", "/connections", headers, b"", "127.0.0.1")
        unsigned.respond("GET", "/connections", [("Host", "127.0.0.1")], b"", "127.0.0.1")
    finally:
        signed.close()
        unsigned.close()
    assert seen == ["arn:aws:sts::000000000000:assumed-role/signer/s", ALICE, "arn:aws:iam::000000000000:user/local"]


def test_reviews_on_the_command_line_and_through_mcp(serve, capsys):
    from rdsgate_cli.cli import main
    from rdsgate_client.api import ApiClient
    from rdsgate_cli.mcp_server import Tools

    status, held = request(f"{serve.url}/connections/demo-reviewed/query", "POST",
                           {"sql": "UPDATE orders SET note = 'cli' WHERE id = 2"}, identity=ALICE)
    assert status == 202
    review = held["reviewId"]
    # `rdsgate` calls the local server unsigned, as --identity (arn:aws:iam::000000000000:user/local).
    assert main(["reviews", "--endpoint", serve.url]) == 0
    out = capsys.readouterr().out
    assert review in out and "PENDING" in out and ALICE in out and "UPDATE" in out
    tools = Tools(ApiClient(serve.url, session=types.SimpleNamespace(get_credentials=lambda: None, region_name="us-east-1")))
    assert tools.get_review_status(review).splitlines()[0] == f"review {review}: PENDING"
    assert main(["approve", review, "-m", "looks right", "--endpoint", serve.url]) == 0
    assert capsys.readouterr().out.startswith(f"review {review} is EXECUTED; statement ")
    text = tools.get_review_status(review)
    assert f"review {review}: EXECUTED" in text and "APPROVE by arn:aws:iam::000000000000:user/local" in text and "looks right" in text
