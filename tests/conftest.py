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

import pytest

from bench import definitions
from rdsgate_devstack.moto_aws import DefinitionsTable, MotoAws
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
ENGINES = {"postgres": "pg", "mysql": "my"}  # engine -> the name of its writable IAM connection


@pytest.fixture(scope="session")
def moto_aws() -> Iterator[MotoAws]:
    """moto's server (its own process) for DynamoDB and STS, and STS session credentials in the environment."""
    moto = MotoAws(region=REGION, role_arn="arn:aws:iam::123456789012:role/rdsgate-query", own_process=True).start()
    yield moto
    moto.stop()


@pytest.fixture(scope="session")
def aws(moto_aws: MotoAws) -> dict[str, str]:
    """The STS session credentials in the environment: what the code under test signs with."""
    return dict(moto_aws.credentials)


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


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine in turn, for the tests that run alike on both (its connection: ``ENGINES[engine]``)."""
    return request.param


@pytest.fixture
def server(engine: str, postgres: PostgresServer, mariadb: MariaDBServer) -> Any:
    """The test server of ``engine``."""
    return postgres if engine == "postgres" else mariadb


def fresh_table(runtime: Any, conn: str, table: str, columns: str) -> Iterator[str]:
    """For a fixture (``yield from``): ``table`` created anew with ``columns`` on connection ``conn``, which it
    yields, and dropped afterwards."""
    run_query(runtime, conn, f"DROP TABLE IF EXISTS {table}")
    run_query(runtime, conn, f"CREATE TABLE {table} ({columns})")
    yield conn
    run_query(runtime, conn, f"DROP TABLE IF EXISTS {table}")


def iam_definition(name: str, server: Any, engine: str, **fields: Any) -> dict[str, Any]:
    """A DynamoDB item for an IAM connection to one of the test servers."""
    defaults = {"database": DATABASE, "iam_user": IAM_USER, "caller_role": ENGINEER_ROLE, "description": f"{engine} test database"}
    return definitions.iam_definition(name, server, engine, **(defaults | fields))


@pytest.fixture(scope="session")
def connections(moto_aws: MotoAws, postgres: PostgresServer, mariadb: MariaDBServer) -> DefinitionsTable:
    """The table, holding one IAM, Hoop-style and static definition per engine."""
    table = DefinitionsTable(moto_aws, TABLE).create()
    for engine, server in (("postgres", postgres), ("mysql", mariadb)):
        prefix = ENGINES[engine]
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
def runtime(aws: dict[str, str], connections: DefinitionsTable, monkeypatch: pytest.MonkeyPatch):
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
