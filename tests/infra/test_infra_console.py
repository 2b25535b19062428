"""The web console deployed (`console=true`): S3 + CloudFront with origin access control, Cognito sign-in, one
IAM role per group with execute-api:Invoke on its connections' routes, and those roles in allowed_principals."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
import pytest

from infra.settings import ConfigError, Settings
from synth_helpers import CDK_JSON_CONTEXT, ROOT, api_routes, as_list, render, synthesize

GROUPS = {"analysts": ["orders", "demo"], "admins": ["*"], "nobody": ["inventory"]}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthesize(tmp_path_factory, console="true", demo="true", consoleGroups=json.dumps(GROUPS))


@pytest.fixture(scope="module")
def api(synth):
    return f"${{{synth.logical_id('Api/RestApi')}}}"


@pytest.fixture(scope="module")
def roles(synth):
    """group name → the logical id of its role."""
    return {g["Properties"]["GroupName"]: g["Properties"]["RoleArn"]["Fn::GetAtt"][0]
            for g in synth.of_type("AWS::Cognito::UserPoolGroup").values()}  # fmt: skip


@pytest.fixture(scope="module")
def definitions(synth):
    (resource,) = synth.of_type("Custom::RdsgateDefinitions").values()
    return {item["name"]: item for item in json.loads(render(resource["Properties"]["Definitions"]))}


def one(synth, resource_type):
    (resource,) = synth.of_type(resource_type).values()
    return resource["Properties"]


# --- the site ---------------------------------------------------------------------------------------


def test_the_bucket_is_private_and_only_the_distribution_reads_it_through_origin_access_control(synth):
    bucket_id = synth.logical_id("Console/Bucket")
    bucket = synth.resources[bucket_id]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}  # fmt: skip
    (policy,) = [p["Properties"] for p in synth.of_type("AWS::S3::BucketPolicy").values()
                 if p["Properties"]["Bucket"] == {"Ref": bucket_id}]  # the results bucket has its own (infra/statements.py)
    statements = policy["PolicyDocument"]["Statement"]
    deny, read = statements
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    distribution_id = synth.logical_id("Console/Distribution")
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"} and read["Action"] == "s3:GetObject"
    assert render(read["Condition"]["StringEquals"]["AWS:SourceArn"]) == (
        f"arn:${{AWS::Partition}}:cloudfront::${{AWS::AccountId}}:distribution/${{{distribution_id}}}")
    assert render(read["Resource"]) == f"${{{bucket_id}.Arn}}/*"
    assert not synth.of_type("AWS::CloudFront::CloudFrontOriginAccessIdentity")
    access_control = one(synth, "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]
    assert access_control["SigningBehavior"] == "always"


def test_the_distribution_serves_index_html_over_https_with_a_strict_content_security_policy(synth, api):
    config = one(synth, "AWS::CloudFront::Distribution")["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    (origin,) = config["Origins"]
    assert "OriginAccessControlId" in origin and origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https" and behavior["AllowedMethods"] == ["GET", "HEAD"]
    policy_id = synth.logical_id("Console/Headers")
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}
    headers = synth.resources[policy_id]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = render(headers["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["connect-src"].split() == [
        "'self'", f"https://{api}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}",
        "https://cognito-identity.${AWS::Region}.amazonaws.com",
        "https://rdsgate-${AWS::AccountId}.auth.${AWS::Region}.amazoncognito.com",
    ]  # fmt: skip
    assert directives["frame-ancestors"] == "'none'" and headers["FrameOptions"]["FrameOption"] == "DENY"


def test_the_page_and_its_configuration_are_deployed_and_the_cache_invalidated(synth, api):
    deployment = one(synth, "Custom::CDKBucketDeployment")
    assert deployment["DistributionPaths"] == ["/*"] and deployment["Prune"] is True
    assert deployment["RetainOnDelete"] is False
    assets = {path.name: path for path in synth.outdir.iterdir() if path.name.startswith("asset.")}
    static, config = (assets[f"asset.{key.removesuffix('.zip')}"] for key in deployment["SourceObjectKeys"])
    assert (static / "index.html").is_file() and (static / "assets" / "vendor" / "sigv4.js").is_file()
    # The values are CloudFormation references, filled in at deploy time where the markers stand.
    document = json.loads(re.sub(r"<<marker:0x[0-9a-f]+:\d+>>", "null", (config / "console-config.json").read_text()))
    assert list(document) == ["auth", "apiUrl", "region", "userPoolId", "userPoolClientId", "identityPoolId",
                              "cognitoDomain", "redirectUri"]  # fmt: skip
    assert document["auth"] == "cognito"
    markers = {render(v) for v in deployment["SourceMarkers"][1].values()}
    distribution = synth.logical_id("Console/Distribution")
    assert f'"https://${{{distribution}.DomainName}}/"' in markers  # the redirect URI
    assert any(marker.startswith(f'"https://{api}.execute-api.') for marker in markers)  # the API's stage URL


# --- sign-in ------------------------------------------------------------------------------------------


def test_users_are_created_by_an_administrator_and_need_mfa(synth):
    pool = one(synth, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert pool["MfaConfiguration"] == "ON" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
    assert render(one(synth, "AWS::Cognito::UserPoolDomain")["Domain"]) == "rdsgate-${AWS::AccountId}"


def test_the_browser_client_uses_the_code_flow_without_a_secret_and_returns_to_the_console(synth):
    client = one(synth, "AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False and client["AllowedOAuthFlows"] == ["code"]
    url = f"https://${{{synth.logical_id('Console/Distribution')}.DomainName}}/"
    assert [render(u) for u in client["CallbackURLs"]] == [url] and [render(u) for u in client["LogoutURLs"]] == [url]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]


def test_the_identity_pool_gives_each_group_its_role_and_denies_everyone_else(synth):
    pool = one(synth, "AWS::Cognito::IdentityPool")
    assert pool["AllowUnauthenticatedIdentities"] is False and pool["AllowClassicFlow"] is False
    assert pool["CognitoIdentityProviders"][0]["ServerSideTokenCheck"] is True
    (mapping,) = one(synth, "AWS::Cognito::IdentityPoolRoleAttachment")["RoleMappings"].values()
    assert mapping["Type"] == "Token" and mapping["AmbiguousRoleResolution"] == "Deny"
    assert "Roles" not in one(synth, "AWS::Cognito::IdentityPoolRoleAttachment")  # no default role for the groupless


def test_each_group_role_trusts_only_authenticated_identities_of_this_pool(synth, roles):
    assert set(roles) == set(GROUPS)
    pool = synth.logical_id("Console/IdentityPool")
    for role in roles.values():
        (statement,) = synth.resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"cognito-identity.amazonaws.com:aud": {"Ref": pool}},
            "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
        }
        assert "ManagedPolicyArns" not in synth.resources[role]["Properties"]


# --- access -------------------------------------------------------------------------------------------


def routes_for(api, *connections):
    def arn(method, path):
        return f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:{api}/v1/{method}{path}"

    arns = [arn("GET", "/connections")]
    for name in connections:
        arns += [arn("GET", f"/connections/{name}/schema"), arn("POST", f"/connections/{name}/query"),
                 arn("POST", f"/connections/{name}/describe")]  # fmt: skip
    return sorted(arns)


def test_each_group_role_may_invoke_exactly_the_console_routes_of_its_connections(synth, roles, api):
    granted = {}
    for policy in synth.of_type("AWS::IAM::Policy").values():
        for role_ref in policy["Properties"]["Roles"]:
            if role_ref.get("Ref") in roles.values():
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    assert statement["Action"] == "execute-api:Invoke", statement
                    granted.setdefault(role_ref["Ref"], []).extend(render(r) for r in as_list(statement["Resource"]))
    for role in roles.values():
        assert "Policies" not in synth.resources[role]["Properties"]  # no inline policy but the one above
    assert sorted(granted[roles["analysts"]]) == routes_for(api, "orders", "demo")
    assert sorted(granted[roles["admins"]]) == routes_for(api, "orders", "inventory", "demo")
    assert sorted(granted[roles["nobody"]]) == routes_for(api, "inventory")
    assert all("*" not in arn for arns in granted.values() for arn in arns)


def test_allowed_principals_name_the_roles_assumed_role_arns_and_keep_the_files_own(synth, definitions, roles):
    def principal(group):
        return f"arn:${{AWS::Partition}}:sts::${{AWS::AccountId}}:assumed-role/${{{roles[group]}}}/*"

    file = json.loads((ROOT / "infra" / "connections.example.json").read_text())
    example = {c["name"]: c for c in file["connections"]}
    assert definitions["orders"]["allowed_principals"] == [
        *example["orders"]["allowed_principals"], principal("analysts"), principal("admins")]
    assert definitions["inventory"]["allowed_principals"] == [
        *example["inventory"]["allowed_principals"], principal("admins"), principal("nobody")]
    assert definitions["demo"]["allowed_principals"] == [principal("analysts"), principal("admins")]


def test_the_api_stays_aws_iam_and_answers_the_consoles_origin(synth):
    origin = f"https://${{{synth.logical_id('Console/Distribution')}.DomainName}}"
    for route, props in api_routes(synth).items():
        if route.startswith("OPTIONS "):
            assert props["AuthorizationType"] == "NONE" and props["Integration"]["Type"] == "MOCK", route
            headers = props["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
            assert render(headers["method.response.header.Access-Control-Allow-Origin"]) == f"'{origin}'"
        else:
            assert props["AuthorizationType"] == "AWS_IAM", route
    responses = {p["ResponseType"]: p for p in (r["Properties"] for r in synth.of_type(
        "AWS::ApiGateway::GatewayResponse").values())}  # fmt: skip
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        assert render(responses[kind]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]) == (
            f"'{origin}'")
    function = synth.resources[synth.logical_id("Functions/ApiFunction")]["Properties"]
    assert render(function["Environment"]["Variables"]["RDSGATE_CORS_ORIGINS"]) == origin


def test_outputs_name_the_console_its_user_pool_and_each_groups_role(synth):
    outputs = synth.template.to_json()["Outputs"]
    assert render(outputs["ConsoleUrl"]["Value"]) == f"https://${{{synth.logical_id('Console/Distribution')}.DomainName}}/"
    assert {"ConsoleUserPoolId", "ConsoleRoleAnalysts", "ConsoleRoleAdmins", "ConsoleRoleNobody"} <= set(outputs)


# --- checks -------------------------------------------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged_and_every_console_acknowledgement_has_its_reason(synth):
    assert [(v.rule_name, v.severity) for v in synth.nag_report().violations] == []
    for construct in synth.app.node.find_all():
        if "Console" not in construct.node.path and "CDKBucketDeployment" not in construct.node.path:
            continue
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    assert len(reason.split()) >= 8, (construct.node.path, rule)
                    assert not rule.endswith("AwsSolutions-IAM5"), "wildcard findings are acknowledged one by one"


def test_a_concrete_environment_with_a_chosen_domain_prefix_is_nag_clean_too(tmp_path_factory):
    synth = synthesize(tmp_path_factory, console="true", consoleDomainPrefix="acme-sql",
                       account="123456789012", region="eu-west-1", azs="eu-west-1a,eu-west-1b")  # fmt: skip
    assert [(v.rule_name, v.severity) for v in synth.nag_report().violations] == []
    assert one(synth, "AWS::Cognito::UserPoolDomain")["Domain"] == "acme-sql"
    (group,) = synth.of_type("AWS::Cognito::UserPoolGroup").values()
    assert group["Properties"]["GroupName"] == "rdsgate-users"  # the default group: every connection


def test_without_the_flag_there_is_no_console(tmp_path_factory):
    synth = synthesize(tmp_path_factory)
    for resource_type in ("AWS::CloudFront::Distribution", "AWS::Cognito::UserPool", "AWS::ApiGateway::GatewayResponse"):
        assert not synth.of_type(resource_type), resource_type
    assert list(synth.of_type("AWS::S3::Bucket")) == [synth.logical_id("Statements/Results")]  # no console bucket
    function = synth.resources[synth.logical_id("Functions/ApiFunction")]["Properties"]
    assert "RDSGATE_CORS_ORIGINS" not in function["Environment"]["Variables"]


# --- settings -----------------------------------------------------------------------------------------


def settings(**context):
    return Settings.from_context({**CDK_JSON_CONTEXT, **context}.get, root=ROOT)


def test_groups_default_to_one_group_with_every_connection():
    console = settings(console="true", demo="true").console
    (group,) = console.groups
    assert group.name == "rdsgate-users" and group.connections == ("orders", "inventory", "demo")
    assert console.domain_prefix is None
    assert settings().console is None


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"consoleGroups": '{"a": ["orders"]}'}, r"'consoleGroups' and 'consoleDomainPrefix' need 'console=true'"),
        ({"console": "true", "consoleGroups": '{"a": ["billing"]}'}, r"group 'a' names 'billing', which is not a"),
        ({"console": "true", "consoleGroups": '{"a": ["demo"]}'}, r"names 'demo'"),  # demo=false
        ({"console": "true", "consoleGroups": '{"bad name": ["orders"]}'}, r"console group 'bad name'"),
        ({"console": "true", "consoleGroups": '{"a": "orders"}'}, r"must list connection names"),
        ({"console": "true", "consoleGroups": "[1]"}, r"must be an object"),
        ({"console": "true", "consoleGroups": "{"}, r"not valid JSON"),
        ({"console": "true", "consoleDomainPrefix": "my-aws-sql"}, r"without 'aws', 'amazon' or 'cognito'"),
        ({"console": "true", "consoleDomainPrefix": "-x"}, r"lower-case letters, digits and '-'"),
    ],
)
def test_console_settings_are_validated_with_the_key_named(context, message):
    with pytest.raises(ConfigError, match=message):
        settings(**context)
