"""Unit tests for the RDS IAM token verifier, using tokens signed by the real botocore signer."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from types import SimpleNamespace

import boto3
import pytest
from botocore.awsrequest import prepare_request_dict

from rdsgate_devstack.iam_verifier import (
    TokenRejected,
    VerifierConfig,
    load_config,
    pam_sm_acct_mgmt,
    pam_sm_authenticate,
    verify_token,
)

ACCESS_KEY = "ASIAEXAMPLEFAKEKEY01"
SECRET = "fake/secret+key/for-tests-only-0123456789"
SESSION_TOKEN = "FwoGZXIvYXdzEFAKE//session+token/" + "x" * 700
REGION = "us-east-1"
HOST, PORT = "localhost", 5432


def make_token(
    user: str = "alice",
    *,
    host: str = HOST,
    port: int = PORT,
    access_key: str = ACCESS_KEY,
    secret: str = SECRET,
    session_token: str | None = SESSION_TOKEN,
    region: str = REGION,
) -> str:
    """Sign a token exactly as an application would (botocore; no network needed)."""
    client = boto3.client(
        "rds",
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        aws_session_token=session_token,
    )
    return client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user, Region=region)


def signed_at(token: str) -> dt.datetime:
    amz_date = token.split("X-Amz-Date=")[1].split("&")[0]
    return dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)


@pytest.fixture
def config() -> dict:
    return {
        "region": REGION,
        "endpoints": [f"{HOST}:{PORT}", f"127.0.0.1:{PORT}"],
        "credentials": {ACCESS_KEY: {"secret_access_key": SECRET, "session_token": SESSION_TOKEN}},
        "max_skew_seconds": 300,
    }


def rejection(token: str, config: dict, *, user: str = "alice", now: dt.datetime | None = None) -> str:
    with pytest.raises(TokenRejected) as info:
        verify_token(token, db_user=user, config=config, now=now)
    reason = info.value.reason
    # A reason is logged by the PAM module: it must never carry secrets.
    assert SECRET not in reason and SESSION_TOKEN not in reason and "X-Amz-Signature" not in reason
    return reason


def test_accepts_a_valid_token(config):
    # GIVEN a token signed with trusted credentials for alice at localhost:5432
    token = make_token()
    # WHEN it is verified for alice THEN it is accepted (no exception)
    assert verify_token(token, db_user="alice", config=config) is None
    # AND the token really is the long form that pam_exec (511-char cap) could not carry
    assert len(token) > 511


def test_accepts_every_configured_endpoint_and_odd_user_names(config):
    for user, host in (("app.user@example.com", "127.0.0.1"), ("we ird+ü/name", "LOCALHOST")):
        verify_token(make_token(user, host=host), db_user=user, config=config)


def test_accepts_long_term_key_without_session_token(config):
    config["credentials"]["AKIAEXAMPLEFAKEKEY02"] = {"secret_access_key": SECRET, "session_token": None}
    token = make_token(access_key="AKIAEXAMPLEFAKEKEY02", session_token=None)
    assert "X-Amz-Security-Token" not in token
    verify_token(token, db_user="alice", config=config)


def test_rejects_a_tampered_signature(config):
    token = make_token()
    last = token[-1]
    tampered = token[:-1] + ("0" if last != "0" else "1")
    assert rejection(tampered, config) == "signature mismatch"


def test_rejects_a_token_relabelled_for_another_user(config):
    # GIVEN alice's token edited to name bob: the signature no longer matches
    token = make_token("alice").replace("DBUser=alice", "DBUser=bob")
    assert rejection(token, config, user="bob") == "signature mismatch"


def test_rejects_a_token_for_another_user(config):
    assert rejection(make_token("alice"), config, user="bob") == "token is for another user"


@pytest.mark.parametrize("host,port", [("localhost", 5433), ("otherhost", 5432), ("127.0.0.2", 5432)])
def test_rejects_a_token_for_another_endpoint(config, host, port):
    assert rejection(make_token(host=host, port=port), config) == "token is for another endpoint"


def test_rejects_a_token_signed_with_the_wrong_secret(config):
    assert rejection(make_token(secret="not-the-secret"), config) == "signature mismatch"


def test_rejects_an_unknown_access_key(config):
    reason = rejection(make_token(access_key="ASIAUNKNOWNFAKEKEY99"), config)
    assert reason.startswith("unknown access key")


def test_rejects_a_mismatched_session_token(config):
    # GIVEN a token correctly signed, but carrying another session's token
    token = make_token(session_token="another-session-token")
    assert rejection(token, config) == "session token mismatch"


def test_rejects_a_token_without_the_recorded_session_token(config):
    assert rejection(make_token(session_token=None), config) == "session token mismatch"


def test_rejects_another_region(config):
    assert rejection(make_token(region="eu-west-1"), config) == "region mismatch"


def test_accepts_until_expiry_then_rejects(config):
    token = make_token()
    issued = signed_at(token)
    verify_token(token, db_user="alice", config=config, now=issued + dt.timedelta(seconds=899))
    assert rejection(token, config, now=issued + dt.timedelta(seconds=901)) == "token expired"


def test_rejects_a_token_dated_in_the_future_beyond_skew(config):
    token = make_token()
    issued = signed_at(token)
    verify_token(token, db_user="alice", config=config, now=issued - dt.timedelta(seconds=299))
    reason = rejection(token, config, now=issued - dt.timedelta(seconds=301))
    assert reason == "token is dated in the future"


def test_rejects_expiry_longer_than_900_seconds(config):
    # The signature covers X-Amz-Expires, so sign a 3600 s URL with botocore directly.
    client = boto3.client(
        "rds", region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET,
        aws_session_token=SESSION_TOKEN,
    )
    # Same steps as botocore.signers.generate_db_auth_token, but expires_in=3600.
    request = {"url_path": "/", "query_string": "", "headers": {}, "method": "GET",
               "body": {"Action": "connect", "DBUser": "alice"}}
    prepare_request_dict(request, f"https://{HOST}:{PORT}")
    url = client._request_signer.generate_presigned_url(
        request, operation_name="connect", expires_in=3600, region_name=REGION, signing_name="rds-db"
    )
    token = url[len("https://"):]
    assert "X-Amz-Expires=3600" in token
    assert rejection(token, config) == "X-Amz-Expires out of range"


@pytest.mark.parametrize("garbage", ["", "not a token", "localhost:5432", "localhost:5432/?Action=connect"])
def test_rejects_garbage(config, garbage):
    assert rejection(garbage, config)  # a reason, never an acceptance


def test_verifier_config_round_trip(tmp_path):
    # GIVEN a VerifierConfig file with an endpoint and trusted credentials
    cfg = VerifierConfig(str(tmp_path / "verifier.json"), region=REGION)
    cfg.add_endpoint("LocalHost", PORT)
    cfg.trust(ACCESS_KEY, SECRET, SESSION_TOKEN)
    # THEN the file is world-readable JSON that load_config turns into a usable config
    mode = stat.S_IMODE(os.stat(cfg.path).st_mode)
    assert mode == 0o644
    loaded = load_config(cfg.path)
    assert loaded["endpoints"] == ["localhost:5432"]
    verify_token(make_token(), db_user="alice", config=loaded)
    # AND a second instance on the same path sees the same data; untrust takes effect
    again = VerifierConfig(cfg.path)
    assert again.credentials[ACCESS_KEY]["session_token"] == SESSION_TOKEN
    again.untrust(ACCESS_KEY)
    assert rejection(make_token(), load_config(cfg.path)).startswith("unknown access key")
    assert [p.name for p in tmp_path.iterdir()] == ["verifier.json"]  # no temp files left behind


def test_two_verifier_configs_on_one_file_do_not_clobber_each_other(tmp_path):
    # GIVEN two owners of one file (e.g. two servers sharing a config), both created first
    path = str(tmp_path / "shared.json")
    first, second = VerifierConfig(path), VerifierConfig(path)
    # WHEN each records something
    first.trust(ACCESS_KEY, SECRET, SESSION_TOKEN)
    second.add_endpoint("localhost", PORT)
    second.trust("AKIAEXAMPLEFAKEKEY02", SECRET)
    # THEN the file holds all of it
    loaded = load_config(path)
    assert set(loaded["credentials"]) == {ACCESS_KEY, "AKIAEXAMPLEFAKEKEY02"}
    assert first.endpoints == ["localhost:5432"]
    verify_token(make_token(), db_user="alice", config=loaded)


class FakePamHandle:
    """The parts of pam_python's handle the hooks use (checked against pam_python 1.1.0)."""

    PAM_SUCCESS, PAM_AUTH_ERR, PAM_PROMPT_ECHO_OFF = 0, 7, 1

    def __init__(self, user, password, *, via_authtok=False):
        self.user = user
        # PostgreSQL and auth_pam_tool leave PAM_AUTHTOK unset: the token arrives via the conversation.
        self.authtok = password if via_authtok else None
        self._password = password
        self.prompts = []

    def Message(self, style, text):  # noqa: N802 - pam_python's spelling
        return SimpleNamespace(msg_style=style, msg=text)

    def conversation(self, message):
        self.prompts.append(message)
        return SimpleNamespace(resp=self._password, resp_retcode=0)

    def get_user(self, prompt=None):
        return self.user


@pytest.fixture
def config_file(tmp_path, config):
    path = tmp_path / "verifier.json"
    path.write_text(json.dumps(config))
    return str(path)


def test_pam_hook_accepts_token_from_the_conversation(config_file):
    pamh = FakePamHandle("alice", make_token())
    assert pam_sm_authenticate(pamh, 0, ["/x/iam_verifier.py", config_file]) == pamh.PAM_SUCCESS
    assert [m.msg_style for m in pamh.prompts] == [pamh.PAM_PROMPT_ECHO_OFF]
    assert pam_sm_acct_mgmt(pamh, 0, []) == pamh.PAM_SUCCESS


def test_pam_hook_uses_authtok_when_set(config_file):
    pamh = FakePamHandle("alice", make_token(), via_authtok=True)
    assert pam_sm_authenticate(pamh, 0, ["/x/iam_verifier.py", config_file]) == pamh.PAM_SUCCESS
    assert pamh.prompts == []


def test_pam_hook_refuses_and_logs_without_the_token(config_file, capsys):
    token = make_token("alice")
    pamh = FakePamHandle("bob", token)
    assert pam_sm_authenticate(pamh, 0, ["/x/iam_verifier.py", config_file]) == pamh.PAM_AUTH_ERR
    logged = capsys.readouterr().err
    assert "token is for another user" in logged and token not in logged


def test_pam_hook_refuses_when_config_is_missing(tmp_path):
    pamh = FakePamHandle("alice", make_token())
    assert pam_sm_authenticate(pamh, 0, ["/x/iam_verifier.py", str(tmp_path / "nope.json")]) == pamh.PAM_AUTH_ERR
    assert pam_sm_authenticate(pamh, 0, ["/x/iam_verifier.py"]) == pamh.PAM_AUTH_ERR
