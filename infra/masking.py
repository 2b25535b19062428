"""The key of hashed masks (issue 13): one per deployment, so that every function hashes a value alike.

``"mask": "hash"`` replaces a masked value with an HMAC-SHA256 under a key. Without one the
runtime draws a key per execution environment, and the same value hashes differently from
one environment to the next (no joins across requests). The stack therefore creates the key
as a generated secret in Secrets Manager when a connection of the file hashes (or context
``maskingKey=create``), gives its ARN to the functions that run statements
(``RDSGATE_MASKING_KEY_SECRET_ARN``) and lets exactly those read it (``GetSecretValue`` on
that secret only). The runtime reads it on the first hashed value, never at initialization
(SnapStart), and keeps it for the execution environment. The functions reach Secrets Manager
through an interface endpoint (no NAT): the VPC's one (``Network.secrets_manager_endpoint``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from . import nag

if TYPE_CHECKING:
    from .network import Network
    from .settings import Settings

ENVIRONMENT_VARIABLE = "RDSGATE_MASKING_KEY_SECRET_ARN"
KEY_LENGTH = 64  # characters of [A-Za-z0-9]: about 380 bits


class MaskingKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="rdsgate: the key of hashed masks (HMAC-SHA256); rotating it changes every hashed value",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=KEY_LENGTH, exclude_punctuation=True, include_space=False
            ),
            # Kept when the stack goes: the hashes already handed out stay comparable with a redeployment's.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "The masking key is not rotated on purpose: a new key changes every hashed value, and hashes are "
            "kept comparable (joinable) across requests and over time; rotate by hand when that is wanted",
        )
        # A VPC rdsgate creates has no route out: the endpoint. An imported VPC needs its own route to Secrets Manager.
        self.endpoint = network.secrets_manager_endpoint() if settings.vpc is None else None
        self._readers: list[lambda_.IFunction] = []

    def use_in(self, function: lambda_.Function) -> None:
        """``function`` hashes with the deployment's key: it gets the ARN, GetSecretValue on this secret only,
        and HTTPS to the endpoint."""
        function.add_environment(ENVIRONMENT_VARIABLE, self.secret.secret_arn)
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[self.secret.secret_arn])
        )
        if self.endpoint is not None and function.connections.security_groups:
            self.endpoint.connections.allow_default_port_from(function, "rdsgate functions read the masking key")
        self._readers.append(function)

    @property
    def readers(self) -> tuple[lambda_.IFunction, ...]:
        return tuple(self._readers)
