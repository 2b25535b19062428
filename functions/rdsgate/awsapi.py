"""The AWS calls of the query path without botocore's client machinery: SigV4 by hand, DynamoDB over HTTPS.

A fresh botocore session, a DynamoDB client and ``botocore.auth`` cost a cold start about
200 ms (bench/RESULTS.md, *(c) cold start*); the first request needs only an IAM token
(a SigV4 presigned ``connect`` request) and a GetItem. This module does those two with
``hmac``, ``hashlib`` and ``http.client``:

* :func:`rdsgate.awsauth.presign_db_auth_token` is the token ``rds.generate_db_auth_token`` (botocore's
  ``SigV4QueryAuth``) returns, byte for byte (tests/unit/test_awsapi.py compares them); the credentials
  and the signing are :mod:`rdsgate.awsauth`'s.
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

import json
import os
import random
import re
import threading
import time
import zlib
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from .awsauth import AwsError, NoCredentialsError, container_uri, environment_credentials, sign_request

__all__ = ["DYNAMODB_API_VERSION", "MAX_ATTEMPTS", "direct_calls_allowed", "dynamodb_endpoint", "DynamoDBClient"]

DYNAMODB_API_VERSION = "DynamoDB_20120810"
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


def direct_calls_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this module may stand in for botocore here (see the module's documentation)."""
    env = os.environ if environ is None else environ
    if env.get("RDSGATE_AWS_CLIENT", "").strip().lower() == "botocore":
        return False
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if env.get("AWS_PROFILE") or not ((key and secret) or container_uri(env)):
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


# --- DynamoDB ----------------------------------------------------------------------------------


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
