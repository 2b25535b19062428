"""The MySQL client/server protocol for `rdsgate connect`: the mariadb/mysql client and PyMySQL on a local port.

Handshake v10 with ``mysql_native_password`` (or ``mysql_clear_password`` when the
client offers it) against a password of the user's choosing, or no check at all
(trust on loopback); COM_QUERY with text result sets, COM_PING, COM_QUIT,
COM_INIT_DB; errors carry the MySQL error number the API reported. Clients
interpolate their own parameters, so a COM_QUERY holds final SQL. What the tunnel
answers itself (SET, USE, user variables, PREPARE / EXECUTE) is in ``mysqllocal``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import struct
from typing import Any, BinaryIO

from rdsgate.sql.sqlstates import MYSQL_SQLSTATES as SQLSTATES

from .gateway import Notice, Outcome, TunnelError
from .mysqllocal import LocalStatements
from .mysqltypes import BINARY, BINARY_TYPES, FLAGS, NUMERIC, TYPES, UTF8MB4, value_bytes
from .wiresql import hex_literals, split

# Capability flags: long password, found rows, long flag, connect with db, no schema, protocol 41,
# interactive, transactions, secure connection, plugin auth, connect attributes, lenenc auth data.
CAPABILITIES = 1 | 2 | 4 | 8 | 16 | 512 | 1024 | 8192 | 32768 | (1 << 19) | (1 << 20) | (1 << 21)
CLIENT_CONNECT_WITH_DB, CLIENT_SSL, CLIENT_SECURE_CONNECTION = 8, 2048, 32768
CLIENT_PLUGIN_AUTH, CLIENT_LENENC_AUTH = 1 << 19, 1 << 21
STATUS_IN_TRANS, STATUS_AUTOCOMMIT = 1, 2
NATIVE, CLEAR = "mysql_native_password", "mysql_clear_password"
MAX_PACKET = 0xFFFFFF

COM_QUIT, COM_INIT_DB, COM_QUERY, COM_FIELD_LIST, COM_STATISTICS, COM_PING = 1, 2, 3, 4, 9, 14
COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE, COM_SET_OPTION, COM_RESET_CONNECTION = 24, 25, 27, 31

ERRNOS = {"Forbidden": 1044, "NotFound": 1049, "AuthenticationFailed": 1045, "ReadOnlyViolation": 1792,
          "GuardrailViolation": 1227, "QueryTimeout": 1969, "ResultTooLarge": 1153, "RequestTooLarge": 1153,
          "Refused": 1235}


def lenenc_int(value: int) -> bytes:
    if value < 251:
        return bytes([value])
    if value < 1 << 16:
        return b"\xfc" + struct.pack("<H", value)
    if value < 1 << 24:
        return b"\xfd" + struct.pack("<I", value)[:3]
    return b"\xfe" + struct.pack("<Q", value)


def lenenc_str(data: bytes) -> bytes:
    return lenenc_int(len(data)) + data


def native_scramble(password: bytes, salt: bytes) -> bytes:
    """mysql_native_password: SHA1(password) XOR SHA1(salt + SHA1(SHA1(password)))."""
    if not password:
        return b""
    stage1 = hashlib.sha1(password).digest()
    mix = hashlib.sha1(salt + hashlib.sha1(stage1).digest()).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix))


def error_fields(exc: TunnelError) -> tuple[int, str]:
    """The MySQL error number and SQLSTATE of a failure."""
    errno = exc.errno or ERRNOS.get(exc.code, 1105)
    sqlstate = SQLSTATES.get(errno) or (exc.sqlstate if exc.sqlstate and len(exc.sqlstate) == 5 else "HY000")
    return errno, sqlstate


class Packets:
    """MySQL packets: 3-byte length, sequence id, payload (split at 16 MiB)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")
        self.seq = 0
        self.out = bytearray()

    def read(self) -> bytes:
        payload = b""
        while True:
            header = self._exact(4)
            length = header[0] | header[1] << 8 | header[2] << 16
            self.seq = (header[3] + 1) & 0xFF
            payload += self._exact(length)
            if length < MAX_PACKET:
                return payload

    def _exact(self, count: int) -> bytes:
        data = self.reader.read(count)
        if len(data) != count:
            raise ConnectionResetError("the client closed the connection")
        return data

    def write(self, payload: bytes) -> None:
        while True:
            chunk, payload = payload[:MAX_PACKET], payload[MAX_PACKET:]
            self.out += struct.pack("<I", len(chunk))[:3] + bytes([self.seq])
            self.out += chunk
            self.seq = (self.seq + 1) & 0xFF
            if len(chunk) < MAX_PACKET:
                break
        if len(self.out) > 256 * 1024:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()


def serve_client(sock: Any, tunnel: Any) -> None:
    MyClient(sock, tunnel).run()


class MyClient(LocalStatements):
    def __init__(self, sock: Any, tunnel: Any) -> None:
        self.sock, self.tunnel = sock, tunnel
        self.packets = Packets(sock)
        self.dialect = tunnel.dialect
        self.session = tunnel.new_session(self.dialect, abort_on_error=False)
        self.variables: dict[str, Any] = {}
        self.prepared: dict[str, tuple[str, int]] = {}
        self.warnings: list[tuple[str, int, str]] = []

    # -- handshake

    def run(self) -> None:
        self.sock.settimeout(30.0)
        if not self._handshake():
            return
        self.sock.settimeout(None)
        while True:
            payload = self.packets.read()
            command, body = payload[:1], payload[1:]
            if not command or command[0] == COM_QUIT:
                return
            self._command(command[0], body)
            self.packets.flush()

    def _handshake(self) -> bool:
        try:
            version = str(self.tunnel.gateway.once("mysql_version", "SELECT VERSION()")) if self.dialect == "mysql" \
                else f"8.0.0-rdsgate-postgres-{self.tunnel.gateway.once('pg_version', 'SHOW server_version')}"
        except TunnelError as exc:
            self.packets.seq = 0
            self._error(TunnelError(f"rdsgate could not reach the connection: {exc.message}", errno=1105))
            self.packets.flush()
            return False
        salt = bytes(secrets.choice(range(33, 127)) for _ in range(20))
        self.packets.write(
            b"\x0a" + version.encode()[:60] + b"\0" + struct.pack("<I", secrets.randbits(31)) + salt[:8] + b"\0"
            + struct.pack("<H", CAPABILITIES & 0xFFFF) + bytes([UTF8MB4]) + struct.pack("<H", STATUS_AUTOCOMMIT)
            + struct.pack("<H", CAPABILITIES >> 16) + bytes([21]) + b"\0" * 10 + salt[8:] + b"\0"
            + NATIVE.encode() + b"\0")
        self.packets.flush()
        response = self.packets.read()
        (flags,) = struct.unpack_from("<I", response)
        if len(response) == 32 and flags & CLIENT_SSL:
            self._error(TunnelError("rdsgate connect listens on loopback without TLS; connect with --ssl=0 "
                                    "(or ssl-mode=DISABLED)", errno=1043))
            self.packets.flush()
            return False
        at = 32
        end = response.index(b"\0", at)
        user, at = response[at:end].decode("utf-8", "replace"), end + 1
        if flags & CLIENT_LENENC_AUTH:
            length, at = self._lenenc(response, at)
            auth, at = response[at:at + length], at + length
        elif flags & CLIENT_SECURE_CONNECTION:
            length = response[at]
            auth, at = response[at + 1:at + 1 + length], at + 1 + length
        else:
            end = response.index(b"\0", at)
            auth, at = response[at:end], end + 1
        database = plugin = ""
        if flags & CLIENT_CONNECT_WITH_DB and at < len(response):
            end = response.index(b"\0", at)
            database, at = response[at:end].decode("utf-8", "replace"), end + 1
        if flags & CLIENT_PLUGIN_AUTH and at < len(response):
            end = response.find(b"\0", at)
            plugin = response[at:end if end >= 0 else len(response)].decode("ascii", "replace")
        if self.tunnel.password is not None and not self._authenticated(plugin or NATIVE, auth, salt):
            self._error(TunnelError(f"Access denied for user '{user}'@'localhost' (using password: "
                                    f"{'YES' if auth else 'NO'})", errno=1045))
            self.packets.flush()
            return False
        if database:
            try:
                self._check_database(database)
            except TunnelError as exc:
                self._error(exc)
                self.packets.flush()
                return False
        self._ok()
        self.packets.flush()
        return True

    def _authenticated(self, plugin: str, auth: bytes, salt: bytes) -> bool:
        password = self.tunnel.password.encode()
        if plugin == CLEAR:
            return hmac.compare_digest(auth.rstrip(b"\0"), password)
        if plugin != NATIVE:  # ask the client to switch to mysql_native_password
            self.packets.write(b"\xfe" + NATIVE.encode() + b"\0" + salt + b"\0")
            self.packets.flush()
            auth = self.packets.read()
        return hmac.compare_digest(auth, native_scramble(password, salt))

    @staticmethod
    def _lenenc(data: bytes, at: int) -> tuple[int, int]:
        first = data[at]
        if first < 251:
            return first, at + 1
        size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
        return int.from_bytes(data[at + 1:at + 1 + size], "little"), at + 1 + size

    def _check_database(self, database: str) -> None:
        served = self.tunnel.database
        if served and database != served:
            raise TunnelError(f"Unknown database '{database}': this connection serves '{served}'", errno=1049)

    # -- commands

    def _command(self, command: int, body: bytes) -> None:
        try:
            if command == COM_QUERY:
                try:
                    sql = body.decode("utf-8")
                except UnicodeDecodeError:  # bytes in string literals (mysql-connector's bytes parameters)
                    try:
                        sql = hex_literals(body)
                    except UnicodeDecodeError:
                        raise TunnelError("the query is not valid UTF-8 outside string literals (rdsgate connect "
                                          "speaks utf8mb4)", errno=1300) from None
                return self._query(sql)
            if command == COM_PING:
                return self._ok()
            if command == COM_INIT_DB:
                self._check_database(body.decode("utf-8", "replace"))
                return self._ok()
            if command == COM_FIELD_LIST:
                return self._eof()
            if command == COM_STATISTICS:
                return self.packets.write(b"rdsgate connect: each statement is one API call")
            if command == COM_RESET_CONNECTION:
                self.session = self.tunnel.new_session(self.dialect, abort_on_error=False)
                self.variables, self.prepared, self.warnings = {}, {}, []
                return self._ok()
            if command in (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA):
                return  # these have no answer
            if command == COM_SET_OPTION:
                if body[:2] == b"\0\0":
                    raise TunnelError.refused("multiple statements per query are not supported")
                return self._eof()
            if 22 <= command <= 28:
                raise TunnelError("the binary prepared-statement protocol is not supported by rdsgate connect; "
                                  "use client-side parameters (PyMySQL's default) or PREPARE … FROM", errno=1295)
            raise TunnelError(f"Unknown command {command}", errno=1047)
        except TunnelError as exc:
            self._error(exc)

    def _query(self, sql: str) -> None:
        statements = split(sql, self.dialect)
        if not statements:
            raise TunnelError("Query was empty", errno=1065)
        if len(statements) > 1:
            raise TunnelError("one statement per query: multiple statements are not enabled", errno=1064)
        if not re.match(r"(?is)\s*show\s+(count\s*\(\s*\*\s*\)\s*)?(warnings|errors)\b", statements[0]):
            self.warnings = []  # as in MySQL, SHOW WARNINGS keeps them
        outcome = self._statement(statements[0])
        self.warnings += [("Warning", 1105, str(n)) for n in outcome.notices if isinstance(n, Notice)]
        if outcome.truncated:
            self.warnings.append(("Warning", 1105, f"the result was cut to {len(outcome.rows)} rows by the "
                                                   "gateway's row limit"))
        if outcome.columns is not None:
            self._result_set(outcome)
        else:
            self._ok(outcome.updated or 0, info="; ".join(outcome.notices), insert_id=outcome.last_insert_id or 0)

    # -- answers

    def _status(self) -> int:
        session = self.session
        return (STATUS_AUTOCOMMIT if session.autocommit else 0) | (
            STATUS_IN_TRANS if session.explicit or session.queued else 0)

    def _ok(self, affected: int = 0, info: str = "", insert_id: int = 0) -> None:
        self.packets.write(b"\0" + lenenc_int(affected) + lenenc_int(insert_id) + struct.pack("<HH", self._status(),
                           min(len(self.warnings), 0xFFFF)) + (lenenc_str(info.encode()) if info else b""))

    def _eof(self) -> None:
        self.packets.write(b"\xfe" + struct.pack("<HH", min(len(self.warnings), 0xFFFF), self._status()))

    def _error(self, exc: TunnelError) -> None:
        errno, sqlstate = error_fields(exc)
        self.packets.write(b"\xff" + struct.pack("<H", errno) + b"#" + sqlstate.encode() + exc.message.encode())

    def _result_set(self, outcome: Outcome) -> None:
        columns = outcome.columns or []
        types = [column.get("type", "varchar") for column in columns]
        self.packets.write(lenenc_int(len(columns)))
        for index, (column, type_name) in enumerate(zip(columns, types)):
            code = TYPES.get(type_name, 253)
            binary = type_name in BINARY_TYPES
            charset = BINARY if binary or code in NUMERIC or code in (7, 10, 11, 12, 16) else UTF8MB4
            flags = FLAGS.get(type_name, 0) | (128 if binary else 0) | (16 if code == 252 else 0) \
                | (32768 if code in NUMERIC else 0)
            decimals = 31 if code in (4, 5) else 0
            if code == 246:  # the scale, as the values show it
                decimals = max((len(str(row[index]).partition(".")[2]) for row in outcome.rows if row[index] is not None),
                               default=0)
            name = str(column.get("name", "")).encode()
            self.packets.write(lenenc_str(b"def") + lenenc_str(b"") + lenenc_str(b"") + lenenc_str(b"")
                               + lenenc_str(name) + lenenc_str(name) + b"\x0c" + struct.pack("<H", charset)
                               + struct.pack("<I", 255 if code in (252, 253, 254) else 21)
                               + struct.pack("<BHB", code, flags, decimals) + b"\0\0")
        self._eof()
        for row in outcome.rows:
            out = bytearray()
            for value, type_name in zip(row, types):
                data = value_bytes(value, type_name)
                out += b"\xfb" if data is None else lenenc_str(data)
            self.packets.write(bytes(out))
        self._eof()
