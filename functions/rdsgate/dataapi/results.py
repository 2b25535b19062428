"""The Data API's results: records or formattedRecords, generatedFields, and the limits that cut them.

A result is built from rdsgate's own (records in the arrays shape) with each column's
converter (``values``), then encoded to the response's JSON text within the API's response
limit: over it, or over the connection's row and byte limits, the call fails in the Data
API's words unless the request opted into truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import errors
from ..encoding import dumps, utf8_length
from ..service import ENVELOPE_BYTES, Limits
from ..sql.constants import READ_KINDS
from .requests import EXTENSION
from .values import MASKED, NULL, column_metadata, converter

# Set on a response whose records were cut at a limit (only when the request asked for that).
TRUNCATED_HEADER = "X-Rdsgate-Truncated"
SIZE_LIMIT = "Database response exceeded size limit"  # the Data API's own words for a result over its limit


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
    from ..sql.text import prepare

    return prepare(sql, engine).statement_type not in READ_KINDS


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
    converters = [converter(column["type"], output) for column in columns]
    for index, column in enumerate(columns):
        if column.get("masked"):
            converters[index] = MASKED
    if output["json"]:
        names = [column["name"] for column in columns]
        _check_unique(names)
        response["formattedRecords"] = [
            {name: None if value is None else convert.plain(value) for name, value, convert in zip(names, row, converters)}
            for row in result["records"]
        ]
        return response  # the Data API sends no columnMetadata with formattedRecords
    response["records"] = [
        [NULL if value is None else convert.field(value) for value, convert in zip(row, converters)] for row in result["records"]
    ]
    if output["metadata"]:
        response["columnMetadata"] = [column_metadata(column, engine) for column in columns]
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


def _generated_fields(last_insert_id: Any) -> list[dict[str, Any]]:
    # MySQL's AUTO_INCREMENT id, as the Data API reports it; PostgreSQL has none (use RETURNING).
    return [{"longValue": int(last_insert_id)}] if last_insert_id else []


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise errors.InvalidRequest(
                f"formatRecordsAs: JSON records cannot hold two columns named {name!r}; give each column a unique alias",
                field="formatRecordsAs",
            )
        seen.add(name)
