"""The `rdsgate` command line against the local HTTP server in front of the real handler and test servers."""

import pytest

from rdsgate import api
from rdsgate_cli.cli import main
from rdsgate_devstack.http_server import LocalApiServer
from tests.conftest import ENGINEER_ROLE

# An assumed-role session of the role the test definitions allow.
CALLER = ENGINEER_ROLE.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/cli-tests"


@pytest.fixture
def endpoint(runtime, monkeypatch):
    """The URL of a local server calling rdsgate.api.handler as CALLER; IAM calls go to moto, never to AWS."""
    import os

    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", os.environ["AWS_ENDPOINT_URL_STS"])
    server = LocalApiServer(api.handler, port=0, identity=CALLER, access_log=False).serve_in_background()
    yield server.url
    server.close()


@pytest.fixture(autouse=True)
def no_metric_lines(monkeypatch):
    """The in-process server's handler would print its EMF lines into the standard output the CLI is judged by."""
    from rdsgate import runtime
    from rdsgate.telemetry import NoopRecorder

    monkeypatch.setattr(runtime.SERVICE, "metrics", NoopRecorder())


@pytest.fixture
def cli(capsys):
    """Runs `rdsgate ARGS…` in this process; returns the exit code, standard output and standard error."""

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
