"""The AWS calls of the query path without botocore's client machinery: SigV4 by hand, DynamoDB over HTTPS.

A fresh botocore session, a DynamoDB client and ``botocore.auth`` cost a cold start about
200 ms (bench/RESULTS.md, *(c) cold start*); the first request needs only an IAM token
(a SigV4 presigned ``connect`` request) and a GetItem. This module does those two with
``hmac``, ``hashlib`` and ``http.client``:

* :func:`presign_db_auth_token` is the token ``rds.generate_db_auth_token`` (botocore's
  ``SigV4QueryAuth``) returns, byte for byte (tests/unit/test_awsapi.py compares them).
* :class:`DynamoDBClient` makes the calls rdsgate makes (GetItem, PutItem, Query, Scan)
  with botocore's parameters and results (typed attribute values, ``B`` as bytes), its
  errors raised as :class:`AwsError` with the service's error code.

It is used only where that is safe (:func:`direct_calls_allowed`): the execution role's
credentials as Lambda hands them over (the environment's variables, read at each call, or
with SnapStart the container credentials endpoint, fetched on use; never at import, so a
restored snapshot holds none), no named profile,
no proxy, no FIPS or dual-stack endpoint, a region of the ``aws``/``aws-us-gov``/``aws-cn``
partitions or an ``AWS_ENDPOINT_URL_DYNAMODB``/``AWS_ENDPOINT_URL``. Anything else goes
through botocore as before (``rdsgate.runtime``), and ``RDSGATE_AWS_CLIENT=botocore`` forces it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import random
import re
import threading
import time
import zlib
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import quote, urlsplit

SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
TOKEN_EXPIRES_SECONDS = 900
DYNAMODB_API_VERSION = "DynamoDB_20120810"
_SAFE = "-_.~"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# The regions of the partitions whose DynamoDB endpoint is dynamodb.<region>.<suffix>.
_REGION_SUFFIXES = (
    (re.compile(r"^(?:us(?:-gov)?|af|ap|ca|eu|il|me|mx|sa)-[a-z]+-\d+$"), "amazonaws.com"),
    (re.compile(r"^cn-[a-z]+-\d+$"), "amazonaws.com.cn"),
)
_TRUE = ("true", "1", "yes", "on")
# Errors worth another attempt (botocore's legacy retry mode retries the same for DynamoDB).
_RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
     "InternalServerError", "ServiceUnavailable", "TransactionInProgressException"}
)  # fmt: skip
MAX_ATTEMPTS = 5


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
    if _container_uri(env) is not None:
        return CONTAINER_CREDENTIALS.get(env)
    return None


def _container_uri(env: Mapping[str, str]) -> str | None:
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
        self.fetches = 0

    def get(self, environ: Mapping[str, str] | None = None) -> StaticCredentials | None:
        env = os.environ if environ is None else environ
        uri = _container_uri(env)
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
            self.fetches += 1
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


def direct_calls_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this module may stand in for botocore here (see the module's documentation)."""
    env = os.environ if environ is None else environ
    if env.get("RDSGATE_AWS_CLIENT", "").strip().lower() == "botocore":
        return False
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if env.get("AWS_PROFILE") or not ((key and secret) or _container_uri(env)):
        return False
    if any(env.get(name, "").strip().lower() in _TRUE for name in ("AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT")):
        return False
    return not any(env.get(name) for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"))


def dynamodb_endpoint(region: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The DynamoDB endpoint botocore would call: a configured ``AWS_ENDPOINT_URL_DYNAMODB`` or
    ``AWS_ENDPOINT_URL``, else ``https://dynamodb.<region>.<partition suffix>``; None when unknown."""
    env = os.environ if environ is None else environ
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() not in _TRUE:
        configured = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL")
        if configured:
            return configured.rstrip("/")
    for pattern, suffix in _REGION_SUFFIXES:
        if region and pattern.match(region):
            return f"https://dynamodb.{region}.{suffix}"
    return None


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


# --- DynamoDB ----------------------------------------------------------------------------------


class AwsError(Exception):
    """A call AWS refused or that could not be made: ``code`` is the service's error code (or the
    exception's type name), as botocore's ``ClientError`` carries it."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code, self.status = code, status
        self.response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


class DynamoDBClient:
    """GetItem, PutItem, Query and Scan with botocore's low-level client's parameters and results.

    One keep-alive HTTPS connection, reopened when the service closed it; throttling, 5xx
    answers and broken connections are retried (up to MAX_ATTEMPTS, exponential backoff with jitter);
    responses are checked against their ``x-amz-crc32``.
    """

    def __init__(
        self,
        region: str,
        credentials: Callable[[], Any],
        *,
        endpoint: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        ca_bundle: str | None = None,
    ) -> None:
        endpoint = endpoint or dynamodb_endpoint(region)
        if endpoint is None:
            raise ValueError(f"no DynamoDB endpoint is known for region {region!r}")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP(S) endpoint: {endpoint!r}")
        self.region = region
        self.endpoint = f"{parts.scheme}://{parts.netloc}/"
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._host, self._port = parts.hostname, parts.port
        self._credentials = credentials
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._ca_bundle = ca_bundle
        self._connection: Any = None
        self._lock = threading.Lock()

    @classmethod
    def if_allowed(cls, region: str | None, credentials: Callable[[], Any] = environment_credentials) -> DynamoDBClient | None:
        """A client when :func:`direct_calls_allowed` and an endpoint is known; None: use botocore."""
        if not direct_calls_allowed():
            return None
        endpoint = dynamodb_endpoint(region)
        signing_region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if endpoint is None or not signing_region:
            return None
        return cls(signing_region, credentials, endpoint=endpoint, ca_bundle=os.environ.get("AWS_CA_BUNDLE") or None)

    # The operations rdsgate calls, named and called as on botocore's client.

    def get_item(self, **params: Any) -> dict[str, Any]:
        return self.call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self.call("PutItem", params)

    def query(self, **params: Any) -> dict[str, Any]:
        return self.call("Query", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        return self.call("Scan", params)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(_to_wire(params), separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"{DYNAMODB_API_VERSION}.{operation}"}
        for attempt in range(1, MAX_ATTEMPTS + 1):
            credentials = self._credentials()
            if credentials is None:
                raise NoCredentialsError()
            signed = sign_request(credentials, "POST", self.endpoint, headers, body, service="dynamodb", region=self.region)
            try:
                status, response_headers, payload = self._send(signed, body)
            except (OSError, _http_errors()) as exc:  # a closed keep-alive connection, a reset, a timeout
                if attempt == MAX_ATTEMPTS:
                    raise AwsError(type(exc).__name__, "the request could not be sent") from exc
                self._backoff(attempt)
                continue
            expected = response_headers.get("x-amz-crc32")
            if expected is not None and expected.isdigit() and int(expected) != zlib.crc32(payload) & 0xFFFFFFFF:
                if attempt == MAX_ATTEMPTS:
                    raise AwsError("CRC32CheckFailed", "the response was damaged in transit", status)
                self._backoff(attempt)
                continue
            document = json.loads(payload) if payload else {}
            if status < 300:
                return _from_wire(document)
            code = str(document.get("__type") or f"HTTP{status}").rpartition("#")[2]
            message = str(document.get("message") or document.get("Message") or "")
            if attempt < MAX_ATTEMPTS and (status >= 500 or code in _RETRYABLE_CODES):
                self._backoff(attempt)
                continue
            raise AwsError(code, message, status)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _send(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            connection = self._connection or self._connect()
            try:
                connection.request("POST", "/", body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except BaseException:
                connection.close()
                self._connection = None
                raise
            if response.will_close:
                connection.close()
                self._connection = None
            return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def _connect(self) -> Any:
        import http.client

        if self._scheme == "https":
            import ssl

            context = ssl.create_default_context(cafile=self._ca_bundle or _ca_bundle())
            connection: Any = http.client.HTTPSConnection(self._host, self._port, timeout=self._connect_timeout, context=context)
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        connection.connect()
        connection.sock.settimeout(self._read_timeout)
        self._connection = connection
        return connection

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(min(1.0, 0.025 * 2 ** attempt) * random.random())


def _http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _ca_bundle() -> str | None:
    """The CA bundle botocore verifies AWS endpoints with: certifi's when installed, else botocore's own
    (found without importing either)."""
    from importlib.util import find_spec

    for name, file in (("certifi", "cacert.pem"), ("botocore", "cacert.pem")):
        spec = find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            path = os.path.join(list(spec.submodule_search_locations)[0], file)
            if os.path.exists(path):
                return path
    return None  # the system's CAs


# DynamoDB's JSON protocol carries binary values as base64; botocore's client takes and returns bytes.


def _to_wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _binary_out(item) if key in ("B", "BS") else _to_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_wire(item) for item in value]
    return value


def _binary_out(value: Any) -> Any:
    import base64

    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, set, tuple)):
        return [_binary_out(item) for item in value]
    return _to_wire(value)  # an attribute named B or BS holding a typed value


def _from_wire(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _binary_in(item) if key in ("B", "BS") else _from_wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_wire(item) for item in value]
    return value


def _binary_in(value: Any) -> Any:
    import base64

    if isinstance(value, str):
        return base64.b64decode(value)
    if isinstance(value, list):
        return [_binary_in(item) for item in value]
    return _from_wire(value)  # an attribute named B or BS holding a typed value
