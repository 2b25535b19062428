"""The local HTTP server: API Gateway proxy events, AWS_IAM-style SigV4 checks, and the caller's identity."""

import json
import urllib.error
import urllib.request

import boto3
import pytest

from rdsgate_client.api import ApiClient, ApiError
from rdsgate_devstack.http_server import LOCAL_IDENTITY, LocalApiServer
from rdsgate_devstack.sigv4 import SigV4Verifier, TrustedKey
from tests.conftest import load_event

KEY, SECRET, TOKEN = "ASIALOCALEXAMPLE", "local-secret", "local-session-token"
ARN = "arn:aws:sts::000000000000:assumed-role/rdsgate-local-caller/local"


class Recorder:
    """A stand-in for rdsgate.api.handler that answers with the event it received."""

    def __init__(self):
        self.events = []

    def __call__(self, event, context):
        self.events.append(event)
        return {"statusCode": 200, "multiValueHeaders": {"Content-Type": ["application/json"]},
                "body": json.dumps({"ok": True}), "isBase64Encoded": False}


@pytest.fixture
def servers():
    started = []

    def start(verifier=None, identity=LOCAL_IDENTITY):
        recorder = Recorder()
        server = LocalApiServer(recorder, port=0, verifier=verifier, identity=identity, access_log=False).serve_in_background()
        started.append(server)
        return server, recorder

    yield start
    for server in started:
        server.close()


def session(secret=SECRET):
    return boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key=secret, aws_session_token=TOKEN,
                                 region_name="us-east-1")


def signing_verifier():
    return SigV4Verifier("us-east-1", trusted={KEY: TrustedKey(SECRET, ARN, TOKEN)})


def test_requests_become_rest_proxy_events_with_the_local_identity(servers):
    server, recorder = servers(identity="arn:aws:iam::000000000000:user/tester")
    request = urllib.request.Request(server.url + "/connections/demo/query?x=1", data=b'{"sql": "select 1"}',
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200 and json.load(response) == {"ok": True}
    event = recorder.events[0]
    saved = load_event("api_query.json")
    assert set(saved) <= set(event) and set(saved["requestContext"]) <= set(event["requestContext"])
    assert (event["resource"], event["path"], event["httpMethod"]) == (
        "/connections/{name}/query", "/connections/demo/query", "POST")
    assert event["pathParameters"] == {"name": "demo"} and event["queryStringParameters"] == {"x": "1"}
    assert event["body"] == '{"sql": "select 1"}' and event["isBase64Encoded"] is False
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] == "arn:aws:iam::000000000000:user/tester" and identity["accessKey"] is None
    assert identity["accountId"] == "000000000000" and identity["sourceIp"] == "127.0.0.1"


def test_a_signed_request_reaches_the_handler_as_its_signer(servers):
    server, recorder = servers(verifier=signing_verifier())
    assert ApiClient(server.url, session=session()).post("/connections/demo/query", {"sql": "select 1"}) == {"ok": True}
    identity = recorder.events[0]["requestContext"]["identity"]
    assert (identity["userArn"], identity["accessKey"], identity["accountId"]) == (ARN, KEY, "000000000000")


def test_unsigned_and_badly_signed_requests_never_reach_the_handler(servers):
    server, recorder = servers(verifier=signing_verifier())
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(urllib.request.Request(server.url + "/connections", method="GET"))
    assert unsigned.value.code == 403
    assert json.load(unsigned.value) == {"message": "Missing Authentication Token"}
    with pytest.raises(ApiError) as bad:
        ApiClient(server.url, session=session("wrong-secret")).get("/connections")
    assert bad.value.status == 403 and "signature we calculated does not match" in bad.value.message
    assert recorder.events == []


def test_a_tampered_body_is_refused(servers):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    server, recorder = servers(verifier=signing_verifier())
    url = server.url + "/connections/demo/query"
    request = AWSRequest(method="POST", url=url, data=b'{"sql": "select 1"}', headers={"Content-Type": "application/json"})
    SigV4Auth(session().get_credentials().get_frozen_credentials(), "execute-api", "us-east-1").add_auth(request)
    tampered = urllib.request.Request(url, data=b'{"sql": "select 2"}', method="POST", headers=dict(request.headers))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)
    assert refused.value.code == 403 and recorder.events == []


def test_without_sigv4_a_signature_is_ignored_and_the_local_identity_is_used(servers):
    server, recorder = servers()
    ApiClient(server.url, session=session()).get("/connections")
    assert recorder.events[0]["requestContext"]["identity"]["userArn"] == LOCAL_IDENTITY


def test_binary_bodies_arrive_base64_encoded(servers):
    server, recorder = servers()
    urllib.request.urlopen(urllib.request.Request(server.url + "/x", data=b"\xff\xfe", method="POST"))
    assert recorder.events[0]["isBase64Encoded"] is True and recorder.events[0]["body"] == "//4="
