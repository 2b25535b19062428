"""The IAM login diagnosis step by step, without servers: STS and IAM answers come from botocore's Stubber."""

import datetime as dt
import email.utils
import socket

import boto3
import pytest
from botocore.stub import Stubber

from rdsgate import diagnose as dx
from rdsgate.definitions import parse_definition
from rdsgate.errors import ConnectionNotFound

ROLE_SESSION = "arn:aws:sts::111122223333:assumed-role/rdsgate-query/fn"
ROLE = "arn:aws:iam::111122223333:role/rdsgate-query"
ENDPOINT = "orders.c0ffee.us-east-1.rds.amazonaws.com"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def item(**fields):
    base = {"name": "orders", "engine": "postgres", "host": "127.0.0.1", "iam_host": ENDPOINT, "port": closed_port(),
            "database": "orders", "user": "_aws_iam_rds:orders_app", "password": "_aws_iam_rds:authtoken",
            "resource_id": "db-ABCDEFGHIJKL"}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


class FakeSession:
    """A boto3 session whose STS and IAM clients are stubbed; RDS tokens are signed for real (no network)."""

    def __init__(self, *, credentials=True, region="us-east-1"):
        keys = {"aws_access_key_id": "ASIAEXAMPLE", "aws_secret_access_key": "secret", "aws_session_token": "token"}
        self.real = boto3.session.Session(region_name=region, **keys)
        self.credentials = self.real.get_credentials() if credentials else None
        self.clients = {name: self.real.client(name, region_name=region) for name in ("sts", "iam")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        for stub in self.stubs.values():
            stub.activate()

    def get_credentials(self):
        return self.credentials

    def client(self, service, region_name=None, config=None):
        return self.clients.get(service) or self.real.client(service, region_name=region_name)

    def caller(self, arn=ROLE_SESSION, date=None):
        headers = {"date": email.utils.format_datetime(date or dt.datetime.now(dt.timezone.utc), usegmt=True)}
        self.stubs["sts"].add_response(
            "get_caller_identity",
            {"Arn": arn, "Account": arn.split(":")[4], "UserId": "AROAEXAMPLE:fn",
             "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": headers}},
        )
        return self

    def simulation(self, decision, resource=None):
        expected = {"PolicySourceArn": ROLE, "ActionNames": ["rds-db:connect"],
                    "ResourceArns": [resource or "arn:aws:rds-db:us-east-1:111122223333:dbuser:db-ABCDEFGHIJKL/orders_app"]}
        self.stubs["iam"].add_response(
            "simulate_principal_policy",
            {"EvaluationResults": [{"EvalActionName": "rds-db:connect", "EvalDecision": decision}]}, expected,
        )
        return self


def run(definition_item, session, **kwargs):
    lookup = lambda name: parse_definition(definition_item, name=name)  # noqa: E731
    kwargs.setdefault("region", "us-east-1")
    return dx.diagnose("orders", lookup, session=session, connect_timeout=1, **kwargs)


def checks(diagnosis):
    return {check.step: check for check in diagnosis.checks}


def test_every_step_is_reported_in_login_order():
    diagnosis = run(item(), FakeSession().caller().simulation("allowed"))
    assert [check.step for check in diagnosis.checks] == list(dx.STEPS)
    found = checks(diagnosis)
    for step in ("definition", "signing-host", "credentials", "token", "dns", "policy"):
        assert found[step].status == dx.PASS, found[step]
    assert found["tcp"].status == dx.FAIL and "refused" in found["tcp"].detail
    assert found["tls"].status == found["login"].status == dx.SKIP
    assert not diagnosis.ok
    assert found["token"].detail.startswith(f"signed locally for orders_app at {ENDPOINT}")


def test_no_token_ever_appears_in_the_report():
    report = str(run(item(), FakeSession().caller().simulation("allowed")).to_dict())
    assert "X-Amz-Signature" not in report and "X-Amz-Security-Token" not in report and "secret" not in report


def test_a_malformed_definition_fails_first_and_skips_the_rest():
    diagnosis = run(item(engine="oracle"), FakeSession())
    assert diagnosis.checks[0].status == dx.FAIL and "'engine'" in diagnosis.checks[0].detail
    assert "'engine'" in diagnosis.checks[0].fix
    assert {check.status for check in diagnosis.checks[1:]} == {dx.SKIP}


def test_an_unknown_connection_is_not_a_diagnosis():
    def lookup(name):
        raise ConnectionNotFound(f"connection {name!r} does not exist")

    with pytest.raises(ConnectionNotFound):
        dx.diagnose("nope", lookup, region="us-east-1", session=FakeSession())


def test_no_region_fails_the_signing_step_and_skips_token_and_policy():
    found = checks(run(item(), FakeSession().caller(), region=None))
    assert found["signing-host"].status == dx.FAIL and "'region'" in found["signing-host"].fix
    assert found["token"].status == found["policy"].status == dx.SKIP


def test_an_endpoint_in_another_region_than_the_signature():
    found = checks(run(item(iam_host="orders.c0ffee.eu-west-1.rds.amazonaws.com"), FakeSession().caller()))
    assert found["signing-host"].status == dx.FAIL
    assert "eu-west-1" in found["signing-host"].detail and "eu-west-1" in found["signing-host"].fix


def test_a_cname_for_an_rds_endpoint_without_iam_host(monkeypatch):
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, ENDPOINT, ("127.0.0.1", port))]

    monkeypatch.setattr(dx.socket, "getaddrinfo", fake_getaddrinfo)
    found = checks(run(item(host="db.internal.example", iam_host=None), FakeSession().caller().simulation("allowed")))
    assert found["signing-host"].status == dx.FAIL
    assert f"set 'iam_host' to {ENDPOINT}" in found["signing-host"].fix
    assert found["dns"].status == dx.PASS and ENDPOINT in found["dns"].detail


def test_a_host_that_is_no_rds_endpoint_is_a_warning():
    found = checks(run(item(host="localhost", iam_host=None), FakeSession().caller().simulation("allowed")))
    assert found["signing-host"].status == dx.WARN and "iam_host" in found["signing-host"].fix


def test_no_credentials_fail_and_skip_the_token_and_policy():
    found = checks(run(item(), FakeSession(credentials=False)))
    assert found["credentials"].status == dx.FAIL and "no AWS credentials" in found["credentials"].detail
    assert found["token"].status == found["policy"].status == dx.SKIP


def test_credentials_that_sts_rejects():
    session = FakeSession()
    session.stubs["sts"].add_client_error("get_caller_identity", "ExpiredToken", "The security token has expired")
    found = checks(run(item(), session))
    assert found["credentials"].status == dx.FAIL and "ExpiredToken" in found["credentials"].detail
    assert found["policy"].status == dx.WARN  # the principal is unknown: nothing to simulate


def test_a_skewed_clock_fails_the_token():
    session = FakeSession().caller(date=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)).simulation("allowed")
    found = checks(run(item(), session))
    assert found["token"].status == dx.FAIL and "NTP" in found["token"].fix


def test_policy_denied():
    session = FakeSession().caller().simulation("implicitDeny")
    found = checks(run(item(), session))
    session.stubs["iam"].assert_no_pending_responses()  # simulated once, with the expected role and ARN
    assert found["policy"].status == dx.FAIL
    assert "implicitDeny" in found["policy"].detail and "rdsgate policy orders" in found["policy"].fix


def test_policy_simulation_not_permitted_is_a_warning():
    session = FakeSession().caller()
    session.stubs["iam"].add_client_error("simulate_principal_policy", "AccessDenied", "not authorized")
    found = checks(run(item(), session))
    assert found["policy"].status == dx.WARN and "AccessDenied" in found["policy"].detail
    assert "iam:SimulatePrincipalPolicy" in found["policy"].fix


def test_policy_without_resource_id_is_a_warning():
    found = checks(run(item(resource_id=None), FakeSession().caller()))
    assert found["policy"].status == dx.WARN and "resource_id" in found["policy"].detail


def test_proxy_endpoint_needs_the_proxy_resource_id():
    proxy = "orders.proxy-c0ffee.us-east-1.rds.amazonaws.com"
    found = checks(run(item(iam_host=proxy), FakeSession().caller()))
    assert found["policy"].status == dx.FAIL and "prx-" in found["policy"].fix
    arn = "arn:aws:rds-db:us-east-1:111122223333:dbuser:prx-0123abcd/orders_app"
    found = checks(run(item(iam_host=proxy, resource_id="prx-0123abcd"), FakeSession().caller().simulation("allowed", arn)))
    assert found["policy"].status == dx.PASS


def test_password_connections_skip_the_iam_steps():
    found = checks(run(item(user="plain", password="pw", iam_host=None), FakeSession()))
    assert {found[s].status for s in ("signing-host", "credentials", "token", "policy")} == {dx.SKIP}
    assert "password" in found["token"].detail


def test_outside_the_network_unreachable_steps_are_warnings():
    diagnosis = run(item(), FakeSession().caller().simulation("allowed"), outside_network=True)
    found = checks(diagnosis)
    assert found["tcp"].status == dx.WARN and "--endpoint" in found["tcp"].fix
    assert found["tls"].status == dx.SKIP and diagnosis.ok


def test_dns_failure():
    found = checks(run(item(host="no-such-host.invalid"), FakeSession().caller().simulation("allowed")))
    assert found["dns"].status == dx.FAIL and "does not resolve" in found["dns"].detail
    assert found["tcp"].status == dx.SKIP


@pytest.mark.parametrize(
    "caller, role",
    [
        (ROLE_SESSION, ROLE),
        ("arn:aws-cn:sts::123456789012:assumed-role/r/s", "arn:aws-cn:iam::123456789012:role/r"),
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"),
        ("arn:aws:iam::123456789012:root", None),
    ],
)
def test_role_arn_of(caller, role):
    assert dx.role_arn_of(caller) == role


def test_db_user_arn():
    assert dx.db_user_arn(region="eu-west-1", account="1", resource_id="db-X", db_user="u") == (
        "arn:aws:rds-db:eu-west-1:1:dbuser:db-X/u"
    )
