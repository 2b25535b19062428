"""A local HTTP front for the Lambda handler: each request becomes the API Gateway REST proxy event AWS would send.

Like API Gateway's ``AWS_IAM`` authorization, a ``SigV4Verifier`` (optional) rejects
unsigned or badly signed requests with 403 before the handler runs. The caller's
identity reaches the handler in ``requestContext.identity``: the signer's ARN when
verified, otherwise the configured local identity. Handler calls are serialised,
as one Lambda instance runs one event at a time.

A web page in the user's browser can reach loopback too, so the server answers only
requests addressed to itself (``Host``: a rebound DNS name is refused) and sent by its
own pages or by non-browser clients (no ``Origin``, or this server's own).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from rdsgate_client.api import LOOPBACK_HOSTS

from . import console
from .sigv4 import SignatureRejected, SigV4Verifier

LOCAL_IDENTITY = "arn:aws:iam::000000000000:user/local"
# With --auth none only: the caller a request claims to be (reviews need a second person locally).
IDENTITY_HEADER = "x-rdsgate-identity"
_CLAIMED_ARN = re.compile(r"^arn:aws:(?:iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/-]{1,512}$")
STAGE = "local"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
WILDCARDS = ("0.0.0.0", "::", "")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
Answer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body


def resource_of(path: str) -> tuple[str, dict[str, str] | None]:
    """The API resource a path falls under, and its path parameters, as the deployed API declares them."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "connections":
        parameters = {"name": unquote(parts[1])}
        if len(parts) == 2:
            return "/connections/{name}", parameters
        if len(parts) == 3:
            return "/connections/{name}/" + parts[2], parameters
        return "/connections/{name}/{proxy+}", parameters | {"proxy": "/".join(parts[2:])}
    return path, None


def identity_of(
    principal_arn: str, *, source_ip: str, user_agent: str | None, access_key: str | None
) -> dict[str, Any]:
    """``requestContext.identity`` for a caller, in API Gateway's shape."""
    account = principal_arn.split(":")[4] if principal_arn.count(":") >= 5 else None
    name = principal_arn.rsplit("/", 1)[-1]
    return {
        "accountId": account, "caller": name, "user": name, "userArn": principal_arn, "accessKey": access_key,
        "sourceIp": source_ip, "userAgent": user_agent, "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
        "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None,
    }


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``Host`` as (name, port): ``[::1]:8080`` is ("::1", 8080), ``localhost`` ("localhost", None); None: malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    elif value.count(":") > 1:
        return None  # an IPv6 address without brackets is not a Host
    else:
        name, _, port = value.partition(":")
    if port and not port.isdigit():
        return None
    return name, int(port) if port else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(value: str | None, bound_host: str, port: int) -> bool:
    """True when a ``Host`` header names this server: a loopback name, the bound address, and for a wildcard
    bind any IP address, with this port. A DNS name pointed at loopback by a web page (DNS rebinding) is not."""
    split = _split_host(value) if value else None
    if split is None or (split[1] or 80) != port:
        return False
    name = split[0]
    if name in LOOPBACK_HOSTS or name == bound_host.lower():
        return True
    return bound_host in WILDCARDS and _is_ip(name)


def origin_allowed(origin: str | None, host: str, extra: tuple[str, ...] = ()) -> bool:
    """No ``Origin`` (the CLI, boto3, curl, a same-origin GET), this server's own (its console's requests), or one
    configured for the API's CORS (``RDSGATE_CORS_ORIGINS``: a console served elsewhere, by the user's choice)."""
    if origin is None:
        return True
    origin = origin.strip().lower()
    return origin == f"http://{host.strip().lower()}" or origin in (o.lower().rstrip("/") for o in extra)


def build_event(
    method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, identity: dict[str, Any]
) -> dict[str, Any]:
    """The REST proxy event for one HTTP request (``raw_path`` may carry a query string)."""
    split = urlsplit(raw_path)
    path = unquote(split.path) or "/"
    query = parse_qs(split.query, keep_blank_values=True)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    resource, path_parameters = resource_of(split.path)
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "accountId": identity.get("accountId"),
            "apiId": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": identity,
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


class LocalApiServer:
    """Serves ``handler`` on host:port (port 0: any free port) until close()."""

    def __init__(
        self, handler: Handler, *, host: str = "127.0.0.1", port: int = 8080,
        verifier: SigV4Verifier | None = None, identity: str = LOCAL_IDENTITY, access_log: bool = True,
        origins: tuple[str, ...] | None = None,
    ) -> None:
        self.handler, self.verifier, self.identity, self.access_log = handler, verifier, identity, access_log
        if origins is None:
            from rdsgate.runtime import cors_origins  # the handler's own setting; imported late, as the handler is

            origins = tuple(cors_origins())
        self.origins = origins  # allowed besides the server's own
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Binds now: a port in use fails here, before any database starts.
        self._httpd = ThreadingHTTPServer((host, port), _request_handler_for(self))
        self._httpd.daemon_threads = True

    def refusal(self, headers: dict[str, str]) -> Answer | None:
        """403 for a request not addressed to this server or sent from another site's page; else None."""
        bound_host, port = self._httpd.server_address[:2]
        host = headers.get("host")
        if not host_allowed(host, bound_host, port):
            named = f"Host {host[:100]!r} is not this server's address" if host else "one Host header is required"
            message = f"{named}: use http://127.0.0.1:{port} or http://localhost:{port}"
        elif not origin_allowed(headers.get("origin"), host or "", self.origins):
            message = f"cross-origin requests are refused: Origin {headers['origin'][:100]!r} is not this server"
        else:
            return None
        return _error(403, message, [("x-amzn-ErrorType", "ForbiddenException")])

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve_in_background(self) -> LocalApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="rdsgate-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def respond(self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes,
                client_ip: str) -> tuple[int, list[tuple[str, str]], bytes]:
        """Authorise, build the event, call the handler; returns status, headers and body."""
        lookup = {name.lower(): value for name, value in headers}
        access_key, principal = None, self.identity
        if self.verifier is not None:
            split = urlsplit(raw_path)
            try:
                signer = self.verifier.verify(method, split.path, split.query, lookup, body)
            except SignatureRejected as exc:
                return _error(403, exc.message, [("x-amzn-ErrorType", "ForbiddenException")])
            access_key, principal = signer.access_key_id, signer.principal_arn
        elif IDENTITY_HEADER in lookup:  # --auth none: the identity the request claims (never honoured with sigv4)
            if not _CLAIMED_ARN.match(lookup[IDENTITY_HEADER].strip()):
                return _error(400, "X-Rdsgate-Identity must be an IAM or STS ARN such as arn:aws:iam::000000000000:user/alice")
            principal = lookup[IDENTITY_HEADER].strip()
        identity = identity_of(
            principal, source_ip=client_ip, user_agent=lookup.get("user-agent"), access_key=access_key)
        event = build_event(method, raw_path, headers, body, identity)
        with self._lock:
            response = self.handler(event, None)
        out: list[tuple[str, str]] = []
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out.extend((name, value) for value in values)
        seen = {name.lower() for name, _ in out}
        out.extend((n, v) for n, v in (response.get("headers") or {}).items() if n.lower() not in seen)
        payload = response.get("body") or ""
        data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode("utf-8")
        return int(response.get("statusCode", 200)), out, data


def _error(status: int, message: str, extra: list[tuple[str, str]] | None = None) -> Answer:
    """The local server's own answers, in API Gateway's shape."""
    return status, [("Content-Type", "application/json"), *(extra or [])], json.dumps({"message": message}).encode()


def _request_handler_for(server: LocalApiServer) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        server_version = "rdsgate-local"

        def _handle(self) -> None:
            started = time.perf_counter()
            try:
                status, headers, data = self._answer()
            except Exception as exc:  # noqa: BLE001 - an answer, not a dropped connection
                self.log_error("failed: %s", type(exc).__name__)
                status, headers, data = _error(500, "Internal server error")
                self.close_connection = True
            if server.access_log:
                self.log_message("%s %s -> %d (%.0f ms)", self.command, urlsplit(self.path).path, status,
                                 (time.perf_counter() - started) * 1000)
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self) -> Answer:
            length = (self.headers.get("Content-Length") or "0").strip()
            lookup = {name.lower(): value for name, value in self.headers.items()}
            if len(self.headers.get_all("Host") or []) > 1:
                lookup.pop("host")  # two Host headers: which one a proxy honoured is anyone's guess
            # Before anything else: DNS rebinding and other sites' pages get nothing, not even the console.
            refused = server.refusal(lookup)
            if refused is not None or not length.isdigit():
                self.close_connection = True  # a body it did not read
                return refused or _error(400, "Content-Length is not a number")
            # The web console (web/static, rdsgate_devstack.console): its files are served unsigned, as by CloudFront.
            page = console.page(self.command, self.path, server.verifier, server.identity)
            if page is not None:
                self.close_connection = self.close_connection or int(length) > 0  # a body it did not read
                return page
            if int(length) > MAX_BODY_BYTES:
                self.close_connection = True
                return _error(413, f"Request body over {MAX_BODY_BYTES} bytes")
            body = self.rfile.read(int(length)) if int(length) else b""
            return server.respond(self.command, self.path, list(self.headers.items()), body, self.client_address[0])

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            pass  # one line per request, written by _handle with the duration

    return RequestHandler
