"""Session-wide test servers: moto (DynamoDB, STS) and real PostgreSQL and MariaDB that verify IAM tokens.

The databases check every IAM token's SigV4 signature through PAM, against the
temporary credentials moto's STS issued to the test session; those credentials
are the ones the code under test signs with (from the environment, like a Lambda
execution role). moto runs as a server on loopback, so boto3 reaches it through
``AWS_ENDPOINT_URL_*`` and the real credentials stay in place.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Iterator

import boto3
import pytest

from rdsgate_devstack.moto_aws import MotoAws
from rdsgate_devstack.servers import MariaDBServer, PostgresServer

REGION = "us-east-1"
TABLE = "rdsgate-connections-test"
DATABASE = "rdsgate_test"
IAM_USER = "app_iam"
STATIC_USER = "app_static"
STATIC_PASSWORD = "static-Passw0rd"
# An RDS-style endpoint the token may be signed for while the client dials 127.0.0.1.
RDS_ALIAS = "orders.cluster-c0ffee.us-east-1.rds.amazonaws.com"
# The role of the caller in events/api_*.json (an assumed-role session of it signs the requests).
ENGINEER_ROLE = "arn:aws:iam::123456789012:role/data-engineer"
EVENTS = pathlib.Path(__file__).resolve().parent.parent / "events"


@pytest.fixture(scope="session")
def aws() -> Iterator[dict[str, str]]:
    """moto's server (its own process) for DynamoDB and STS, and STS session credentials in the environment."""
    moto = MotoAws(region=REGION, role_arn="arn:aws:iam::123456789012:role/rdsgate-query", own_process=True).start()
    yield dict(moto.credentials)
    moto.stop()


def _with_test_users(server: Any, credentials: dict[str, str]) -> Any:
    """Trust the session's credentials and create the IAM user, the password user and the database."""
    server.trust(credentials["AWS_ACCESS_KEY_ID"], credentials["AWS_SECRET_ACCESS_KEY"], credentials["AWS_SESSION_TOKEN"])
    server.create_iam_user(IAM_USER)
    server.create_password_user(STATIC_USER, STATIC_PASSWORD)
    server.create_database(DATABASE)
    for user in (IAM_USER, STATIC_USER):
        server.grant_all(user, DATABASE)
    return server


@pytest.fixture(scope="session")
def postgres(aws: dict[str, str]) -> Iterator[PostgresServer]:
    server = _with_test_users(PostgresServer(region=REGION, extra_hostnames=[RDS_ALIAS]).start(), aws)
    server.execute(f"GRANT ALL ON SCHEMA public TO {IAM_USER}, {STATIC_USER}", database=DATABASE)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mariadb(aws: dict[str, str]) -> Iterator[MariaDBServer]:
    server = _with_test_users(MariaDBServer(region=REGION, extra_hostnames=[RDS_ALIAS]).start(), aws)
    yield server
    server.stop()


def iam_definition(name: str, server: Any, engine: str, **fields: Any) -> dict[str, Any]:
    """A DynamoDB item for an IAM connection to one of the test servers."""
    item = {
        "name": name,
        "engine": engine,
        "host": "localhost",
        "port": server.port,
        "database": DATABASE,
        "user": f"_aws_iam_rds:{IAM_USER}",
        "password": "_aws_iam_rds:authtoken",
        "ca_bundle": server.ca_file,
        "description": f"{engine} test database",
        "allowed_principals": [ENGINEER_ROLE],
    }
    item.update(fields)
    return item


class ConnectionsTable:
    """The connections table on moto, with helpers to write definitions."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.client = boto3.client("dynamodb", region_name=REGION)

    def put(self, item: dict[str, Any]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        self.client.put_item(TableName=self.name, Item={k: serializer.serialize(v) for k, v in item.items()})

    def delete(self, name: str) -> None:
        self.client.delete_item(TableName=self.name, Key={"name": {"S": name}})


@pytest.fixture(scope="session")
def connections(aws: dict[str, str], postgres: PostgresServer, mariadb: MariaDBServer) -> ConnectionsTable:
    """The table, holding one IAM, Hoop-style and static definition per engine."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table = ConnectionsTable(TABLE)
    for engine, server in (("postgres", postgres), ("mysql", mariadb)):
        prefix = "pg" if engine == "postgres" else "my"
        table.put(iam_definition(f"{prefix}", server, engine))
        table.put(iam_definition(f"{prefix}-alias", server, engine, host="127.0.0.1", iam_host=RDS_ALIAS))
        table.put(
            {
                "name": f"{prefix}-hoop",
                "engine": engine,
                "HOST": "localhost",
                "PORT": str(server.port),
                "USER": f"_aws_iam_rds:{IAM_USER}",
                "PASS": "_aws_iam_rds:authtoken",
                "DB": DATABASE,
                "SSLMODE": "verify-full",
                "ca_bundle": server.ca_file,
                "allowed_principals": [ENGINEER_ROLE],
            }
        )
        table.put(iam_definition(f"{prefix}-static", server, engine, user=STATIC_USER, password=STATIC_PASSWORD))
        table.put(iam_definition(f"{prefix}-wrong-user", server, engine, user="_aws_iam_rds:nobody_here"))
        # tls "require": the certificate does not name the other host; the login must fail on the token.
        table.put(iam_definition(f"{prefix}-wrong-host", server, engine, iam_host="other.rds.amazonaws.com", tls="require"))
    return table


@pytest.fixture
def runtime(aws: dict[str, str], connections: ConnectionsTable, monkeypatch: pytest.MonkeyPatch):
    """The handlers' process-wide service, fresh for each test, reading the test table."""
    from rdsgate import runtime as rt

    monkeypatch.setenv("RDSGATE_CONNECTIONS_TABLE", connections.name)
    monkeypatch.setenv("RDSGATE_STATEMENT_TIMEOUT_MS", "5000")
    rt.SERVICE.reset()
    yield rt.SERVICE
    rt.SERVICE.reset()


def run_query(runtime: Any, name: str, sql: str, parameters: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Run a query through the handlers' service as a trusted (Step Functions) caller."""
    from rdsgate.access import TRUSTED
    from rdsgate.request import parse_query
    from rdsgate.service import Invocation

    request = parse_query({"sql": sql, "parameters": parameters or {}, **options})
    return runtime.get().query(name, request, Invocation(caller=TRUSTED, result_limit_bytes=6_000_000))


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())
