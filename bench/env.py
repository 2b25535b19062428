"""The benchmark's world: moto (DynamoDB, STS), IAM-verifying PostgreSQL and MariaDB on loopback, seeded data.

Everything is started with ``rdsgate_devstack``, as the tests start it (tests/conftest.py):
``MotoAws`` runs moto's server in its own process and puts the STS session credentials
that rdsgate signs IAM tokens with in this process's environment, and the local servers
trust those credentials. Workers run in child
processes with ``child_environment()``, the environment of a Lambda execution role.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time
from typing import TYPE_CHECKING, Any

REPO = pathlib.Path(__file__).resolve().parent.parent
PYTHONPATH = os.pathsep.join(str(REPO / part) for part in ("functions", "local", "."))
for _path in reversed(PYTHONPATH.split(os.pathsep)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

if TYPE_CHECKING:
    from rdsgate_devstack.moto_aws import MotoAws

REGION = "us-east-1"
TABLE = "rdsgate-bench-connections"
DATABASE = "bench"
IAM_USER = "bench_iam"
CALLER_ROLE = "arn:aws:iam::123456789012:role/bench-caller"
CALLER_ARN = "arn:aws:sts::123456789012:assumed-role/bench-caller/bench"
FUNCTION_ROLE = "arn:aws:iam::123456789012:role/rdsgate-bench-function"  # the workers' execution role
ITEM_ROWS = 100_000
CONNECTIONS = {"postgres": "pg", "mysql": "my"}  # engine -> connection name

PG_ITEMS = """
CREATE TABLE items (
    id bigint PRIMARY KEY, qty integer NOT NULL, price numeric(12, 2) NOT NULL, name text NOT NULL,
    active boolean NOT NULL, born date NOT NULL, created timestamptz NOT NULL, ratio double precision NOT NULL,
    token uuid NOT NULL, attrs jsonb NOT NULL
)"""
PG_FILL = f"""
INSERT INTO items
SELECT g, g % 1000, (g * 1.37)::numeric(12, 2), 'item-' || g, g % 2 = 0, date '2020-01-01' + (g % 2000),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1.25 second', g / 7.0, md5(g::text)::uuid,
       jsonb_build_object('k', g, 'tag', 'x' || (g % 10))
FROM generate_series(1, {ITEM_ROWS}) AS g"""
MY_ITEMS = """
CREATE TABLE items (
    id BIGINT PRIMARY KEY, qty INT NOT NULL, price DECIMAL(12, 2) NOT NULL, name VARCHAR(64) NOT NULL,
    active BOOLEAN NOT NULL, born DATE NOT NULL, created DATETIME(6) NOT NULL, ratio DOUBLE NOT NULL,
    token CHAR(36) NOT NULL, attrs JSON NOT NULL
)"""
MY_FILL = f"""
INSERT INTO items
SELECT seq, seq % 1000, seq * 1.37, CONCAT('item-', seq), seq % 2 = 0, DATE '2020-01-01' + INTERVAL (seq % 2000) DAY,
       TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq * 1250000) MICROSECOND, seq / 7.0,
       CONCAT_WS('-', SUBSTR(MD5(seq), 1, 8), SUBSTR(MD5(seq), 9, 4), SUBSTR(MD5(seq), 13, 4),
                 SUBSTR(MD5(seq), 17, 4), SUBSTR(MD5(seq), 21, 12)),
       JSON_OBJECT('k', seq, 'tag', CONCAT('x', seq % 10))
FROM seq_1_to_{ITEM_ROWS}"""


class BenchEnv:
    """Starts and stops the servers; hands out what workers need."""

    def __init__(self, log: Any = print) -> None:
        self.log = log
        self.credentials: dict[str, str] = {}
        self.endpoint = ""
        self.servers: dict[str, Any] = {}  # engine -> server
        self.aws: MotoAws | None = None  # moto, once started

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> BenchEnv:
        try:
            self._start_moto()
            self._start_databases()
            self._write_definitions()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                pass
        self.servers = {}
        if self.aws is not None:  # stops moto and puts the environment back
            self.aws.stop()
            self.aws = None

    def __enter__(self) -> BenchEnv:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- what workers get ---------------------------------------------------------------------

    def child_environment(self, **extra: str) -> dict[str, str]:
        """The environment of a Lambda execution environment: role credentials, region, table."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RDSGATE_", "POWERTOOLS_"))}
        env.update(
            {
                "PYTHONPATH": PYTHONPATH,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint,
                "AWS_ENDPOINT_URL_STS": self.endpoint,
                "RDSGATE_CONNECTIONS_TABLE": TABLE,
                "POWERTOOLS_SERVICE_NAME": "rdsgate",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **self.credentials,
            }
        )
        env.update(extra)
        return env

    def server_info(self) -> dict[str, Any]:
        """What a worker needs to open a raw driver connection next to rdsgate's."""
        return {
            engine: {"port": server.port, "ca_file": server.ca_file, "version": server.server_version}
            for engine, server in self.servers.items()
        }

    def connection_count(self, engine: str) -> Any:
        """A callable counting the benchmark user's open sessions (one admin connection kept open)."""
        server = self.servers[engine]
        if engine == "postgres":
            conn = server.connect_admin()

            def count() -> int:
                return int(conn.run(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{IAM_USER}'")[0][0])

        else:
            conn = server.connect_admin()

            def count() -> int:
                with conn.cursor() as cur:
                    cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s", (IAM_USER,))
                    return int(cur.fetchone()[0])

        count.close = conn.close  # type: ignore[attr-defined]
        return count

    # -- start-up steps -----------------------------------------------------------------------

    def _start_moto(self) -> None:
        from rdsgate_devstack.moto_aws import MotoAws

        self.aws = MotoAws(region=REGION, role_arn=FUNCTION_ROLE, own_process=True).start()
        self.endpoint = self.aws.endpoint
        self.credentials = dict(self.aws.credentials)
        self.log(f"moto on {self.endpoint}")

    def _start_databases(self) -> None:
        from rdsgate_devstack.servers import MariaDBServer, PostgresServer

        for engine, cls in (("postgres", PostgresServer), ("mysql", MariaDBServer)):
            started = time.perf_counter()
            server = cls(region=REGION)
            self.servers[engine] = server
            server.start()
            server.trust(*(self.credentials[n] for n in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
            server.create_iam_user(IAM_USER)
            server.create_database(DATABASE)
            server.grant_all(IAM_USER, DATABASE)
            if engine == "postgres":
                server.execute(PG_ITEMS, database=DATABASE)
                server.execute(PG_FILL, database=DATABASE)
                server.execute(f"GRANT ALL ON items TO {IAM_USER}", database=DATABASE)
                server.execute("ANALYZE items", database=DATABASE)
            else:
                server.execute(MY_ITEMS, database=DATABASE)
                server.execute(MY_FILL, database=DATABASE)
                server.execute("ANALYZE TABLE items", database=DATABASE)
            self.log(
                f"{engine}: {server.kind} {server.server_version} on 127.0.0.1:{server.port}, "
                f"{ITEM_ROWS} rows seeded in {time.perf_counter() - started:.1f} s"
            )

    def _write_definitions(self) -> None:
        from rdsgate.detectors import DETECTORS

        from bench.definitions import iam_definition
        from rdsgate_devstack.moto_aws import DefinitionsTable

        table = DefinitionsTable(self.aws, TABLE).create()
        for engine, name in CONNECTIONS.items():
            item = iam_definition(name, self.servers[engine], engine, database=DATABASE, iam_user=IAM_USER,
                                  caller_role=CALLER_ROLE, description=f"benchmark {engine}")  # fmt: skip
            table.put(item)
            # The same database with every content detector on: what scanning results costs, (b).
            table.put({**item, "name": f"{name}-detect", "mask_detectors": list(DETECTORS)})

