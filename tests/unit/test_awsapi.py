"""rdsgate.awsapi: SigV4 by hand signs what botocore signs, byte for byte; the DynamoDB client answers as
botocore's client does (against moto's server), retries what botocore retries, and is used only where safe."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from rdsgate import awsapi, awsauth
from rdsgate.awsapi import DynamoDBClient
from rdsgate.awsauth import AwsError, StaticCredentials

NOW = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.timezone.utc)
SESSION = Credentials("ASIAEXAMPLEKEY", "example/secret+key", "session/token+with=odd chars&more")
LONG_TERM = Credentials("AKIAEXAMPLEKEY", "long-term-secret", None)


def botocore_token(credentials, host, port, user, region):
    request = AWSRequest(method="GET", url=f"https://{host}:{port}/", params={"Action": "connect", "DBUser": user})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4QueryAuth(credentials.get_frozen_credentials(), "rds-db", region, expires=900).add_auth(request)
    return request.prepare().url[len("https://"):]


@pytest.mark.parametrize("credentials", [SESSION, LONG_TERM], ids=["session", "long-term"])
@pytest.mark.parametrize(
    "host, port, user, region",
    [
        ("orders.cluster-c0ffee.eu-west-1.rds.amazonaws.com", 5432, "app_iam", "eu-west-1"),
        ("Orders.Cluster-C0FFEE.us-east-1.rds.amazonaws.com", 3306, "team:reporting user", "us-east-1"),
        ("db.example.internal", 443, "ünïcode/user+x=y&z", "cn-north-1"),
        ("127.0.0.1", 15432, "a~b-c_d.e", "us-gov-west-1"),
    ],
)
def test_the_db_auth_token_is_botocores_byte_for_byte(credentials, host, port, user, region):
    ours = awsauth.presign_db_auth_token(credentials, host, port, user, region, now=NOW)
    assert ours == botocore_token(credentials, host, port, user, region)
    assert ours.startswith(f"{host}:{port}/?Action=connect&DBUser=") and "X-Amz-Expires=900" in ours


def test_the_token_is_botocores_with_static_credentials_and_the_clock():
    static = StaticCredentials(SESSION.access_key, SESSION.secret_key, SESSION.token)
    with mock.patch.object(awsauth, "_now", return_value=NOW):
        ours = awsauth.presign_db_auth_token(static, "db.local", 5432, "u", "eu-west-1")
    assert ours == botocore_token(SESSION, "db.local", 5432, "u", "eu-west-1")
    with pytest.raises(awsauth.NoCredentialsError):
        awsauth.presign_db_auth_token(None, "db.local", 5432, "u", "eu-west-1")


@pytest.mark.parametrize("credentials", [SESSION, LONG_TERM], ids=["session", "long-term"])
@pytest.mark.parametrize("url", ["https://dynamodb.eu-west-1.amazonaws.com/", "http://127.0.0.1:4566/", "https://Example.COM:443/"])
def test_a_signed_request_is_botocores(credentials, url):
    body = b'{"TableName":"t","Key":{"name":{"S":"orders"}}}'
    headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
    ours = awsauth.sign_request(credentials, "POST", url, headers, body, service="dynamodb", region="eu-west-1", now=NOW)
    theirs = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(credentials.get_frozen_credentials(), "dynamodb", "eu-west-1").add_auth(theirs)
    assert ours == dict(theirs.headers.items())
    assert ours["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/20260314/eu-west-1/dynamodb/")


def test_environment_credentials_and_when_direct_calls_are_allowed():
    lambda_env = {"AWS_ACCESS_KEY_ID": "ASIA1", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "AWS_REGION": "eu-west-1"}
    assert awsauth.environment_credentials(lambda_env) == StaticCredentials("ASIA1", "s", "t")
    assert awsapi.direct_calls_allowed(lambda_env)
    for change in ({"AWS_SECRET_ACCESS_KEY": ""}, {"AWS_PROFILE": "dev"}, {"AWS_USE_FIPS_ENDPOINT": "true"},
                   {"AWS_USE_DUALSTACK_ENDPOINT": "TRUE"}, {"HTTPS_PROXY": "http://proxy:3128"}, {"RDSGATE_AWS_CLIENT": "botocore"}):  # fmt: skip
        assert not awsapi.direct_calls_allowed({**lambda_env, **change}), change
    assert awsapi.direct_calls_allowed({**lambda_env, "AWS_USE_FIPS_ENDPOINT": "false"})


def test_the_dynamodb_endpoint_is_botocores_or_unknown():
    assert awsapi.dynamodb_endpoint("eu-west-1", {}) == "https://dynamodb.eu-west-1.amazonaws.com"
    assert awsapi.dynamodb_endpoint("us-gov-west-1", {}) == "https://dynamodb.us-gov-west-1.amazonaws.com"
    assert awsapi.dynamodb_endpoint("cn-northwest-1", {}) == "https://dynamodb.cn-northwest-1.amazonaws.com.cn"
    assert awsapi.dynamodb_endpoint("us-isob-east-1", {}) is None and awsapi.dynamodb_endpoint(None, {}) is None
    assert awsapi.dynamodb_endpoint("eu-west-1", {"AWS_ENDPOINT_URL": "http://localhost:4566/"}) == "http://localhost:4566"
    configured = {"AWS_ENDPOINT_URL": "http://a", "AWS_ENDPOINT_URL_DYNAMODB": "http://b"}
    assert awsapi.dynamodb_endpoint("eu-west-1", configured) == "http://b"
    assert awsapi.dynamodb_endpoint("eu-west-1", {**configured, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}).startswith("https://dynamodb.")


# --- the client against moto's server (the session's, tests/conftest.py) --------------------------


@pytest.fixture
def table(aws):
    import os

    client = boto3.client("dynamodb", region_name="us-east-1")
    name = "rdsgate-awsapi-test"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )  # fmt: skip
    ours = DynamoDBClient.if_allowed("us-east-1")
    assert ours is not None and ours.endpoint == os.environ["AWS_ENDPOINT_URL_DYNAMODB"] + "/"
    yield name, ours, client
    ours.close()
    client.delete_table(TableName=name)


def test_the_client_reads_and_writes_as_botocores_does(table):
    name, ours, theirs = table
    item = {
        "pk": {"S": "orders"}, "sk": {"S": "2026#1"}, "n": {"N": "12.50"}, "ok": {"BOOL": True}, "none": {"NULL": True},
        "blob": {"B": b"\x00\xffbinary"}, "blobs": {"BS": [b"a", b"\x01"]}, "tags": {"SS": ["x", "y"]},
        "nested": {"M": {"list": {"L": [{"S": "é"}, {"N": "1"}, {"B": b"\x02"}]}}},
    }  # fmt: skip
    ours.put_item(TableName=name, Item=item)
    theirs.put_item(TableName=name, Item={**item, "sk": {"S": "2026#2"}})
    key = {"pk": {"S": "orders"}, "sk": {"S": "2026#2"}}
    assert ours.get_item(TableName=name, Key=key)["Item"] == theirs.get_item(TableName=name, Key=key)["Item"]
    got = ours.get_item(TableName=name, Key={"pk": {"S": "orders"}, "sk": {"S": "2026#1"}})["Item"]
    assert got["blob"] == {"B": b"\x00\xffbinary"} and got["nested"]["M"]["list"]["L"][2] == {"B": b"\x02"}
    assert "Item" not in ours.get_item(TableName=name, Key={"pk": {"S": "nobody"}, "sk": {"S": "x"}})
    query = dict(TableName=name, KeyConditionExpression="pk = :p AND sk >= :s",
                 ExpressionAttributeValues={":p": {"S": "orders"}, ":s": {"S": "2026#2"}})  # fmt: skip
    assert ours.query(**query)["Items"] == theirs.query(**query)["Items"] and len(ours.query(**query)["Items"]) == 1
    assert len(ours.scan(TableName=name)["Items"]) == 2


def test_a_refusal_is_an_error_with_the_services_code(table):
    _, ours, _ = table
    with pytest.raises(AwsError) as caught:
        ours.get_item(TableName="no-such-table", Key={"pk": {"S": "x"}})
    assert caught.value.code == "ResourceNotFoundException" and caught.value.status == 400
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- retries, against a server that misbehaves on purpose ---------------------------------------


class Flaky(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: list[tuple[int, dict]] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Flaky.seen.append({"target": self.headers["X-Amz-Target"], "auth": self.headers["Authorization"], "body": json.loads(body)})
        status, document = Flaky.script.pop(0)
        if status == 0:  # drop the connection without an answer
            self.close_connection = True
            self.connection.shutdown(2)
            return
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Flaky.seen.clear()
    client = DynamoDBClient("eu-west-1", lambda: SESSION, endpoint=f"http://127.0.0.1:{server.server_port}")
    with mock.patch.object(DynamoDBClient, "_backoff", staticmethod(lambda attempt: None)):
        yield client
    client.close()
    server.shutdown()


def test_throttling_server_errors_and_dropped_connections_are_retried(flaky):
    throttled = {"__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "message": "slow down"}
    Flaky.script[:] = [(400, throttled), (500, {}), (0, {}), (200, {"Item": {"name": {"S": "orders"}}})]
    assert flaky.get_item(TableName="t", Key={"name": {"S": "orders"}}) == {"Item": {"name": {"S": "orders"}}}
    assert len(Flaky.seen) == 4 and {s["target"] for s in Flaky.seen} == {"DynamoDB_20120810.GetItem"}
    assert Flaky.seen[0]["body"] == {"TableName": "t", "Key": {"name": {"S": "orders"}}}


def test_a_callers_mistake_is_not_retried_and_attempts_are_bounded(flaky):
    Flaky.script[:] = [(400, {"__type": "com.amazon.coral.validate#ValidationException", "message": "bad key"})]
    with pytest.raises(AwsError, match="ValidationException: bad key"):
        flaky.put_item(TableName="t", Item={})
    assert len(Flaky.seen) == 1
    Flaky.script[:] = [(503, {})] * awsapi.MAX_ATTEMPTS
    with pytest.raises(AwsError) as caught:
        flaky.scan(TableName="t")
    assert caught.value.status == 503 and len(Flaky.seen) == 1 + awsapi.MAX_ATTEMPTS


# --- SnapStart's credentials: the container credentials endpoint ----------------------------------


class CredentialsEndpoint(http.server.BaseHTTPRequestHandler):
    requests: list[dict] = []
    expiration = "2099-01-01T00:00:00Z"

    def do_GET(self):  # noqa: N802 - http.server's name
        CredentialsEndpoint.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
        if self.headers.get("Authorization") != "secret-token":
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"AccessKeyId": "ASIACONTAINER", "SecretAccessKey": "container-secret", "Token": "container-token",
                           "Expiration": CredentialsEndpoint.expiration}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CredentialsEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    CredentialsEndpoint.requests.clear()
    yield f"http://127.0.0.1:{server.server_port}/2018-06-01/credentials"
    server.shutdown()


def test_snapstarts_container_credentials_are_fetched_on_use_and_kept_until_near_expiry(endpoint, tmp_path, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("secret-token\n")
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file)}
    fresh = awsauth.ContainerCredentials()
    monkeypatch.setattr(awsauth, "CONTAINER_CREDENTIALS", fresh)
    assert awsapi.direct_calls_allowed(env) and not CredentialsEndpoint.requests  # deciding fetches nothing
    expected = StaticCredentials("ASIACONTAINER", "container-secret", "container-token")
    assert awsauth.environment_credentials(env) == expected == awsauth.environment_credentials(env)
    assert len(CredentialsEndpoint.requests) == 1 and CredentialsEndpoint.requests[0]["path"] == "/2018-06-01/credentials"
    CredentialsEndpoint.expiration = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=4)).isoformat()
    monkeypatch.setattr(fresh, "_cached", None)
    awsauth.environment_credentials(env)
    awsauth.environment_credentials(env)  # expires within five minutes: fetched again
    assert len(CredentialsEndpoint.requests) == 3
    # The variables come first, as in botocore; a foreign host is botocore's to refuse.
    assert awsauth.environment_credentials({**env, "AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s"}).access_key == "AKIA1"
    assert not awsapi.direct_calls_allowed({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.169.254/latest"})
    CredentialsEndpoint.expiration = "2099-01-01T00:00:00Z"


def test_a_refused_credentials_request_is_an_error_naming_no_secret(endpoint, monkeypatch):
    monkeypatch.setattr(awsauth, "CONTAINER_CREDENTIALS", awsauth.ContainerCredentials())
    monkeypatch.setattr(awsauth.time, "sleep", lambda seconds: None)
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoint, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "wrong"}
    with pytest.raises(AwsError, match="answered 403"):
        awsauth.environment_credentials(env)
    assert len(CredentialsEndpoint.requests) == awsauth.ContainerCredentials.ATTEMPTS
