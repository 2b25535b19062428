"""The web console, deployed (context `console=true`; docs/CONSOLE.md).

- **Site:** `web/static` in a private S3 bucket behind CloudFront, read through origin access
  control; a response headers policy sets a Content-Security-Policy that lets the page talk
  to this API and to Cognito only.
- **Sign-in:** a Cognito user pool (no self sign-up, MFA required) with its hosted UI, and an
  identity pool that maps each user-pool group to its own IAM role (token-based mapping,
  ambiguous or missing group: denied).
- **Access:** each group's role may `execute-api:Invoke` exactly the console's routes of its
  connections (`GET /connections`, `GET /connections/<name>/schema`,
  `POST /connections/<name>/query`, `POST /connections/<name>/describe`), and its assumed-role
  ARN is added to those connections' `allowed_principals`. The browser signs every call with
  SigV4 using the identity pool's temporary credentials, so every method stays AWS_IAM.

The construct is built in two steps, because the API's CORS origin is the distribution and
the distribution's CSP names the API: `Console(...)` before the API, `connect(api)` after.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from . import nag
from .access import DeployedConnection
from .primitives import log_group
from .settings import ROOT, ConsoleSettings, Settings

STATIC_DIR = ROOT / "web" / "static"
CONFIG_FILE = "console-config.json"
# (method, path below /connections/{name}) the console calls; its roles may invoke these only.
CONSOLE_ROUTES = (("GET", "schema"), ("POST", "query"), ("POST", "describe"))
# The sessions Cognito's identity pool opens for a role are named CognitoIdentityCredentials; any name is matched.
SESSION_WILDCARD = "*"


class Console(Construct):
    """The console's site, sign-in and group roles; call connect() once the API exists."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        assert settings.console is not None
        self.settings = settings
        self.console: ConsoleSettings = settings.console
        stack = cdk.Stack.of(self)

        # -- site: private bucket, CloudFront with origin access control ------------------------------
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # The deployment below removes its files when it is deleted, so the empty bucket can go too.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{settings.stack_name}: rdsgate web console",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
        )
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        self.url = f"{self.origin}/"

        # -- sign-in: user pool with hosted UI, identity pool ------------------------------------------
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            self_sign_up_enabled=False,  # an administrator creates each user and puts them in a group
            sign_in_aliases=cognito.SignInAliases(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=cdk.Duration.days(3),
            ),  # fmt: skip
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            removal_policy=cdk.RemovalPolicy.RETAIN,  # users and their MFA enrolments outlive a stack replacement
        )
        prefix = self.console.domain_prefix or cdk.Fn.join(
            "-", [re.sub(r"[^a-z0-9-]", "-", settings.stack_name.lower()), cdk.Aws.ACCOUNT_ID]
        )
        self.domain = self.user_pool.add_domain(
            "HostedUi", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix)
        )
        self.hosted_ui = f"https://{prefix}.auth.{cdk.Aws.REGION}.amazoncognito.com"
        self.client = self.user_pool.add_client(
            "ConsoleClient",
            generate_secret=False,  # a browser cannot keep one: authorization code with PKCE instead
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[self.url],
                logout_urls=[self.url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=cdk.Duration.hours(1),
            access_token_validity=cdk.Duration.hours(1),
            refresh_token_validity=cdk.Duration.hours(12),
            enable_token_revocation=True,
        )
        self.identity_pool = cognito.CfnIdentityPool(
            self,
            "IdentityPool",
            allow_unauthenticated_identities=False,
            allow_classic_flow=False,
            cognito_identity_providers=[
                cognito.CfnIdentityPool.CognitoIdentityProviderProperty(
                    client_id=self.client.user_pool_client_id,
                    provider_name=self.user_pool.user_pool_provider_name,
                    server_side_token_check=True,
                )
            ],
        )

        # -- one role per group --------------------------------------------------------------------------
        self.roles: dict[str, iam.Role] = {}
        self.labels: dict[str, str] = {}  # group name → its part of construct ids and output names
        for precedence, group in enumerate(self.console.groups):
            label = re.sub(r"[^A-Za-z0-9]", "", group.name.title()) or "Group"
            if label in self.labels.values():  # "a.b" and "a-b" both read "AB"
                label = f"{label}{precedence}"
            self.labels[group.name] = label
            role = iam.Role(
                self,
                f"Group{label}Role",
                description=f"rdsgate console: group {group.name} ({', '.join(group.connections) or 'no connection'})",
                max_session_duration=cdk.Duration.hours(1),
                assumed_by=iam.FederatedPrincipal(
                    "cognito-identity.amazonaws.com",
                    conditions={
                        "StringEquals": {"cognito-identity.amazonaws.com:aud": self.identity_pool.ref},
                        "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                    },
                    assume_role_action="sts:AssumeRoleWithWebIdentity",
                ),
            )
            cognito.CfnUserPoolGroup(
                self,
                f"Group{label}",
                user_pool_id=self.user_pool.user_pool_id,
                group_name=group.name,
                description=f"rdsgate console: may use {', '.join(group.connections) or 'no connection'}",
                role_arn=role.role_arn,
                precedence=precedence,  # a user in several groups gets the first one's role
            )
            self.roles[group.name] = role
        cognito.CfnIdentityPoolRoleAttachment(
            self,
            "RoleMapping",
            identity_pool_id=self.identity_pool.ref,
            role_mappings={
                "users": cognito.CfnIdentityPoolRoleAttachment.RoleMappingProperty(
                    type="Token",  # the role of the user's group (cognito:preferred_role in the ID token)
                    ambiguous_role_resolution="Deny",  # no group: no credentials
                    identity_provider=f"{self.user_pool.user_pool_provider_name}:{self.client.user_pool_client_id}",
                )
            },
        )
        cdk.CfnOutput(stack, "ConsoleUrl", value=self.url, description="The rdsgate web console")
        cdk.CfnOutput(stack, "ConsoleUserPoolId", value=self.user_pool.user_pool_id,
                      description="Create console users here and add each to a group")  # fmt: skip
        for name, role in self.roles.items():
            cdk.CfnOutput(stack, f"ConsoleRole{self.labels[name]}", value=role.role_arn,
                          description=f"The IAM role of console group {name}")  # fmt: skip
        self._acknowledge()

    # -- governance ---------------------------------------------------------------------------------------

    def principal(self, group: str) -> str:
        """The assumed-role ARN pattern of a group's role, as `allowed_principals` names it."""
        role_name = self.roles[group].role_name
        return f"arn:{cdk.Aws.PARTITION}:sts::{cdk.Aws.ACCOUNT_ID}:assumed-role/{role_name}/{SESSION_WILDCARD}"

    def allow(self, connections: Iterable[DeployedConnection]) -> list[DeployedConnection]:
        """The connections with each group's role added to `allowed_principals` where the group may use them."""
        allowed = []
        for connection in connections:
            principals = [self.principal(g.name) for g in self.console.groups if connection.name in g.connections]
            if principals:
                existing = list(connection.item.get("allowed_principals") or [])
                connection = replace(connection, item={**connection.item, "allowed_principals": existing + principals})
            allowed.append(connection)
        return allowed

    # -- after the API exists -----------------------------------------------------------------------------

    def connect(self, api: apigw.RestApi, *, stage: str, api_url: str) -> None:
        """Grant each group's role its connections' routes, let the browser read API errors, deploy the page."""
        for group in self.console.groups:
            resources = [api.arn_for_execute_api("GET", "/connections", stage)]
            for name in group.connections:
                resources += [api.arn_for_execute_api(method, f"/connections/{name}/{path}", stage)
                              for method, path in CONSOLE_ROUTES]  # fmt: skip
            self.roles[group.name].add_to_principal_policy(
                iam.PolicyStatement(actions=["execute-api:Invoke"], resources=resources)
            )

        # API Gateway's own refusals (a bad signature, throttling) carry CORS headers too, so the page can show them.
        responses = (("4xx", apigw.ResponseType.DEFAULT_4_XX), ("5xx", apigw.ResponseType.DEFAULT_5_XX))
        for label, response_type in responses:
            api.add_gateway_response(
                f"Console{label}",
                type=response_type,
                response_headers={
                    "Access-Control-Allow-Origin": f"'{self.origin}'",
                    "Vary": "'Origin'",
                },
            )

        api_origin = f"https://{api.rest_api_id}.execute-api.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="rdsgate console: the page talks to its API and Cognito only",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=(
                        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                        f"connect-src 'self' {api_origin} https://cognito-identity.{cdk.Aws.REGION}.amazonaws.com "
                        f"{self.hosted_ui}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                        f"form-action 'self' {self.hosted_ui}"
                    ),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365), include_subdomains=True, override=True
                ),
            ),
        )
        # The distribution exists before the API (the API's CORS origin is the distribution), so the policy
        # naming the API is attached to its default behaviour here.
        self.distribution.node.default_child.add_property_override(
            "DistributionConfig.DefaultCacheBehavior.ResponseHeadersPolicyId", headers.response_headers_policy_id
        )

        config = {
            "auth": "cognito",
            "apiUrl": api_url,
            "region": cdk.Aws.REGION,
            "userPoolId": self.user_pool.user_pool_id,
            "userPoolClientId": self.client.user_pool_client_id,
            "identityPoolId": self.identity_pool.ref,
            "cognitoDomain": self.hosted_ui,
            "redirectUri": self.url,
        }
        files = s3_assets.Asset(self, "FilesAsset", path=str(STATIC_DIR))
        deployment_logs = log_group(self, "DeploymentLogs", self.settings.log_retention_days)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Files",
            destination_bucket=self.bucket,
            sources=[
                s3deploy.Source.bucket(files.bucket, files.s3_object_key),
                s3deploy.Source.json_data(CONFIG_FILE, config),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
            retain_on_delete=False,  # delete the files with the stack, so the bucket can go too
            prune=True,
            log_group=deployment_logs,
            memory_limit=256,
        )
        self._acknowledge_deployment(files.bucket)

    # -- cdk-nag ------------------------------------------------------------------------------------------

    def _acknowledge(self) -> None:
        nag.acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The bucket holds only the console's static files, readable through CloudFront alone; they carry no "
            "data, and every data access is logged by API Gateway's access log and rdsgate's audit trail",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: who may use the console is decided by Cognito sign-in and IAM, not by country",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "The distribution serves static files only; attach a WAF web ACL where the account's policy "
            "requires one (the API calls go to API Gateway, signed, not through CloudFront)",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "The static files hold no data; API Gateway's access log and the audit trail record every query, "
            "so CloudFront standard logs (and their log bucket) would add nothing",
        )
        nag.acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate allows TLSv1 on CloudFront's side; with a custom domain "
            "and certificate the distribution's minimum TLSv1.2_2021 applies",
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG3",
            "Threat protection (advanced security) needs the Plus feature plan; sign-up is closed, MFA is "
            "required and every action is still checked by IAM and allowed_principals",
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Essentials feature plan is enough here: the Plus plan's threat protection costs per user, while "
            "sign-up is closed, MFA is required and IAM checks every call",
        )

    def _acknowledge_deployment(self, asset_bucket: s3.IBucket) -> None:
        # BucketDeployment's handler is a singleton function of the stack, outside this construct.
        stack = cdk.Stack.of(self)
        for bucket in (asset_bucket, self.bucket):  # its object-level grants: s3:…Object* on <bucket>/*
            nag.acknowledge(
                handler := next(c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment")),
                f"AwsSolutions-IAM5[Resource::{_as_nag_shows(stack, bucket.arn_for_objects('*'))}]",
                "BucketDeployment reads the console's asset from the CDK asset bucket and replaces the files of "
                "the console bucket: object-level actions need the bucket's objects, <bucket>/*",
            )
        nag.acknowledge(
            handler,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's BucketDeployment handler role is created by the construct library with the basic execution "
            "policy; it runs only at deploy time to copy the console's files",
        )
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            nag.acknowledge(
                handler,
                f"AwsSolutions-IAM5[Action::{action}]",
                "BucketDeployment grants its handler the S3 construct library's read and read-write action groups "
                "on the two buckets it copies between, and nothing beyond them",
            )
        nag.acknowledge(
            handler,
            "AwsSolutions-IAM5[Resource::*]",
            "BucketDeployment's handler invalidates the console's CloudFront cache after each deploy; "
            "cloudfront:CreateInvalidation and GetInvalidation are granted on '*' by the construct library",
        )
        nag.acknowledge(
            handler,
            "AwsSolutions-L1",
            "The BucketDeployment handler's runtime is chosen by the CDK construct library and moves with it",
        )


def _as_nag_shows(stack: cdk.Stack, value: str) -> str:
    """A resource ARN as cdk-nag prints it in a finding: Ref → <Name>, GetAtt → <Logical.Attr>, ${X} → <X>."""

    def render(node: object) -> str:
        if isinstance(node, str):
            return re.sub(r"\$\{([^}]+)\}", r"<\1>", node)
        if isinstance(node, dict) and len(node) == 1:
            ((function, args),) = node.items()
            if function == "Fn::Join":
                return args[0].join(render(part) for part in args[1])
            if function == "Ref":
                return f"<{args}>"
            if function == "Fn::GetAtt":
                return f"<{args[0]}.{args[1]}>"
            if function == "Fn::Sub" and isinstance(args, str):
                return render(args)
        raise ValueError(f"cannot render {node!r} as cdk-nag does")

    return render(stack.resolve(value))
