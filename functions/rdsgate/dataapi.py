"""The RDS Data API's request and response shapes, translated to and from rdsgate's own.

``ExecuteStatement`` and ``BatchExecuteStatement`` map onto a query and a batch. Results
follow what the Data API returns, not rdsgate's own ``/query`` forms: json/jsonb values as
their JSON text, timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC for timestamptz),
PostgreSQL intervals in PostgreSQL's default style, MySQL AUTO_INCREMENT ids in
``generatedFields``, and no ``columnMetadata`` beside ``formattedRecords``. A result over a
limit fails the call, as the Data API does, unless the request opts into truncation with
rdsgate's extension field ``"rdsgate": {"truncate": true}``.

Errors become the Data API's modelled exceptions (rest-json: ``x-amzn-ErrorType`` header
and a ``message`` body), so boto3's ``rds-data`` client raises its own exception classes;
database errors carry the engine's codes in the Data API's wording (PostgreSQL
``ERROR: <message>; SQLState: 42P01``, MySQL ``<message>; Error code: 1146; SQLState: 42S02``).
BeginTransaction, CommitTransaction and RollbackTransaction, and ``transactionId`` on
ExecuteStatement and BatchExecuteStatement, map onto sessions (``rdsgate.sessions``): a
transaction held open across calls by a session runner.

Over ~400 lines: the Data API's whole wire shape (requests, typed values, results, errors), kept in one place to be read against AWS's.
"""

from __future__ import annotations

import base64
import datetime as dt
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from . import errors
from .encoding import dumps, utf8_length
from .request import AtomicRequest, QueryRequest, Statement, parse_query
from .service import ENVELOPE_BYTES, Limits

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
    "TransactionNotFound": ("TransactionNotFoundException", 404),
    "TransactionExpired": ("TransactionNotFoundException", 404),  # the Data API has no separate "expired"
    "TooManySessions": ("ServiceUnavailableError", 503),
}
TRANSACTIONS_UNSUPPORTED = (
    "ExecuteSql (Aurora Serverless v1 only, deprecated) is not supported; use ExecuteStatement, with "
    "BeginTransaction, CommitTransaction and RollbackTransaction for a transaction across calls"
)
_TRANSACTION_FIELDS = {True: {"resourceArn", "secretArn", "database", "schema"}, False: {"resourceArn", "secretArn", "transactionId"}}
# rdsgate's own request options ride in this body field, which the Data API does not have.
EXTENSION = "rdsgate"
EXTENSION_OPTIONS = ("truncate",)
# Set on a response whose records were cut at a limit (only when the request asked for that).
TRUNCATED_HEADER = "X-Rdsgate-Truncated"
SIZE_LIMIT = "Database response exceeded size limit"  # the Data API's own words for a result over its limit

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
_JSON_TYPES = {"json", "jsonb"}
_TIMESTAMP_TYPES = {"timestamp", "timestamptz", "datetime"}
_EXECUTE_FIELDS = {
    "resourceArn", "secretArn", "sql", "database", "schema", "parameters", "transactionId",
    "includeResultMetadata", "continueAfterTimeout", "resultSetOptions", "formatRecordsAs", EXTENSION,
}
_BATCH_FIELDS = {"resourceArn", "secretArn", "sql", "database", "schema", "parameterSets", "transactionId"}
_RESULT_SET_OPTIONS = {"decimalReturnType": ("STRING", "DOUBLE_OR_LONG"), "longReturnType": ("LONG", "STRING")}  # the first is the default

# MySQL's SQLSTATE for each server error number whose SQLSTATE is not the generic HY000, from
# the server's error reference (shared by MariaDB below 1900; 3000-3999 are MySQL's own). The
# driver reports the error number only, so the Data API's "SQLState" is looked up here.
_MYSQL_SQLSTATES_BY_STATE = {
    "01000": "1249 1261 1262 1265 1311 1642 3519 3565 3751",
    "01S00": "3713",
    "01S01": "3715",
    "02000": "1329 1643",
    "08004": "1040 1251",
    "08S01": (
        "1042 1043 1047 1053 1080 1081 1152 1153 1154 1155 1156 1157 1158 1159 1160 1161 1184 1189 "
        "1190 1218 3068"
    ),
    "0A000": "1312 1314 1335 1336 1415 1845 1846",
    "0K000": "1645",
    "0Z002": "3004",
    "20000": "1339",
    "21000": "1222 1241 1242",
    "21S01": "1058 1136",
    "22001": "1406 3907",
    "22003": "1264 1416 1690 3155 3669 3706 3752 3904",
    "22004": "1138 1263",
    "22007": "1292 1367",
    "22008": "1441",
    "22012": "1365",
    "22018": "3156 3903",
    "2201E": "3020",
    "22023": "3037 3558 3559 3560 3561 3562 3563 3564 3727",
    "22032": "3140 3141 3144 3145 3146 3147 3150 3151 3157 3158 3853",
    "22034": "3967",
    "22035": "3665 3966",
    "2203F": "3666",
    "22S00": "3520 3618 3682 3704 3705 3726 3741 3742 3743 3744",
    "22S01": "3516",
    "22S02": "3616 3731",
    "22S03": "3617 3732",
    "23000": "1022 1048 1052 1062 1169 1216 1217 1451 1452 1557 1586 1761 1762 1859 3673",
    "24000": "1325 1326",
    "25000": "1179 1207",
    "25001": "1568",
    "25006": "1792",
    "28000": "1045 1698 1873",
    "2F003": "1303",
    "2F005": "1321",
    "35000": "1758",
    "3D000": "1046",
    "40000": "3101",
    "40001": "1213",
    "42000": (
        "1044 1049 1055 1056 1057 1059 1061 1063 1064 1065 1066 1067 1068 1069 1070 1071 1072 1073 "
        "1074 1075 1083 1084 1090 1091 1101 1102 1103 1104 1106 1107 1110 1112 1113 1115 1118 1120 "
        "1121 1131 1132 1133 1139 1140 1141 1142 1143 1144 1145 1147 1148 1149 1162 1163 1164 1166 "
        "1167 1170 1171 1172 1173 1176 1177 1178 1203 1211 1226 1227 1230 1231 1232 1234 1235 1239 "
        "1248 1250 1252 1253 1280 1281 1286 1304 1305 1308 1309 1310 1313 1315 1316 1318 1319 1320 "
        "1322 1323 1324 1327 1330 1331 1332 1333 1337 1338 1370 1403 1407 1410 1413 1414 1425 1426 "
        "1427 1437 1439 1453 1458 1460 1461 1463 1582 1583 1584 1630 1641 1687 1701 3057 3061 3119 "
        "3131 3143 3148 3149 3152 3153 3154 3165 3202 3630 3667 3670 3753 3948 3999"
    ),
    "42S01": "1050",
    "42S02": "1051 1109 1146",
    "42S12": "1082",
    "42S21": "1060",
    "42S22": "1054 1247",
    "42Y07": "3503",
    "70100": "1317",
    "HY001": "1037 1038",
    "SR000": "3714",
    "SR001": "3521 3548",
    "SR002": "3517 3736 3737 3738 3739 3740",
    "SR003": "3518",
    "SR004": "3712",
    "SR005": "3716",
    "SR006": "3708 3709 3710 3711 3717 3718",
    "SU001": "3882 3902",
    "XA100": "1402",
    "XA102": "1614",
    "XA106": "1613",
    "XAE03": "1401",
    "XAE04": "1397",
    "XAE05": "1398",
    "XAE07": "1399",
    "XAE08": "1440",
    "XAE09": "1400",
}
MYSQL_SQLSTATES = {int(number): state for state, numbers in _MYSQL_SQLSTATES_BY_STATE.items() for number in numbers.split()}


@dataclass(frozen=True)
class ResultLimits:
    """The row and byte limits that cut a Data API call's result, and how to name them in an error."""

    rows: int
    rows_source: str
    bytes: int
    bytes_source: str

    def exceeded(self, row_count: int, *, may_have_written: bool) -> errors.ResultTooLarge:
        """The error of a result cut at one of these limits: which limit, its value, and the way out."""
        opt_in = f'or send "{EXTENSION}": {{"truncate": true}} to receive'
        if row_count >= self.rows:
            message = (
                f"{SIZE_LIMIT}: the result has more than {self.rows} rows, the limit set by {self.rows_source}; "
                f"add a LIMIT clause, {opt_in} the first {self.rows} rows"
            )
        else:
            message = (
                f"{SIZE_LIMIT}: the result is over {self.bytes} bytes of JSON, the limit set by {self.bytes_source}; "
                f"add a LIMIT clause or select fewer columns, {opt_in} the rows that fit"
            )
        if may_have_written:
            message += ". The statement may have written data before its result was cut: check before running it again"
        return errors.ResultTooLarge(message)


def result_limits(definition: Any, limits: Limits, response_limit_bytes: int) -> ResultLimits:
    """The limits the query service applies to a Data API call, which sends no maxRows or maxBytes."""
    if definition.max_rows:
        rows, rows_source = definition.max_rows, f"max_rows of connection {definition.name!r}"
    else:
        rows, rows_source = limits.default_max_rows, "rdsgate's default (RDSGATE_DEFAULT_MAX_ROWS)"
    if limits.max_rows_ceiling < rows:
        rows, rows_source = limits.max_rows_ceiling, "rdsgate's ceiling on rows"
    transport = response_limit_bytes - ENVELOPE_BYTES
    if definition.max_bytes and definition.max_bytes <= transport:
        size, size_source = definition.max_bytes, f"max_bytes of connection {definition.name!r}"
    else:
        size, size_source = transport, f"the API's response limit of {response_limit_bytes} bytes (less {ENVELOPE_BYTES} for the envelope)"
    return ResultLimits(rows, rows_source, size, size_source)


def may_write(sql: str, engine: str) -> bool:
    """Whether a statement may have changed data (anything but a plain query)."""
    from .sql.text import prepare

    return prepare(sql, engine).statement_type not in {"SELECT", "SHOW", "VALUES", "TABLE", "EXPLAIN", "DESCRIBE", "DESC"}


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
            "continueAfterTimeout: not supported; rdsgate runs a statement only while the call lasts and cannot "
            "keep it running after the call returns (it has no asynchronous execution yet). Leave the field out, "
            "or give the connection a longer statement_timeout_ms",
            field="continueAfterTimeout",
        )
    values, hints = _parameters(body.get("parameters") or [], "parameters")
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
        values, hints = _parameters(parameters, f"parameterSets[{index}]")
        statements.append(Statement(sql, values, hints))
    return AtomicRequest(tuple(statements), batch=True)


def execute_response(result: dict[str, Any], output: dict[str, Any], engine: str) -> dict[str, Any]:
    """An ExecuteStatementResponse from rdsgate's result (records in the arrays shape).

    ``formattedRecords`` is left as the list of record objects; ``encode_response`` makes it
    the JSON text the Data API sends (and may cut it to fit, when asked to). Columns the
    service masked (``"masked": true``) hold the mask's text whatever their type, so they are
    written as strings.
    """
    columns = result["columns"]
    response: dict[str, Any] = {
        "numberOfRecordsUpdated": result["updatedRows"] or 0,
        "generatedFields": _generated_fields(result.get("lastInsertId")),
    }
    if not columns:
        return response
    converters = [_converter(column["type"], output) for column in columns]
    for index, column in enumerate(columns):
        if column.get("masked"):
            converters[index] = _MASKED
    if output["json"]:
        names = [column["name"] for column in columns]
        _check_unique(names)
        response["formattedRecords"] = [
            {name: None if value is None else convert.plain(value) for name, value, convert in zip(names, row, converters)}
            for row in result["records"]
        ]
        return response  # the Data API sends no columnMetadata with formattedRecords
    response["records"] = [
        [_NULL if value is None else convert.field(value) for value, convert in zip(row, converters)] for row in result["records"]
    ]
    if output["metadata"]:
        response["columnMetadata"] = [_metadata(column, engine) for column in columns]
    return response


def encode_response(document: dict[str, Any], limit_bytes: int, *, truncate: bool) -> tuple[str, bool]:
    """The response's JSON text within ``limit_bytes``, and whether records were left out to fit.

    Over the limit, the call fails as the Data API's does, unless ``truncate`` (the request's
    opt-in): then the leading records that fit are kept.
    """
    key = "formattedRecords" if "formattedRecords" in document else "records" if "records" in document else None
    rows: list[Any] = document.get(key, []) if key else []

    def render(kept: list[Any]) -> str:
        out = dict(document)
        if key == "formattedRecords":
            out[key] = dumps(kept)
        elif key:
            out[key] = kept
        return dumps(out)

    text = render(rows)
    size = utf8_length(text)
    if size <= limit_bytes:
        return text, False
    opt_in = f'or send "{EXTENSION}": {{"truncate": true}} to receive the rows that fit'
    if not truncate:
        raise errors.ResultTooLarge(
            f"{SIZE_LIMIT}: the response is {size} bytes, over the API's limit of {limit_bytes} bytes; "
            f"add a LIMIT clause or select fewer columns, {opt_in}"
        )
    # Each record's share of the text: its JSON (escaped once more inside formattedRecords) and a comma.
    if key == "formattedRecords":
        sizes = [utf8_length(dumps(dumps(row))) - 2 for row in rows]
    else:
        sizes = [utf8_length(dumps(row)) for row in rows]
    room = limit_bytes - utf8_length(render([]))
    kept = used = 0
    for row_size in sizes:
        used += row_size + (1 if kept else 0)
        if used > room:
            break
        kept += 1
    if kept == 0:
        raise errors.ResultTooLarge(
            f"{SIZE_LIMIT}: a single record is over the API's limit of {limit_bytes} bytes; select fewer or smaller columns"
        )
    return render(rows[:kept]), True


def batch_response(result: dict[str, Any]) -> dict[str, Any]:
    return {"updateResults": [{"generatedFields": _generated_fields(u.get("lastInsertId"))} for u in result["updateResults"]]}


def error_response(error: errors.RdsgateError) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and body of the Data API exception standing for ``error``."""
    name, status = ERROR_SHAPES.get(error.code, ("InternalServerErrorException", 500))
    return status, {"x-amzn-ErrorType": name}, {"message": error_message(error)}


def error_message(error: errors.RdsgateError) -> str:
    """The message as the Data API words it: a database error carries the engine's codes.

    PostgreSQL: ``ERROR: <message>[; Hint: …][; Position: n]; SQLState: 42P01``.
    MySQL: ``<message>; Error code: 1146; SQLState: 42S02``.
    """
    details = error.details
    if error.code in ("SqlError", "ReadOnlyViolation"):
        if "errno" in details:
            state = details.get("sqlstate") or MYSQL_SQLSTATES.get(details["errno"], "HY000")
            return f"{error.message}; Error code: {details['errno']}; SQLState: {state}"
        if "sqlstate" in details:
            parts = [f"ERROR: {error.message}"]
            parts += [f"{label}: {details[key]}" for key, label in (("hint", "Hint"), ("position", "Position")) if details.get(key)]
            return "; ".join(parts + [f"SQLState: {details['sqlstate']}"])
    if "hint" in details:
        return f"{error.message} ({details['hint']})"
    return error.message


def _generated_fields(last_insert_id: Any) -> list[dict[str, Any]]:
    # MySQL's AUTO_INCREMENT id, as the Data API reports it; PostgreSQL has none (use RETURNING).
    return [{"longValue": int(last_insert_id)}] if last_insert_id else []


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


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise errors.InvalidRequest(
                f"formatRecordsAs: JSON records cannot hold two columns named {name!r}; give each column a unique alias",
                field="formatRecordsAs",
            )
        seen.add(name)


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


# --- result values: each column's type picks how its values are written ---------------------

_NULL = {"isNull": True}


@dataclass(frozen=True)
class _Converter:
    """How one column's non-null values are written: as a Field, and in formattedRecords."""

    field: Callable[[Any], dict[str, Any]]
    plain: Callable[[Any], Any]


_MASKED = _Converter(lambda value: {"stringValue": str(value)}, str)


def _converter(type_name: str, output: dict[str, Any]) -> _Converter:
    if type_name.startswith("_") and len(type_name) > 1:  # a PostgreSQL array of type_name[1:]
        return _array_converter(type_name[1:], output)
    text = _TEXT_FORMATS.get(type_name)
    if text is not None:
        return _Converter(lambda value: {"stringValue": text(value)}, text)
    if type_name in _INTEGER_TYPES:
        if output["long"] == "STRING":
            return _Converter(lambda value: {"stringValue": str(value)}, str)
        return _Converter(lambda value: {"longValue": int(value)}, int)
    if type_name in _DECIMAL_TYPES and output["decimal"] == "DOUBLE_OR_LONG":
        return _Converter(_double_or_long_field, _double_or_long)
    if type_name in _FLOAT_TYPES:
        return _Converter(_double_field, _same)
    if type_name in _BINARY_TYPES:
        return _Converter(lambda value: {"blobValue": value}, _same)  # already base64, as rest-json carries blobs
    if type_name in ("bool", "boolean"):
        return _Converter(lambda value: {"booleanValue": bool(value)}, bool)
    return _Converter(_any_field, _same)


def _array_converter(element_type: str, output: dict[str, Any]) -> _Converter:
    """An array column: arrayValue of the element type's list kind; lists in formattedRecords."""
    element = _converter(element_type, output)
    if element_type in _INTEGER_TYPES:
        kind, convert = "longValues", int
    elif element_type in _FLOAT_TYPES:
        kind, convert = "doubleValues", _same
    elif element_type in ("bool", "boolean"):
        kind, convert = "booleanValues", bool
    else:
        kind, convert = "stringValues", lambda value: _as_text(element.plain(value))
    # A json/jsonb element may itself be a JSON array: only the outer list is the SQL array.
    nested = element_type not in _JSON_TYPES

    def field(items: list[Any]) -> dict[str, Any]:
        if nested and any(isinstance(item, list) for item in items):
            return {"arrayValues": [field(item) if isinstance(item, list) else {kind: [item]} for item in items]}
        return {kind: [None if item is None else convert(item) for item in items]}

    def plain(items: list[Any]) -> list[Any]:
        return [None if item is None else plain(item) if nested and isinstance(item, list) else element.plain(item) for item in items]

    return _Converter(lambda value: {"arrayValue": field(value)}, plain)


def _same(value: Any) -> Any:
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _any_field(value: Any) -> dict[str, Any]:
    """A value of a type without its own rule, by its JSON form."""
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, list):
        return {"arrayValue": _array_value(value)}
    if isinstance(value, dict):
        return {"stringValue": _json_text(value)}
    return {"stringValue": value if isinstance(value, str) else str(value)}


def _array_value(items: list[Any]) -> dict[str, Any]:
    if any(isinstance(item, list) for item in items):
        return {"arrayValues": [_array_value(item) for item in items]}
    if items and all(isinstance(item, bool) for item in items):
        return {"booleanValues": items}
    if items and all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        return {"longValues": items}
    if items and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        return {"doubleValues": items}
    return {"stringValues": [item if isinstance(item, str) else _json_text(item) for item in items]}


def _double_field(value: Any) -> dict[str, Any]:
    # NaN and the infinities arrive as strings (JSON has no number for them).
    return {"doubleValue": value} if isinstance(value, (int, float)) and not isinstance(value, bool) else {"stringValue": str(value)}


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _double_or_long(value: Any) -> int | float:
    text = str(value)
    return int(text) if _INTEGER_TEXT.fullmatch(text) else float(text)


def _double_or_long_field(value: Any) -> dict[str, Any]:
    number = _double_or_long(value)
    return {"longValue": number} if isinstance(number, int) else {"doubleValue": number}


def _json_text(value: Any) -> str:
    """A json/jsonb value as compact JSON text, as the Data API writes it.

    The Data API path asks the drivers for the server's text (so JSON ``null`` is the text
    ``null``, not SQL NULL); it is written compact here.
    """
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_TIMESTAMP_TEXT = re.compile(
    r"(?P<date>[0-9]{4,}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?P<fraction>\.[0-9]+)?"
    r"(?P<offset>Z|[+-][0-9]{2}(?::?[0-9]{2}){0,2})?(?P<era> BC)?"
)


def _timestamp_text(value: Any) -> str:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]``, in UTC for values with a time zone, as the Data API writes them.

    The fraction keeps the server's digits (PostgreSQL drops trailing zeros, MySQL writes the
    column's precision); 'infinity' and BC dates stay as the server wrote them.
    """
    if not isinstance(value, str):
        return str(value)
    match = _TIMESTAMP_TEXT.fullmatch(value)
    if match is None:
        return value
    date, time, fraction, offset, era = match.group("date", "time", "fraction", "offset", "era")
    if offset and offset.strip("Z+-:0") and not era:  # the session's time zone is UTC; a statement may change it
        try:
            moment = dt.datetime.fromisoformat(f"{date}T{time}{offset}").astimezone(dt.timezone.utc)
        except ValueError:
            return value.replace("T", " ", 1)
        date, _, time = moment.replace(tzinfo=None).isoformat(" ", "seconds").partition(" ")
    return f"{date} {time}{fraction or ''}{era or ''}"


_WHOLE_HOUR_OFFSET = re.compile(r"[+-][0-9]{2}:00$")


def _timetz_text(value: Any) -> str:
    """PostgreSQL's own time-with-time-zone text: a whole-hour offset as ``+05``."""
    if isinstance(value, str) and _WHOLE_HOUR_OFFSET.search(value):
        return value[:-3]
    return str(value)


_ISO_INTERVAL = re.compile(
    r"P(?:(?P<years>-?[0-9]+)Y)?(?:(?P<months>-?[0-9]+)M)?(?:(?P<days>-?[0-9]+)D)?"
    r"(?:T(?:(?P<hours>-?[0-9]+)H)?(?:(?P<minutes>-?[0-9]+)M)?(?:(?P<minus>-?)(?P<seconds>[0-9]+(?:\.[0-9]+)?)S)?)?"
)


def _interval_text(value: Any) -> str:
    """A PostgreSQL interval in PostgreSQL's default output style: ``1 year 2 mons 3 days 04:05:06.5``.

    rdsgate's sessions write intervals in ISO 8601 (``P1Y2M3DT4H5M6.5S``); the Data API's
    sessions use PostgreSQL's default style, which this rebuilds field by field as the
    server does (a sign before a field only when the one before it was negative).
    """
    if not isinstance(value, str):
        return str(value)
    match = _ISO_INTERVAL.fullmatch(value)
    if match is None or value == "P":
        return value
    parts: list[str] = []
    before_negative = False
    for unit, key in (("year", "years"), ("mon", "months"), ("day", "days")):
        amount = int(match.group(key) or 0)
        if amount:
            plus = "+" if before_negative and amount > 0 else ""
            parts.append(f"{plus}{amount} {unit}{'' if amount == 1 else 's'}")
            before_negative = amount < 0
    hours, minutes = int(match.group("hours") or 0), int(match.group("minutes") or 0)
    whole, _, fraction = (match.group("seconds") or "0").partition(".")
    negative = hours < 0 or minutes < 0 or match.group("minus") == "-"
    if not parts or hours or minutes or int(whole) or fraction.strip("0"):
        sign = "-" if negative else "+" if before_negative else ""
        parts.append(f"{sign}{abs(hours):02d}:{abs(minutes):02d}:{int(whole):02d}" + (f".{fraction}" if fraction else ""))
    return " ".join(parts)


def _set_text(value: Any) -> str:
    """A MySQL SET as MySQL writes it: its members joined by commas."""
    return ",".join(value) if isinstance(value, list) else str(value)


_TEXT_FORMATS: dict[str, Callable[[Any], str]] = {
    "json": _json_text, "jsonb": _json_text, "timestamp": _timestamp_text, "timestamptz": _timestamp_text,
    "datetime": _timestamp_text, "timetz": _timetz_text, "interval": _interval_text, "set": _set_text,
}


def _metadata(column: dict[str, str], engine: str) -> dict[str, Any]:
    type_name = column["type"]
    array = engine == "postgres" and type_name.startswith("_")
    return {
        "name": column["name"],
        "label": column["name"],
        # The Data API reports MySQL's type names in capitals (VARCHAR, JSON), PostgreSQL's as pg_type has them.
        "typeName": type_name.upper() if engine == "mysql" else type_name,
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
