"""The command line's HTTP client for a deployed or local rdsgate API, SigV4-signed with the user's credentials.

Requests are signed for ``execute-api`` with the normal AWS credentials chain
(environment, profile, SSO, instance role). Without credentials, a loopback
endpoint (``rdsgate serve``) is called unsigned. Failures become ``CliError``
messages: the API's ``{"error": {...}}`` or API Gateway's ``{"message": ...}``.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

from rdsgate import __version__

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class CliError(Exception):
    """A failure reported as a message; ``exit_code`` 1 for failures, 2 for usage."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The API answered with an error."""

    def __init__(self, status: int, document: Any) -> None:
        error = document.get("error") if isinstance(document, dict) else None
        self.error = error if isinstance(error, dict) else {}
        if isinstance(error, dict):
            self.code = str(error.get("code", "Error"))
            extras = [f"{key} {error[key]}" for key in ("sqlstate", "errno", "field") if key in error]
            message = f"{self.code}: {error.get('message', '')}" + (f" ({', '.join(extras)})" if extras else "")
            if error.get("hint"):
                message += f"\nhint: {error['hint']}"
        else:  # API Gateway's own answers (authorization, throttling): {"message": "..."}
            self.code = f"HTTP {status}"
            text = document.get("message") if isinstance(document, dict) else None
            message = f"HTTP {status}: {text or 'the API refused the request'}"
        super().__init__(message)
        self.status = status


def endpoint_region(endpoint: str) -> str | None:
    """The region of an API Gateway URL (…execute-api.<region>.amazonaws.com), if it is one."""
    match = _EXECUTE_API_HOST.search(urlsplit(endpoint).hostname or "")
    return match.group(1) if match else None


def path_for(*segments: str) -> str:
    return "".join("/" + quote(segment, safe="") for segment in segments)


class ApiClient:
    """Calls ``endpoint`` (the stage URL) with JSON bodies; returns decoded JSON documents."""

    def __init__(self, endpoint: str, *, session: Any, region: str | None = None, timeout: float = 60.0) -> None:
        if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).hostname:
            raise CliError(f"the endpoint {endpoint!r} is not an http(s) URL", exit_code=2)
        self.endpoint = endpoint.rstrip("/")
        self.session = session
        self.region = region or endpoint_region(endpoint) or session.region_name or "us-east-1"
        self.timeout = timeout
        self.loopback = urlsplit(endpoint).hostname in LOOPBACK_HOSTS

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, document: Any) -> Any:
        return self.call("POST", path, document)

    def call(self, method: str, path: str, document: Any = None) -> Any:
        url = self.endpoint + path
        body = json.dumps(document).encode("utf-8") if document is not None else b""
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"rdsgate-cli/{__version__}"}
        headers.update(self._signature_headers(method, url, body, headers))
        request = urllib.request.Request(url, data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, data = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach {self.endpoint}: {exc.reason}") from None
        except TimeoutError:
            raise CliError(f"{self.endpoint} did not answer within {self.timeout:g} s") from None
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            raise CliError(f"{self.endpoint} answered HTTP {status} with a body that is not JSON") from None
        if status >= 400:
            raise ApiError(status, decoded)
        return decoded

    def _signature_headers(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import BotoCoreError

        try:
            credentials = self.session.get_credentials()
        except BotoCoreError as exc:
            raise CliError(f"AWS credentials: {exc}") from None
        if credentials is None:
            if self.loopback:
                return {}
            raise CliError("no AWS credentials found to sign the request: configure them "
                           "(aws configure, aws sso login, AWS_PROFILE or environment variables)")
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return {name: value for name, value in request.headers.items() if name not in headers}
