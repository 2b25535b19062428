"""API: a REST API whose every method requires AWS_IAM, with resources that mirror rdsgate's paths.

Because each connection has its own resource path, a caller's policy can grant
``execute-api:Invoke`` on ``…/<stage>/*/connections/<name>`` and
``…/<stage>/*/connections/<name>/*`` for one connection only.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import nag
from .primitives import log_group
from .settings import Settings

# (method, path below /connections/{name}) of the per-connection routes; {proxy+} catches later ones.
CONNECTION_ROUTES = (
    ("POST", "query"),
    ("POST", "batch"),
    ("POST", "transaction"),
    ("POST", "describe"),
    ("GET", "schema"),
    ("GET", "diagnose"),
)
# The audit trail spans connections, so it is a resource of its own: grant `…/GET/audit` to auditors only.
# The Data API's operations; its transaction calls are answered with a pointer to /transaction.
ROOT_ROUTES = (
    ("GET", "health"),
    ("GET", "openapi.json"),
    ("GET", "audit"),
    ("POST", "Execute"),
    ("POST", "BatchExecute"),
    ("POST", "BeginTransaction"),
    ("POST", "CommitTransaction"),
    ("POST", "RollbackTransaction"),
)
SIGV4_HEADERS = ["Content-Type", "Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"]


def lambda_integration(function: lambda_.IFunction) -> apigw.LambdaIntegration:
    """The function behind a route. One permission for the whole API rather than one per method: the
    function's policy stays small."""
    return apigw.LambdaIntegration(function, scope_permission_to_method=False)


def add_collection(parent: apigw.IResource, name: str, key: str, integration: apigw.Integration) -> apigw.Resource:
    """``GET /<name>`` (the list) and ``GET /<name>/<key>`` (one item); returns the item's resource, for its own routes."""
    collection = parent.add_resource(name)
    collection.add_method("GET", integration)
    item = collection.add_resource(key)
    item.add_method("GET", integration)
    return item


class Api(Construct):
    """The REST API proxying every route to the API function."""

    def __init__(self, scope: Construct, construct_id: str, *, function: lambda_.IFunction, settings: Settings):
        super().__init__(scope, construct_id)
        access_logs = log_group(self, "AccessLogs", settings.log_retention_days)
        cors = None
        if settings.cors_origins:
            cors = apigw.CorsOptions(
                allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"], allow_headers=SIGV4_HEADERS
            )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=cdk.Stack.of(self).stack_name,
            description="rdsgate: SQL over HTTPS, signed with SigV4",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=False,
            # Callers sign with SigV4 (browsers too, with Cognito identity-pool credentials): no other authorizer.
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            default_cors_preflight_options=cors,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage_name,
                throttling_rate_limit=settings.throttle_rate_limit,
                throttling_burst_limit=settings.throttle_burst_limit,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(_ACCESS_LOG_FIELDS)),
            ),
        )
        integration = lambda_integration(function)
        root = self.rest_api.root
        for method, path in ROOT_ROUTES:
            root.add_resource(path).add_method(method, integration)
        connection = add_collection(root, "connections", "{name}", integration)
        for method, path in CONNECTION_ROUTES:
            connection.add_resource(path).add_method(method, integration)
        connection.add_proxy(default_integration=integration, any_method=True)
        self._acknowledge(bool(cors))

    @property
    def url(self) -> str:
        return self.rest_api.url

    def _acknowledge(self, cors: bool) -> None:
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-APIG2",
            "The API function validates every request and names the offending field; request models in "
            "API Gateway would duplicate that schema",
        )
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "Every method requires SigV4-signed requests (AWS_IAM) and the stage is throttled; attach a WAF "
            "web ACL to the stage where the account's policy requires one",
        )
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-APIG6",
            "Access logs go to CloudWatch; execution logging needs the account-wide API Gateway CloudWatch "
            "role, a per-region account setting this stack does not take over",
        )
        nag.acknowledge(
            self.rest_api,
            "AwsSolutions-COG4",
            "Methods use AWS_IAM authorization: callers, browsers included (Cognito identity-pool credentials), "
            "sign with SigV4, so no Cognito user-pool authorizer is needed",
        )
        if cors:
            nag.acknowledge(
                self.rest_api,
                "AwsSolutions-APIG4",
                "Only the CORS preflight OPTIONS methods are unauthenticated, as browsers send preflights "
                "without credentials; they return headers only and never reach the function",
            )


_ACCESS_LOG_FIELDS = {
    "requestId": apigw.AccessLogField.context_request_id(),
    "requestTime": apigw.AccessLogField.context_request_time(),
    "ip": apigw.AccessLogField.context_identity_source_ip(),
    "caller": apigw.AccessLogField.context_identity_caller(),
    "userArn": apigw.AccessLogField.context_identity_user_arn(),
    "httpMethod": apigw.AccessLogField.context_http_method(),
    "resourcePath": apigw.AccessLogField.context_resource_path(),
    "path": apigw.AccessLogField.context_path(),
    "status": apigw.AccessLogField.context_status(),
    "protocol": apigw.AccessLogField.context_protocol(),
    "responseLength": apigw.AccessLogField.context_response_length(),
    "integrationLatency": apigw.AccessLogField.context_integration_latency(),
    "error": apigw.AccessLogField.context_error_message(),
}
