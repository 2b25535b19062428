"""PostgreSQL through pg8000's core protocol: one round trip per statement, text values to JSON.

Session settings are sent in the startup packet (no extra round trip): UTC, ISO
dates and ISO 8601 intervals, and the statement timeout. Each statement runs as
Parse/Bind/Describe/Execute/Sync, an implicit transaction that commits on success
and rolls back on error. Values arrive as text and are converted once, per column,
straight to their JSON form; driver errors are mapped to rdsgate's in ``_map_error``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import socket
import ssl
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable, Mapping

from pg8000.core import (
    BIND,
    DESCRIBE,
    EXECUTE,
    FLUSH_MSG,
    IDLE,
    NULL_BYTE,
    PARSE,
    PORTAL,
    READY_FOR_QUERY,
    SYNC_MSG,
    Context,
    CoreConnection,
    _flush,
    _read,
    _write,
    H_pack,
    ci_unpack,
    i_pack,
)
from pg8000.exceptions import DatabaseError, InterfaceError

from .. import errors
from ..encoding import MAX_SAFE_INTEGER, json_loads
from ..params import JsonText
from ..sql.text import PreparedSql
from . import SOCKET_GRACE_SECONDS, SINGLE_TRIP_ROWS, STREAM_BATCH_ROWS, ConnectParams, ExecutionOptions, RowBudget, StatementResult, socket_is_idle

# Built-in type OIDs and names (pg_type.typname); others are looked up once per connection.
TYPE_NAMES = {
    16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4", 25: "text",
    26: "oid", 114: "json", 142: "xml", 199: "_json", 650: "cidr", 700: "float4", 701: "float8",
    705: "unknown", 790: "money", 829: "macaddr", 869: "inet", 1000: "_bool", 1001: "_bytea",
    1005: "_int2", 1007: "_int4", 1009: "_text", 1014: "_bpchar", 1015: "_varchar", 1016: "_int8",
    1021: "_float4", 1022: "_float8", 1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time",
    1114: "timestamp", 1115: "_timestamp", 1182: "_date", 1183: "_time", 1184: "timestamptz",
    1185: "_timestamptz", 1186: "interval", 1187: "_interval", 1231: "_numeric", 1266: "timetz",
    1270: "_timetz", 1560: "bit", 1562: "varbit", 1700: "numeric", 2249: "record", 2278: "void",
    2950: "uuid", 2951: "_uuid", 3802: "jsonb", 3807: "_jsonb",
}
ARRAY_ELEMENTS = {
    199: 114, 1000: 16, 1001: 17, 1005: 21, 1007: 23, 1009: 25, 1014: 1042, 1015: 1043, 1016: 20,
    1021: 700, 1022: 701, 1115: 1114, 1182: 1082, 1183: 1083, 1185: 1184, 1187: 1186, 1231: 1700,
    1270: 1266, 2951: 2950, 3807: 3802,
}

# Commands PostgreSQL refuses inside a transaction block. Each is a single utility command
# that runs no procedural COMMIT, so a writable request runs it outside BEGIN … COMMIT
# (with the connection's own statement timeout).
_UTILITY_WORDS = frozenset({"VACUUM", "CREATE", "DROP", "ALTER", "REINDEX", "CLUSTER"})
_OUTSIDE_BLOCK = re.compile(
    r"\s*(?:VACUUM|CLUSTER\s*$|(?:CREATE|DROP)\s+(?:DATABASE|TABLESPACE)|ALTER\s+SYSTEM"
    r"|(?:CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY|REINDEX\b[^;]*\bCONCURRENTLY)\b",
    re.IGNORECASE,
)

_JSON_OIDS = frozenset({114, 3802})  # json, jsonb

OID_BOOL, OID_BYTEA, OID_INT8, OID_FLOAT8, OID_NUMERIC, OID_JSONB, OID_UUID = 16, 17, 20, 701, 1700, 3802, 2950
OID_DATE, OID_TIME, OID_TIMETZ, OID_TIMESTAMP, OID_TIMESTAMPTZ = 1082, 1083, 1266, 1114, 1184
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
# Rows per round trip when a statement's rows stream to a sink (execute_stream): fewer, larger batches.
EXPORT_BATCH_ROWS = 2_000


class PostgresConnection:
    """One pg8000 connection over TLS, with the statement timeout set at login."""

    engine = "postgres"
    _json_as_text = False  # set per request (ExecutionOptions.json_as_text)

    def __init__(self, params: ConnectParams) -> None:
        self._iam = params.iam
        startup = {"TimeZone": "UTC", "DateStyle": "ISO", "IntervalStyle": "iso_8601", "extra_float_digits": "1"}
        if params.statement_timeout_ms:
            startup["statement_timeout"] = str(params.statement_timeout_ms)
        try:
            self._wire = _Wire(
                params.user,
                host=params.host,
                port=params.port,
                database=params.database,
                password=params.password,
                ssl_context=params.ssl_context,
                timeout=params.connect_timeout,
                application_name="rdsgate",
                startup_params=startup,
            )
        except Exception as exc:
            raise _map_error(exc, login=True, iam=self._iam) from None
        self._timeout_ms = params.statement_timeout_ms
        # pg8000 would parse values into Python objects; keep the text and convert it once, below.
        self._wire.pg_types = defaultdict(lambda: _identity)
        self._type_names = dict(TYPE_NAMES)
        self._array_elements = dict(ARRAY_ELEMENTS)

    def execute(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions) -> StatementResult:
        texts, oids = _wire_values(prepared, values)
        prefix, timeout_ms = self._request_settings(options)
        if not options.read_only and prepared.statement_type in _UTILITY_WORDS and _OUTSIDE_BLOCK.match(prepared.text):
            prefix = []  # PostgreSQL refuses these in a block; one utility command, no procedural code
        budget = RowBudget(options)
        try:
            if options.max_rows <= SINGLE_TRIP_ROWS:
                context = self._wire.run(prepared.text, texts, oids, prefix, row_limit=options.max_rows + 1)
                rows, truncated = self._admit(context.columns, context.rows, budget)
            else:
                context, rows, truncated = self._stream(prepared.text, texts, oids, prefix, budget)
        except (socket.timeout, TimeoutError):
            self.close()  # the server never answered in time: this connection cannot be trusted
            raise errors.QueryTimeout(f"the statement ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            raise _map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()
        main = context.completions[len(prefix)] if len(context.completions) > len(prefix) else (b"", 0)
        return self._result(context.columns, rows, truncated, main, budget.encoded(rows))

    def execute_many(self, statements: list[tuple[PreparedSql, Mapping[str, Any]]], options: ExecutionOptions) -> list[StatementResult]:
        """Every statement in one implicit transaction and one round trip: all commit or none do."""
        prefix, timeout_ms = self._request_settings(options)
        pipeline = [(prepared.text, *_wire_values(prepared, values)) for prepared, values in statements]
        budget = RowBudget(options)
        try:
            context = self._wire.run_many(pipeline, prefix, options.max_rows + 1)
            results = []
            for tag, count, columns, raw_rows in context.statements[len(prefix) : len(prefix) + len(pipeline)]:
                rows, truncated = self._admit(columns, raw_rows, budget)
                results.append(self._result(columns, rows, truncated, (tag, count), budget.encoded(rows)))
            return results
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(f"the statements ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            mapped = _map_error(exc, login=False, iam=self._iam)
            done = getattr(exc, "completed_statements", None)
            if done is not None and isinstance(mapped, errors.SqlError | errors.ReadOnlyViolation | errors.QueryTimeout):
                mapped.details["statement"] = done - len(prefix)
            raise mapped from None
        finally:
            self._ensure_idle()

    def describe(self, prepared: PreparedSql) -> tuple[list[str], list[dict[str, str]]]:
        """Parameter types (in ``prepared.names`` order) and result columns, without running the statement."""
        try:
            context = self._wire.describe(prepared.text)
            columns = context.columns or []
            self._learn_types(context.parameter_oids + [column["type_oid"] for column in columns])
        except Exception as exc:
            raise _map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()
        parameters = [self._type_names.get(oid, "unknown") for oid in context.parameter_oids]
        return parameters, self._result(columns, [], False, (b"", 0)).columns

    def _request_settings(self, options: ExecutionOptions) -> tuple[list[str], int | None]:
        """Per-request settings: they ride in the same implicit transaction and round trip."""
        self._json_as_text = options.json_as_text
        prefix = ["BEGIN READ ONLY" if options.read_only else "BEGIN"]
        timeout_ms = options.timeout_ms or self._timeout_ms
        if timeout_ms != self._timeout_ms:
            # Transaction-scoped: a session-level SET would pin the connection behind RDS Proxy.
            prefix.append(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
        self._wire._usock.settimeout(None if timeout_ms is None else timeout_ms / 1000 + SOCKET_GRACE_SECONDS)
        return prefix, timeout_ms

    def _result(self, columns: list[dict[str, Any]] | None, rows: list[list[Any]], truncated: bool, completion: tuple[bytes, int], encoded: Any = None) -> StatementResult:
        return StatementResult(
            columns=[{"name": c["name"], "type": self._type_names.get(c["type_oid"], "unknown")} for c in columns or []],
            sources=[(c["table_oid"], c["column_attrnum"]) if c["table_oid"] else None for c in columns or []],
            rows=rows,
            truncated=truncated,
            updated_rows=completion[1] if completion[0] in (b"INSERT", b"UPDATE", b"DELETE", b"MERGE") else None,
            encoded=encoded,
        )

    def _stream(self, statement, texts, oids, prefix, budget):
        """Fetch in batches through the open portal, stopping as soon as the budget is spent."""
        context = self._wire.open_portal(statement, texts, oids, prefix, STREAM_BATCH_ROWS)
        rows: list[list[Any]] = []
        first = True
        while True:
            batch, truncated = self._admit(context.columns, context.rows, budget, learn=False, start=first)
            first = False
            rows.extend(batch)
            context.rows = []
            if truncated or not context.suspended:
                break
            self._wire.fetch_more(context, STREAM_BATCH_ROWS)
        self._wire.finish(context)
        self._learn_types([column["type_oid"] for column in context.columns or []])
        return context, rows, truncated or context.suspended

    def _admit(self, columns: list[dict[str, Any]] | None, raw_rows: list[list[Any]] | None, budget: RowBudget, *, learn: bool = True, start: bool = True) -> tuple[list[list[Any]], bool]:
        """Convert the fetched rows to JSON values and keep those the budget admits.

        While a portal streams, no other query can run on the connection, so types not
        yet known (user-defined enums, domains) keep their text form until it closes.
        """
        columns = columns or []
        if learn:
            self._learn_types([column["type_oid"] for column in columns])
        if start:
            budget.start([column["name"] for column in columns])
        rows = raw_rows or []
        for index, column in enumerate(columns):  # column by column, in place; text columns stay as they are
            convert = self._converter(column["type_oid"])
            if convert is not _identity:
                for row in rows:
                    value = row[index]
                    if value is not None:
                        row[index] = convert(value)
        return budget.take(rows)

    def execute_stream(self, prepared: PreparedSql, values: Mapping[str, Any], options: ExecutionOptions, sink: Any) -> StatementResult:
        """Run a statement and hand its rows to ``sink`` in batches, keeping none (results written to S3).

        ``sink.start(template)`` gets the result without rows once the columns are known;
        ``sink.rows(batch)`` each batch of JSON-safe rows, read through the open portal
        (``EXPORT_BATCH_ROWS`` per round trip). Only ``max_rows`` applies; the result has no rows.
        """
        texts, oids = _wire_values(prepared, values)
        prefix, timeout_ms = self._request_settings(options)
        if not options.read_only and prepared.statement_type in _UTILITY_WORDS and _OUTSIDE_BLOCK.match(prepared.text):
            prefix = []
        budget = RowBudget(ExecutionOptions(max_rows=options.max_rows, records_as_objects=False))
        truncated = False
        try:
            # Learn the columns' types first (user-defined arrays, enums): no other query can run while the portal streams.
            try:
                described = self._wire.describe(prepared.text)
                self._learn_types([column["type_oid"] for column in described.columns or []])
            except DatabaseError:
                pass  # the statement's own run reports what is wrong with it
            context = self._wire.open_portal(prepared.text, texts, oids, prefix, EXPORT_BATCH_ROWS)
            first = True
            while True:
                batch, truncated = self._admit(context.columns, context.rows, budget, learn=False, start=first)
                if first:
                    sink.start(self._result(context.columns, [], False, (b"", 0)))
                    first = False
                context.rows = []
                if batch:
                    sink.rows(batch)
                if truncated or not context.suspended:
                    break
                self._wire.fetch_more(context, EXPORT_BATCH_ROWS)
            truncated = truncated or context.suspended
            self._wire.finish(context)
            self._learn_types([column["type_oid"] for column in context.columns or []])
        except (socket.timeout, TimeoutError):
            self.close()
            raise errors.QueryTimeout(f"the statement ran longer than {timeout_ms} ms") from None
        except Exception as exc:
            raise _map_error(exc, login=False, iam=self._iam) from None
        finally:
            self._ensure_idle()  # a sink that failed mid-stream leaves the portal open: the connection goes
        main = context.completions[len(prefix)] if len(context.completions) > len(prefix) else (b"", 0)
        return self._result(context.columns, [], truncated, main)

    def backend_id(self) -> int | None:
        """The server process of this session (what ``pg_cancel_backend`` takes)."""
        key = getattr(self._wire, "_backend_key_data", None)
        return int.from_bytes(key[:4], "big") if key else None

    def is_usable(self) -> bool:
        return self._wire._sock is not None and socket_is_idle(self._wire._usock)

    def close(self) -> None:
        try:
            self._wire.close()
        except Exception:  # closing a dead connection may fail; it is gone either way
            pass

    def _ensure_idle(self) -> None:
        # A session that could not be reset, or is still in a transaction, must not reach the next request.
        if self._wire._sock is not None and (self._wire.reset_failed or self._wire._transaction_status not in (None, IDLE)):
            self.close()

    def _learn_types(self, oids: list[int]) -> None:
        unknown = sorted({oid for oid in oids if oid not in self._type_names})
        if not unknown:
            return
        context = self._wire.run(
            "SELECT oid::int8, typname::text, typelem::int8 FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])",
            ["{" + ",".join(map(str, unknown)) + "}"],
            [0],
            [],
            0,
        )
        for oid, name, element in context.rows or []:
            self._type_names[int(oid)] = name
            if int(element) and name.startswith("_"):
                self._array_elements[int(oid)] = int(element)

    def _converter(self, oid: int) -> Callable[[str], Any]:
        element = self._array_elements.get(oid)
        if element is not None:
            return _array_converter(_identity if self._json_as_text and element in _JSON_OIDS else _SCALAR_CONVERTERS.get(element, _identity))
        if self._json_as_text and oid in _JSON_OIDS:
            return _identity
        return _SCALAR_CONVERTERS.get(oid, _identity)


class _Wire(CoreConnection):
    """pg8000's core connection plus a pipelined extended-protocol execute."""

    reset_failed = False  # set by end_request: the session could not be reset, so it is not reused

    def run(self, statement: str, params: list[str | None], oids: list[int], prefix: list[str], row_limit: int) -> Context:
        """The request's prefix (BEGIN …), the statement, then the end of the request: one round trip."""
        context = self._send(statement, params, oids, prefix, row_limit)
        self.end_request(context)
        return context

    def end_request(self, context: Context) -> None:
        """COMMIT and Sync, then the session reset and a second Sync, all in one write.

        The request ran inside BEGIN … COMMIT, so procedural COMMIT/ROLLBACK (DO blocks,
        procedures) fails instead of escaping read-only or atomicity. Whatever the request
        did to the session (temporary tables, cursors WITH HOLD, prepared statements,
        advisory locks, LISTEN, settings, role) is undone by DISCARD ALL after the Sync,
        which runs even when the request failed (the server skips only to the Sync); the
        ROLLBACK before it closes the transaction block a failed statement leaves open.
        The request's own error is raised after both parts are read; a failed reset
        marks the connection as not reusable.
        """
        self._simple(b"COMMIT")
        _write(self._sock, SYNC_MSG)
        self._simple(b"ROLLBACK")
        self._simple(b"DISCARD ALL")
        _write(self._sock, SYNC_MSG)
        _flush(self._sock)
        self._read_until_ready(context)
        reset = Context(None)
        reset.completions, reset.suspended = [], False
        self._read_until_ready(reset)
        self.reset_failed = reset.error is not None or self._transaction_status != IDLE
        if context.error is not None:
            raise context.error

    def _simple(self, statement: bytes) -> None:
        """Parse, Bind and Execute a parameterless statement on the unnamed statement and portal."""
        self._send_message(PARSE, NULL_BYTE + statement + NULL_BYTE + H_pack(0))
        self._send_message(BIND, NULL_BYTE + NULL_BYTE + H_pack(0) + H_pack(0) + H_pack(0))
        self._send_message(EXECUTE, NULL_BYTE + i_pack(0))

    def _read_until_ready(self, context: Context) -> None:
        code = None
        while code != READY_FOR_QUERY:
            code, data_len = ci_unpack(_read(self._sock, 5))
            self.message_types[code](_read(self._sock, data_len - 4), context)

    def run_many(self, statements: list[tuple[str, list[str | None], list[int]]], prefix: list[str], row_limit: int) -> Context:
        """The prefix, several statements, then the end of the request: one transaction, one round trip."""
        context = Context(None)
        context.completions, context.suspended, context.statements = [], False, []
        for setting in prefix:
            self._simple(setting.encode("ascii"))
        for statement, params, oids in statements:
            self.send_PARSE(NULL_BYTE, statement, oids)
            self.send_BIND(NULL_BYTE, params)
            self._send_message(DESCRIBE, PORTAL + NULL_BYTE)
            self._send_message(EXECUTE, NULL_BYTE + i_pack(row_limit))
        try:
            self.end_request(context)
        except DatabaseError as exc:
            exc.completed_statements = len(context.statements)  # which statement failed
            raise
        return context

    def describe(self, statement: str) -> Context:
        """Parse and describe the unnamed statement: its parameter types and result columns."""
        context = Context(statement)
        context.parameter_oids = []
        self.send_PARSE(NULL_BYTE, statement, ())
        self.send_DESCRIBE_STATEMENT(NULL_BYTE)
        _write(self._sock, SYNC_MSG)
        _flush(self._sock)
        self.handle_messages(context)
        return context

    def handle_PARAMETER_DESCRIPTION(self, data: bytes, context: Context) -> None:
        count = int.from_bytes(data[:2], "big")
        context.parameter_oids = [int.from_bytes(data[2 + 4 * i : 6 + 4 * i], "big") for i in range(count)]

    def open_portal(self, statement: str, params: list[str | None], oids: list[int], prefix: list[str], batch: int) -> Context:
        """Like run() but without Sync: the portal stays open for fetch_more()."""
        context = self._send(statement, params, oids, prefix, batch)
        _write(self._sock, FLUSH_MSG)  # ask the server for the output so far, without ending the transaction
        _flush(self._sock)
        self._pump(context, len(prefix) + 1)
        return context

    def fetch_more(self, context: Context, batch: int) -> None:
        context.suspended = False
        self._send_message(EXECUTE, NULL_BYTE + i_pack(batch))
        _write(self._sock, FLUSH_MSG)
        _flush(self._sock)
        self._pump(context, len(context.completions) + 1)

    def finish(self, context: Context) -> None:
        """End the request: COMMIT closes the portal; the reset follows (see end_request)."""
        self.end_request(context)

    def _send(self, statement, params, oids, prefix, row_limit) -> Context:
        context = Context(statement)
        context.completions, context.suspended = [], False
        for setting in prefix:
            self._simple(setting.encode("ascii"))
        self.send_PARSE(NULL_BYTE, statement, oids)
        self.send_BIND(NULL_BYTE, params)
        self._send_message(DESCRIBE, PORTAL + NULL_BYTE)
        # A row limit suspends the portal: rows past it are never sent.
        self._send_message(EXECUTE, NULL_BYTE + i_pack(row_limit))
        return context

    def _pump(self, context: Context, completions: int) -> None:
        """Read until the portal is suspended, the statement completes, or the server reports an error."""
        while context.error is None and not context.suspended and len(context.completions) < completions:
            code, data_len = ci_unpack(_read(self._sock, 5))
            self.message_types[code](_read(self._sock, data_len - 4), context)
        if context.error is not None:
            self.finish(context)  # the server skips to Sync; finish() then raises the error

    def handle_PORTAL_SUSPENDED(self, data: bytes, context: Context) -> None:
        context.suspended = True
        self._end_statement(context, b"", 0)

    def handle_COMMAND_COMPLETE(self, data: bytes, context: Context) -> None:
        words = data[:-1].split(b" ")
        count = int(words[-1]) if words[-1].isdigit() else 0
        context.completions.append((words[0], count))
        self._end_statement(context, words[0], count)

    @staticmethod
    def _end_statement(context: Context, tag: bytes, count: int) -> None:
        # In run_many, each statement's columns and rows are set aside as it ends.
        statements = getattr(context, "statements", None)
        if statements is not None:
            statements.append((tag, count, context.columns, context.rows or []))
            context.columns, context.rows, context.input_funcs = None, None, []


# --- values in: JSON parameters to text plus a type OID -------------------------------------

def _wire_values(prepared: PreparedSql, values: Mapping[str, Any]) -> tuple[list[str | None], list[int]]:
    texts, oids = [], []
    for name in prepared.names:
        text, oid = _to_wire(values[name])
        texts.append(text)
        oids.append(oid)
    return texts, oids


def _to_wire(value: Any) -> tuple[str | None, int]:
    if value is None:
        return None, 0
    if value is True or value is False:
        return ("true" if value else "false"), OID_BOOL
    if isinstance(value, JsonText):
        return str(value), OID_JSONB
    if isinstance(value, str):
        return value, 0  # unknown: the server infers the type from the context
    if isinstance(value, int):
        return str(value), (OID_INT8 if INT8_MIN <= value <= INT8_MAX else OID_NUMERIC)
    if isinstance(value, float):
        return repr(value), OID_FLOAT8
    if isinstance(value, Decimal):
        return str(value), OID_NUMERIC
    if isinstance(value, dt.datetime):
        return value.isoformat(), (OID_TIMESTAMP if value.tzinfo is None else OID_TIMESTAMPTZ)
    if isinstance(value, dt.date):
        return value.isoformat(), OID_DATE
    if isinstance(value, dt.time):
        return value.isoformat(), (OID_TIME if value.tzinfo is None else OID_TIMETZ)
    if isinstance(value, uuid.UUID):
        return str(value), OID_UUID
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":")), OID_JSONB
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex(), OID_BYTEA
    if isinstance(value, list):
        return _array_literal(value), 0
    raise errors.InvalidRequest(f"parameters: unsupported value of type {type(value).__name__}", field="parameters")


def _array_literal(items: list[Any]) -> str:
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list):
            parts.append(_array_literal(item))
        else:
            text = json.dumps(item, separators=(",", ":")) if isinstance(item, dict) else _to_wire(item)[0]
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


# --- values out: text to JSON, once per value -------------------------------------------------

def _identity(text: str) -> str:
    return text


def _int(text: str) -> int | str:
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else text


def _float(text: str) -> float | str:
    return text if text in ("NaN", "Infinity", "-Infinity") else float(text)


def _bool(text: str) -> bool:
    return text == "t"


def _bytea(text: str) -> str:
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")  # text is \x<hex>


def _with_offset(text: str, start: int) -> str:
    """ISO 8601 wants ±hh:mm; PostgreSQL writes a whole-hour offset as ±hh."""
    sign = max(text.rfind("+", start), text.rfind("-", start))
    return text + ":00" if sign != -1 and len(text) - sign == 3 else text


def _timetz(text: str) -> str:
    return _with_offset(text, 0)


def _timestamp(text: str) -> str:
    return text.replace(" ", "T", 1) if text[:1].isdigit() else text  # 'infinity' stays as it is


def _timestamptz(text: str) -> str:
    return _with_offset(_timestamp(text), 10) if text[:1].isdigit() else text


_SCALAR_CONVERTERS: dict[int, Callable[[str], Any]] = {
    16: _bool, 17: _bytea, 20: _int, 21: int, 23: int, 26: int, 114: json_loads, 3802: json_loads,
    700: _float, 701: _float, 1114: _timestamp, 1184: _timestamptz, 1266: _timetz,
}


def _array_converter(element: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return _parse_array(text, element)

    return convert


def _parse_array(text: str, element: Callable[[str], Any]) -> list[Any]:
    """Parse PostgreSQL's array text form ``{1,"a b",NULL,{2,3}}`` into nested lists."""
    if text[:1] == "[":  # explicit bounds prefix such as [0:1]={...}
        text = text[text.index("=") + 1:]
    stack: list[list[Any]] = []
    result: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{":
            stack.append([])
            i += 1
        elif char == "}":
            done = stack.pop()
            if stack:
                stack[-1].append(done)
            else:
                result = done
            i += 1
        elif char == ",":
            i += 1
        elif char == '"':
            i += 1
            chunk = []
            while text[i] != '"':
                if text[i] == "\\":
                    i += 1
                chunk.append(text[i])
                i += 1
            stack[-1].append(element("".join(chunk)))
            i += 1
        else:
            end = i
            while text[end] not in ",}":
                end += 1
            token = text[i:end]
            stack[-1].append(None if token == "NULL" else element(token))
            i = end
    return result


# --- errors: the one place pg8000's exceptions become rdsgate's -------------------------------

def _map_error(exc: BaseException, *, login: bool, iam: bool) -> errors.RdsgateError:
    if isinstance(exc, errors.RdsgateError):
        return exc
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        fields = exc.args[0]
        sqlstate, message, hint = fields.get("C", ""), fields.get("M", "database error"), fields.get("H")
        if sqlstate.startswith("28"):
            return errors.AuthenticationFailed(
                f"the database refused the login: {message}",
                sqlstate=sqlstate,
                hint=errors.IAM_LOGIN_HINT if iam else errors.STATIC_LOGIN_HINT,
            )
        if sqlstate == "25006":
            return errors.ReadOnlyViolation(f"the connection is read-only: {message}", sqlstate=sqlstate)
        if sqlstate == "57014":
            return errors.QueryTimeout(f"the statement was cancelled: {message}", sqlstate=sqlstate)
        if sqlstate == "53300":  # too_many_connections: no slot free (max_connections, or the role's limit)
            return errors.DatabaseUnavailable(
                f"the database has too many connections: {message}", sqlstate=sqlstate, retry_after=1
            )
        if sqlstate in ("53400", "57P03") or sqlstate.startswith(("08", "57P")):
            return errors.DatabaseUnavailable(f"the database is unavailable: {message}", sqlstate=sqlstate, retry_after=1)
        if login:
            return errors.DatabaseUnavailable(f"the database refused the connection: {message}", sqlstate=sqlstate)
        # "P": where in the statement the server found the error (1-based), for the Data API's "; Position: n".
        return errors.SqlError(message, sqlstate=sqlstate, hint=hint, position=fields.get("P"))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return errors.DatabaseUnavailable(f"TLS verification of the database failed: {exc.verify_message}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return errors.DatabaseUnavailable("the database did not answer in time", retry_after=1)
    if isinstance(exc, InterfaceError) and "refuses SSL" in str(exc):
        return errors.DatabaseUnavailable("the database does not offer TLS; rdsgate never connects without it")
    if isinstance(exc, (InterfaceError, OSError, ssl.SSLError, EOFError)):
        return errors.DatabaseUnavailable(f"the database could not be reached ({type(exc).__name__})", retry_after=1)
    return errors.InternalError(f"unexpected driver failure ({type(exc).__name__})")
