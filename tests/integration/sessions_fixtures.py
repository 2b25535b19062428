"""Fixtures for sessions: the session table on the tests' moto, and runners as local worker processes.

Import the fixtures into a test module (``from tests.integration.sessions_fixtures import …``).
The runners run ``rdsgate.sessions.runner.handler`` in their own processes, with the
environment of the test at the time of each begin (the monkeypatched settings included).
"""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest

from rdsgate_devstack.sessions_local import LocalRunners, create_table, serve_runners, stop_runners
from tests.conftest import REGION

TABLE = "rdsgate-sessions-test"
ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/data-engineer/bob"


@pytest.fixture(scope="session")
def session_table(aws: dict[str, str]) -> str:
    # Each module that imports this fixture gets its own instance: the table may exist already.
    client = boto3.client("dynamodb", region_name=REGION)
    if TABLE not in client.list_tables()["TableNames"]:
        create_table(lambda service: boto3.client(service, region_name=REGION), table=TABLE)
    return TABLE


@pytest.fixture(scope="session")
def runners(aws: dict[str, str]) -> Iterator[LocalRunners]:
    pool = serve_runners(timeout_seconds=120)
    yield pool
    stop_runners(pool)


@pytest.fixture
def sessions(runtime: Any, session_table: str, runners: LocalRunners, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sessions on, with short timings: idle 60 s (tests lower it), lease 2 s, polling every 5 ms."""
    monkeypatch.setenv("RDSGATE_SESSIONS_TABLE", session_table)
    monkeypatch.setenv("RDSGATE_SESSION_IDLE_SECONDS", "60")
    monkeypatch.setenv("RDSGATE_SESSION_LEASE_SECONDS", "2")
    monkeypatch.setenv("RDSGATE_SESSION_POLL_MS", "5")
    monkeypatch.setenv("RDSGATE_SESSION_START_SECONDS", "20")
    from rdsgate.sessions.routes import SESSIONS

    return SESSIONS


def invocation(caller: str = ALICE, *, governed: bool = True, limit: int = 6_000_000) -> Any:
    from rdsgate.access import Caller
    from rdsgate.service import Invocation

    return Invocation(caller=Caller(arn=caller, governed=governed), result_limit_bytes=limit, request_id="test")
