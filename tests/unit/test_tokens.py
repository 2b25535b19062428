"""IAM tokens signed without an rds client are the tokens botocore's generate_db_auth_token signs."""

import datetime as dt

import boto3
import pytest
from botocore.credentials import Credentials

from rdsgate.definitions import parse_definition
from rdsgate.errors import AuthenticationFailed
from rdsgate.tokens import TokenSigner

CREDENTIALS = Credentials("ASIAEXAMPLEKEY", "example/secret+key", "session/token+with=odd chars")
ITEM = {
    "name": "orders",
    "engine": "postgres",
    "host": "127.0.0.1",
    "iam_host": "orders.cluster-c0ffee.eu-west-1.rds.amazonaws.com",
    "port": 5433,
    "user": "_aws_iam_rds:team:reporting user",
    "password": "_aws_iam_rds:authtoken",
}


def botocore_token(definition, region):
    client = boto3.session.Session(
        aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        aws_session_token=CREDENTIALS.token,
        region_name=region,
    ).client("rds")
    return client.generate_db_auth_token(
        DBHostname=definition.token_host, Port=definition.port, DBUsername=definition.db_user, Region=region
    )


@pytest.mark.parametrize("region", ["eu-west-1", None])
def test_the_token_is_botocores(region):
    definition = parse_definition({**ITEM, "region": region} if region else ITEM)
    signer = TokenSigner("us-east-2", credentials=lambda: CREDENTIALS)
    for _ in range(5):  # both tokens carry the signing second; retry if it ticked between them
        before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        ours = signer.token_for(definition)
        theirs = botocore_token(definition, region or "us-east-2")
        if dt.datetime.now(dt.timezone.utc).replace(microsecond=0) == before:
            break
    assert ours == theirs
    assert ours.startswith(f"{definition.token_host}:5433/?Action=connect&DBUser=team%3Areporting%20user&")
    assert "X-Amz-Security-Token=" in ours and "X-Amz-Expires=900" in ours


def test_every_token_is_counted_and_fresh():
    definition = parse_definition(ITEM)
    signer = TokenSigner("eu-west-1", credentials=lambda: CREDENTIALS)
    signer.token_for(definition)
    signer.token_for(definition)
    assert signer.tokens_signed == 2


def test_no_credentials_is_an_authentication_failure_naming_no_secret():
    signer = TokenSigner("eu-west-1", credentials=lambda: None)
    with pytest.raises(AuthenticationFailed, match=r"could not sign an IAM token \(NoCredentialsError\)"):
        signer.token_for(parse_definition(ITEM))
    assert signer.tokens_signed == 0


def test_no_region_is_an_authentication_failure():
    with pytest.raises(AuthenticationFailed, match="no region"):
        TokenSigner(None, credentials=lambda: CREDENTIALS).token_for(parse_definition(ITEM))


def test_a_client_factory_signs_through_its_client():
    calls = []

    class Client:
        def generate_db_auth_token(self, **kwargs):
            calls.append(kwargs)
            return "token-from-client"

    signer = TokenSigner("eu-west-1", client_factory=lambda region: Client())
    assert signer.token_for(parse_definition(ITEM)) == "token-from-client"
    assert calls == [
        {"DBHostname": ITEM["iam_host"], "Port": 5433, "DBUsername": "team:reporting user", "Region": "eu-west-1"}
    ]
