"""The deploy settings: the connections file's synth-time rules and the context's resolution (no synth here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.settings import ConfigError, Settings, load_connections

ROOT = Path(__file__).resolve().parents[2]
IAM = {"user": "_aws_iam_rds:app", "password": "_aws_iam_rds:authtoken"}


def write_config(tmp_path: Path, *connections: dict) -> Path:
    path = tmp_path / "connections.json"
    path.write_text(json.dumps({"connections": list(connections)}))
    return path


def settings_for(tmp_path: Path, connections: list[dict] | None = None, **context) -> Settings:
    if connections is not None:
        context["connections"] = str(write_config(tmp_path, *connections))
    return Settings.from_context(context.get, root=ROOT)


def pg(name: str = "orders", **fields) -> dict:
    return {"name": name, "engine": "postgres", "host": f"{name}.abc123.eu-west-1.rds.amazonaws.com",
            "resource_id": "db-ABC123", **IAM, **fields}  # fmt: skip


def test_the_example_file_is_deployable_and_has_a_postgres_and_a_mysql_iam_connection():
    connections = load_connections(ROOT / "infra" / "connections.example.json")
    assert sorted(c.definition.engine for c in connections) == ["mysql", "postgres"]
    assert all(c.definition.uses_iam and c.definition.resource_id for c in connections)


def test_an_iam_definition_without_resource_id_fails_naming_the_connection(tmp_path):
    path = write_config(tmp_path, pg(), pg("billing", resource_id=None))
    with pytest.raises(ConfigError, match=r"connection 'billing': 'resource_id' is required"):
        load_connections(path)


@pytest.mark.parametrize("resource_id", ["db_ABC", "instance-1", "db-", "prx-abc/def", "arn:aws:rds:db-ABC"])
def test_a_malformed_resource_id_fails_naming_the_connection(tmp_path, resource_id):
    with pytest.raises(ConfigError, match=r"connection 'orders': 'resource_id' must look like"):
        load_connections(write_config(tmp_path, pg(resource_id=resource_id)))


@pytest.mark.parametrize("secret", [{"user": "app", "password": "hunter2"}, {"USER": "app", "PASS": "hunter2"}])
def test_literal_passwords_are_refused(tmp_path, secret):
    item = {"name": "dev", "engine": "mysql", "host": "localhost", **secret}
    with pytest.raises(ConfigError, match=r"connection 'dev': literal passwords are refused") as raised:
        load_connections(write_config(tmp_path, item))
    assert "hunter2" not in str(raised.value)


def test_definitions_are_validated_by_rdsgates_own_parser(tmp_path):
    with pytest.raises(ConfigError, match=r"connection 'orders': 'engine' must be one of"):
        load_connections(write_config(tmp_path, pg(engine="oracle")))


def test_duplicate_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"'orders' is defined twice"):
        load_connections(write_config(tmp_path, pg(), pg()))


def test_items_are_kept_as_written(tmp_path):
    item = pg(port=6432, read_only=True, HOST_ALIAS="kept")
    (connection,) = load_connections(write_config(tmp_path, item))
    assert connection.item == item
    assert connection.definition.port == 6432


def test_defaults_give_an_environment_agnostic_stack_that_creates_its_vpc():
    settings = Settings.from_context({}.get, root=ROOT)
    assert settings.environment is None and settings.vpc is None and not settings.demo
    assert settings.az_lookup_context == {}
    assert (settings.memory_size, settings.timeout_seconds, settings.log_level) == (512, 30, "INFO")
    assert settings.audit_ttl_days == 90


def test_cli_strings_are_parsed(tmp_path):
    settings = settings_for(
        tmp_path, account="123456789012", region="eu-west-1", azs="eu-west-1a, eu-west-1b",
        demo="true", memorySize="1024", corsOrigins="https://a.example,https://b.example", auditTtlDays="30",
    )  # fmt: skip
    assert settings.azs == ("eu-west-1a", "eu-west-1b") and settings.demo and settings.memory_size == 1024
    assert settings.audit_ttl_days == 30
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.az_lookup_context == {
        "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a", "eu-west-1b"]
    }


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"account": "123456789012"}, "set both 'account' and 'region'"),
        ({"account": "123456789012", "region": "eu-west-1"}, "'azs' is required"),
        ({"subnetIds": "subnet-1"}, "need 'vpcId'"),
        ({"vpcId": "vpc-1"}, "'subnetIds'"),
        ({"memorySize": "64"}, "'memorySize' must be a whole number between 128"),
        ({"logRetentionDays": 31}, "'logRetentionDays' must be one of"),
        ({"auditTtlDays": "0"}, "'auditTtlDays' must be a whole number between 1 and 3653"),
        ({"auditTtlDays": 4000}, "'auditTtlDays' must be a whole number between 1 and 3653"),
        ({"auditTtlDays": "90d"}, "'auditTtlDays' must be a whole number"),
        ({"logLevel": "chatty"}, "'logLevel' must be one of"),
        ({"demo": "yes"}, "'demo' must be true or false"),
        ({"proxy": "nope"}, "'nope', which is not a connection"),
        ({"proxyTarget": "db1"}, "'proxyTarget' needs 'proxy'"),
    ],
)
def test_invalid_context_fails_naming_the_key(context, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_context(context.get, root=ROOT)


def test_an_imported_vpc_needs_no_azs():
    settings = Settings.from_context(
        {"account": "123456789012", "region": "eu-west-1", "vpcId": "vpc-1", "subnetIds": ["subnet-1", "subnet-2"]}.get,
        root=ROOT,
    )
    assert settings.vpc.subnet_ids == ("subnet-1", "subnet-2") and settings.vpc.security_group_id is None


def test_the_proxy_target_is_read_from_an_rds_host_or_given(tmp_path):
    cluster = pg("inv", host="inv-cluster.cluster-abc123.eu-west-1.rds.amazonaws.com", resource_id="cluster-X1")
    cname = pg("cname", host="db.internal.example.com")
    assert settings_for(tmp_path, [cluster, cname], proxy="inv").proxy.target == "inv-cluster"
    assert settings_for(tmp_path, [cluster, cname], proxy="cname", proxyTarget="cname-db").proxy.target == "cname-db"
    with pytest.raises(ConfigError, match="set 'proxyTarget'"):
        settings_for(tmp_path, [cluster, cname], proxy="cname")
    with pytest.raises(ConfigError, match="already goes through a proxy"):
        settings_for(tmp_path, [pg(resource_id="prx-123")], proxy="orders")


def test_demo_reserves_its_connection_name(tmp_path):
    with pytest.raises(ConfigError, match="'demo' is reserved"):
        settings_for(tmp_path, [pg("demo")], demo=True)
    assert settings_for(tmp_path, [pg()], demo=True, proxy="demo").proxy.target is None


# --- monitoring ------------------------------------------------------------------------------------

TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:oncall"


def test_monitoring_and_metrics_are_on_by_default_without_a_topic(tmp_path):
    settings = settings_for(tmp_path)
    assert settings.metrics and settings.metrics_per_connection
    assert settings.monitoring is not None
    assert (settings.monitoring.topic, settings.monitoring.error_rate_percent, settings.monitoring.duration_p99_ms) == (None, 5, 5000)


@pytest.mark.parametrize("topic", ["create", TOPIC_ARN, "arn:aws-cn:sns:cn-north-1:123456789012:alarms_1"])
def test_the_alarm_topic_is_created_or_an_existing_standard_topic(tmp_path, topic):
    assert settings_for(tmp_path, alarmTopic=topic, alarmDurationP99Ms="1500").monitoring.topic == topic


@pytest.mark.parametrize(
    "topic", ["yes", "arn:aws:sns:eu-west-1:123456789012:oncall.fifo", "arn:aws:sqs:eu-west-1:123456789012:q", TOPIC_ARN + "/x"]
)
def test_anything_else_as_alarm_topic_is_refused(tmp_path, topic):
    with pytest.raises(ConfigError, match="'alarmTopic' must be 'create' or an SNS topic ARN"):
        settings_for(tmp_path, alarmTopic=topic)


def test_monitoring_off_takes_no_topic_and_alarms_need_metrics(tmp_path):
    assert settings_for(tmp_path, monitoring="false").monitoring is None
    assert settings_for(tmp_path, monitoring="false", metrics="false").metrics is False
    with pytest.raises(ConfigError, match="'alarmTopic' needs 'monitoring=true'"):
        settings_for(tmp_path, monitoring="false", alarmTopic="create")
    with pytest.raises(ConfigError, match="set 'metrics=true', or 'monitoring=false'"):
        settings_for(tmp_path, metrics="false")


@pytest.mark.parametrize("key, value", [("alarmErrorRatePercent", "0"), ("alarmErrorRatePercent", "101"),
                                        ("alarmDurationP99Ms", "0"), ("metricsPerConnection", "maybe")])  # fmt: skip
def test_out_of_range_monitoring_values_name_their_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        settings_for(tmp_path, **{key: value})


def test_log_sampling_is_a_percentage_of_invocations(tmp_path):
    assert settings_for(tmp_path).log_sample_rate == 0
    assert settings_for(tmp_path, logSampleRate=25).log_sample_rate == 25
    with pytest.raises(ConfigError, match="logSampleRate"):
        settings_for(tmp_path, logSampleRate=101)
