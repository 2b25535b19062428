"""Verify SigV4-signed HTTP requests as API Gateway's AWS_IAM authorization does, for the local server.

The signature is recomputed with botocore's own SigV4 code over exactly the headers
the caller signed, with the secret of a key this verifier trusts. A request passes
when its signature, scope (region, ``execute-api``), date (within five minutes),
session token and body hash all match; it then names its signer's ARN. Rejections
carry API Gateway's messages; none holds a secret or a signature.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
MISSING_TOKEN = "Missing Authentication Token"
MALFORMED = "Authorization header is malformed."
INVALID_TOKEN = "The security token included in the request is invalid."
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method."
)


class SignatureRejected(Exception):
    """The request is not signed, or not signed right; ``message`` is API Gateway's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class TrustedKey:
    """A key the verifier accepts, and the principal it stands for."""

    secret_access_key: str = field(repr=False)
    principal_arn: str
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Signer:
    """Who signed a verified request."""

    access_key_id: str
    principal_arn: str


class _DeclaredHeaders(SigV4Auth):
    """botocore's SigV4 over the headers the caller declared, not over every header present."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest):  # type: ignore[override]
        headers = super().headers_to_sign(request)
        for name in list(headers.keys()):
            if name not in self._signed:
                del headers[name]
        return headers


class SigV4Verifier:
    """Checks requests against the trusted keys, for one region and service."""

    def __init__(self, region: str, *, service: str = "execute-api", trusted: Mapping[str, TrustedKey] | None = None):
        self.region = region
        self.service = service
        self.trusted: dict[str, TrustedKey] = dict(trusted or {})

    def trust(self, access_key_id: str, key: TrustedKey) -> None:
        self.trusted[access_key_id] = key

    def verify(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
        *, now: dt.datetime | None = None,
    ) -> Signer:
        """The signer of the request; raises SignatureRejected. ``path`` and ``query`` are as sent (encoded)."""
        lower = {name.lower(): value for name, value in headers.items()}
        match = _AUTHORIZATION.match(lower.get("authorization", "").strip())
        if match is None:
            raise SignatureRejected(MISSING_TOKEN if "authorization" not in lower else MALFORMED)
        access_key, _, scope = match.group("credential").partition("/")
        date, region, service, terminator = (scope.split("/") + ["", "", "", ""])[:4]
        if (service, terminator) != (self.service, "aws4_request"):
            raise SignatureRejected(f"Credential should be scoped to correct service: '{self.service}'.")
        if region != self.region:
            raise SignatureRejected(f"Credential should be scoped to a valid region, not '{region}'.")
        key = self.trusted.get(access_key)
        if key is None:
            raise SignatureRejected(INVALID_TOKEN)
        if key.session_token is not None and not hmac.compare_digest(
            key.session_token.encode(), lower.get("x-amz-security-token", "").encode()
        ):
            raise SignatureRejected(INVALID_TOKEN)
        signed = match.group("signed").split(";")
        if "host" not in signed or any(name not in lower for name in signed):
            raise SignatureRejected(BAD_SIGNATURE)
        amz_date = lower.get("x-amz-date", "")
        _check_date(amz_date, date, now or dt.datetime.now(dt.timezone.utc))
        content_hash = lower.get("x-amz-content-sha256")
        if content_hash is not None and content_hash != hashlib.sha256(body).hexdigest():
            raise SignatureRejected(BAD_SIGNATURE)
        url = f"http://{lower['host']}{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method.upper(), url=url, headers={n: lower[n] for n in signed}, data=body)
        request.context["timestamp"] = amz_date
        auth = _DeclaredHeaders(Credentials(access_key, key.secret_access_key, key.session_token), self.service, region,
                                signed)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if not hmac.compare_digest(expected, match.group("signature")):
            raise SignatureRejected(BAD_SIGNATURE)
        return Signer(access_key, key.principal_arn)


def _check_date(amz_date: str, scope_date: str, now: dt.datetime) -> None:
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise SignatureRejected("Authorization header requires an 'X-Amz-Date' header.") from None
    if scope_date != amz_date[:8]:
        raise SignatureRejected("Date in Credential scope does not match the date of X-Amz-Date.")
    if abs(now - signed_at) > MAX_SKEW:
        raise SignatureRejected(f"Signature expired: {amz_date} is more than 5 minutes away from the server's time.")
