"""The masking key of a deployment: read from Secrets Manager (moto) on the first hashed value, never while
the service is built, once per environment; two environments hash a value alike, as a join across them needs."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from rdsgate import runtime
from rdsgate.errors import InternalError
from rdsgate.masking import MaskPlan
from rdsgate.runtime import SecretKey, Settings, build_service

REGION = "us-east-1"


class Logger:
    def info(self, *args, **kwargs):
        pass

    def error(self, *args, **kwargs):
        pass


class Definition:
    def __init__(self, mask):
        self.name, self.mask, self.mask_detectors, self.masked_columns = "hr", mask, (), ("email",)


class Outcome:
    def __init__(self, *values):
        self.columns = [{"name": "email"}]
        self.rows = [[value] for value in values]
        self.sources = None


def masked(service, mask, *values):
    outcome = Outcome(*values)
    service._masker.apply(Definition(mask), outcome, MaskPlan(True, (True,)))
    return [row[0] for row in outcome.rows]


@pytest.fixture
def secrets(monkeypatch):
    """moto's Secrets Manager in this process; the session's moto server endpoints are not used for it."""
    monkeypatch.delenv("AWS_ENDPOINT_URL_SECRETSMANAGER", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def settings_with(**env):
    return Settings.resolve({"RDSGATE_CONNECTIONS_TABLE": "connections", "AWS_REGION": REGION, **env})


def test_two_fresh_services_hash_a_value_alike_with_the_deployments_secret(secrets):
    arn = secrets.create_secret(Name="rdsgate-masking-key", SecretString="k3y-" * 16)["ARN"]
    settings = settings_with(RDSGATE_MASKING_KEY_SECRET_ARN=arn)
    first, second = build_service(settings, Logger()), build_service(settings, Logger())
    one, two = masked(first, "hash", "ann@example.com", None), masked(second, "hash", "ann@example.com", None)
    assert one == two and len(one[0]) == 64 and one[0] != "ann@example.com" and one[1] is None
    assert masked(first, "hash", "bob@example.com") != one[:1]


def test_the_secret_is_read_on_the_first_hash_only_and_once(secrets, monkeypatch):
    arn = secrets.create_secret(Name="rdsgate-masking-key", SecretString="s" * 40)["ARN"]
    service = build_service(settings_with(RDSGATE_MASKING_KEY_SECRET_ARN=arn), Logger())
    source = service._masker._key_source
    assert isinstance(source, SecretKey) and source.reads == 0  # built without reading it
    assert masked(service, "fixed", "ann@example.com") == ["****"] and source.reads == 0  # a fixed mask needs no key
    masked(service, "hash", "ann@example.com")
    masked(service, "hash", "bob@example.com")
    assert source.reads == 1 and service._masker._key_source == b"s" * 40


def test_without_a_key_each_environment_draws_its_own(secrets):
    settings = settings_with()
    first, second = build_service(settings, Logger()), build_service(settings, Logger())
    assert masked(first, "hash", "ann@example.com") != masked(second, "hash", "ann@example.com")
    keyed = settings_with(RDSGATE_MASKING_KEY="an explicit key of some length")
    assert masked(build_service(keyed, Logger()), "hash", "x") == masked(build_service(keyed, Logger()), "hash", "x")


def test_an_unreadable_secret_fails_the_request_without_saying_the_secret(secrets):
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:missing-AbCdEf"
    service = build_service(settings_with(RDSGATE_MASKING_KEY_SECRET_ARN=arn), Logger())
    with pytest.raises(InternalError, match=r"could not be read from Secrets Manager \(ResourceNotFoundException\)"):
        masked(service, "hash", "ann@example.com")
    short = secrets.create_secret(Name="short", SecretString="tiny")["ARN"]
    with pytest.raises(InternalError, match="shorter than 16 bytes"):
        masked(build_service(settings_with(RDSGATE_MASKING_KEY_SECRET_ARN=short), Logger()), "hash", "x")


def test_the_runtime_reads_the_arn_from_the_environment():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rdsgate-masking-AbCdEf"
    assert settings_with(RDSGATE_MASKING_KEY_SECRET_ARN=arn).masking_key_secret_arn == arn
    assert runtime.Settings.resolve({"RDSGATE_CONNECTIONS_TABLE": "t"}).masking_key_secret_arn is None
