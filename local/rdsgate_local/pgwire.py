"""The PostgreSQL v3 wire protocol for `rdsgate connect`: psql, pg8000, psycopg and friends on a local port.

Startup (SSLRequest and GSSENCRequest answered 'N'), trust or a cleartext password
on loopback, the simple query protocol, and the extended protocol (Parse, Bind,
Describe, Execute, Sync, Close, Flush) in text format. Each statement becomes an
API call through ``tunnel.Session``; Describe of a prepared statement asks
``/describe``. Result values arrive as the API's JSON and leave as PostgreSQL's
text forms (``pgtypes``), typed by OIDs looked up from the API's type names. What the
tunnel answers itself (SET, SHOW of its own settings, PREPARE/EXECUTE, …) is in ``pglocal``.
"""

from __future__ import annotations

import hmac
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

from .pglocal import LocalStatements
from .pgtypes import ROW_KEYWORDS, TYPE_LENGTHS, cast_type, command_tag, type_oid, value_text
from .tunnel import MYSQL_SQLSTATES, Outcome, Session, Statement, TunnelError
from .wiresql import Analysis, analyse, dollar_numbers, rewrite, split

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Settings the tunnel reports and keeps itself; everything else is the server's.
REPORTED = {"server_encoding": "UTF8", "client_encoding": "UTF8", "DateStyle": "ISO, MDY", "TimeZone": "UTC",
            "IntervalStyle": "postgres", "integer_datetimes": "on", "standard_conforming_strings": "on",
            "is_superuser": "off"}


# -- messages -----------------------------------------------------------------------------------


class Wire:
    """Reads client messages and buffers server messages until flush()."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")
        self.out = bytearray()

    def read(self, count: int) -> bytes:
        data = self.reader.read(count)
        if len(data) != count:
            raise ConnectionResetError("the client closed the connection")
        return data

    def read_startup(self) -> bytes:
        (length,) = struct.unpack("!i", self.read(4))
        if not 8 <= length <= 10_000:
            raise ConnectionAbortedError("not a PostgreSQL startup message")
        return self.read(length - 4)

    def read_message(self) -> tuple[bytes, bytes]:
        kind = self.read(1)
        (length,) = struct.unpack("!i", self.read(4))
        if not 4 <= length <= MAX_MESSAGE_BYTES:
            raise ConnectionAbortedError("message length out of range")
        return kind, self.read(length - 4)

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.out += kind + struct.pack("!i", len(payload) + 4) + payload
        if len(self.out) > 256 * 1024:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()


def _cstr(text: str) -> bytes:
    return text.encode("utf-8").replace(b"\0", b"") + b"\0"


class Reader:
    """Fields of one message's payload."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def cstring(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at:end].decode("utf-8")
        self.at = end + 1
        return text

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self.data, self.at)
        self.at += 2
        return value

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.at)
        self.at += 4
        return value

    def raw(self, count: int) -> bytes:
        value = self.data[self.at:self.at + count]
        self.at += count
        return value


# -- prepared statements and portals ------------------------------------------------------------


@dataclass
class Prepared:
    """A statement as the client prepared it: ``$n`` placeholders, optional declared parameter types."""

    sql: str
    types: list[str | None]  # SQL type per $n (declared by the client), None: the server infers it
    count: int  # how many parameters Bind must supply
    analysis: Analysis
    dialect: str = "postgres"  # the connection's SQL dialect (a MySQL connection may be served to psql)
    oids: list[int] = field(default_factory=list)  # parameter type OIDs the client declared (0: none)
    described: dict[str, Any] | None = None

    def api_sql(self, expressions: dict[int, str] | None = None) -> str:
        """The SQL for the API: ``$n`` as ``:pn`` (cast to a declared type), or as a given SQL expression."""

        def place(n: int) -> str:
            cast = self.types[n - 1] if n <= len(self.types) else None
            inner = f"({expressions[n]})" if expressions and n in expressions else f":p{n}"
            return f"({inner})::{cast}" if cast else inner

        return rewrite(self.sql, self.dialect, dollar=place if self.count else None)

    def statement(self, values: list[Any], expressions: dict[int, str] | None = None) -> Statement:
        used = set(dollar_numbers(self.sql, self.dialect)) - set(expressions or ())
        return Statement(self.api_sql(expressions), {f"p{n}": values[n - 1] for n in sorted(used)}, self.analysis)


@dataclass
class Portal:
    """A bound statement; its outcome is kept, since Describe may have run it already."""

    prepared: Prepared
    values: list[Any]
    outcome: Outcome | None = None
    sent: int = 0  # rows already sent (Execute with a row limit suspends the portal)


# -- one client ----------------------------------------------------------------------------------


def serve_client(sock: Any, tunnel: Any) -> None:
    PgClient(sock, tunnel).run()


class PgClient(LocalStatements):
    def __init__(self, sock: Any, tunnel: Any) -> None:
        self.sock, self.tunnel = sock, tunnel
        self.wire = Wire(sock)
        self.dialect = tunnel.dialect
        self.session = tunnel.new_session(self.dialect, abort_on_error=True)
        self.statements: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.settings: dict[str, str] = {}
        self.skipping = False  # after an error in the extended protocol, until Sync

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

    def _startup(self) -> dict[str, str] | None:
        while True:
            data = self.wire.read_startup()
            (code,) = struct.unpack_from("!i", data)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.sock.sendall(b"N")
                continue
            if code == CANCEL_REQUEST:
                self.tunnel.log("a cancel request was ignored: the API call runs to its end")
                return None
            if code >> 16 != 3:
                self._fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
                return None
            break
        fields = data[4:].split(b"\0")
        parameters = {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2) if fields[i]}
        user = parameters.get("user", "")
        if self.tunnel.password is not None:
            self.wire.send(b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
            self.wire.flush()
            kind, payload = self.wire.read_message()
            given = payload.rstrip(b"\0")
            if kind != b"p" or not hmac.compare_digest(given, self.tunnel.password.encode()):
                self._fatal("28P01", f'password authentication failed for user "{user}"')
                return None
        try:
            version = self._server_version()
        except TunnelError as exc:
            self._fatal(_sqlstate(exc), f"rdsgate could not reach the connection: {exc.message}")
            return None
        self.wire.send(b"R", struct.pack("!i", 0))
        self.settings["application_name"] = parameters.get("application_name", "")
        for name, value in {**REPORTED, "server_version": version, "session_authorization": user,
                            "application_name": self.settings["application_name"]}.items():
            self.wire.send(b"S", _cstr(name) + _cstr(value))
        self.wire.send(b"K", struct.pack("!ii", secrets.randbits(31), secrets.randbits(31)))
        self._ready()
        return parameters

    def _server_version(self) -> str:
        if self.dialect == "postgres":
            return str(self.tunnel.gateway.once("pg_version", "SHOW server_version"))
        return f"15.0 (rdsgate over MySQL {self.tunnel.gateway.once('mysql_version', 'SELECT VERSION()')})"

    def _fatal(self, sqlstate: str, message: str) -> None:
        self.wire.send(b"E", _cstr("SFATAL") + _cstr("VFATAL") + _cstr("C" + sqlstate) + _cstr("M" + message) + b"\0")
        self.wire.flush()

    # -- simple query

    def _query(self, payload: bytes) -> None:
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
        oids = [reader.int32() for _ in range(reader.int16())]
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
            formats = [reader.int16() for _ in range(reader.int16())]
            values: list[Any] = []
            for _ in range(reader.int16()):
                length = reader.int32()
                values.append(None if length < 0 else reader.raw(length))
            results = [reader.int16() for _ in range(reader.int16())]
            if any(formats) or any(results):
                raise TunnelError.refused("binary format is not supported by rdsgate connect; use text format")
            prepared = self._statement(name)
            if len(values) != prepared.count:
                raise TunnelError(f"bind message supplies {len(values)} parameters, but prepared statement "
                                  f'"{name}" requires {prepared.count}', sqlstate="08P01")
            try:
                texts = [None if v is None else v.decode("utf-8") for v in values]
            except UnicodeDecodeError:
                raise TunnelError("a parameter is not valid UTF-8", sqlstate="22021") from None
        except TunnelError as exc:
            return self._extended_error(exc)
        self.portals[portal] = Portal(prepared, texts)
        self.wire.send(b"2")

    def _describe(self, payload: bytes) -> None:
        reader = Reader(payload)
        kind, name = reader.raw(1), reader.cstring()
        try:
            if kind == b"S":
                prepared = self._statement(name)
                parameters, columns = self._describe_statement(prepared)
                self.wire.send(b"t", struct.pack("!h", len(parameters)) + b"".join(struct.pack("!i", o) for o in parameters))
            else:
                portal = self._portal(name)
                columns = self._describe_portal(portal)
            if columns is None:
                self.wire.send(b"n")
            else:
                self._row_description(columns)
        except TunnelError as exc:
            self._extended_error(exc)

    def _execute_message(self, payload: bytes) -> None:
        reader = Reader(payload)
        name, limit = reader.cstring(), reader.int32()
        try:
            portal = self._portal(name)
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
        self._data_rows(outcome.columns or [], rows)
        portal.sent += len(rows)
        if limit > 0 and portal.sent < len(outcome.rows):
            self.wire.send(b"s")  # PortalSuspended
            return
        self._complete(portal.prepared.analysis, outcome, len(outcome.rows))

    def _sync(self, payload: bytes) -> None:
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
        return Prepared(sql, types, max([len(types), *numbers]), analysis, self.dialect)

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
        if self._is_local(analysis) or not prepared.sql or (self._buffering and not analysis.reads):
            columns = [{"name": analysis.after(1)[0].lower(), "type": "text"}] if analysis.keyword == "SHOW" else None
            return [o or 25 for o in declared], columns
        if prepared.described is None:
            prepared.described = self.tunnel.gateway.describe(prepared.api_sql())
        types = {p["name"]: p["type"] for p in prepared.described.get("parameters", [])}
        parameters = [o or type_oid(types.get(f"p{i + 1}", "text")) for i, o in enumerate(declared)]
        columns = prepared.described.get("columns") or []
        return parameters, (columns if columns or analysis.main in ROW_KEYWORDS else None)

    @property
    def _buffering(self) -> bool:
        """In a transaction block whose writes are queued for COMMIT (not a session on the API)."""
        return getattr(self.session, "buffering", self.session.in_block)

    def _describe_portal(self, portal: Portal) -> list[dict[str, str]] | None:
        analysis = portal.prepared.analysis
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
            self._notices([f"WARNING: the result was cut to {rows} rows by the gateway's row limit"])
        self.wire.send(b"C", _cstr(command_tag(analysis, outcome, rows)))

    def _row_description(self, columns: list[dict[str, str]]) -> None:
        out = bytearray(struct.pack("!h", len(columns)))
        for column in columns:
            oid = type_oid(column.get("type", "text"))
            out += _cstr(column.get("name", "?column?")) + struct.pack("!ihihih", 0, 0, oid, TYPE_LENGTHS.get(oid, -1), -1, 0)
        self.wire.send(b"T", bytes(out))

    def _data_rows(self, columns: list[dict[str, str]], rows: list[list[Any]]) -> None:
        types = [column.get("type", "text") for column in columns]
        count = struct.pack("!h", len(types))
        for row in rows:
            out = bytearray(count)
            for value, type_name in zip(row, types):
                text = value_text(value, type_name)
                if text is None:
                    out += b"\xff\xff\xff\xff"
                else:
                    data = text.encode("utf-8")
                    out += struct.pack("!i", len(data)) + data
            self.wire.send(b"D", bytes(out))

    def _notices(self, notices: list[str]) -> None:
        for notice in notices:
            severity, _, message = notice.partition(": ") if notice.startswith("WARNING: ") else ("NOTICE", "", notice)
            code = "01000" if severity == "WARNING" else "00000"
            self.wire.send(b"N", _cstr("S" + severity) + _cstr("V" + severity) + _cstr("C" + code)
                           + _cstr("M" + message) + b"\0")

    def _error(self, exc: TunnelError) -> None:
        fields = _cstr("SERROR") + _cstr("VERROR") + _cstr("C" + _sqlstate(exc)) + _cstr("M" + exc.message)
        if exc.hint:
            fields += _cstr("H" + exc.hint)
        self.wire.send(b"E", fields + b"\0")

    def _extended_error(self, exc: TunnelError) -> None:
        self._error(exc)
        self.skipping = True

    def _parameter_status(self, name: str, value: str) -> None:
        self.wire.send(b"S", _cstr(name) + _cstr(value))

    def _ready(self) -> None:
        status = b"E" if self.session.failed else b"T" if self.session.in_block else b"I"
        self.wire.send(b"Z", status)
        self.wire.flush()


def _sqlstate(exc: TunnelError) -> str:
    if exc.sqlstate:
        return exc.sqlstate
    if exc.errno:  # a MySQL connection served to a PostgreSQL client
        return MYSQL_SQLSTATES.get(exc.errno, "XX000")
    return {"InvalidRequest": "42601", "Forbidden": "42501", "GuardrailViolation": "42501",
            "ReadOnlyViolation": "25006", "QueryTimeout": "57014", "DatabaseUnavailable": "08006",
            "Unreachable": "08006", "NotFound": "3D000", "AuthenticationFailed": "28000",
            "ResultTooLarge": "54000", "RequestTooLarge": "54000", "Refused": "0A000"}.get(exc.code, "XX000")
