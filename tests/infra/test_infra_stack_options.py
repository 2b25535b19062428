"""The stack with every option on: a concrete environment, a richer connections file, demo database, RDS Proxy, CORS."""

from __future__ import annotations

import json

import pytest

from synth_helpers import api_routes, as_list, policy_statements, rds_connect_policies, render, synthesize

ACCOUNT, REGION = "123456789012", "eu-west-1"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"
IAM = {"password": "_aws_iam_rds:authtoken"}
CONNECTIONS = [
    {"name": "orders", "engine": "postgres", "host": "orders-db.abc123.eu-west-1.rds.amazonaws.com",
     "user": "_aws_iam_rds:orders_app", "resource_id": "db-ORDERS123", **IAM},
    {"name": "reports", "engine": "postgres", "host": "reports.cluster-ro-abc123.eu-west-1.rds.amazonaws.com",
     "user": "_aws_iam_rds:reporter", "resource_id": "cluster-REPORTS123", "read_only": True, **IAM},
    {"name": "reports-admin", "engine": "postgres", "host": "reports.cluster-abc123.eu-west-1.rds.amazonaws.com",
     "database": "admin", "user": "_aws_iam_rds:reporter", "resource_id": "cluster-REPORTS123", **IAM},
    {"name": "shop", "engine": "mysql", "host": "shop-proxy.proxy-abc123.eu-west-1.rds.amazonaws.com",
     "user": "_aws_iam_rds:shop", "resource_id": "prx-SHOP123", **IAM},
    {"name": "legacy", "engine": "mysql", "host": "legacy.abc123.us-east-1.rds.amazonaws.com", "port": 3307,
     "region": "us-east-1", "user": "_aws_iam_rds:legacy", "resource_id": "db-LEGACY123", **IAM},
]  # fmt: skip


def dbuser_arn(resource_id: str, user: str, region: str = REGION) -> str:
    return f"arn:aws:rds-db:{region}:{ACCOUNT}:dbuser:{resource_id}/{user}"  # a known region: a known partition


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("config")
    config = folder / "connections.json"
    config.write_text(json.dumps({"connections": CONNECTIONS}))
    runbooks = folder / "runbooks.json"  # the example runbooks name the example file's connections, not these
    runbooks.write_text(json.dumps({"runbooks": []}))
    return synthesize(
        tmp_path_factory,
        account=ACCOUNT, region=REGION, azs=f"{REGION}a,{REGION}b", connections=str(config), runbooks=str(runbooks),
        demo="true", proxy="orders", corsOrigins="https://console.example.com",
        memorySize="1024", timeoutSeconds="20", logLevel="debug", logRetentionDays="7", definitionTtlSeconds="60",
        auditTtlDays="365", alarmTopic=TOPIC_ARN, metricsPerConnection="false", alarmErrorRatePercent="3",
    )  # fmt: skip


@pytest.fixture(scope="module")
def definitions(synth):
    (resource,) = synth.of_type("Custom::RdsgateDefinitions").values()
    return {item["name"]: item for item in json.loads(render(resource["Properties"]["Definitions"]))}


def test_exact_policy_arns_for_an_instance_a_cluster_a_proxy_and_another_region(synth):
    policies = rds_connect_policies(synth, synth.logical_id("Functions/Role"))
    arns = sorted(render(s["Resource"]) for statements in policies.values() for s in statements)
    proxy_id = f"${{select(6, split(:, ${{{synth.logical_id('Proxy/Proxy')}.DBProxyArn}}))}}"
    demo_id = f"${{{synth.logical_id('Demo/Instance')}.DbiResourceId}}"
    assert arns == sorted(
        [
            dbuser_arn(proxy_id, "orders_app"),  # orders goes through the stack's proxy now
            dbuser_arn("cluster-REPORTS123", "reporter"),  # once, though two connections use it
            dbuser_arn("prx-SHOP123", "shop"),
            dbuser_arn("db-LEGACY123", "legacy", region="us-east-1"),
            dbuser_arn(demo_id, "rdsgate_demo"),
        ]
    )
    assert all(len(statements) == 1 for statements in policies.values())


def test_no_policy_grants_rds_db_connect_on_a_wildcard(synth):
    for logical_id, statement in policy_statements(synth):
        if any(a.startswith("rds-db") for a in as_list(statement["Action"])):
            assert as_list(statement["Action"]) == ["rds-db:connect"], logical_id
            assert all("*" not in render(r) for r in as_list(statement["Resource"])), logical_id


def test_the_proxy_uses_end_to_end_iam_and_its_role_connects_as_the_user(synth):
    proxy = synth.resources[synth.logical_id("Proxy/Proxy")]["Properties"]
    assert proxy["DefaultAuthScheme"] == "IAM_AUTH" and proxy["RequireTLS"] is True and "Auth" not in proxy
    assert proxy["EngineFamily"] == "POSTGRESQL"
    (target_group,) = synth.of_type("AWS::RDS::DBProxyTargetGroup").values()
    assert target_group["Properties"]["DBInstanceIdentifiers"] == ["orders-db"]
    proxy_role = synth.logical_id("Proxy/Proxy/IAMRole")
    (statements,) = rds_connect_policies(synth, proxy_role).values()
    assert [render(s["Resource"]) for s in statements] == [dbuser_arn("db-ORDERS123", "orders_app")]


def test_the_proxied_definition_signs_for_and_connects_to_the_proxy(synth, definitions):
    proxy = synth.logical_id("Proxy/Proxy")
    orders = definitions["orders"]
    assert orders["host"] == orders["iam_host"] == f"${{{proxy}.Endpoint}}"
    assert orders["resource_id"] == f"${{select(6, split(:, ${{{proxy}.DBProxyArn}}))}}"
    assert orders["port"] == 5432 and orders["user"] == "_aws_iam_rds:orders_app"


def test_the_file_and_demo_definitions_are_seeded(definitions, synth):
    assert set(definitions) == {c["name"] for c in CONNECTIONS} | {"demo"}
    assert definitions["legacy"] == CONNECTIONS[-1]
    instance = synth.logical_id("Demo/Instance")
    assert definitions["demo"] == {
        "name": "demo",
        "description": "Demo PostgreSQL instance created by the stack (demo=true)",
        "engine": "postgres",
        "host": f"${{{instance}.Endpoint.Address}}",
        "port": 5432,
        "database": "rdsgate",
        "user": "_aws_iam_rds:rdsgate_demo",
        "password": "_aws_iam_rds:authtoken",
        "resource_id": f"${{{instance}.DbiResourceId}}",
    }


def test_the_demo_database_uses_iam_auth_in_the_private_subnets(synth):
    instance = synth.resources[synth.logical_id("Demo/Instance")]["Properties"]
    assert instance["EnableIAMDatabaseAuthentication"] is True and instance["StorageEncrypted"] is True
    assert instance["PubliclyAccessible"] is False and instance["Engine"] == "postgres"
    (user,) = synth.of_type("Custom::RdsgateDemoUser").values()
    assert {k: user["Properties"][k] for k in ("Database", "DbUser")} == {
        "Database": "rdsgate",
        "DbUser": "rdsgate_demo",
    }
    setup = synth.resources[synth.logical_id("Demo/UserSetupFunction")]["Properties"]
    assert setup["Handler"] == "rdsgate.seed.db_user_handler" and "VpcConfig" in setup


def test_the_functions_egress_covers_every_database_port(synth):
    security_group = synth.logical_id("Network/FunctionsSecurityGroup")
    ports = {rule["FromPort"] for rule in synth.resources[security_group]["Properties"]["SecurityGroupEgress"]}
    assert ports == {5432, 3306, 3307}


def test_a_concrete_environment_needs_no_lookup(synth):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert not manifest.get("missing")
    azs = {s["Properties"]["AvailabilityZone"] for s in synth.of_type("AWS::EC2::Subnet").values()}
    assert azs == {f"{REGION}a", f"{REGION}b"}


def test_context_settings_reach_the_functions(synth):
    for name in ("ApiFunction", "InvokeFunction"):
        props = synth.resources[synth.logical_id(f"Functions/{name}")]["Properties"]
        assert (props["MemorySize"], props["Timeout"]) == (1024, 20)
        variables = props["Environment"]["Variables"]
        assert variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG" and variables["RDSGATE_DEFINITION_TTL_SECONDS"] == "60"
        assert variables["RDSGATE_AUDIT_TTL_DAYS"] == "365"
    groups = synth.of_type("AWS::Logs::LogGroup").values()
    assert {g["Properties"]["RetentionInDays"] for g in groups} == {7}


def test_an_existing_topic_is_every_alarms_action_and_per_connection_metrics_are_off(synth):
    alarms = synth.of_type("AWS::CloudWatch::Alarm").values()
    assert len(alarms) == 8
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [TOPIC_ARN] and alarm["Properties"]["OKActions"] == [TOPIC_ARN]
    # No topic and no topic key are created (the reviews table's own key is another matter).
    topic_keys = [k for k in synth.of_type("AWS::KMS::Key").values() if "reviews" not in k["Properties"].get("Description", "")]
    assert not synth.of_type("AWS::SNS::Topic") and not topic_keys
    rates = [a["Properties"]["Threshold"] for a in alarms if "Metrics" in a["Properties"]]
    assert rates == [3]
    for name in ("ApiFunction", "InvokeFunction"):
        variables = synth.resources[synth.logical_id(f"Functions/{name}")]["Properties"]["Environment"]["Variables"]
        assert variables["RDSGATE_METRICS_PER_CONNECTION"] == "false" and "RDSGATE_METRICS" not in variables


def test_with_cors_only_the_preflights_are_unauthenticated(synth):
    routes = api_routes(synth)
    preflights = {route for route in routes if route.startswith("OPTIONS ")}
    assert {"OPTIONS /connections/{name}/query", "OPTIONS /audit"} <= preflights
    for route, props in routes.items():
        if route in preflights:
            assert props["AuthorizationType"] == "NONE" and props["Integration"]["Type"] == "MOCK", route
        else:
            assert props["AuthorizationType"] == "AWS_IAM", route


def test_cdk_nag_aws_solutions_finds_no_unacknowledged_error_or_warning(synth):
    assert [(v.rule_name, v.severity) for v in synth.nag_report().violations] == []
