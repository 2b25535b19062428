"""A query request as every entry point receives it (API routes, invoke, Data API), validated field by field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .errors import InvalidRequest
from .params import TYPE_HINTS

__all__ = [
    "AtomicRequest",
    "BATCH_FIELDS",
    "QUERY_FIELDS",
    "QueryRequest",
    "SHAPES",
    "Statement",
    "TRANSACTION_FIELDS",
    "decode_json_body",
    "parse_batch",
    "parse_query",
    "parse_transaction",
]

SHAPES = ("objects", "arrays")
QUERY_FIELDS = frozenset(
    {"sql", "parameters", "typeHints", "shape", "maxRows", "maxBytes", "readOnly", "timeoutMs", "idempotencyKey"}
)


@dataclass(frozen=True, kw_only=True)
class RequestOptions:
    """The options every request carries: result shape and limits, read-only, timeout, idempotency key."""

    shape: str = "objects"
    max_rows: int | None = None
    max_bytes: int | None = None
    read_only: bool = False
    timeout_ms: int | None = None
    idempotency_key: str | None = None

    def options(self) -> dict[str, Any]:
        """These options alone, as keyword arguments of another request."""
        return {f.name: getattr(self, f.name) for f in fields(RequestOptions)}


@dataclass(frozen=True)
class QueryRequest(RequestOptions):
    """One statement to run, with its parameters and result options."""

    sql: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    type_hints: Mapping[str, str] = field(default_factory=dict)
    json_as_text: bool = False  # json/jsonb values as the server's text (set by the Data API path, not by callers)


def parse_query(document: Any, *, allowed: frozenset[str] = QUERY_FIELDS) -> QueryRequest:
    """Validate a decoded request document; errors name the offending field."""
    _check_fields(document, allowed)
    return QueryRequest(
        sql=_sql(document), parameters=_parameters(document), type_hints=_type_hints(document), **_options(document)
    )


def _check_fields(document: Any, allowed: frozenset[str]) -> None:
    if not isinstance(document, dict):
        raise InvalidRequest("the request must be a JSON object")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})", field=unknown[0])


def _sql(document: dict[str, Any]) -> str:
    sql = document.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidRequest("sql: a non-empty string is required", field="sql")
    return sql


def _parameters(document: dict[str, Any]) -> dict[str, Any]:
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidRequest("parameters: must be an object of name to value", field="parameters")
    return parameters


def _type_hints(document: dict[str, Any]) -> dict[str, str]:
    type_hints = document.get("typeHints") or {}
    if not isinstance(type_hints, dict):
        raise InvalidRequest("typeHints: must be an object of parameter name to type", field="typeHints")
    for name, hint in type_hints.items():
        if hint not in TYPE_HINTS:
            raise InvalidRequest(
                f"typeHints: {name!r} has unknown type {hint!r} (use one of {', '.join(TYPE_HINTS)})", field="typeHints"
            )
    return type_hints


def _options(document: dict[str, Any]) -> dict[str, Any]:
    """The fields of RequestOptions, checked (after the unknown fields: a field a request does not allow is absent)."""
    shape = document.get("shape", "objects")
    if shape not in SHAPES:
        raise InvalidRequest("shape: must be 'objects' or 'arrays'", field="shape")
    read_only = document.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise InvalidRequest("readOnly: must be true or false", field="readOnly")
    key = document.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 256):
        raise InvalidRequest("idempotencyKey: must be a string of 1 to 256 characters", field="idempotencyKey")
    return {
        "shape": shape,
        "max_rows": _positive(document, "maxRows"),
        "max_bytes": _positive(document, "maxBytes"),
        "read_only": read_only,
        "timeout_ms": _positive(document, "timeoutMs"),
        "idempotency_key": key,
    }


# Upper bounds: larger values mean nothing (a Lambda function runs 15 minutes at most) and
# would overflow what the databases accept.
MAXIMA = {"maxRows": 100_000_000, "maxBytes": 10**12, "timeoutMs": 900_000}


def _positive(document: dict[str, Any], name: str) -> int | None:
    value = document.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest(f"{name}: must be a whole number of at least 1", field=name)
    if value is not None and value > MAXIMA[name]:
        raise InvalidRequest(f"{name}: must be at most {MAXIMA[name]}", field=name)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json_body(body: str | bytes | None) -> Any:
    """Decode a request body strictly, raising InvalidRequest when malformed.

    Refused: NaN and Infinity, bytes that are not UTF-8, nesting deeper than
    ``MAX_JSON_DEPTH``, and escaped lone surrogates (``"\\ud800"``), which are not text
    and would fail later, deep in a driver, as a 5xx.
    """
    if body is None or body == "" or body == b"":
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidRequest("the request body is not valid UTF-8") from None
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidRequest(f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(text):
        _check_values(document)  # only bodies that could break a rule pay for the walk
    return document


MAX_JSON_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _check_values(document: Any) -> None:
    """Walk the document without recursion: depth, and strings that are valid text."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise InvalidRequest(f"the request body nests JSON deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("the request body has a string with a lone surrogate (\\ud800-\\udfff), which is not text") from None


@dataclass(frozen=True)
class Statement:
    """One statement of an atomic request."""

    sql: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    type_hints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AtomicRequest(RequestOptions):
    """Statements that all commit or none do: a batch (one SQL, many parameter sets) or a transaction."""

    statements: tuple[Statement, ...]
    batch: bool


BATCH_FIELDS = frozenset({"sql", "parameterSets", "typeHints", "readOnly", "timeoutMs", "idempotencyKey"})
TRANSACTION_FIELDS = frozenset({"statements", "shape", "maxRows", "maxBytes", "readOnly", "timeoutMs", "idempotencyKey"})
STATEMENT_FIELDS = frozenset({"sql", "parameters", "typeHints"})


def parse_batch(document: Any, *, max_sets: int, allowed: frozenset[str] = BATCH_FIELDS) -> AtomicRequest:
    """``{"sql", "parameterSets": [{...}, ...], "typeHints"}``: one statement, many parameter sets."""
    _check_fields(document, allowed)
    sql, type_hints, options = _sql(document), _type_hints(document), _options(document)
    sets = document.get("parameterSets")
    if not isinstance(sets, list) or not sets:
        raise InvalidRequest("parameterSets: a non-empty list of parameter objects is required", field="parameterSets")
    if len(sets) > max_sets:
        raise InvalidRequest(f"parameterSets: {len(sets)} sets is over the limit of {max_sets}", field="parameterSets")
    for index, parameters in enumerate(sets):
        if not isinstance(parameters, dict):
            raise InvalidRequest(f"parameterSets[{index}]: must be an object of name to value", field="parameterSets")
    statements = tuple(Statement(sql, parameters, type_hints) for parameters in sets)
    return AtomicRequest(statements, batch=True, **options)  # BATCH_FIELDS has no shape or result limits


def parse_transaction(document: Any, *, max_statements: int, allowed: frozenset[str] = TRANSACTION_FIELDS) -> AtomicRequest:
    """``{"statements": [{"sql", "parameters", "typeHints"}, ...], ...}``: all commit or none do."""
    statements = document.get("statements") if isinstance(document, dict) else None
    if not isinstance(statements, list) or not statements:
        raise InvalidRequest("statements: a non-empty list of statements is required", field="statements")
    if len(statements) > max_statements:
        raise InvalidRequest(f"statements: {len(statements)} statements is over the limit of {max_statements}", field="statements")
    parsed = []
    for index, statement in enumerate(statements):
        try:
            one = parse_query(statement, allowed=STATEMENT_FIELDS)
        except InvalidRequest as exc:
            raise InvalidRequest(f"statements[{index}].{exc.message}", field="statements") from None
        parsed.append(Statement(one.sql, one.parameters, one.type_hints))
    _check_fields(document, allowed)
    return AtomicRequest(tuple(parsed), batch=False, **_options(document))
