"""moto on loopback for DynamoDB, STS, IAM, S3 and Step Functions, with STS session credentials put in this process's environment.

The code under test, or the local stack's function, reaches moto through
``AWS_ENDPOINT_URL_*`` and signs RDS IAM tokens with the session credentials that
moto's STS issued, as a Lambda function signs with its execution role's. The
database servers' verifier is told to trust those credentials. ``stop()`` puts the
environment back as it was.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from typing import Any

from .server_host import free_port

# Variables that would point boto3 at a real account's credentials or settings.
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_BOOTSTRAP_KEY = ("AKIAIOSFODNN7EXAMPLE", "bootstrap-secret")  # moto accepts any key; only used to call STS


class MotoAws:
    """moto's server on ``host``, and the environment of a function whose role is ``role_arn``."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        role_arn: str = "arn:aws:iam::000000000000:role/rdsgate-local-function",
        host: str = "127.0.0.1",
        port: int | None = None,
        account: str | None = None,
        own_process: bool = False,
    ) -> None:
        self.region = region
        self.account = account  # every request's account, whatever its key (else moto derives it from the key)
        self.role_arn = role_arn
        self.host = host
        self.port = port
        self.credentials: dict[str, str] = {}  # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
        # In its own process moto keeps its state apart from this one's: code that uses mock_aws
        # (which resets moto's in-process backends) then cannot wipe the server's tables.
        self.own_process = own_process
        self.principal_arn: str | None = None
        self._server: Any = None
        self._saved_environment: dict[str, str | None] = {}

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoAws:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per moto request
        self.port = self.port or free_port(self.host)
        if self.own_process:
            self._server = _MotoProcess(self.host, self.port)
        else:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        try:
            self.set_environment(
                {name: None for name in _CLEARED}
                | {
                    "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region,
                    "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint,
                    "AWS_ENDPOINT_URL_STS": self.endpoint,
                    "AWS_ENDPOINT_URL_IAM": self.endpoint,
                    "AWS_ENDPOINT_URL_S3": self.endpoint,  # asynchronous statements' results
                    "AWS_ENDPOINT_URL_SFN": self.endpoint,  # SendTaskSuccess/Failure of the callback pattern
                    "AWS_ACCESS_KEY_ID": _BOOTSTRAP_KEY[0],
                    "AWS_SECRET_ACCESS_KEY": _BOOTSTRAP_KEY[1],
                    "AWS_SESSION_TOKEN": None,
                    "MOTO_ACCOUNT_ID": self.account,
                }
            )
            issued = self.assume_role(self.role_arn, "rdsgate-local")
            self.principal_arn = issued.pop("arn")
            self.credentials = issued
            self.set_environment(dict(issued))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop moto and restore every environment variable changed by start()."""
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}
        _forget_default_session()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def assume_role(self, role_arn: str, session_name: str) -> dict[str, str]:
        """New session credentials from moto's STS, as environment variable names, plus the session's ``arn``."""
        response = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)
        issued = response["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
            "AWS_SESSION_TOKEN": issued["SessionToken"],
            "arn": response["AssumedRoleUser"]["Arn"],
        }

    def client(self, service: str) -> Any:
        """A boto3 client for moto, from a private session (the default one would cache credentials)."""
        import boto3

        return boto3.session.Session(region_name=self.region).client(service, endpoint_url=self.endpoint)

    def set_environment(self, values: dict[str, str | None]) -> None:
        """Set (or, with None, remove) variables of this process; stop() restores them."""
        for name, value in values.items():
            self._saved_environment.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _forget_default_session()

    def __enter__(self) -> MotoAws:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _forget_default_session() -> None:
    import boto3

    boto3.DEFAULT_SESSION = None


class DefinitionsTable:
    """A connections table on moto: created on demand, written one definition at a time."""

    def __init__(self, aws: MotoAws, name: str) -> None:
        self.name = name
        self.client = aws.client("dynamodb")

    def create(self) -> DefinitionsTable:
        self.client.create_table(
            TableName=self.name,
            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        return self

    def put(self, item: dict[str, Any]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        self.client.put_item(TableName=self.name, Item={k: serializer.serialize(v) for k, v in item.items()})

    def delete(self, name: str) -> None:
        self.client.delete_item(TableName=self.name, Key={"name": {"S": name}})


class _MotoProcess:
    """moto's server as a child process, with ThreadedMotoServer's start()/stop()."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("moto's server exited at start")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto's server did not listen on port {self.port} within 30 s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
