"""A query request as both entry points receive it, validated field by field."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InvalidRequest
from .params import TYPE_HINTS

SHAPES = ("objects", "arrays")
QUERY_FIELDS = frozenset(
    {"sql", "parameters", "typeHints", "shape", "maxRows", "maxBytes", "readOnly", "timeoutMs", "idempotencyKey"}
)


@dataclass(frozen=True)
class QueryRequest:
    """One statement to run, with its parameters and result options."""

    sql: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    type_hints: Mapping[str, str] = field(default_factory=dict)
    shape: str = "objects"
    max_rows: int | None = None
    max_bytes: int | None = None
    read_only: bool = False
    timeout_ms: int | None = None
    idempotency_key: str | None = None


def parse_query(document: Any, *, allowed: frozenset[str] = QUERY_FIELDS) -> QueryRequest:
    """Validate a decoded request document; errors name the offending field."""
    if not isinstance(document, dict):
        raise InvalidRequest("the request must be a JSON object")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})", field=unknown[0])
    sql = document.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidRequest("sql: a non-empty string is required", field="sql")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters: must be an object of name to value", field="parameters")
    type_hints = document.get("typeHints") or {}
    if not isinstance(type_hints, dict):
        raise InvalidRequest("typeHints: must be an object of parameter name to type", field="typeHints")
    for name, hint in type_hints.items():
        if hint not in TYPE_HINTS:
            raise InvalidRequest(
                f"typeHints: {name!r} has unknown type {hint!r} (use one of {', '.join(TYPE_HINTS)})", field="typeHints"
            )
    shape = document.get("shape", "objects")
    if shape not in SHAPES:
        raise InvalidRequest("shape: must be 'objects' or 'arrays'", field="shape")
    read_only = document.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise InvalidRequest("readOnly: must be true or false", field="readOnly")
    key = document.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 256):
        raise InvalidRequest("idempotencyKey: must be a string of 1 to 256 characters", field="idempotencyKey")
    return QueryRequest(
        sql=sql,
        parameters=parameters,
        type_hints=type_hints,
        shape=shape,
        max_rows=_positive(document, "maxRows"),
        max_bytes=_positive(document, "maxBytes"),
        read_only=read_only,
        timeout_ms=_positive(document, "timeoutMs"),
        idempotency_key=key,
    )


def _positive(document: dict[str, Any], name: str) -> int | None:
    value = document.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest(f"{name}: must be a whole number of at least 1", field=name)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json_body(body: str | bytes | None) -> Any:
    """Decode a request body strictly (no NaN or Infinity), raising InvalidRequest when malformed."""
    if body is None or body == "" or body == b"":
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc})") from None
