"""RDS IAM auth tokens, signed locally with the function's own credentials."""

from __future__ import annotations

import logging
from typing import Any, Callable

from .definitions import ConnectionDefinition
from .errors import AuthenticationFailed, IAM_LOGIN_HINT
# botocore logs each canonical request (session token included) and its signature at DEBUG.
# A signed token is a password, so signing stays silent even when debug logging is on.
logging.getLogger("botocore.auth").setLevel(logging.INFO)


class TokenSigner:
    """Signs one fresh token per new physical connection; keeps one ``rds`` client per region.

    A token is used once, for the login it was signed for, so none is ever older
    than a few milliseconds when used (RDS accepts them for 15 minutes).
    """

    def __init__(self, default_region: str | None, *, client_factory: Callable[[str | None], Any] | None = None) -> None:
        self.default_region = default_region
        self._client_factory = client_factory or _default_rds_client
        self._clients: dict[str | None, Any] = {}
        self.tokens_signed = 0  # counted for the reuse benchmark

    def token_for(self, definition: ConnectionDefinition) -> str:
        """A new token for the definition's db user, signed for ``iam_host`` (or ``host``) and port."""
        region = definition.region or self.default_region
        if not region:
            raise AuthenticationFailed(
                f"connection {definition.name!r}: no region to sign the IAM token for; set 'region' in the definition",
                hint=IAM_LOGIN_HINT,
            )
        client = self._clients.get(region)
        if client is None:
            client = self._clients[region] = self._client_factory(region)
        try:
            token = client.generate_db_auth_token(
                DBHostname=definition.token_host, Port=definition.port, DBUsername=definition.db_user, Region=region
            )
        except Exception as exc:  # e.g. NoCredentialsError: say what, never the credentials
            raise AuthenticationFailed(
                f"connection {definition.name!r}: could not sign an IAM token ({type(exc).__name__})", hint=IAM_LOGIN_HINT
            ) from exc
        self.tokens_signed += 1
        return token


def _default_rds_client(region: str | None) -> Any:
    import boto3

    return boto3.client("rds", region_name=region)
