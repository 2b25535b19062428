"""The execution role's credentials and SigV4 by hand (``hmac``, ``hashlib``), without botocore.

* :func:`environment_credentials`: the credentials as Lambda hands them over (the environment's
  variables, read at each call, or with SnapStart the container credentials endpoint, fetched on use;
  never at import, so a restored snapshot holds none).
* :func:`presign_db_auth_token` is the token ``rds.generate_db_auth_token`` (botocore's
  ``SigV4QueryAuth``) returns, byte for byte, and :func:`sign_request` signs a request as botocore's
  ``SigV4Auth`` does (tests/unit/test_awsapi.py compares both).

:mod:`rdsgate.awsapi` decides when these stand in for botocore and makes the DynamoDB calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import threading
import time
from typing import Any, Mapping, NamedTuple
from urllib.parse import quote, urlsplit

__all__ = [
    "SIGV4_TIMESTAMP", "TOKEN_EXPIRES_SECONDS", "AwsError", "NoCredentialsError", "StaticCredentials",
    "environment_credentials", "container_uri", "ContainerCredentials", "CONTAINER_CREDENTIALS",
    "presign_db_auth_token", "sign_request",
]

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
TOKEN_EXPIRES_SECONDS = 900
_SAFE = "-_.~"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class AwsError(Exception):
    """A call AWS refused or that could not be made: ``code`` is the service's error code (or the
    exception's type name), as botocore's ``ClientError`` carries it."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code, self.status = code, status
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}



class NoCredentialsError(Exception):
    """No credentials to sign with (the name botocore gives the same failure)."""

    def __init__(self) -> None:
        super().__init__("Unable to locate credentials")


class StaticCredentials(NamedTuple):
    """Credentials as botocore's ``ReadOnlyCredentials``: access key, secret key, session token."""

    access_key: str
    secret_key: str
    token: str | None = None

    def get_frozen_credentials(self) -> StaticCredentials:
        return self


def environment_credentials(environ: Mapping[str, str] | None = None) -> StaticCredentials | None:
    """The execution role's credentials as Lambda hands them over, in botocore's order: the variables
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` (read now), else the container
    credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI``: what a SnapStart function gets; fetched
    when needed, kept until five minutes before they expire). None when there are none, or when a named
    profile is chosen (botocore then ignores both, and so must rdsgate)."""
    env = os.environ if environ is None else environ
    if env.get("AWS_PROFILE"):
        return None
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return StaticCredentials(key, secret, env.get("AWS_SESSION_TOKEN") or env.get("AWS_SECURITY_TOKEN") or None)
    if container_uri(env) is not None:
        return CONTAINER_CREDENTIALS.get(env)
    return None


def container_uri(env: Mapping[str, str]) -> str | None:
    """The container credentials endpoint, when set and one botocore would call (https, loopback, or ECS's)."""
    relative, full = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    uri = f"http://169.254.170.2{relative}" if relative else full
    if not uri:
        return None
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" or host in ("169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost"):
        return uri
    if parts.scheme == "http" and (host == "::1" or re.match(r"^127\.\d+\.\d+\.\d+$", host)):
        return uri
    return None


class ContainerCredentials:
    """The container credentials endpoint's credentials (Lambda SnapStart, ECS), fetched on use and refreshed
    five minutes before they expire; a restored snapshot holds none from before (SnapStart)."""

    REFRESH_SECONDS = 300.0
    TIMEOUT_SECONDS = 2.0
    ATTEMPTS = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[str, float, StaticCredentials] | None = None  # uri, expiry (epoch seconds), credentials

    def get(self, environ: Mapping[str, str] | None = None) -> StaticCredentials | None:
        env = os.environ if environ is None else environ
        uri = container_uri(env)
        if uri is None:
            return None
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == uri and time.time() < cached[1] - self.REFRESH_SECONDS:
                return cached[2]
            document = self._fetch(uri, env)
            credentials = StaticCredentials(document["AccessKeyId"], document["SecretAccessKey"], document.get("Token"))
            expiration = document.get("Expiration")
            expires = dt.datetime.fromisoformat(expiration.replace("Z", "+00:00")).timestamp() if expiration else time.time() + 3600
            self._cached = (uri, expires, credentials)
            return credentials

    def _fetch(self, uri: str, env: Mapping[str, str]) -> dict[str, Any]:
        import http.client

        headers = {"Accept": "application/json"}
        token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file:
            with open(token_file, encoding="utf-8") as f:
                token = f.read().strip()
        if token:
            headers["Authorization"] = token
        parts = urlsplit(uri)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in range(1, self.ATTEMPTS + 1):
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = kind(parts.hostname, parts.port, timeout=self.TIMEOUT_SECONDS)
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                if response.status == 200:
                    document = json.loads(body)
                    if document.get("AccessKeyId") and document.get("SecretAccessKey"):
                        return document
                if attempt == self.ATTEMPTS:
                    raise AwsError("CredentialRetrievalError", f"the container credentials endpoint answered {response.status}")
            except (OSError, ValueError, http.client.HTTPException) as exc:
                if attempt == self.ATTEMPTS:
                    raise AwsError("CredentialRetrievalError", f"the container credentials endpoint failed ({type(exc).__name__})") from exc
            finally:
                connection.close()
            time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover


CONTAINER_CREDENTIALS = ContainerCredentials()


# --- SigV4 -------------------------------------------------------------------------------------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _signature(secret_key: str, timestamp: str, region: str, service: str, canonical_request: str) -> str:
    scope = f"{timestamp[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ("AWS4-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest())
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode("utf-8"), timestamp[:8]), region), service), "aws4_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _encode(value: Any) -> str:
    return quote(str(value).encode("utf-8"), safe=_SAFE)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def presign_db_auth_token(
    credentials: Any, host: str, port: int, db_user: str, region: str, *, now: dt.datetime | None = None
) -> str:
    """``host:port/?Action=connect&DBUser=…&X-Amz-…``: the RDS IAM auth token, a presigned GET for service
    ``rds-db`` valid 15 minutes, as botocore's ``SigV4QueryAuth`` builds it."""
    if credentials is None:
        raise NoCredentialsError()
    frozen = credentials.get_frozen_credentials()
    timestamp = (now or _now()).strftime(SIGV4_TIMESTAMP)
    scope = f"{frozen.access_key}/{timestamp[:8]}/{region}/rds-db/aws4_request"
    auth = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", scope),
        ("X-Amz-Date", timestamp),
        ("X-Amz-Expires", TOKEN_EXPIRES_SECONDS),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if frozen.token is not None:
        auth.append(("X-Amz-Security-Token", frozen.token))
    pairs = [("Action", "connect"), ("DBUser", db_user), *auth]
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in pairs)
    canonical_query = "&".join(sorted(query.split("&"), key=lambda pair: tuple(pair.partition("=")[::2])))
    netloc = f"{host}:{port}"
    signed_host = _host_header("https", netloc)
    canonical_request = "\n".join(("GET", "/", canonical_query, f"host:{signed_host}\n", "host", _EMPTY_SHA256))
    signature = _signature(frozen.secret_key, timestamp, region, "rds-db", canonical_request)
    return f"{netloc}/?{query}&X-Amz-Signature={signature}"


def _host_header(scheme: str, netloc: str) -> str:
    """The host as SigV4 signs it: lower case, without the scheme's default port."""
    parts = urlsplit(f"{scheme}://{netloc}")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{parts.port}"
    return host


def sign_request(
    credentials: Any, method: str, url: str, headers: dict[str, str], body: bytes, *, service: str, region: str,
    now: dt.datetime | None = None,
) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date``, ``X-Amz-Security-Token`` and ``Authorization`` (SigV4, header auth),
    as botocore's ``SigV4Auth`` signs the same request."""
    frozen = credentials.get_frozen_credentials()
    timestamp = (now or _now()).strftime(SIGV4_TIMESTAMP)
    parts = urlsplit(url)
    signed = {**headers, "X-Amz-Date": timestamp}
    if frozen.token:
        signed["X-Amz-Security-Token"] = frozen.token
    canonical = {name.lower(): " ".join(str(value).split()) for name, value in signed.items()}
    canonical.setdefault("host", _host_header(parts.scheme, parts.netloc))
    names = sorted(canonical)
    signed_headers = ";".join(names)
    canonical_request = "\n".join((
        method.upper(),
        parts.path or "/",
        parts.query,  # rdsgate's calls have none
        "".join(f"{name}:{canonical[name]}\n" for name in names),
        signed_headers,
        hashlib.sha256(body).hexdigest(),
    ))  # fmt: skip
    signature = _signature(frozen.secret_key, timestamp, region, service, canonical_request)
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{timestamp[:8]}/{region}/{service}/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return signed
