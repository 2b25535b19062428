"""The Data API's request bodies: ExecuteStatement, BatchExecuteStatement and the transaction calls.

Each body is checked field by field as the Data API checks it (an unknown field is an
error) and becomes rdsgate's own request (``rdsgate.request``) plus the result options the
response is shaped by. Fields the Data API has but rdsgate cannot honour are refused with
the reason; rdsgate's own options ride in the ``"rdsgate"`` extension field.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import errors
from ..request import AtomicRequest, QueryRequest, Statement, parse_query
from .values import parse_parameters

EXECUTE_SQL_UNSUPPORTED = (
    "ExecuteSql (Aurora Serverless v1 only, deprecated) is not supported; use ExecuteStatement, with "
    "BeginTransaction, CommitTransaction and RollbackTransaction for a transaction across calls"
)
_TRANSACTION_FIELDS = {True: {"resourceArn", "secretArn", "database", "schema"}, False: {"resourceArn", "secretArn", "transactionId"}}
# rdsgate's own request options ride in this body field, which the Data API does not have.
EXTENSION = "rdsgate"
EXTENSION_OPTIONS = ("truncate",)
_EXECUTE_FIELDS = {
    "resourceArn", "secretArn", "sql", "database", "schema", "parameters", "transactionId",
    "includeResultMetadata", "continueAfterTimeout", "resultSetOptions", "formatRecordsAs", EXTENSION,
}
_BATCH_FIELDS = {"resourceArn", "secretArn", "sql", "database", "schema", "parameterSets", "transactionId"}
_RESULT_SET_OPTIONS = {"decimalReturnType": ("STRING", "DOUBLE_OR_LONG"), "longReturnType": ("LONG", "STRING")}  # the first is the default


def connection_name(body: dict[str, Any]) -> str:
    """The connection named by ``resourceArn``: an ARN's last segment, or a bare name."""
    arn = body.get("resourceArn")
    if not isinstance(arn, str) or not arn:
        raise errors.InvalidRequest("resourceArn: required; name the connection (an ARN ending in ':<name>', or the name)")
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def parse_execute(body: Any) -> tuple[QueryRequest, dict[str, Any]]:
    """The query request of an ExecuteStatement body, and its result options."""
    _check_body(body, _EXECUTE_FIELDS)
    if body.get("continueAfterTimeout") not in (None, False):
        raise errors.InvalidRequest(
            "continueAfterTimeout: not supported; an ExecuteStatement runs only while the call lasts. Leave the field "
            "out, give the connection a longer statement_timeout_ms, or run the statement asynchronously with "
            "POST /connections/{name}/statements (its result is written to S3)",
            field="continueAfterTimeout",
        )
    values, hints = parse_parameters(body.get("parameters") or [], "parameters")
    request = parse_query({"sql": body.get("sql"), "parameters": values, "typeHints": hints, "shape": "arrays"})
    request = dataclasses.replace(request, json_as_text=True)  # JSON values as the server's text, as AWS returns them
    options = body.get("resultSetOptions") or {}
    if not isinstance(options, dict):
        raise errors.InvalidRequest("resultSetOptions: must be an object", field="resultSetOptions")
    unknown = sorted(set(options) - set(_RESULT_SET_OPTIONS))
    if unknown:
        raise errors.InvalidRequest(f"resultSetOptions.{unknown[0]}: unknown option", field="resultSetOptions")
    metadata = body.get("includeResultMetadata") or False
    if not isinstance(metadata, bool):
        raise errors.InvalidRequest("includeResultMetadata: must be true or false", field="includeResultMetadata")
    output = {
        "metadata": metadata,
        "json": _choice(body.get("formatRecordsAs"), ("NONE", "JSON"), "formatRecordsAs") == "JSON",
        "decimal": _choice(options.get("decimalReturnType"), _RESULT_SET_OPTIONS["decimalReturnType"], "resultSetOptions.decimalReturnType"),
        "long": _choice(options.get("longReturnType"), _RESULT_SET_OPTIONS["longReturnType"], "resultSetOptions.longReturnType"),
        "truncate": _extension(body.get(EXTENSION))["truncate"],
    }
    return request, output


def parse_batch_execute(body: Any, *, max_sets: int) -> AtomicRequest:
    """The batch of a BatchExecuteStatement body (no parameter sets: the statement runs once)."""
    _check_body(body, _BATCH_FIELDS)
    sql = body.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise errors.InvalidRequest("sql: a non-empty string is required", field="sql")
    sets = body.get("parameterSets") or [[]]
    if not isinstance(sets, list) or len(sets) > max_sets:
        raise errors.InvalidRequest(f"parameterSets: a list of at most {max_sets} parameter lists is required", field="parameterSets")
    statements = []
    for index, parameters in enumerate(sets):
        values, hints = parse_parameters(parameters, f"parameterSets[{index}]")
        statements.append(Statement(sql, values, hints))
    return AtomicRequest(tuple(statements), batch=True)


def _check_body(body: Any, allowed: set[str]) -> None:
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the request must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise errors.InvalidRequest(f"{unknown[0]}: unknown field", field=unknown[0])
    transaction = body.get("transactionId")
    if transaction is not None and not isinstance(transaction, str):
        raise errors.InvalidRequest("transactionId: must be the id BeginTransaction returned", field="transactionId")


def check_transaction_body(body: Any, *, begin: bool) -> None:
    """The fields of BeginTransaction, or of CommitTransaction and RollbackTransaction (which need transactionId)."""
    _check_body(body, _TRANSACTION_FIELDS[begin])
    if not begin and not body.get("transactionId"):
        raise errors.InvalidRequest("transactionId: required", field="transactionId")


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value is None:
        return allowed[0]
    if value not in allowed:
        raise errors.InvalidRequest(f"{where}: must be one of {', '.join(allowed)} (got {value!r})", field=where)
    return value


def _extension(value: Any) -> dict[str, Any]:
    """rdsgate's own options: ``"rdsgate": {"truncate": true}``."""
    if value is None:
        return {"truncate": False}
    if not isinstance(value, dict):
        raise errors.InvalidRequest(f'{EXTENSION}: must be an object of rdsgate options, such as {{"truncate": true}}', field=EXTENSION)
    unknown = sorted(set(value) - set(EXTENSION_OPTIONS))
    if unknown:
        raise errors.InvalidRequest(f"{EXTENSION}.{unknown[0]}: unknown option (known: {', '.join(EXTENSION_OPTIONS)})", field=EXTENSION)
    truncate = value.get("truncate", False)
    if not isinstance(truncate, bool):
        raise errors.InvalidRequest(f"{EXTENSION}.truncate: must be true or false", field=EXTENSION)
    return {"truncate": truncate}
