"""The masking key (issue 13) and the SnapStart option in the synthesized stack.

A connection with ``"mask": "hash"`` makes the stack create one key in Secrets Manager, hand its ARN to
the functions that run statements, let exactly those read it, and reach Secrets Manager through an
interface endpoint (no NAT). ``snapStart=true`` puts the query functions behind an alias of a published
version with SnapStart; by default neither exists.
"""

from __future__ import annotations

import json

import pytest

from synth_helpers import as_list, policy_statements, render, synthesize

IAM = {"password": "_aws_iam_rds:authtoken"}
CONNECTIONS = [
    {"name": "hr", "engine": "postgres", "host": "hr.abc123.eu-west-1.rds.amazonaws.com", "user": "_aws_iam_rds:hr_reader",
     "resource_id": "db-HR123", "masked_columns": ["email"], "mask": "hash", **IAM},
    {"name": "orders", "engine": "postgres", "host": "orders.abc123.eu-west-1.rds.amazonaws.com",
     "user": "_aws_iam_rds:orders_app", "resource_id": "db-ORDERS123", **IAM},
]  # fmt: skip
VARIABLE = "RDSGATE_MASKING_KEY_SECRET_ARN"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "connections.json"
    config.write_text(json.dumps({"connections": CONNECTIONS}))
    runbooks = config.parent / "runbooks.json"  # the example's runbooks name the example's connections
    runbooks.write_text(json.dumps({"runbooks": []}))
    return synthesize(tmp_path_factory, connections=str(config), runbooks=str(runbooks), snapStart="true", demo="true")


def functions_by_handler(synth) -> dict[str, tuple[str, dict]]:
    return {r["Properties"]["Handler"]: (logical_id, r["Properties"]) for logical_id, r in synth.of_type("AWS::Lambda::Function").items()
            if r["Properties"].get("Handler", "").startswith("rdsgate.")}  # fmt: skip


def the_secret(synth) -> str:
    """The masking key's logical id (the demo database's master secret is the other secret)."""
    (logical_id,) = [lid for lid, r in synth.of_type("AWS::SecretsManager::Secret").items()
                     if "hashed masks" in json.dumps(r["Properties"].get("Description"))]  # fmt: skip
    return logical_id


def test_a_hashing_connection_gets_one_generated_key_kept_with_the_data(synth):
    assert len(synth.of_type("AWS::SecretsManager::Secret")) == 2  # the key and the demo database's master secret
    key = synth.resources[the_secret(synth)]
    assert key["Properties"]["GenerateSecretString"] == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 64}
    assert key["DeletionPolicy"] == "Retain" and "SecretString" not in key["Properties"]
    assert not synth.of_type("AWS::SecretsManager::RotationSchedule")  # rotating would change every hash


def test_the_functions_that_run_statements_get_the_arn_and_only_they_may_read_it(synth):
    secret = the_secret(synth)
    handlers = functions_by_handler(synth)
    readers = {"rdsgate.api.handler", "rdsgate.invoke.handler", "rdsgate.worker.handler"}
    for handler, (_, props) in handlers.items():
        variables = props.get("Environment", {}).get("Variables", {})
        if handler in readers or handler.startswith("rdsgate.sessions"):
            assert variables[VARIABLE] == {"Ref": secret}, handler
        else:
            assert VARIABLE not in variables, handler
    grants = [(policy, s) for policy, s in policy_statements(synth)
              if any(render(r) == "${%s}" % secret for r in as_list(s.get("Resource", [])))]  # fmt: skip
    assert grants and all(as_list(s["Action"]) == ["secretsmanager:GetSecretValue"] for _, s in grants)
    roles = {render(role) for policy, _ in grants for role in synth.resources[policy]["Properties"]["Roles"]}
    reader_roles = {render(props["Role"]) for handler, (_, props) in handlers.items()
                    if handler in readers or handler.startswith("rdsgate.sessions")}  # fmt: skip
    assert roles == {r.replace(".Arn}", "}") for r in reader_roles}
    assert not any("secretsmanager:*" in as_list(s["Action"]) for _, s in policy_statements(synth))


def test_secrets_manager_is_reached_through_one_private_endpoint_from_the_functions(synth):
    endpoints = [r["Properties"] for r in synth.of_type("AWS::EC2::VPCEndpoint").values()
                 if "secretsmanager" in json.dumps(r["Properties"]["ServiceName"])]  # fmt: skip
    (endpoint,) = endpoints  # the demo's user setup and the masking key's readers share it
    assert endpoint["VpcEndpointType"] == "Interface" and endpoint["PrivateDnsEnabled"] is True
    (group,) = endpoint["SecurityGroupIds"]
    ingress = [r["Properties"] for r in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
               if r["Properties"]["GroupId"] == group]  # fmt: skip
    sources = {render(rule["SourceSecurityGroupId"]) for rule in ingress}
    functions_group = render(functions_by_handler(synth)["rdsgate.api.handler"][1]["VpcConfig"]["SecurityGroupIds"][0])
    assert functions_group in sources and all(rule["FromPort"] == rule["ToPort"] == 443 for rule in ingress)
    egress = [r["Properties"] for r in synth.of_type("AWS::EC2::SecurityGroupEgress").values()
              if render(r["Properties"].get("DestinationSecurityGroupId")) == render(group)]  # fmt: skip
    assert any(render(rule["GroupId"]) == functions_group and rule["FromPort"] == 443 for rule in egress)
    assert not synth.of_type("AWS::EC2::NatGateway")


def test_snapstart_puts_the_query_functions_behind_a_live_alias(synth):
    handlers = functions_by_handler(synth)
    for handler in ("rdsgate.api.handler", "rdsgate.invoke.handler"):
        logical_id, props = handlers[handler]
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        (alias,) = [r["Properties"] for r in synth.of_type("AWS::Lambda::Alias").values() if r["Properties"]["FunctionName"] == {"Ref": logical_id}]
        assert alias["Name"] == "live"
        version_id, attribute = alias["FunctionVersion"]["Fn::GetAtt"]  # a published version of this function
        version = synth.resources[version_id]
        assert attribute == "Version" and version["Type"] == "AWS::Lambda::Version"
        assert version["Properties"]["FunctionName"] == {"Ref": logical_id}
    api_alias = next(lid for lid, r in synth.of_type("AWS::Lambda::Alias").items()
                     if r["Properties"]["FunctionName"] == {"Ref": handlers["rdsgate.api.handler"][0]})  # fmt: skip
    integrations = {render(r["Properties"]["Integration"].get("Uri", "")) for r in synth.of_type("AWS::ApiGateway::Method").values()
                    if r["Properties"]["Integration"].get("Type") == "AWS_PROXY"}  # fmt: skip
    assert integrations and all("${%s}" % api_alias in uri for uri in integrations)  # every route invokes the alias
    invoke_id = handlers["rdsgate.invoke.handler"][0]
    invoke_alias = next(lid for lid, r in synth.of_type("AWS::Lambda::Alias").items()
                        if r["Properties"]["FunctionName"] == {"Ref": invoke_id})  # fmt: skip
    machines = {lid: render(r["Properties"]["DefinitionString"]) for lid, r in synth.of_type("AWS::StepFunctions::StateMachine").items()}
    assert machines and all("${%s}" % invoke_alias in text and "${%s." % invoke_id not in text for text in machines.values())
    assert all("SnapStart" not in props for handler, (_, props) in handlers.items()
               if handler not in ("rdsgate.api.handler", "rdsgate.invoke.handler"))  # fmt: skip


def test_cdk_nag_finds_nothing_unacknowledged(synth):
    assert [(v.rule_name, v.severity) for v in synth.nag_report().violations] == []


def test_by_default_there_is_no_key_no_endpoint_and_no_snapstart(default_synth):
    assert not default_synth.of_type("AWS::SecretsManager::Secret")
    assert not default_synth.of_type("AWS::Lambda::Alias")
    assert not [r for r in default_synth.of_type("AWS::EC2::VPCEndpoint").values() if "secretsmanager" in json.dumps(r["Properties"]["ServiceName"])]
    for resource in default_synth.of_type("AWS::Lambda::Function").values():
        assert "SnapStart" not in resource["Properties"]
        assert VARIABLE not in resource["Properties"].get("Environment", {}).get("Variables", {})


def test_the_context_chooses_the_key():
    from infra.settings import ConfigError, Settings

    def settings(**context):
        return Settings.from_context(lambda key: context.get(key))

    assert settings().masking_key_secret is False  # the example file hashes nothing
    assert settings(maskingKey="create").masking_key_secret is True
    assert settings(maskingKey="none").masking_key_secret is False and settings().snap_start is False
    assert settings(snapStart="true").snap_start is True
    with pytest.raises(ConfigError, match="maskingKey"):
        settings(maskingKey="sometimes")
