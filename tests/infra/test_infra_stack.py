"""The stack as `cdk synth` builds it from cdk.json and the example configuration (one synth for the module)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match

from infra import bundling
from infra.settings import load_connections
from infra.workflow import error_names

from synth_helpers import (
    ROOT,
    api_routes,
    as_list,
    policy_statements,
    rds_connect_policies,
    render,
    statements_naming,
)

EXAMPLE = load_connections(ROOT / "infra" / "connections.example.json")


@pytest.fixture(scope="module")
def synth(default_synth):
    return default_synth


@pytest.fixture(scope="module")
def query_role(synth):
    return synth.logical_id("Functions/Role")


@pytest.fixture(scope="module")
def query_functions(synth):
    return {name: synth.resources[synth.logical_id(f"Functions/{name}")] for name in ("ApiFunction", "InvokeFunction")}


# --- rds-db:connect ------------------------------------------------------------------------------


def test_one_policy_with_one_exact_statement_per_database_user(synth, query_role):
    policies = rds_connect_policies(synth, query_role)
    arns = []
    for statements in policies.values():
        assert len(statements) == 1
        (statement,) = statements
        assert statement["Effect"] == "Allow" and statement["Action"] == "rds-db:connect"
        arns.append(render(statement["Resource"]))
    assert sorted(arns) == sorted(
        [
            "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXYZ/orders_app",
            "arn:${AWS::Partition}:rds-db:${AWS::Region}:${AWS::AccountId}"
            ":dbuser:cluster-ABCDEFGHIJKLMNOPQRSTUVWXYZ/inventory_reader",
        ]
    )


def test_no_policy_grants_rds_db_connect_on_a_wildcard(synth):
    granting = [
        (lid, s) for lid, s in policy_statements(synth) if any(a.startswith("rds-db") for a in as_list(s["Action"]))
    ]
    assert granting, "expected rds-db:connect statements"
    for logical_id, statement in granting:
        assert as_list(statement["Action"]) == ["rds-db:connect"], logical_id
        for resource in as_list(statement["Resource"]):
            arn = render(resource)
            assert "*" not in arn and ":dbuser:" in arn, (logical_id, arn)
    # …and no other statement names rds-db (e.g. a managed policy) or a '*' action.
    for logical_id, statement in policy_statements(synth):
        assert "*" not in as_list(statement["Action"]), logical_id


def test_the_query_role_has_no_managed_policy(synth, query_role):
    assert "ManagedPolicyArns" not in synth.resources[query_role]["Properties"]


# --- network --------------------------------------------------------------------------------------


def test_the_functions_run_in_the_vpcs_private_isolated_subnets(synth, query_functions):
    subnets = synth.of_type("AWS::EC2::Subnet")
    isolated = {
        logical_id
        for logical_id, subnet in subnets.items()
        if {"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in subnet["Properties"]["Tags"]
    }
    assert len(isolated) == 2 and isolated == set(subnets)
    security_group = synth.logical_id("Network/FunctionsSecurityGroup")
    for function in query_functions.values():
        vpc_config = function["Properties"]["VpcConfig"]
        assert {s["Ref"] for s in vpc_config["SubnetIds"]} == isolated
        assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [security_group, "GroupId"]}]
    for forbidden in ("AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::Route"):
        assert not synth.of_type(forbidden), forbidden


def test_dynamodb_is_reached_through_a_gateway_endpoint(synth):
    assert synth.of_type("AWS::EC2::VPCEndpoint")
    synth.template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Gateway",
            "ServiceName": Match.object_like({"Fn::Join": Match.array_with([Match.array_with([".dynamodb"])])}),
        },
    )


def test_the_security_group_egress_is_the_database_ports_dynamodb_s3_and_the_endpoints_only(synth):
    security_group = synth.logical_id("Network/FunctionsSecurityGroup")
    egress = list(synth.resources[security_group]["Properties"]["SecurityGroupEgress"])
    egress += [
        r["Properties"] for r in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [security_group, "GroupId"]}
    ]  # fmt: skip
    endpoints = {"Fn::GetAtt": [synth.logical_id("Statements/EndpointsSecurityGroup"), "GroupId"]}
    rules = sorted(
        (rule["IpProtocol"], rule["FromPort"], rule["ToPort"], "DestinationPrefixListId" in rule,
         rule.get("DestinationSecurityGroupId") == endpoints)
        for rule in egress
    )  # fmt: skip
    # DynamoDB and S3 by their prefix lists (gateway endpoints), Lambda and Step Functions by their endpoints' group.
    assert rules == sorted([("tcp", 5432, 5432, False, False), ("tcp", 3306, 3306, False, False),
                            ("tcp", 443, 443, True, False), ("tcp", 443, 443, True, False), ("tcp", 443, 443, False, True)])


def test_no_aws_lookup_is_needed(synth):
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert not manifest.get("missing")


# --- functions ------------------------------------------------------------------------------------


def test_the_query_functions_runtime_environment_and_tracing(synth, query_functions):
    table, audit, idempotency = (synth.logical_id(f"{name}/Table") for name in ("Data", "Audit", "Idempotency"))
    handlers = {name: f["Properties"]["Handler"] for name, f in query_functions.items()}
    assert handlers == {"ApiFunction": "rdsgate.api.handler", "InvokeFunction": "rdsgate.invoke.handler"}
    for function in query_functions.values():
        props = function["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] >= "python3.12" and props["Runtime"].startswith("python3.")
        assert (props["MemorySize"], props["Timeout"]) == (512, 30)
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Environment"]["Variables"] == {
            "RDSGATE_CONNECTIONS_TABLE": {"Ref": table},
            "RDSGATE_AUDIT_TABLE": {"Ref": audit},
            "RDSGATE_AUDIT_TTL_DAYS": "90",
            "RDSGATE_IDEMPOTENCY_TABLE": {"Ref": idempotency},
            "POWERTOOLS_SERVICE_NAME": "rdsgate",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            # Runbooks (infra/runbooks.py): the table the query functions read them from.
            "RDSGATE_RUNBOOKS_TABLE": {"Ref": synth.logical_id("Runbooks/Table")},
            # Reviews (infra/reviews.py): the table and the key of the parameters a review keeps.
            "RDSGATE_REVIEWS_TABLE": {"Ref": synth.logical_id("Reviews/Table")},
            "RDSGATE_REVIEWS_KMS_KEY": {"Fn::GetAtt": [synth.logical_id("Reviews/Key"), "Arn"]},
            # Asynchronous statements (infra/statements.py): where they live and which worker runs them.
            "RDSGATE_STATEMENTS_TABLE": {"Ref": synth.logical_id("Statements/Table")},
            "RDSGATE_RESULTS_BUCKET": {"Ref": synth.logical_id("Statements/Results")},
            "RDSGATE_RESULTS_PREFIX": "results/",
            "RDSGATE_RESULTS_EXPIRY_DAYS": "7",
            "RDSGATE_WORKER_TIMEOUT_SECONDS": "900",
            "RDSGATE_WORKER_FUNCTION": {"Ref": synth.logical_id("Statements/WorkerFunction")},
            # Sessions (infra/sessions.py): the session table, the runner, the idle timeout and the limits.
            "RDSGATE_SESSIONS_TABLE": {"Ref": synth.logical_id("Sessions/Table")},
            "RDSGATE_SESSION_IDLE_SECONDS": "180",
            "RDSGATE_SESSION_RUNNER": {"Ref": synth.logical_id("Sessions/RunnerFunction")},
            "RDSGATE_MAX_SESSIONS_PER_CONNECTION": "20",
            "RDSGATE_MAX_SESSIONS_PER_CALLER": "10",
        }
        log_group = synth.resources[props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == 30


def test_every_log_group_has_a_retention(synth):
    groups = synth.of_type("AWS::Logs::LogGroup")
    assert groups and all(g["Properties"]["RetentionInDays"] == 30 for g in groups.values())


def test_the_bundled_asset_holds_the_handlers_and_the_drivers(synth, query_functions):
    keys = {f["Properties"]["Code"]["S3Key"] for f in synth.of_type("AWS::Lambda::Function").values()
            if f["Properties"]["Runtime"].startswith("python")}  # fmt: skip
    assert len(keys) == 1, "every rdsgate function runs from the one asset"
    asset = synth.outdir / f"asset.{keys.pop().removesuffix('.zip')}"
    for package in ("pg8000", "pymysql", "aws_lambda_powertools", "boto3", "scramp"):
        assert (asset / package / "__init__.py").is_file(), package
    for module in ("__init__.py", "definitions.py", "errors.py", "seed.py"):
        assert (asset / "rdsgate" / module).is_file(), module
    for module in ("api.py", "invoke.py"):
        assert (asset / "rdsgate" / module).is_file(), module
    bundled = [p for p in asset.rglob("*") if p.is_file()]
    # Bytecode for the runtime's Python and nothing else: one cpython-313 file per module when this
    # machine has a CPython 3.13 (tests/infra/test_bundling.py checks how it loads), none otherwise.
    bytecode = {p for p in bundled if "__pycache__" in p.parts or p.suffix == ".pyc"}
    expected = set()
    if bundling.runtime_python() is not None:
        tag = f"cpython-{bundling.PYTHON_VERSION.replace('.', '')}"
        expected = {p.parent / "__pycache__" / f"{p.stem}.{tag}.pyc" for p in bundled if p.suffix == ".py"}
    assert bytecode == expected
    assert not [p for p in bundled if p.suffix == ".so" and "aarch64" not in p.name]
    assert (asset / "rdsgate" / "certs" / "rds-ca-bundle.pem").is_file()


def test_the_handlers_import_from_the_asset_alone(synth, query_functions):
    """The bundle is self-sufficient: nothing from this machine's site-packages is needed to load the handlers."""
    key = query_functions["ApiFunction"]["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    handlers = sorted({f["Properties"]["Handler"] for f in synth.of_type("AWS::Lambda::Function").values()
                       if f["Properties"]["Runtime"].startswith("python")})  # fmt: skip
    script = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(synth.outdir / f'asset.{key}')!r}]\n"
        f"for handler in {handlers!r}:\n"
        "    module, name = handler.rsplit('.', 1)\n"
        "    assert callable(getattr(importlib.import_module(module), name)), handler\n"
        "    assert importlib.import_module(module).__file__.startswith(sys.path[0]), handler\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
           "RDSGATE_CONNECTIONS_TABLE": "connections", "RDSGATE_AUDIT_TABLE": "audit", "RDSGATE_AUDIT_TTL_DAYS": "90",
           "RDSGATE_IDEMPOTENCY_TABLE": "idempotency", "POWERTOOLS_SERVICE_NAME": "rdsgate"}  # fmt: skip
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert handlers == ["rdsgate.api.handler", "rdsgate.invoke.handler", "rdsgate.reviews.sweep_handler", "rdsgate.seed.handler",
                        "rdsgate.sessions.runner.handler", "rdsgate.worker.handler"]


# --- data -----------------------------------------------------------------------------------------


def test_the_table(synth):
    table = synth.resources[synth.logical_id("Data/Table")]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "name", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_the_seeding_custom_resource_holds_the_configured_definitions(synth):
    (resource,) = synth.of_type("Custom::RdsgateDefinitions").values()
    props = resource["Properties"]
    assert props["TableName"] == {"Ref": synth.logical_id("Data/Table")}
    assert props["ServiceToken"] == {"Fn::GetAtt": [synth.logical_id("Data/SeedFunction"), "Arn"]}
    assert json.loads(props["Definitions"]) == [dict(c.item) for c in EXAMPLE]
    seed = synth.resources[synth.logical_id("Data/SeedFunction")]["Properties"]
    assert seed["Handler"] == "rdsgate.seed.handler" and "VpcConfig" not in seed


def test_the_seed_role_may_only_write_the_table(synth):
    role = synth.logical_id("Data/SeedRole")
    table_arn = {"Fn::GetAtt": [synth.logical_id("Data/Table"), "Arn"]}
    dynamodb = [
        statement
        for logical_id, statement in policy_statements(synth)
        if any(a.startswith("dynamodb:") for a in as_list(statement["Action"]))
        and synth.resources[logical_id]["Properties"]["Roles"] == [{"Ref": role}]
    ]
    assert len(dynamodb) == 1
    assert set(as_list(dynamodb[0]["Action"])) == {"dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert as_list(dynamodb[0]["Resource"]) == [table_arn]


def test_the_audit_table(synth):
    table = synth.resources[synth.logical_id("Audit/Table")]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "connection", "KeyType": "HASH"},
        {"AttributeName": "at", "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "at", "AttributeType": "S"},
        {"AttributeName": "connection", "AttributeType": "S"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert not {"GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification"} & set(props)


def test_the_idempotency_table_has_the_powertools_default_schema(synth):
    table = synth.resources[synth.logical_id("Idempotency/Table")]
    assert table["DeletionPolicy"] == "Delete" and table["UpdateReplacePolicy"] == "Delete"  # transient records
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert "PointInTimeRecoverySpecification" not in props  # nothing worth restoring (acknowledged DDB3)


@pytest.mark.parametrize(
    ("table", "actions"),
    [
        ("Audit/Table", {"dynamodb:PutItem", "dynamodb:Query"}),
        ("Idempotency/Table", {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}),
    ],
)
def test_only_the_query_role_may_use_the_table_and_only_with_these_actions(synth, query_role, table, actions):
    arn = {"Fn::GetAtt": [synth.logical_id(table), "Arn"]}
    granting = statements_naming(synth, arn)
    worker_role = synth.logical_id("Statements/WorkerRole")
    runner_role = synth.logical_id("Sessions/RunnerRole")
    by_role = {synth.resources[policy]["Properties"]["Roles"][0]["Ref"]: statement for policy, statement in granting}
    # The statements worker and the session runner write audit records too (they run statements); nothing else
    # shares these tables.
    assert set(by_role) == ({query_role, worker_role, runner_role} if table == "Audit/Table" else {query_role}), granting
    for role, statement in by_role.items():
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        assert set(as_list(statement["Action"])) == (actions if role == query_role else {"dynamodb:PutItem", "dynamodb:Query"})
        assert as_list(statement["Resource"]) == [arn]


def test_no_dynamodb_grant_uses_a_wildcard(synth):
    dynamodb = [
        (logical_id, statement)
        for logical_id, statement in policy_statements(synth)
        if any(a.startswith("dynamodb:") or a == "*" for a in as_list(statement["Action"]))
    ]
    assert dynamodb
    for logical_id, statement in dynamodb:
        assert not [a for a in as_list(statement["Action"]) if "*" in a], logical_id
        assert not [r for r in as_list(statement["Resource"]) if "*" in render(r)], logical_id


def test_the_query_role_may_neither_scan_nor_delete_the_audit_trail(synth, query_role):
    audit = render({"Fn::GetAtt": [synth.logical_id("Audit/Table"), "Arn"]})
    for logical_id, statement in policy_statements(synth):
        if any(audit in render(r) for r in as_list(statement["Resource"])):
            assert not {"dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem",
                        "dynamodb:DeleteTable"} & set(as_list(statement["Action"])), logical_id  # fmt: skip


# --- API ------------------------------------------------------------------------------------------


def test_every_method_requires_aws_iam(synth):
    methods = synth.of_type("AWS::ApiGateway::Method")
    assert methods
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert "AuthorizerId" not in method["Properties"]


def test_resources_mirror_the_api_paths(synth):
    assert set(api_routes(synth)) == {
        "GET /health",
        "GET /connections",
        "GET /connections/{name}",
        "POST /connections/{name}/query",
        "POST /connections/{name}/batch",
        "POST /connections/{name}/transaction",
        "POST /connections/{name}/describe",
        "GET /connections/{name}/schema",
        "GET /connections/{name}/diagnose",
        "ANY /connections/{name}/{proxy+}",
        "GET /openapi.json",
        "POST /Execute",
        "POST /BatchExecute",
        "POST /BeginTransaction",
        "POST /CommitTransaction",
        "POST /RollbackTransaction",
        "GET /audit",
        "POST /connections/{name}/statements",
        "GET /statements",
        "GET /statements/{id}",
        "DELETE /statements/{id}",
        "GET /statements/{id}/result",
        "POST /connections/{name}/sessions",
        "POST /sessions/{id}/commit",
        "POST /sessions/{id}/rollback",
        "GET /runbooks",
        "GET /runbooks/{name}",
        "POST /runbooks/{name}/run",
        "GET /reviews",
        "GET /reviews/{id}",
        "POST /reviews/{id}/approve",
        "POST /reviews/{id}/reject",
    }  # no OPTIONS: CORS is off unless configured


def test_the_audit_route_requires_aws_iam(synth):
    audit = api_routes(synth)["GET /audit"]
    assert audit["AuthorizationType"] == "AWS_IAM" and "AuthorizerId" not in audit
    assert audit["Integration"]["Type"] == "AWS_PROXY"


def test_every_route_proxies_to_the_api_function(synth):
    api_function = synth.logical_id("Functions/ApiFunction")
    for route, props in api_routes(synth).items():
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY", route
        assert f"${{{api_function}.Arn}}" in render(integration["Uri"]), route


def test_the_stage_is_throttled_traced_and_access_logged(synth):
    (stage,) = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "v1" and props["TracingEnabled"] is True
    assert {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100,
            "DataTraceEnabled": False} .items() <= props["MethodSettings"][0].items()  # fmt: skip
    access_log = props["AccessLogSetting"]
    assert "${%s}" % synth.logical_id("Api/AccessLogs") in render(access_log["DestinationArn"])
    assert "$context.identity.userArn" in access_log["Format"]


# --- workflow -------------------------------------------------------------------------------------


def test_the_state_machine_runs_the_invoke_function_and_handles_the_error_names(synth):
    machine = synth.resources[synth.logical_id("Workflow/StateMachine")]
    assert machine["Properties"]["StateMachineType"] == "STANDARD"
    definition = json.loads(render(machine["Properties"]["DefinitionString"]))
    task = definition["States"][definition["StartAt"]]
    assert task["Type"] == "Task"
    assert task["Resource"] == f"${{{synth.logical_id('Functions/InvokeFunction')}.Arn}}"
    (retry,) = [r for r in task["Retry"] if r["ErrorEquals"] == ["DatabaseUnavailable"]]
    assert retry["BackoffRate"] == 2 and retry["MaxAttempts"] > 1
    (catch,) = task["Catch"]
    expected = {"InvalidRequest", "ConnectionNotFound", "SqlError", "AuthenticationFailed", "QueryTimeout",
                "ResultTooLarge", "DatabaseUnavailable"}  # fmt: skip
    assert expected <= set(catch["ErrorEquals"]) == set(error_names())
    assert definition["States"][catch["Next"]]["Type"] == "Fail"


# --- outputs and checks ---------------------------------------------------------------------------


def test_outputs(synth):
    outputs = synth.template.to_json()["Outputs"]
    assert {"ApiUrl", "ApiFunctionName", "InvokeFunctionName", "TableName", "AuditTableName",
            "IdempotencyTableName", "StateMachineArn"} <= set(outputs)  # fmt: skip
    assert outputs["TableName"]["Value"] == {"Ref": synth.logical_id("Data/Table")}
    assert outputs["AuditTableName"]["Value"] == {"Ref": synth.logical_id("Audit/Table")}
    assert outputs["IdempotencyTableName"]["Value"] == {"Ref": synth.logical_id("Idempotency/Table")}


def test_cdk_nag_aws_solutions_finds_no_unacknowledged_error_or_warning(synth):
    report = synth.nag_report()
    findings = [(v.rule_name, v.severity, [r.construct_path for r in v.violating_resources])
                for v in report.violations]  # fmt: skip
    assert findings == []  # e.g. the idempotency table's DDB3 warning is acknowledged with its reason


def test_every_acknowledgement_is_specific_and_gives_its_reason(synth):
    acknowledged = {}
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    if "AwsSolutions-" in rule:
                        acknowledged[(construct.node.path, rule)] = reason
    assert acknowledged
    for (path, rule), reason in acknowledged.items():
        assert len(reason.split()) >= 8, (path, rule, reason)
        assert not rule.endswith("AwsSolutions-IAM5"), "wildcard findings are acknowledged one by one"
