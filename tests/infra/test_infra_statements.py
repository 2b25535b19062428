"""Asynchronous statements' infrastructure (infra/statements.py): the results bucket, the statements table, the
worker, least-privilege grants, the VPC endpoints without NAT, the sample state machine, cdk-nag."""

from __future__ import annotations

import json

import pytest

from synth_helpers import policy_statements, render, synthesize
from infra.settings import ConfigError

as_list = lambda value: value if isinstance(value, list) else [value]  # noqa: E731


@pytest.fixture(scope="module")
def synth(default_synth):
    return default_synth


@pytest.fixture(scope="module")
def kms_synth(tmp_path_factory):
    return synthesize(tmp_path_factory, resultsKms=True, workerTimeoutSeconds=600, resultsExpiryDays=3)


def bucket_of(synth):
    return synth.resources[synth.logical_id("Statements/Results")]


def statements_of(synth, role_path):
    role = synth.logical_id(role_path)
    return [s for logical_id, s in policy_statements(synth)
            if {"Ref": role} in synth.resources[logical_id]["Properties"].get("Roles", [])]


def test_results_bucket_is_private_encrypted_and_expires(synth):
    props = bucket_of(synth)["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["Prefix"] == "results/" and rule["ExpirationInDays"] == 7
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_results_bucket_refuses_requests_without_tls(synth):
    bucket = synth.logical_id("Statements/Results")
    (policy,) = [p for p in synth.of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket}]
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*" and deny["Principal"] == {"AWS": "*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_kms_context_uses_a_rotated_customer_key_and_other_limits(kms_synth):
    props = bucket_of(kms_synth)["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key = kms_synth.logical_id("Statements/ResultsKey")
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [key, "Arn"]}}
    assert kms_synth.resources[key]["Properties"]["EnableKeyRotation"] is True
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 3
    worker = kms_synth.resources[kms_synth.logical_id("Statements/WorkerFunction")]["Properties"]
    assert worker["Timeout"] == 600 and worker["Environment"]["Variables"]["RDSGATE_RESULTS_KMS_KEY"] == {"Fn::GetAtt": [key, "Arn"]}
    report = kms_synth.nag_report()
    assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations] == []


def test_statements_table_has_ttl_and_the_caller_index(synth):
    props = synth.resources[synth.logical_id("Statements/Table")]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "caller-submittedAt"
    assert index["KeySchema"] == [{"AttributeName": "caller", "KeyType": "HASH"}, {"AttributeName": "submittedAt", "KeyType": "RANGE"}]


def test_worker_runs_in_the_vpc_for_up_to_fifteen_minutes_once(synth):
    worker_id = synth.logical_id("Statements/WorkerFunction")
    props = synth.resources[worker_id]["Properties"]
    assert props["Handler"] == "rdsgate.worker.handler" and props["Timeout"] == 900
    assert props["VpcConfig"]["SubnetIds"] and props["Role"] == {"Fn::GetAtt": [synth.logical_id("Statements/WorkerRole"), "Arn"]}
    variables = props["Environment"]["Variables"]
    assert variables["RDSGATE_RESULTS_PREFIX"] == "results/" and variables["RDSGATE_STATEMENTS_TABLE"] == {"Ref": synth.logical_id("Statements/Table")}
    (config,) = [c for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
                 if c["Properties"]["FunctionName"] == {"Ref": worker_id}]  # the session runner has its own
    assert config["Properties"]["FunctionName"] == {"Ref": worker_id}
    assert config["Properties"]["MaximumRetryAttempts"] == 0  # a statement runs once


def test_worker_writes_only_under_its_prefix_and_reads_nothing(synth):
    bucket = synth.logical_id("Statements/Results")
    s3 = [s for s in statements_of(synth, "Statements/WorkerRole") if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert len(s3) == 1
    assert set(as_list(s3[0]["Action"])) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"}
    assert [render(r) for r in as_list(s3[0]["Resource"])] == ["${%s.Arn}/results/*" % bucket]
    tasks = [s for s in statements_of(synth, "Statements/WorkerRole") if any(a.startswith("states:") for a in as_list(s["Action"]))]
    assert len(tasks) == 1 and as_list(tasks[0]["Resource"]) == ["*"]  # task tokens are not resources
    assert {a for a in as_list(tasks[0]["Action"]) if a.startswith("states:")} == {
        "states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}
    connects = [s for s in statements_of(synth, "Statements/WorkerRole") if "rds-db:connect" in as_list(s["Action"])]
    query_connects = [s for s in statements_of(synth, "Functions/Role") if "rds-db:connect" in as_list(s["Action"])]
    assert len(connects) == len(query_connects) >= 1  # the same database users as the query functions


def test_query_role_reads_results_and_invokes_only_the_worker(synth):
    bucket = synth.logical_id("Statements/Results")
    worker = synth.logical_id("Statements/WorkerFunction")
    statements = statements_of(synth, "Functions/Role")
    s3 = [s for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert [set(as_list(s["Action"])) for s in s3] == [{"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"}]
    assert [render(r) for r in as_list(s3[0]["Resource"])] == ["${%s.Arn}/results/*" % bucket]
    invoke = [s for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])]
    runner = synth.logical_id("Sessions/RunnerFunction")  # sessions start their runner too (infra/sessions.py)
    assert [sorted(render(r) for r in as_list(s["Resource"])) for s in invoke] == [sorted(["${%s.Arn}" % worker, "${%s.Arn}" % runner])]
    table = synth.logical_id("Statements/Table")
    query = [s for s in statements if "dynamodb:Query" in as_list(s["Action"]) and table in render(s["Resource"])]
    assert [render(s["Resource"]) for s in query] == ["${%s.Arn}/index/caller-submittedAt" % table]
    assert not [s for _, s in policy_statements(synth) if "s3:ListBucket" in as_list(s["Action"]) and bucket in render(s["Resource"])]


def test_s3_gateway_endpoint_and_no_nat(synth):
    endpoints = synth.of_type("AWS::EC2::VPCEndpoint")
    kinds = sorted((e["Properties"].get("VpcEndpointType", "Gateway"), render(e["Properties"]["ServiceName"]).rsplit(".", 1)[-1])
                   for e in endpoints.values())
    # KMS: the reviews' parameters (infra/reviews.py), in the same endpoints' group.
    assert kinds == [("Gateway", "dynamodb"), ("Gateway", "s3"), ("Interface", "kms"), ("Interface", "lambda"), ("Interface", "states")]
    assert not synth.of_type("AWS::EC2::NatGateway") and not synth.of_type("AWS::EC2::InternetGateway")
    interface = [e["Properties"] for e in endpoints.values() if e["Properties"].get("VpcEndpointType") == "Interface"]
    group = {"Fn::GetAtt": [synth.logical_id("Statements/EndpointsSecurityGroup"), "GroupId"]}
    assert all(e["PrivateDnsEnabled"] is True and e["SecurityGroupIds"] == [group] for e in interface)
    ingress = synth.resources[synth.logical_id("Statements/EndpointsSecurityGroup")]["Properties"].get("SecurityGroupIngress", [])
    ingress += [r["Properties"] for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values() if r["Properties"]["GroupId"] == group]
    functions = {"Fn::GetAtt": [synth.logical_id("Network/FunctionsSecurityGroup"), "GroupId"]}
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in ingress] == [(443, functions)]


def test_statement_routes_reach_the_api_function(synth):
    methods = synth.of_type("AWS::ApiGateway::Method")
    api_function = synth.logical_id("Functions/ApiFunction")
    routes = [m for m in methods.values() if m["Properties"]["HttpMethod"] == "DELETE"]
    assert len(routes) == 1 and routes[0]["Properties"]["AuthorizationType"] == "AWS_IAM"
    assert f"${{{api_function}.Arn}}" in render(routes[0]["Properties"]["Integration"]["Uri"])


def test_sample_state_machine_shows_both_forms_with_retry_and_catch(synth):
    machine = synth.resources[synth.logical_id("StatementsWorkflow/StateMachine")]
    definition = json.loads(render(machine["Properties"]["DefinitionString"]))
    states = definition["States"]
    assert states[definition["StartAt"]]["Type"] == "Choice"
    inline, callback = states["ExportToS3"], states["ExportWithCallback"]
    assert inline["Parameters"]["output"]["s3"] is True  # payload_response_only: the parameters are the payload
    assert callback["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken}") or "waitForTaskToken" in render(callback["Resource"])
    assert callback["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert callback["TimeoutSeconds"] == 900 + 120
    for task in (inline, callback):
        assert any(r["ErrorEquals"] == ["DatabaseUnavailable"] for r in task["Retry"])
        (catch,) = task["Catch"]
        assert {"SqlError", "QueryTimeout", "Cancelled", "States.Timeout"} <= set(catch["ErrorEquals"])
        assert states[catch["Next"]]["Type"] == "Fail"


@pytest.mark.parametrize(("key", "value"), [("workerTimeoutSeconds", 901), ("workerTimeoutSeconds", "soon"),
                                            ("resultsExpiryDays", 0), ("resultsKms", "maybe")])
def test_bad_context_is_refused_naming_the_key(tmp_path_factory, key, value):
    with pytest.raises(ConfigError, match=key):
        synthesize(tmp_path_factory, **{key: value})
