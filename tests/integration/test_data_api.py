"""boto3's own rds-data client against rdsgate's Data API endpoint, served locally, on both engines.

The client signs for execute-api (the signing-name override documented in the README), and
the local server verifies that signature as API Gateway's AWS_IAM authorization would.
"""

import base64

import boto3
import botocore.config
import pytest

from rdsgate import api
from rdsgate_devstack.http_server import LocalApiServer
from rdsgate_devstack.sigv4 import SigV4Verifier, TrustedKey
from tests.conftest import ENGINES, run_query

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ignored-by-rdsgate"  # IAM auth: accepted, unused
ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"


def use_execute_api_signing(request, **_):
    """API Gateway's AWS_IAM expects signatures for execute-api, not rds-data."""
    request.context.setdefault("signing", {})["signing_name"] = "execute-api"


@pytest.fixture(scope="module")
def endpoint(aws):
    verifier = SigV4Verifier("us-east-1")
    verifier.trust(aws["AWS_ACCESS_KEY_ID"], TrustedKey(aws["AWS_SECRET_ACCESS_KEY"], ALICE, aws["AWS_SESSION_TOKEN"]))
    server = LocalApiServer(api.handler, port=0, verifier=verifier, access_log=False).serve_in_background()
    yield server.url
    server.close()


@pytest.fixture
def client(endpoint, runtime):
    rds_data = boto3.client(
        "rds-data", endpoint_url=endpoint, region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    rds_data.meta.events.register("before-sign.rds-data", use_execute_api_signing)
    return rds_data


@pytest.fixture(params=sorted(ENGINES))
def conn(request, runtime):
    name = ENGINES[request.param]
    run_query(runtime, name, "DROP TABLE IF EXISTS accounts")
    run_query(runtime, name, "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(30), balance DECIMAL(30, 10), photo VARBINARY(10))"
              if name == "my" else "CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(30), balance NUMERIC(30, 10), photo BYTEA)")
    yield name
    run_query(runtime, name, "DROP TABLE IF EXISTS accounts")


def arn(name):
    return f"arn:aws:rds:us-east-1:123456789012:cluster:{name}"


def test_execute_statement_with_typed_parameters_and_metadata(client, conn):
    client.execute_statement(
        resourceArn=arn(conn), secretArn=SECRET, database="rdsgate_test",
        sql="INSERT INTO accounts (id, owner, balance, photo) VALUES (:id, :owner, :balance, :photo)",
        parameters=[
            {"name": "id", "value": {"longValue": 9007199254740993}},
            {"name": "owner", "value": {"stringValue": "ann"}},
            {"name": "balance", "value": {"stringValue": "12345678901234567890.0123456789"}, "typeHint": "DECIMAL"},
            {"name": "photo", "value": {"blobValue": b"\x00\xffpng"}},
        ],
    )
    response = client.execute_statement(
        resourceArn=arn(conn), secretArn=SECRET, sql="SELECT id, owner, balance, photo, NULL AS nothing FROM accounts WHERE owner = :owner",
        parameters=[{"name": "owner", "value": {"stringValue": "ann"}}], includeResultMetadata=True,
    )
    row = response["records"][0]
    assert row[0] == {"longValue": 9007199254740993}
    assert row[1] == {"stringValue": "ann"}
    assert row[2] == {"stringValue": "12345678901234567890.0123456789"}  # exact, unlike the Data API's default
    assert row[3] == {"blobValue": b"\x00\xffpng"}
    assert row[4] == {"isNull": True}
    metadata = response["columnMetadata"]
    assert [c["name"] for c in metadata] == ["id", "owner", "balance", "photo", "nothing"]
    assert metadata[0]["type"] == -5
    assert metadata[0]["typeName"] == ("BIGINT" if conn == "my" else "int8")  # the Data API's MySQL names are in capitals


def test_json_records_and_result_set_options(client, conn):
    client.execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql="INSERT INTO accounts (id, owner, balance) VALUES (1, 'bob', 2.5)")
    formatted = client.execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql="SELECT id, owner FROM accounts", formatRecordsAs="JSON")
    assert formatted["formattedRecords"] == '[{"id":1,"owner":"bob"}]' and "records" not in formatted
    options = client.execute_statement(
        resourceArn=arn(conn), secretArn=SECRET, sql="SELECT id, balance FROM accounts",
        resultSetOptions={"decimalReturnType": "DOUBLE_OR_LONG", "longReturnType": "STRING"},
    )
    assert options["records"][0] == [{"stringValue": "1"}, {"doubleValue": 2.5}]


def test_array_parameters_are_accepted(client, conn):
    if conn != "pg":
        pytest.skip("array binding is PostgreSQL's; MySQL receives JSON text")
    response = client.execute_statement(
        resourceArn=arn(conn), secretArn=SECRET, sql="SELECT cardinality(:ids::int[]) AS n, :ids::int[] AS ids",
        parameters=[{"name": "ids", "value": {"arrayValue": {"longValues": [1, 2, 3]}}}],
    )
    assert response["records"][0] == [{"longValue": 3}, {"arrayValue": {"longValues": [1, 2, 3]}}]


def test_batch_execute_statement_is_atomic(client, conn, runtime):
    sql = "INSERT INTO accounts (id, owner) VALUES (:id, :owner)"
    sets = [[{"name": "id", "value": {"longValue": i}}, {"name": "owner", "value": {"stringValue": f"o{i}"}}] for i in (1, 2, 3)]
    response = client.batch_execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql=sql, parameterSets=sets)
    assert len(response["updateResults"]) == 3
    failing = [[{"name": "id", "value": {"longValue": 4}}, {"name": "owner", "value": {"stringValue": "x"}}], sets[0]]
    with pytest.raises(client.exceptions.DatabaseErrorException):
        client.batch_execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql=sql, parameterSets=failing)
    assert run_query(runtime, conn, "SELECT count(*) AS n FROM accounts")["records"] == [{"n": 3}]


def test_errors_are_the_data_api_exceptions(client, conn, connections, postgres):
    with pytest.raises(client.exceptions.DatabaseErrorException):
        client.execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql="SELECT * FROM no_such_table")
    with pytest.raises(client.exceptions.BadRequestException, match="exactly one statement"):
        client.execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql="SELECT 1; SELECT 2")
    with pytest.raises(client.exceptions.DatabaseNotFoundException):
        client.execute_statement(resourceArn=arn("no-such-connection"), secretArn=SECRET, sql="SELECT 1")
    with pytest.raises(client.exceptions.StatementTimeoutException):
        from tests.conftest import iam_definition

        connections.put(iam_definition("pg-slow-data-api", postgres, "postgres", statement_timeout_ms=100))
        client.execute_statement(resourceArn=arn("pg-slow-data-api"), secretArn=SECRET, sql="SELECT pg_sleep(2)")
    with pytest.raises(client.exceptions.BadRequestException, match="/transaction"):
        client.begin_transaction(resourceArn=arn(conn), secretArn=SECRET)
    with pytest.raises(client.exceptions.BadRequestException, match="database"):
        client.execute_statement(resourceArn=arn(conn), secretArn=SECRET, database="another_db", sql="SELECT 1")


def test_forbidden_caller_gets_the_not_found_of_a_missing_name(endpoint, runtime, connections, postgres):
    from tests.conftest import iam_definition

    connections.put(iam_definition("pg-admins-only", postgres, "postgres", allowed_principals=["arn:aws:iam::123456789012:role/admin"]))
    rds_data = boto3.client("rds-data", endpoint_url=endpoint, region_name="us-east-1")
    rds_data.meta.events.register("before-sign.rds-data", use_execute_api_signing)
    with pytest.raises(rds_data.exceptions.DatabaseNotFoundException):  # as for a name that does not exist
        rds_data.execute_statement(resourceArn=arn("pg-admins-only"), secretArn=SECRET, sql="SELECT 1")


def test_unsigned_or_wrongly_signed_requests_are_refused(endpoint, runtime):
    plain = boto3.client("rds-data", endpoint_url=endpoint, region_name="us-east-1")  # signs as rds-data
    with pytest.raises(plain.exceptions.ForbiddenException, match="execute-api"):
        plain.execute_statement(resourceArn=arn("pg"), secretArn=SECRET, sql="SELECT 1")
