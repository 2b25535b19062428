"""What a cold start does: importing the handlers touches no network, no secret and no service (SnapStart
snapshots that state), and the first request needs no botocore client machinery and no module of a route
it does not take. Each check runs in a fresh interpreter, as a new execution environment would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(str(ROOT / part) for part in ("functions", "local", "."))

# An audit hook sees every socket, subprocess and file opened while the handlers are imported.
INIT_SCRIPT = r"""
import json, os, sys
events = []

def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto", "subprocess.Popen", "os.system"):
        events.append([event, repr(args)[:200]])
    elif event == "open" and isinstance(args[0], str) and (".aws" in args[0] or "credentials" in args[0]):
        events.append([event, args[0]])

sys.addaudithook(hook)
import rdsgate.api, rdsgate.invoke
from rdsgate import runtime
print(json.dumps({
    "events": events,
    "service_built": runtime.SERVICE._service is not None,
    "settings_read": runtime.SERVICE._settings is not None,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "pg8000", "pymysql", "sqlglot", "aws_xray_sdk")
                     or m in ("botocore.session", "botocore.client", "botocore.auth", "botocore.credentials")),
}))
"""


def run(script: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("RDSGATE_", "LAMBDA_"))}
    environment.update(PYTHONPATH=PYTHONPATH, **env)
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_handlers_opens_no_connection_and_reads_no_secret():
    """SnapStart snapshots the environment after init: nothing made there may be a connection, a
    credential, a token or a key (docs/OPERATIONS.md, SnapStart)."""
    found = run(
        INIT_SCRIPT,
        RDSGATE_CONNECTIONS_TABLE="connections",
        RDSGATE_MASKING_KEY_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:rdsgate-masking-AbCdEf",
        AWS_REGION="us-east-1",
        LAMBDA_TASK_ROOT=str(ROOT / "functions"),
    )
    assert found["events"] == []
    assert found["service_built"] is False and found["settings_read"] is False
    assert found["loaded"] == []  # no botocore session/client/signer, no driver, no SQL parser, no SDK


def test_the_hook_would_see_a_connection_made_at_import():
    """The check above can fail: the same hook reports a connect made while importing."""
    found = run(INIT_SCRIPT.replace("import rdsgate.api, rdsgate.invoke", "import rdsgate.api, rdsgate.invoke, socket\n"
                                    "try:\n    socket.create_connection(('127.0.0.1', 9), timeout=0.2)\nexcept OSError:\n    pass"))
    assert [event for event, _ in found["events"]][:1] in (["socket.getaddrinfo"], ["socket.connect"])


FIRST_REQUEST = r"""
import json, sys
from rdsgate import api, runtime
event = json.load(open(sys.argv[1]))
response = api.handler(event, None)
service = runtime.SERVICE.get()
print(json.dumps({
    "status": response["statusCode"],
    "client": type(service.catalog._client).__module__ + "." + type(service.catalog._client).__name__,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "s3transfer", "sqlglot", "aws_xray_sdk")
                     or m in ("botocore.session", "botocore.client", "botocore.auth", "botocore.endpoint", "botocore.loaders",
                              "rdsgate.dataapi", "rdsgate.diagnose", "rdsgate.openapi", "rdsgate.privileges",
                              "aws_lambda_powertools.event_handler.appsync", "asyncio")),
}))
"""


@pytest.fixture
def query_event(tmp_path):
    from tests.conftest import load_event

    event = load_event("api_query.json")
    event["path"], event["pathParameters"] = "/connections/pg/query", {"name": "pg"}
    event["body"] = json.dumps({"sql": "select 1 as one"})
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return str(path)


def first_request(query_event: str, connections, **env: str) -> dict:
    script = FIRST_REQUEST.replace("sys.argv[1]", repr(query_event))
    return run(script, RDSGATE_CONNECTIONS_TABLE=connections.name, **env)


def test_the_first_request_needs_no_botocore_client_and_no_other_routes_modules(runtime, connections, query_event):
    found = first_request(query_event, connections)
    assert found["status"] == 200
    assert found["client"] == "rdsgate.awsapi.DynamoDBClient"
    assert found["loaded"] == []


def test_without_environment_credentials_botocore_serves_as_before(runtime, connections, query_event):
    found = first_request(query_event, connections, RDSGATE_AWS_CLIENT="botocore")
    assert found["status"] == 200
    assert found["client"] == "botocore.client.DynamoDB"
    assert "botocore.session" in found["loaded"] and "boto3" not in found["loaded"]
