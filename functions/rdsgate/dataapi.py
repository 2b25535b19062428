"""The RDS Data API's request and response shapes, translated to and from rdsgate's own.

``ExecuteStatement`` and ``BatchExecuteStatement`` map onto a query and a batch;
errors become the Data API's modelled exceptions (rest-json: ``x-amzn-ErrorType``
header and a ``message`` body), so boto3's ``rds-data`` client raises its own
exception classes. Transactions that span calls cannot be kept correct by a
function that holds no session between invocations, so ``BeginTransaction`` and
friends answer a clear error pointing to ``/transaction``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from . import errors
from .encoding import dumps
from .request import AtomicRequest, QueryRequest, Statement, parse_query

# rdsgate error code → (Data API exception, HTTP status)
ERROR_SHAPES = {
    "InvalidRequest": ("BadRequestException", 400),
    "RequestTooLarge": ("BadRequestException", 400),
    "NotFound": ("DatabaseNotFoundException", 404),
    "SqlError": ("DatabaseErrorException", 400),
    "AuthenticationFailed": ("DatabaseErrorException", 400),
    "Forbidden": ("ForbiddenException", 403),
    "ReadOnlyViolation": ("DatabaseErrorException", 400),
    "GuardrailViolation": ("ForbiddenException", 403),
    "DatabaseUnavailable": ("DatabaseUnavailableException", 504),
    "QueryTimeout": ("StatementTimeoutException", 400),
    "ResultTooLarge": ("BadRequestException", 400),
    "InvalidDefinition": ("InternalServerErrorException", 500),
    "InternalError": ("InternalServerErrorException", 500),
}
TRANSACTIONS_UNSUPPORTED = (
    "rdsgate does not keep transactions open between calls (a Lambda function holds no session across "
    "invocations); send every statement of the transaction in one call to POST /connections/{name}/transaction"
)

# java.sql.Types codes, as the Data API reports them in columnMetadata.type
_JDBC = {
    "bool": 16, "boolean": 16, "bit": -7, "tinyint": -6, "int2": 5, "smallint": 5, "int4": 4, "int": 4,
    "mediumint": 4, "int8": -5, "bigint": -5, "oid": -5, "year": 4, "float4": 7, "float": 7, "float8": 8,
    "double": 8, "numeric": 2, "decimal": 3, "money": 2, "char": 1, "bpchar": 1, "varchar": 12, "text": 12,
    "tinytext": 12, "mediumtext": -1, "longtext": -1, "name": 12, "uuid": 1111, "json": 1111, "jsonb": 1111,
    "date": 91, "time": 92, "timetz": 2013, "timestamp": 93, "datetime": 93, "timestamptz": 2014,
    "bytea": -2, "binary": -2, "varbinary": -3, "blob": -4, "tinyblob": -3, "mediumblob": -4, "longblob": -4,
    "enum": 12, "set": 12, "interval": 1111,
}
_INTEGER_TYPES = {"int2", "int4", "int8", "smallint", "int", "mediumint", "bigint", "tinyint", "oid", "year", "bit"}
_FLOAT_TYPES = {"float4", "float8", "float", "double"}
_DECIMAL_TYPES = {"numeric", "decimal"}
_BINARY_TYPES = {"bytea", "binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"}
_EXECUTE_FIELDS = {
    "resourceArn", "secretArn", "sql", "database", "schema", "parameters", "transactionId",
    "includeResultMetadata", "continueAfterTimeout", "resultSetOptions", "formatRecordsAs",
}
_BATCH_FIELDS = {"resourceArn", "secretArn", "sql", "database", "schema", "parameterSets", "transactionId"}


def connection_name(body: dict[str, Any]) -> str:
    """The connection named by ``resourceArn``: an ARN's last segment, or a bare name."""
    arn = body.get("resourceArn")
    if not isinstance(arn, str) or not arn:
        raise errors.InvalidRequest("resourceArn: required; name the connection (an ARN ending in ':<name>', or the name)")
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def parse_execute(body: Any) -> tuple[QueryRequest, dict[str, Any]]:
    """The query request of an ExecuteStatement body, and its result options."""
    _check_body(body, _EXECUTE_FIELDS)
    values, hints = _parameters(body.get("parameters") or [], "parameters")
    request = parse_query({"sql": body.get("sql"), "parameters": values, "typeHints": hints, "shape": "arrays"})
    options = body.get("resultSetOptions") or {}
    output = {
        "metadata": bool(body.get("includeResultMetadata")),
        "json": body.get("formatRecordsAs") == "JSON",
        "decimal": options.get("decimalReturnType", "STRING"),
        "long": options.get("longReturnType", "LONG"),
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
        values, hints = _parameters(parameters, f"parameterSets[{index}]")
        statements.append(Statement(sql, values, hints))
    return AtomicRequest(tuple(statements), batch=True)


def execute_response(result: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    """An ExecuteStatementResponse from rdsgate's result (records in the arrays shape)."""
    columns = result["columns"]
    response: dict[str, Any] = {"numberOfRecordsUpdated": result["updatedRows"] or 0, "generatedFields": []}
    if columns:
        if output["json"]:
            names = [column["name"] for column in columns]
            response["formattedRecords"] = dumps([dict(zip(names, row)) for row in result["records"]])
        else:
            types = [column["type"] for column in columns]
            response["records"] = [[_field(v, t, output) for v, t in zip(row, types)] for row in result["records"]]
        if output["metadata"]:
            response["columnMetadata"] = [_metadata(column) for column in columns]
    return response


def batch_response(result: dict[str, Any]) -> dict[str, Any]:
    return {"updateResults": [{"generatedFields": []} for _ in result["updateResults"]]}


def error_response(error: errors.RdsgateError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and body of the Data API exception standing for ``error``."""
    name, status = ERROR_SHAPES.get(error.code, ("InternalServerErrorException", 500))
    message = error.message
    if "hint" in error.details:
        message = f"{message} ({error.details['hint']})"
    return status, {"x-amzn-ErrorType": name}, {"message": message}


def _check_body(body: Any, allowed: set[str]) -> None:
    if not isinstance(body, dict):
        raise errors.InvalidRequest("the request must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise errors.InvalidRequest(f"{unknown[0]}: unknown field", field=unknown[0])
    if body.get("transactionId"):
        raise errors.InvalidRequest(f"transactionId: {TRANSACTIONS_UNSUPPORTED}", field="transactionId")


def _parameters(parameters: Any, where: str) -> tuple[dict[str, Any], dict[str, str]]:
    if not isinstance(parameters, list):
        raise errors.InvalidRequest(f"{where}: must be a list of {{name, value, typeHint}}", field="parameters")
    values: dict[str, Any] = {}
    hints: dict[str, str] = {}
    for index, parameter in enumerate(parameters):
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise errors.InvalidRequest(f"{where}[{index}]: needs a name", field="parameters")
        name = parameter["name"]
        values[name] = _value(parameter.get("value") or {"isNull": True}, f"{where}[{index}]")
        if parameter.get("typeHint"):
            hints[name] = parameter["typeHint"]
    return values, hints


def _value(field: Any, where: str) -> Any:
    if not isinstance(field, dict) or len(field) != 1:
        raise errors.InvalidRequest(f"{where}.value: must hold exactly one typed value", field="parameters")
    kind, value = next(iter(field.items()))
    if kind == "isNull":
        return None
    if kind in ("stringValue", "longValue", "doubleValue", "booleanValue"):
        return value
    if kind == "blobValue":
        try:
            return base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            raise errors.InvalidRequest(f"{where}.value.blobValue: must be base64", field="parameters") from None
    if kind == "arrayValue":
        return _array(value, where)
    raise errors.InvalidRequest(f"{where}.value: unknown value type {kind!r}", field="parameters")


def _array(value: Any, where: str) -> list[Any]:
    # The Data API rejects array parameters; rdsgate binds them (PostgreSQL arrays, JSON on MySQL).
    if not isinstance(value, dict) or len(value) != 1:
        raise errors.InvalidRequest(f"{where}.value.arrayValue: must hold exactly one list", field="parameters")
    kind, items = next(iter(value.items()))
    if kind == "arrayValues":
        return [_array(item, where) for item in items]
    return list(items)


def _field(value: Any, type_name: str, output: dict[str, Any]) -> dict[str, Any]:
    if value is None:
        return {"isNull": True}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if type_name in _INTEGER_TYPES:
        return {"stringValue": str(value)} if output["long"] == "STRING" else {"longValue": int(value)}
    if type_name in _DECIMAL_TYPES and output["decimal"] == "DOUBLE_OR_LONG":
        number = float(value)
        return {"longValue": int(number)} if number.is_integer() and "." not in str(value) else {"doubleValue": number}
    if type_name in _FLOAT_TYPES and isinstance(value, (int, float)):
        return {"doubleValue": value}
    if type_name in _BINARY_TYPES:
        return {"blobValue": value}  # already base64, as rest-json carries blobs
    if isinstance(value, list):
        return {"arrayValue": _array_value(value)}
    if isinstance(value, (dict, int, float)):
        return {"stringValue": json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)}
    return {"stringValue": value}


def _array_value(items: list[Any]) -> dict[str, Any]:
    if any(isinstance(item, list) for item in items):
        return {"arrayValues": [_array_value(item) for item in items]}
    if items and all(isinstance(item, bool) for item in items):
        return {"booleanValues": items}
    if items and all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        return {"longValues": items}
    if items and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        return {"doubleValues": items}
    return {"stringValues": [item if isinstance(item, str) else json.dumps(item) for item in items]}


def _metadata(column: dict[str, str]) -> dict[str, Any]:
    type_name = column["type"]
    array = type_name.startswith("_")
    return {
        "name": column["name"],
        "label": column["name"],
        "typeName": type_name,
        "type": 2003 if array else _JDBC.get(type_name, 1111),
        "arrayBaseColumnType": _JDBC.get(type_name[1:], 1111) if array else 0,
        "isSigned": type_name in _INTEGER_TYPES | _FLOAT_TYPES | _DECIMAL_TYPES,
        "isCurrency": type_name == "money",
        "isCaseSensitive": type_name in ("text", "varchar", "char", "bpchar", "name"),
        "isAutoIncrement": False,
        "nullable": 2,  # columnNullableUnknown: a result column's nullability is not reported
        "precision": 0,
        "scale": 0,
        "schemaName": "",
        "tableName": "",
    }
