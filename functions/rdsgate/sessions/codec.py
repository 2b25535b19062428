"""What travels on a session's channel: session ids, requests and answers as bytes.

A session id is 256 random bits (``secrets.token_urlsafe(32)``); the table keys a session by
the id's SHA-256, so the id itself is held only by its caller. Requests carry the request
document, already validated by the API function, and the facts of the call the runner needs
(caller, request id, how long the caller waits). Answers carry the result document, or the
error to raise on the API side as the same class. Values are JSON; parameter values that JSON
cannot hold (bytes, from the Data API's blobValue) are tagged. Nothing is pickled: the runner
trusts the table no more than it must.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import Any

from .. import errors
from ..encoding import dumps

_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def key_of(session_id: Any) -> str | None:
    """The table key of a session id; None for anything that is not one (it can name no session)."""
    if not isinstance(session_id, str) or not _ID.match(session_id):
        return None
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def encode_request(document: dict[str, Any]) -> bytes:
    return json.dumps(_tag(document), separators=(",", ":")).encode("utf-8")


def decode_request(data: bytes) -> dict[str, Any]:
    return _untag(json.loads(data))


def encode_result(document: Any) -> bytes:
    return dumps(document).encode("utf-8")


def decode_result(data: bytes) -> Any:
    return json.loads(data)


def encode_error(error: BaseException) -> bytes:
    if isinstance(error, errors.RdsgateError):
        document = {"class": type(error).__name__, "message": error.message, "details": error.details}
    else:
        document = {"class": "InternalError", "message": "the session failed unexpectedly; see the runner's log", "details": {}}
    return json.dumps(document, separators=(",", ":"), default=str).encode("utf-8")


def decode_error(data: bytes | dict[str, Any]) -> errors.RdsgateError:
    document = json.loads(data) if isinstance(data, (bytes, str)) else data
    cls = _ERRORS.get(document.get("class"), errors.InternalError)
    error = cls(str(document.get("message") or "the session failed"), **(document.get("details") or {}))
    return error


_ERRORS = {cls.__name__: cls for cls in errors.RdsgateError.__subclasses__()}
for _cls in list(_ERRORS.values()):
    for _sub in _cls.__subclasses__():
        _ERRORS.setdefault(_sub.__name__, _sub)
_ERRORS["RdsgateError"] = errors.InternalError


def _tag(document: dict[str, Any]) -> dict[str, Any]:
    out = dict(document)
    for field in ("parameters",):
        if isinstance(out.get(field), dict):
            out[field] = {name: _tag_value(value) for name, value in out[field].items()}
    if isinstance(out.get("parameterSets"), list):
        out["parameterSets"] = [{n: _tag_value(v) for n, v in s.items()} for s in out["parameterSets"]]
    if isinstance(out.get("statements"), list):
        out["statements"] = [_tag(s) for s in out["statements"]]
    if isinstance(out.get("request"), dict):
        out["request"] = _tag(out["request"])
    return out


def _untag(document: dict[str, Any]) -> dict[str, Any]:
    out = dict(document)
    if isinstance(out.get("parameters"), dict):
        out["parameters"] = {name: _untag_value(value) for name, value in out["parameters"].items()}
    if isinstance(out.get("parameterSets"), list):
        out["parameterSets"] = [{n: _untag_value(v) for n, v in s.items()} for s in out["parameterSets"]]
    if isinstance(out.get("statements"), list):
        out["statements"] = [_untag(s) for s in out["statements"]]
    if isinstance(out.get("request"), dict):
        out["request"] = _untag(out["request"])
    return out


def _tag_value(value: Any) -> list[Any]:
    if isinstance(value, (bytes, bytearray)):
        return ["b", base64.b64encode(bytes(value)).decode("ascii")]
    return ["j", value]


def _untag_value(value: Any) -> Any:
    kind, inner = value
    return base64.b64decode(inner) if kind == "b" else inner
