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
    """Signs one fresh token per new physical connection.

    A token is used once, for the login it was signed for, so none is ever older
    than a few milliseconds when used (RDS accepts them for 15 minutes).

    By default the token is a SigV4 presigned ``connect`` request signed here
    (``rdsgate.awsauth``, hmac and hashlib) with the credentials of ``credentials``, a
    callable returning them, called at each signing: by default
    ``awsauth.environment_credentials`` (Lambda's execution role; no botocore chain: the
    function's runtime passes its own, ``runtime._AwsSession.credentials``). It is the same
    token as ``rds.generate_db_auth_token``, byte for byte, without an ``rds`` client (its
    service model costs a cold start about 40 ms) or ``botocore.auth``. A ``client_factory``
    (an ``rds`` client per region, as ``diagnose`` passes) signs through that client instead.
    """

    def __init__(
        self,
        default_region: str | None,
        *,
        client_factory: Callable[[str | None], Any] | None = None,
        credentials: Callable[[], Any] | None = None,
    ) -> None:
        self.default_region = default_region
        self._client_factory = client_factory
        if credentials is None:
            from .awsauth import environment_credentials

            credentials = environment_credentials
        self._credentials = credentials
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
        client = None
        if self._client_factory is not None:
            client = self._clients.get(region)
            if client is None:
                client = self._clients[region] = self._client_factory(region)
        try:
            if client is not None:
                token = client.generate_db_auth_token(
                    DBHostname=definition.token_host, Port=definition.port, DBUsername=definition.db_user, Region=region
                )
            else:
                from .awsauth import presign_db_auth_token  # ``host:port/?Action=connect&DBUser=…&X-Amz-…``, valid 15 minutes

                token = presign_db_auth_token(self._credentials(), definition.token_host, definition.port, definition.db_user, region)
        except Exception as exc:  # e.g. NoCredentialsError: say what, never the credentials
            raise AuthenticationFailed(
                f"connection {definition.name!r}: could not sign an IAM token ({type(exc).__name__})", hint=IAM_LOGIN_HINT
            ) from exc
        self.tokens_signed += 1
        return token
