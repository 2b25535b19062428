"""Verify RDS IAM auth tokens (SigV4 presigned ``connect`` URLs) like RDS does, as a pam_python module.

This file must stay stdlib-only: pam_python loads it by path into Debian's system
Python (``/usr/bin/python3``) inside the database server process (PostgreSQL
backend, running as ``postgres``) or inside MariaDB's setuid ``auth_pam_tool``.

PAM service file (written by ``rdsgate_devstack.servers``)::

    auth    required /lib/security/pam_python.so /path/iam_verifier.py /path/verifier.json
    account required pam_permit.so

pam_python passes ``argv[0]`` = this module's path and ``argv[1:]`` = the extra
arguments, so ``argv[1]`` is the config path. The config is re-read on every
login, so credentials trusted while the server runs take effect at once.

Config JSON (``load_config`` / ``VerifierConfig``)::

    {
      "region": "us-east-1",                      # region the token must be scoped to
      "endpoints": ["localhost:5432",              # host:port values the token may name
                    "127.0.0.1:5432",              # (compared case-insensitively)
                    "mydb.xxxx.us-east-1.rds.amazonaws.com:5432"],
      "credentials": {                             # access key id -> secret (+ session token)
        "ASIA...": {"secret_access_key": "...",
                    "session_token": "..."}        # or null: any/no security token accepted
      },
      "max_skew_seconds": 300                      # tolerated clock skew for future-dated tokens
    }

The file is world-readable on purpose (the servers run as postgres/mysql); it
only ever holds fake local credentials.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import hmac
import json
import os
import sys
import tempfile
import threading
from urllib.parse import quote, unquote

__all__ = ["TokenRejected", "VerifierConfig", "load_config", "verify_token"]

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "rds-db"
MAX_EXPIRES = 900
DEFAULT_MAX_SKEW = 300
# SHA-256 of the empty payload: botocore signs the body (emptied once the
# Action/DBUser params move into the query string), not UNSIGNED-PAYLOAD.
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"


class TokenRejected(Exception):
    """The token is not valid for this login; ``reason`` is short and never holds secrets."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def load_config(path: str) -> dict:
    """Read and normalise the verifier JSON config (see module docstring)."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return _normalise(raw)


def _normalise(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise ValueError("verifier config must be a JSON object")
    creds = raw.get("credentials") or {}
    if not isinstance(creds, dict):
        raise ValueError("credentials must be an object")
    return {
        "region": str(raw.get("region") or "us-east-1"),
        "endpoints": sorted({str(e).lower() for e in raw.get("endpoints") or ()}),
        "credentials": {
            str(k): {
                "secret_access_key": str(v["secret_access_key"]),
                "session_token": v.get("session_token") or None,
            }
            for k, v in creds.items()
        },
        "max_skew_seconds": int(raw.get("max_skew_seconds", DEFAULT_MAX_SKEW)),
    }


def _uri_encode(value: str) -> str:
    # SigV4 URI encoding: everything but unreserved characters is %-encoded.
    return quote(value, safe="-_.~")


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _parse(token: str) -> tuple[str, dict[str, str]]:
    host_port, sep, rest = token.partition("/")
    if not sep or not host_port or not rest.startswith("?"):
        raise TokenRejected("malformed token")
    params: dict[str, str] = {}
    for pair in rest[1:].split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value)
        if key in params:
            raise TokenRejected(f"duplicate parameter {key}")
        params[key] = value
    return host_port, params


def _canonical_host(host_port: str) -> str:
    # botocore signs the lower-cased host and drops the default https port.
    host_port = host_port.lower()
    return host_port[: -len(":443")] if host_port.endswith(":443") else host_port


def _require(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise TokenRejected(f"missing {name}")
    return value


def _signature(params: dict[str, str], host_port: str, secret: str, amz_date: str, scope: str) -> str:
    canonical_query = "&".join(
        sorted(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in params.items() if k != "X-Amz-Signature")
    )
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, f"host:{_canonical_host(host_port)}\n", "host", EMPTY_PAYLOAD_SHA256]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    date, region, service, terminator = scope.split("/")
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_token(token: str, *, db_user: str, config: dict, now: _dt.datetime | None = None) -> None:
    """Raise ``TokenRejected`` unless ``token`` is a valid RDS IAM token for ``db_user``."""
    if not isinstance(token, str) or not token:
        raise TokenRejected("empty token")
    cfg = _normalise(config)
    host_port, params = _parse(token.strip())

    if _require(params, "X-Amz-Algorithm") != ALGORITHM:
        raise TokenRejected("unsupported algorithm")
    if _require(params, "X-Amz-SignedHeaders").lower() != "host":
        raise TokenRejected("unsupported signed headers")
    if params.get("Action") != "connect":
        raise TokenRejected("action is not connect")
    if params.get("DBUser") != db_user:
        raise TokenRejected("token is for another user")
    if host_port.lower() not in cfg["endpoints"]:
        raise TokenRejected("token is for another endpoint")

    access_key, _, scope = _require(params, "X-Amz-Credential").partition("/")
    scope_parts = scope.split("/")
    if len(scope_parts) != 4 or scope_parts[2:] != [SERVICE, "aws4_request"]:
        raise TokenRejected("bad credential scope")
    scope_date, region = scope_parts[0], scope_parts[1]
    if region != cfg["region"]:
        raise TokenRejected("region mismatch")

    cred = cfg["credentials"].get(access_key)
    if cred is None:
        raise TokenRejected(f"unknown access key {access_key[:24]}")

    amz_date = _require(params, "X-Amz-Date")
    expected = _signature(params, host_port, cred["secret_access_key"], amz_date, scope)
    if not hmac.compare_digest(expected.encode(), _require(params, "X-Amz-Signature").lower().encode()):
        raise TokenRejected("signature mismatch")

    if cred["session_token"] is not None and not hmac.compare_digest(
        cred["session_token"].encode("utf-8"), params.get("X-Amz-Security-Token", "").encode("utf-8")
    ):
        raise TokenRejected("session token mismatch")

    try:
        signed_at = _dt.datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=_dt.timezone.utc)
        expires = int(_require(params, "X-Amz-Expires"))
    except ValueError:
        raise TokenRejected("bad X-Amz-Date or X-Amz-Expires") from None
    if scope_date != amz_date[:8]:
        raise TokenRejected("credential date does not match X-Amz-Date")
    if not 0 < expires <= MAX_EXPIRES:
        raise TokenRejected("X-Amz-Expires out of range")
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=_dt.timezone.utc)
    if signed_at - now > _dt.timedelta(seconds=cfg["max_skew_seconds"]):
        raise TokenRejected("token is dated in the future")
    if now > signed_at + _dt.timedelta(seconds=expires):
        raise TokenRejected("token expired")


class VerifierConfig:
    """Edits a verifier config file: each change re-reads it under a lock and rewrites it atomically (0644).

    Several instances (threads, processes, e.g. two servers sharing one file)
    may edit the same file. An existing file is kept; ``region`` and
    ``max_skew_seconds`` only seed a new one.
    """

    def __init__(self, path: str, *, region: str = "us-east-1", max_skew_seconds: int = DEFAULT_MAX_SKEW):
        self.path = os.path.abspath(path)
        self._lock = threading.Lock()
        seed = _normalise({"region": region, "max_skew_seconds": max_skew_seconds})
        self._update(lambda d: None, default=seed)

    def to_dict(self) -> dict:
        return load_config(self.path)

    @property
    def region(self) -> str:
        return self.to_dict()["region"]

    @property
    def endpoints(self) -> list[str]:
        return self.to_dict()["endpoints"]

    @property
    def credentials(self) -> dict:
        return self.to_dict()["credentials"]

    def add_endpoint(self, host: str, port: int) -> None:
        entry = f"{host}:{int(port)}".lower()
        self._update(lambda d: d.__setitem__("endpoints", sorted(set(d["endpoints"]) | {entry})))

    def remove_endpoint(self, host: str, port: int) -> None:
        entry = f"{host}:{int(port)}".lower()
        self._update(lambda d: d.__setitem__("endpoints", sorted(set(d["endpoints"]) - {entry})))

    def trust(self, access_key_id: str, secret_access_key: str, session_token: str | None = None) -> None:
        """Accept tokens signed with this key; with a session token, only tokens carrying it."""
        cred = {"secret_access_key": secret_access_key, "session_token": session_token or None}
        self._update(lambda d: d["credentials"].__setitem__(access_key_id, cred))

    def untrust(self, access_key_id: str) -> None:
        self._update(lambda d: d["credentials"].pop(access_key_id, None))

    def _update(self, change, default: dict | None = None) -> None:
        folder = os.path.dirname(self.path)
        with self._lock:
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                fcntl.flock(dir_fd, fcntl.LOCK_EX)  # the folder is the lock: no stray lock file
                if os.path.exists(self.path):
                    data = load_config(self.path)
                else:
                    data = default or _normalise({})
                change(data)
                self._write(data)
            finally:
                os.close(dir_fd)  # releases the flock

    def _write(self, data: dict) -> None:
        folder = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".verifier-", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


# ---------------------------------------------------------------- pam_python hooks


def _log(message: str) -> None:
    # PostgreSQL sends a backend's stderr to its server log; auth_pam_tool's
    # stderr ends up in the MariaDB error log. syslog is usually absent here.
    try:
        sys.stderr.write(f"rdsgate iam_verifier: {message}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _password(pamh) -> str | None:
    # PostgreSQL and MariaDB's auth_pam_tool never set PAM_AUTHTOK before
    # pam_authenticate (pamh.authtok is None); they answer the conversation.
    token = pamh.authtok
    if token is None:
        reply = pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, "Password: "))
        token = reply.resp
    return token


def pam_sm_authenticate(pamh, flags, argv):
    user = None
    try:
        if len(argv) < 2:
            _log("config path missing from the PAM service line")
            return pamh.PAM_AUTH_ERR
        user = pamh.user or pamh.get_user(None)
        token = _password(pamh)
        verify_token(token or "", db_user=user or "", config=load_config(argv[1]))
        return pamh.PAM_SUCCESS
    except TokenRejected as exc:
        _log(f"rejected login for user {user!r}: {exc.reason}")
    except (OSError, ValueError, KeyError) as exc:  # config problems; messages hold no token
        _log(f"error for user {user!r}: {type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - a PAM module must never raise
        _log(f"error for user {user!r}: {type(exc).__name__}")
    return pamh.PAM_AUTH_ERR


def pam_sm_setcred(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_acct_mgmt(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_open_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS


def pam_sm_close_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS
