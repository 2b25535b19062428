"""The PostgreSQL v3 wire protocol for `rdsgate connect`: psql, pg8000, psycopg, asyncpg and friends on a local port.

Startup (SSLRequest and GSSENCRequest answered 'N'), trust or a cleartext password
on loopback, the simple query protocol, and the extended protocol (Parse, Bind,
Describe, Execute, Sync, Close, Flush) with text and binary parameters and results.
Each statement becomes an API call through the client's ``session.Session``; Describe of a prepared
statement asks ``/describe``. Result values arrive as the API's JSON and leave as
PostgreSQL's text forms (``pgtypes``) or binary forms (``pgbinary``), typed by OIDs
looked up from the API's type names; binary parameters are read into text
(``pgparams``). What the tunnel answers itself (SET, SHOW of its own settings,
PREPARE/EXECUTE, …) is in ``pglocal``.

Over 400 lines: the extended protocol's message loop is one state machine (statements, portals, Sync); its
separable parts are already the mixins ``pgstartup``, ``pgpipeline`` and ``pglocal``.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Callable

from .gateway import Notice, Outcome, TunnelError
from .pgbinary import result_bytes
from .pgframes import Portal, Prepared, Reader, Wire, cstr, sqlstate
from .pglocal import MESSAGE_LEVELS, LocalStatements
from .pgoids import OIDS
from .pgparams import parameter_text
from .pgpipeline import Pipeline
from .pgstartup import Startup
from .pgtypes import ROW_KEYWORDS, TYPE_LENGTHS, canonical_name, cast_type, command_tag, value_text
from .wiresql import Analysis, analyse, dollar_numbers, split

# -- one client ----------------------------------------------------------------------------------


def serve_client(sock: Any, tunnel: Any) -> None:
    PgClient(sock, tunnel).run()


class PgClient(Startup, Pipeline, LocalStatements):
    def __init__(self, sock: Any, tunnel: Any) -> None:
        self.sock, self.tunnel = sock, tunnel
        self.wire = Wire(sock)
        self.dialect = tunnel.dialect
        self.session = tunnel.new_session(self.dialect, abort_on_error=True)
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.settings: dict[str, str] = {}
        self.skipping = False  # after an error in the extended protocol, until Sync
        self.deferred: list[tuple[Portal, int]] = []  # writes waiting for Sync, and where their answer goes
        self.starting = False

    # -- startup

    def run(self) -> None:
        self.sock.settimeout(30.0)
        parameters = self._startup()
        if parameters is None:
            return
        self.sock.settimeout(None)
        while True:
            kind, payload = self.wire.read_message()
            if kind == b"X":
                return
            if self.skipping and kind != b"S":
                continue
            handler = self._HANDLERS.get(kind)
            if handler is None:
                self._error(TunnelError(f"unsupported protocol message {kind!r}", sqlstate="08P01"))
                if kind in (b"d", b"c", b"f", b"F"):
                    self._ready()
                continue
            handler(self, payload)

    # -- simple query

    def _query(self, payload: bytes) -> None:
        if self.deferred:
            self._run_deferred()
        text = Reader(payload).cstring()
        statements = split(text, self.dialect)
        if not statements:
            self.wire.send(b"I")
            return self._ready()
        try:
            prepared = [self._prepare(sql, [], simple=True) for sql in statements]
            if len(prepared) > 1 and self._implicit_transaction(prepared):
                return self._ready()
            for one in prepared:
                outcome = self._execute(one, [])
                self._send_outcome(one.analysis, outcome, describe=True)
        except TunnelError as exc:
            self.session.note_error()
            self._error(exc)
        self._ready()

    def _implicit_transaction(self, prepared: list[Prepared]) -> bool:
        """Several plain statements in one Query run in one transaction, as PostgreSQL does: one /transaction."""
        if self.session.in_block or any(self._is_local(p.analysis) for p in prepared):
            return False
        statements = [p.statement([]) for p in prepared]
        results = self.tunnel.gateway.transaction(statements, timeout_ms=self.session.timeout_ms)
        for one, result in zip(prepared, results):
            self._send_outcome(one.analysis, Outcome.of(result, one.analysis), describe=True)
        return True

    # -- extended protocol

    def _parse(self, payload: bytes) -> None:
        reader = Reader(payload)
        name, sql = reader.cstring(), reader.cstring()
        oids = [oid & 0xFFFFFFFF for oid in reader.int32s(reader.count())]
        try:
            statements = split(sql, self.dialect)
            if len(statements) > 1:
                raise TunnelError("cannot insert multiple commands into a prepared statement", sqlstate="42601")
            if name and name in self.statements:
                raise TunnelError(f'prepared statement "{name}" already exists', sqlstate="42P05")
            prepared = self._prepare(statements[0] if statements else "", [cast_type(o) for o in oids])
            prepared.oids = oids
            self.statements[name] = prepared
        except TunnelError as exc:
            return self._extended_error(exc)
        self.wire.send(b"1")

    def _bind(self, payload: bytes) -> None:
        reader = Reader(payload)
        portal, name = reader.cstring(), reader.cstring()
        try:
            formats = reader.int16s(reader.count())
            values: list[bytes | None] = []
            for _ in range(reader.count()):
                length = reader.int32()
                values.append(None if length < 0 else reader.raw(length))
            results = reader.int16s(reader.count())
            prepared = self._statement(name)
            if len(values) != prepared.count:
                raise TunnelError(f"bind message supplies {len(values)} parameters, but prepared statement "
                                  f'"{name}" requires {prepared.count}', sqlstate="08P01")
            if len(formats) not in (0, 1, len(values)):
                raise TunnelError(f"bind message has {len(formats)} parameter formats but {len(values)} "
                                  "parameters", sqlstate="08P01")
            texts = self._parameter_texts(prepared, values, formats)
        except TunnelError as exc:
            return self._extended_error(exc)
        self.portals[portal] = Portal(prepared, texts, results)
        self.wire.send(b"2")

    def _parameter_texts(self, prepared: Prepared, values: list[bytes | None], formats: list[int]) -> list[Any]:
        """Bind's values as text: text ones decoded, binary ones read by their type (declared, else described)."""
        if not any(formats):
            try:
                return [None if v is None else v.decode("utf-8") for v in values]
            except UnicodeDecodeError:
                raise TunnelError("invalid byte sequence for encoding \"UTF8\" in a parameter",
                                  sqlstate="22021") from None
        binary = formats * len(values) if len(formats) == 1 else formats
        oids = (prepared.oids + [0] * prepared.count)[:prepared.count]
        if any(b and not o for b, o in zip(binary, oids)):
            oids = self._parameter_oids(prepared)
        texts: list[Any] = []
        for value, is_binary, oid in zip(values, binary, oids):
            if value is None or not is_binary:
                texts.append(None if value is None else value.decode("utf-8", "strict"))
            else:
                texts.append(parameter_text(value, oid))
        return texts

    def _parameter_oids(self, prepared: Prepared) -> list[int]:
        if prepared.parameter_oids is None:
            prepared.parameter_oids = self._describe_statement(prepared)[0]
        return prepared.parameter_oids

    def _describe(self, payload: bytes) -> None:
        reader = Reader(payload)
        kind, name = reader.raw(1), reader.cstring()
        try:
            if kind == b"S":
                prepared = self._statement(name)
                parameters, columns = self._describe_statement(prepared)
                prepared.parameter_oids = parameters
                self.wire.send(b"t", struct.pack(f"!H{len(parameters)}I", len(parameters), *parameters))
                formats: list[int] = []
            else:
                portal = self._portal(name)
                columns = self._describe_portal(portal)
                formats = portal.formats
            if columns is None:
                self.wire.send(b"n")
            else:
                self._row_description(columns, formats)
        except TunnelError as exc:
            self._extended_error(exc)

    def _execute_message(self, payload: bytes) -> None:
        reader = Reader(payload)
        name, limit = reader.cstring(), reader.int32()
        try:
            portal = self._portal(name)
            if limit <= 0 and self._pipelined(portal):
                self.deferred.append((portal, len(self.wire.out)))
                self.wire.hold = True
                return
            if self.deferred and not self._run_deferred():
                return
            if portal.outcome is None:
                if not portal.prepared.sql:
                    self.wire.send(b"I")
                    return
                portal.outcome = self._execute(portal.prepared, portal.values)
        except TunnelError as exc:
            self.session.note_error()
            return self._extended_error(exc)
        outcome = portal.outcome
        if portal.sent == 0:
            self._notices(outcome.notices)
        rows = outcome.rows[portal.sent:portal.sent + limit] if limit > 0 else outcome.rows[portal.sent:]
        try:
            self._data_rows(outcome.columns or [], rows, portal.formats)
        except TunnelError as exc:  # a value that has no binary form here: the command ends with the error
            return self._extended_error(exc)
        portal.sent += len(rows)
        if limit > 0 and portal.sent < len(outcome.rows):
            self.wire.send(b"s")  # PortalSuspended
            return
        self._complete(portal.prepared.analysis, outcome, len(outcome.rows))

    def _sync(self, payload: bytes) -> None:
        if self.deferred:
            self._run_deferred()
        self.skipping = False
        if not self.session.in_block:
            self.portals.clear()
        self._ready()

    def _close(self, payload: bytes) -> None:
        reader = Reader(payload)
        kind, name = reader.raw(1), reader.cstring()
        (self.statements if kind == b"S" else self.portals).pop(name, None)
        self.wire.send(b"3")

    def _flush(self, payload: bytes) -> None:
        if self.deferred:
            self._run_deferred()
        self.wire.flush()

    _HANDLERS: dict[bytes, Callable[[PgClient, bytes], None]] = {
        b"Q": _query, b"P": _parse, b"B": _bind, b"D": _describe, b"E": _execute_message, b"S": _sync,
        b"C": _close, b"H": _flush,
    }

    # -- statements

    def _prepare(self, sql: str, types: list[str | None], *, simple: bool = False) -> Prepared:
        analysis = analyse(sql, self.dialect)
        numbers = dollar_numbers(sql, self.dialect) if "$" in sql else []
        if simple and numbers and analysis.keyword != "PREPARE":
            raise TunnelError(f"there is no parameter ${min(numbers)}", sqlstate="42P02")
        if self.dialect != "postgres":
            types = [None] * len(types)  # casts are PostgreSQL syntax
        count = max(len(types), max(numbers, default=0))
        if count > 65535:
            raise TunnelError("number of parameters must be between 0 and 65535", sqlstate="54000")
        return Prepared(sql, types, count, analysis, self.dialect, numbers=sorted(set(numbers)))

    def _statement(self, name: str) -> Prepared:
        if name not in self.statements:
            raise TunnelError(f'prepared statement "{name}" does not exist', sqlstate="26000")
        return self.statements[name]

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise TunnelError(f'portal "{name}" does not exist', sqlstate="34000")
        return self.portals[name]

    def _execute(self, prepared: Prepared, values: list[Any]) -> Outcome:
        analysis = prepared.analysis
        self.session.check_usable(analysis)
        if self._is_local(analysis):
            return self._local(prepared)
        return self.session.execute(prepared.statement(values))

    def _describe_statement(self, prepared: Prepared) -> tuple[list[int], list[dict[str, str]] | None]:
        declared = (prepared.oids + [0] * prepared.count)[:prepared.count]
        analysis = prepared.analysis
        if analysis.keyword == "EXECUTE" and len(analysis.words) > 1:
            target = self.statements.get(analysis.words[1].lower())
            return declared, (self._describe_statement(target)[1] if target else None)
        if self._is_local(analysis) or not prepared.sql:
            columns = [{"name": analysis.after(1)[0].lower(), "type": "text"}] if analysis.keyword == "SHOW" else None
            return [o or 25 for o in declared], columns
        if prepared.described is None:
            try:
                prepared.described = self.tunnel.gateway.describe(prepared.api_sql())
            except TunnelError:
                if not self.session.in_block or analysis.reads or analysis.returning:
                    raise
                # /describe runs outside the block: a write in it may name what the block created (queued, or
                # uncommitted in its session). Its parameters' types are then the server's to find when it runs.
                return [o or 25 for o in declared], None
        types = {p["name"]: p["type"] for p in prepared.described.get("parameters", [])}
        parameters = [o or OIDS[canonical_name(types.get(f"p{i + 1}", "text"), self.dialect)]
                      for i, o in enumerate(declared)]
        if self._buffering and not analysis.reads:
            return parameters, None  # queued: no rows now
        columns = prepared.described.get("columns") or []
        return parameters, (columns if columns or analysis.main in ROW_KEYWORDS else None)

    @property
    def _buffering(self) -> bool:
        """In a transaction block whose writes are queued for COMMIT (not a session on the API)."""
        return getattr(self.session, "buffering", self.session.in_block)

    def _describe_portal(self, portal: Portal) -> list[dict[str, str]] | None:
        analysis = portal.prepared.analysis
        if self._pipelined(portal):
            return None  # a write without RETURNING: no rows
        if analysis.keyword == "SHOW" and self._is_local(analysis):
            return [{"name": analysis.after(1)[0].lower(), "type": "text"}]
        if self._is_local(analysis) or not portal.prepared.sql or (self._buffering and not analysis.reads):
            if analysis.keyword != "EXECUTE":
                return None
        if portal.outcome is None:  # run it now: the columns are those of the real result
            try:
                portal.outcome = self._execute(portal.prepared, portal.values)
            except TunnelError:
                self.session.note_error()
                raise
        return portal.outcome.columns

    # -- sending results

    def _send_outcome(self, analysis: Analysis, outcome: Outcome, *, describe: bool) -> None:
        self._notices(outcome.notices)
        if describe and outcome.columns is not None:
            self._row_description(outcome.columns)
        self._data_rows(outcome.columns or [], outcome.rows)
        self._complete(analysis, outcome, len(outcome.rows))

    def _complete(self, analysis: Analysis, outcome: Outcome, rows: int) -> None:
        if outcome.truncated:
            self._notices([Notice(f"the result was cut to {rows} rows by the gateway's row limit")])
        self.wire.send(b"C", cstr(command_tag(analysis, outcome, rows)))

    def _types(self, columns: list[dict[str, str]]) -> list[str]:
        """The built-in PostgreSQL type of each column (``pgtypes.canonical_name``)."""
        return [canonical_name(column.get("type", "text"), self.dialect) for column in columns]

    def _row_description(self, columns: list[dict[str, str]], formats: list[int] | None = None) -> None:
        out = bytearray(struct.pack("!h", len(columns)))
        for column, name, fmt in zip(columns, self._types(columns), _formats(formats, len(columns))):
            oid = OIDS[name]
            out += cstr(column.get("name", "?column?")) + struct.pack("!iHIhih", 0, 0, oid, TYPE_LENGTHS.get(oid, -1),
                                                                        -1, fmt)
        self.wire.send(b"T", bytes(out))

    def _data_rows(self, columns: list[dict[str, str]], rows: list[list[Any]], formats: list[int] | None = None) -> None:
        types = self._types(columns)
        binary = _formats(formats, len(types))
        style = self.settings.get("intervalstyle", "postgres")
        escape = self.settings.get("bytea_output") == "escape"
        count = struct.pack("!h", len(types))
        for row in rows:
            out = bytearray(count)
            for value, type_name, is_binary in zip(row, types, binary):
                if is_binary:
                    data = result_bytes(value, type_name)
                else:
                    text = value_text(value, type_name, style)
                    if escape and text is not None and type_name == "bytea":
                        text = _escape_bytea(text)
                    data = None if text is None else text.encode("utf-8")
                out += b"\xff\xff\xff\xff" if data is None else struct.pack("!i", len(data)) + data
            self.wire.send(b"D", bytes(out))

    def _notices(self, notices: list[str]) -> None:
        threshold = MESSAGE_LEVELS.index(self.settings.get("client_min_messages", "notice").replace("info", "log"))
        for notice in notices:
            if isinstance(notice, Notice):
                severity, code, message = notice.severity, notice.sqlstate, str(notice)
            else:
                severity, code, message = "NOTICE", "00000", notice
            if MESSAGE_LEVELS.index(severity.lower()) < threshold:
                continue
            self.wire.send(b"N", cstr("S" + severity) + cstr("V" + severity) + cstr("C" + code)
                           + cstr("M" + message) + b"\0")

    def _error(self, exc: TunnelError) -> None:
        fields = cstr("SERROR") + cstr("VERROR") + cstr("C" + sqlstate(exc)) + cstr("M" + exc.message)
        if exc.hint:
            fields += cstr("H" + exc.hint)
        self.wire.send(b"E", fields + b"\0")

    def _extended_error(self, exc: TunnelError) -> None:
        self._error(exc)
        self.skipping = True
        if not self.wire.hold:  # as PostgreSQL, send it now: the client may wait for it before its Sync
            self.wire.flush()

    def _parameter_status(self, name: str, value: str) -> None:
        if not self.starting:
            self.wire.send(b"S", cstr(name) + cstr(value))

    def _ready(self) -> None:
        status = b"E" if self.session.failed else b"T" if self.session.in_block else b"I"
        self.wire.send(b"Z", status)
        self.wire.flush()


def _formats(formats: list[int] | None, count: int) -> list[int]:
    """Bind's result format codes for ``count`` columns: none means text, one applies to all."""
    if not formats:
        return [0] * count
    return formats * count if len(formats) == 1 else formats


def _escape_bytea(text: str) -> str:
    """bytea's hex text (``\\x…``) in the ``escape`` output form."""

    def escape(match: Any) -> str:
        data = bytes.fromhex(match.group(1))
        return "".join(chr(b) if 32 <= b < 127 and b != 92 else "\\\\" if b == 92 else f"\\{b:03o}" for b in data)

    return re.sub(r"\\x([0-9a-f]*)", escape, text)
