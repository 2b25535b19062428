"""SigV4 verification of the local server: signed requests pass, tampered and unsigned ones do not."""

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rdsgate_devstack.sigv4 import (
    BAD_SIGNATURE, INVALID_TOKEN, MISSING_TOKEN, SignatureRejected, SigV4Verifier, TrustedKey,
)

KEY, SECRET, TOKEN = "ASIALOCALEXAMPLE", "local-secret", "local-session-token"
ARN = "arn:aws:sts::000000000000:assumed-role/rdsgate-local-caller/local"
HOST = "127.0.0.1:8080"


def verifier(region="us-east-1"):
    return SigV4Verifier(region, trusted={KEY: TrustedKey(SECRET, ARN, TOKEN)})


def signed(method="POST", path="/connections/demo/query", query="", body=b'{"sql": "select 1"}',
           credentials=Credentials(KEY, SECRET, TOKEN), region="us-east-1", service="execute-api", **headers):
    """What a client signing with botocore sends: (method, path, query, headers, body)."""
    url = f"http://{HOST}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json", **headers})
    SigV4Auth(credentials, service, region).add_auth(request)
    sent = {name: value for name, value in request.headers.items()}
    sent["Host"] = HOST
    return method, path, query, sent, body


def rejection(*request, check=None):
    with pytest.raises(SignatureRejected) as caught:
        (check or verifier()).verify(*request)
    return caught.value.message


def test_aws_published_test_vector_is_accepted():
    # AWS's SigV4 test suite, "get-vanilla": GET / on example.amazonaws.com, 2015-08-30T12:36:00Z.
    check = SigV4Verifier("us-east-1", service="service",
                          trusted={"AKIDEXAMPLE": TrustedKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "arn:test")})
    headers = {
        "Host": "example.amazonaws.com",
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    }
    now = dt.datetime(2015, 8, 30, 12, 38, tzinfo=dt.timezone.utc)
    assert check.verify("GET", "/", "", headers, b"", now=now).principal_arn == "arn:test"
    headers["X-Amz-Date"] = "20150830T123601Z"
    with pytest.raises(SignatureRejected):
        check.verify("GET", "/", "", headers, b"", now=now)


def test_a_signed_request_names_its_signer():
    signer = verifier().verify(*signed())
    assert (signer.access_key_id, signer.principal_arn) == (KEY, ARN)


def test_a_signed_get_with_a_query_string():
    assert verifier().verify(*signed("GET", "/connections", query="limit=5&next=a%20b", body=b"")).principal_arn == ARN


def test_unsigned_requests_are_refused():
    method, path, query, headers, body = signed()
    del headers["Authorization"]
    assert rejection(method, path, query, headers, body) == MISSING_TOKEN


@pytest.mark.parametrize("part", ["body", "path", "query", "method", "signed header", "signature"])
def test_tampered_requests_are_refused(part):
    method, path, query, headers, body = signed(query="a=1")
    if part == "body":
        body = b'{"sql": "drop table orders"}'
    elif part == "path":
        path = "/connections/other/query"
    elif part == "query":
        query = "a=2"
    elif part == "method":
        method = "PUT"
    elif part == "signed header":
        headers["Content-Type"] = "text/plain"
    else:
        headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    assert rejection(method, path, query, headers, body) == BAD_SIGNATURE


def test_a_body_hash_header_must_match_the_body():
    method, path, query, headers, body = signed(**{"X-Amz-Content-SHA256": "0" * 64})
    assert rejection(method, path, query, headers, body) == BAD_SIGNATURE


def test_unknown_keys_and_wrong_session_tokens_are_refused():
    assert rejection(*signed(credentials=Credentials("ASIAOTHER", SECRET, TOKEN))) == INVALID_TOKEN
    assert rejection(*signed(credentials=Credentials(KEY, SECRET, "another-token"))) == INVALID_TOKEN
    assert rejection(*signed(credentials=Credentials(KEY, "wrong-secret", TOKEN))) == BAD_SIGNATURE


def test_scope_region_and_service_must_match():
    assert "valid region" in rejection(*signed(region="eu-west-1"))
    assert "execute-api" in rejection(*signed(service="s3"))


def test_old_signatures_expire():
    method, path, query, headers, body = signed()
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=6)
    with pytest.raises(SignatureRejected, match="Signature expired"):
        verifier().verify(method, path, query, headers, body, now=later)


def test_rejections_never_show_a_secret():
    for request in (signed(credentials=Credentials(KEY, "wrong-secret", TOKEN)), signed(region="eu-west-1")):
        message = rejection(*request)
        assert SECRET not in message and TOKEN not in message and "Signature=" not in message
