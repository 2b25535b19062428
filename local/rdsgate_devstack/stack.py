"""The local stack: moto, IAM-verifying PostgreSQL (and MariaDB where installed), demo data, and the HTTP API.

``LocalStack.start()`` binds the HTTP port first (so a taken port fails before any
server starts), then starts moto with the function's STS session credentials in
this process's environment, the database servers trusting those credentials, the
demo data and definitions, and finally serves ``rdsgate.api.handler``. ``stop()``
undoes every step that ran, in reverse: no server process, work folder, PAM
service or environment change is left behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from . import demo, reviews_local, sessions_local, runbooks_local, statements_local
from .http_server import LOCAL_IDENTITY, LocalApiServer
from .moto_aws import DefinitionsTable, MotoAws
from .server_host import MissingDependency
from .sigv4 import SigV4Verifier, TrustedKey

TABLE = "rdsgate-local-connections"
ACCOUNT = "000000000000"
CALLER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rdsgate-local-caller"
CALLER_PROFILE = "rdsgate-local"


@dataclass
class StackOptions:
    """What `rdsgate serve` asks for."""

    host: str = "127.0.0.1"
    port: int = 8080
    auth: str = "none"  # or "sigv4"
    identity: str = LOCAL_IDENTITY
    region: str = "us-east-1"
    mysql: bool = True
    runbooks: str | None = None  # a runbooks file (rdsgate serve --runbooks), beside the demo's


class LocalStack:
    """Starts and stops everything `rdsgate serve` runs; usable as a context manager."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.aws: MotoAws | None = None
        self.postgres: Any = None
        self.mariadb: Any = None
        self.mysql_skipped: str | None = None
        self.api: LocalApiServer | None = None
        self.table: DefinitionsTable | None = None
        self.definitions: list[dict[str, Any]] = []
        self.runbooks: list[dict[str, Any]] = []
        self.caller_credentials_file: str | None = None
        self.caller_arn: str | None = None
        self._undo: list[Callable[[], None]] = []

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from rdsgate import api, runtime
        from rdsgate.worker import LOCAL_RUNNER
        from .servers import MariaDBServer, PostgresServer

        options = self.options
        verifier = SigV4Verifier(options.region) if options.auth == "sigv4" else None
        self.api = LocalApiServer(api.handler, host=options.host, port=options.port, verifier=verifier,
                                  identity=options.identity)
        self._undo.append(self.api.close)
        self.aws = MotoAws(region=options.region, account=ACCOUNT).start()
        self._undo.append(self.aws.stop)

        self.postgres = self._started(PostgresServer(region=options.region, extra_hostnames=[demo.RDS_ENDPOINT]))
        demo.load_postgres(self.postgres)
        if options.mysql:
            try:
                self.mariadb = self._started(MariaDBServer(region=options.region))
                demo.load_mysql(self.mariadb)
            except MissingDependency as exc:
                self.mysql_skipped = str(exc)
                self.mariadb = None
        else:
            self.mysql_skipped = "not asked for (--no-mysql)"

        self.table = DefinitionsTable(self.aws, TABLE).create()
        self.definitions = demo.definitions(self.postgres, self.mariadb)
        for item in self.definitions:
            self.table.put(item)
        self.aws.set_environment({"RDSGATE_CONNECTIONS_TABLE": TABLE})
        # Runbooks (rdsgate.runbooks): the demo's and --runbooks FILE, checked against the connections.
        self.runbooks = runbooks_local.items_for(demo.runbooks(), options.runbooks, self.definitions)
        self.aws.set_environment(runbooks_local.create(self.aws.client, self.runbooks))
        # Reviews (rdsgate.reviews): their table and the KMS key of the parameters they keep.
        self.aws.set_environment({"AWS_ENDPOINT_URL_KMS": self.aws.endpoint})
        self.aws.set_environment(reviews_local.create_resources(self.aws.client))
        # Asynchronous statements: moto's DynamoDB and S3, the worker in threads of this process.
        self.aws.set_environment(statements_local.create_resources(self.aws.client))
        self._undo.append(lambda: LOCAL_RUNNER.join(timeout=2))
        # Sessions: the session table on moto, runners as local worker processes (rdsgate_devstack.sessions_local).
        self.aws.set_environment(sessions_local.create_table(self.aws.client))
        self.runners = sessions_local.serve_runners()
        self._undo.append(lambda: sessions_local.stop_runners(self.runners))
        runtime.SERVICE.reset()
        self._undo.append(runtime.SERVICE.reset)
        if verifier is not None:
            self._issue_caller_credentials(verifier)
        self.api.serve_in_background()

    def _started(self, server: Any) -> Any:
        self._undo.append(server.stop)
        server.start()
        server.trust(*(self.aws.credentials[name] for name in
                       ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")))
        return server

    def _issue_caller_credentials(self, verifier: SigV4Verifier) -> None:
        """Session credentials for callers of the signed API, in a credentials file only this user can read."""
        issued = self.aws.assume_role(CALLER_ROLE, "local")
        self.caller_arn = issued["arn"]
        verifier.trust(issued["AWS_ACCESS_KEY_ID"], TrustedKey(
            issued["AWS_SECRET_ACCESS_KEY"], self.caller_arn, issued["AWS_SESSION_TOKEN"]))
        # In the PostgreSQL work folder: removed by stop(), or by the next start after a crash.
        self.caller_credentials_file = os.path.join(self.postgres.workdir, "caller-credentials")
        with open(os.open(self.caller_credentials_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(f"[{CALLER_PROFILE}]\naws_access_key_id = {issued['AWS_ACCESS_KEY_ID']}\n"
                    f"aws_secret_access_key = {issued['AWS_SECRET_ACCESS_KEY']}\n"
                    f"aws_session_token = {issued['AWS_SESSION_TOKEN']}\n")

    def stop(self) -> None:
        """Undo every step that ran, last first; one failing step does not keep the others from running."""
        errors = []
        while self._undo:
            try:
                self._undo.pop()()
            except Exception as exc:  # noqa: BLE001 - keep cleaning; report after
                errors.append(exc)
        if errors:
            raise errors[0]

    def describe(self) -> list[str]:
        """What runs where, for people."""
        options, api = self.options, self.api
        auth = (f"auth sigv4: requests must be signed; profile {CALLER_PROFILE} signs as {self.caller_arn}"
                if options.auth == "sigv4" else f"auth none: every caller is {options.identity}")
        lines = [f"  API         {api.url}  ({auth})",
                 f"  Console     {api.url}/  (the web console; docs/CONSOLE.md)",
                 f"  PostgreSQL  {self.postgres.server_version} on {self.postgres.host}:{self.postgres.port}, "
                 f"database {demo.DATABASE}  [{self.postgres.workdir}]"]
        if self.mariadb is not None:
            lines.append(f"  MariaDB     {self.mariadb.server_version} on {self.mariadb.host}:{self.mariadb.port}, "
                         f"database {demo.DATABASE}  [{self.mariadb.workdir}]")
        else:
            lines.append(f"  MariaDB     not started: {self.mysql_skipped}")
        lines.append(f"  DynamoDB    moto on {self.aws.endpoint}, table {TABLE} (account {ACCOUNT}, any credentials)")
        lines.append(f"  S3          moto on {self.aws.endpoint}, bucket {statements_local.BUCKET} (asynchronous statements' results)")
        lines.append(f"  Sessions    moto on {self.aws.endpoint}, table {sessions_local.TABLE}; runners as local processes")
        lines.append("  connections " + ", ".join(f"{d['name']} ({d['engine']})" for d in self.definitions))
        lines.append("  runbooks    " + (", ".join(f"{r['name']} (on {r['connection']})" for r in self.runbooks) or "none"))
        return lines

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
