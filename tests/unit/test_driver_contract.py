"""The contract with pg8000 and PyMySQL: what the wire adapters rely on, checked against the installed release.

``drivers/pg8000_wire.py`` and ``drivers/pymysql_wire.py`` use private names of their driver.
This test fails naming the attribute when a release removes one, changes its signature, or
changes what it does in the parts that run without a server: a scripted server on a socket
pair answers one request of each adapter. pyproject.toml pins both drivers below their next
minor release; raise a pin only with this test green.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
import socket
import ssl
import struct
import threading
from typing import Any

import pg8000.core as pgcore
import pymysql
import pytest
from pymysql import connections as myconn
from pymysql import protocol as myprotocol
from pymysql.constants import COMMAND, SERVER_STATUS

from rdsgate.drivers.base import ConnectParams
from rdsgate.drivers.pg8000_wire import PgWire, new_context
from rdsgate.drivers.pymysql_wire import MysqlWire, parse_row, read_rows
from rdsgate.drivers.session import COM_RESET_CONNECTION, POSTGRES_RESET

TESTED_PG8000 = "1.31"
TESTED_PYMYSQL = "1.2"


def _parameters(function: Any) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def _check(owner: Any, name: str, parameters: list[str] | None) -> None:
    where = getattr(owner, "__name__", repr(owner))
    assert hasattr(owner, name), f"{where}.{name} is gone: the wire adapter relies on it"
    if parameters is not None:
        found = _parameters(getattr(owner, name))
        assert found[: len(parameters)] == parameters, f"{where}.{name}{tuple(found)}: the adapter calls it as {tuple(parameters)}"


def _assigned_in_init(cls: type, attribute: str) -> bool:
    return any(f"self.{attribute} =" in inspect.getsource(klass.__init__) for klass in cls.__mro__ if "__init__" in vars(klass))


# --- what is relied on, by name and signature -------------------------------------------------

@pytest.mark.parametrize("distribution, tested", [("pg8000", TESTED_PG8000), ("PyMySQL", TESTED_PYMYSQL)])
def test_versions_are_the_tested_minor_releases(distribution: str, tested: str) -> None:
    installed = version(distribution)
    assert installed.startswith(tested + "."), f"{distribution} {installed}: the wire adapter is tested on {tested}.x"


PG_FUNCTIONS = {"_flush": ["sock"], "_read": ["sock", "size"], "_write": ["sock", "d"]}
PG_CONSTANTS = {
    "BIND": b"B", "DESCRIBE": b"D", "EXECUTE": b"E", "PARSE": b"P", "FLUSH_MSG": b"H\x00\x00\x00\x04",
    "SYNC_MSG": b"S\x00\x00\x00\x04", "NULL_BYTE": b"\x00", "PORTAL": b"P", "READY_FOR_QUERY": b"Z",
    "IDLE": b"I", "IN_TRANSACTION": b"T", "IN_FAILED_TRANSACTION": b"E",
}
PG_METHODS = {
    "__init__": ["user", "host", "database", "port", "password"],
    "_send_message": ["code", "data"],
    "send_PARSE": ["statement_name_bin", "statement", "oids"],
    "send_BIND": ["statement_name_bin", "params"],
    "send_DESCRIBE_STATEMENT": ["statement_name_bin"],
    "handle_messages": ["context"],
    "handle_PORTAL_SUSPENDED": ["data", "context"],
    "handle_COMMAND_COMPLETE": ["data", "context"],
    "handle_PARAMETER_DESCRIPTION": ["data", "context"],
    "close": [],
}
PG_INIT_KEYWORDS = ["ssl_context", "timeout", "application_name", "startup_params", "sock"]
PG_ATTRIBUTES = ["_usock", "_sock", "_backend_key_data", "pg_types", "message_types", "_transaction_status"]


@pytest.mark.parametrize("name", sorted(PG_FUNCTIONS))
def test_pg8000_module_functions(name: str) -> None:
    _check(pgcore, name, PG_FUNCTIONS[name])


@pytest.mark.parametrize("name", sorted(PG_CONSTANTS))
def test_pg8000_protocol_constants(name: str) -> None:
    _check(pgcore, name, None)
    assert getattr(pgcore, name) == PG_CONSTANTS[name], f"pg8000.core.{name} is {getattr(pgcore, name)!r}"


def test_pg8000_packers() -> None:
    for name in ("H_pack", "i_pack", "ci_unpack"):
        _check(pgcore, name, None)
    assert pgcore.H_pack(1) == b"\x00\x01" and pgcore.i_pack(1) == b"\x00\x00\x00\x01"
    assert pgcore.ci_unpack(b"Z\x00\x00\x00\x05") == (b"Z", 5)


@pytest.mark.parametrize("name", sorted(PG_METHODS))
def test_pg8000_core_connection_methods(name: str) -> None:
    _check(pgcore.CoreConnection, name, PG_METHODS[name])


def test_pg8000_login_keywords_and_attributes() -> None:
    keywords = _parameters(pgcore.CoreConnection.__init__)
    for keyword in PG_INIT_KEYWORDS:
        assert keyword in keywords, f"CoreConnection.__init__ lost the keyword {keyword!r}"
    for attribute in PG_ATTRIBUTES:
        assert _assigned_in_init(pgcore.CoreConnection, attribute), f"CoreConnection.{attribute} is no longer set at login"


def test_pg8000_context() -> None:
    assert _parameters(pgcore.Context.__init__)[:1] == ["statement"], "pg8000.core.Context(statement)"
    context = new_context("SELECT 1")
    for attribute in ("columns", "rows", "error", "input_funcs"):
        assert hasattr(context, attribute), f"pg8000.core.Context.{attribute} is gone"
    assert (context.completions, context.suspended, context.error) == ([], False, None)


MY_METHODS = {
    "_write_bytes": ["data"],
    "_read_packet": ["packet_type"],
    "_read_ok_packet": [],
    "_read_query_result": ["unbuffered"],
    "_execute_command": ["command", "sql"],
    "_force_close": [],
    "get_server_info": [],
    "query": ["sql"],
    "cursor": [],
    "close": [],
}
MY_INIT_KEYWORDS = ["host", "port", "user", "password", "database", "ssl", "connect_timeout", "autocommit", "charset", "conv", "program_name", "defer_connect"]
MY_ATTRIBUTES = ["_sock", "_rfile", "_next_seq_id", "server_status", "server_thread_id", "_read_timeout"]


@pytest.mark.parametrize("name", sorted(MY_METHODS))
def test_pymysql_connection_methods(name: str) -> None:
    _check(myconn.Connection, name, MY_METHODS[name])


def test_pymysql_login_keywords_and_attributes() -> None:
    keywords = _parameters(myconn.Connection.__init__)
    for keyword in MY_INIT_KEYWORDS:
        assert keyword in keywords, f"pymysql Connection.__init__ lost the keyword {keyword!r}"
    source = inspect.getsource(myconn.Connection)
    for attribute in MY_ATTRIBUTES:
        assert f"self.{attribute} =" in source, f"pymysql Connection.{attribute} is no longer set"
    assert isinstance(inspect.getattr_static(myconn.Connection, "open"), property), "pymysql Connection.open is no longer a property"


def test_pymysql_results_packets_and_constants() -> None:
    _check(myconn.MySQLResult, "_check_packet_is_eof", ["packet"])
    result_source = inspect.getsource(myconn.MySQLResult)
    for attribute in ("unbuffered_active", "fields", "converters", "rows", "connection"):
        assert f"self.{attribute} =" in result_source, f"pymysql MySQLResult.{attribute} is no longer set"
    assert "self._result = result = conn._result" in inspect.getsource(pymysql.cursors.SSCursor) or "_result" in inspect.getsource(
        pymysql.cursors.Cursor
    ), "pymysql cursors no longer keep their result in _result"
    for name in ("read_uint8", "read_uint16", "read_uint32", "get_all_data"):
        _check(myprotocol.MysqlPacket, name, None)
    _check(myprotocol, "FieldDescriptorPacket", None)
    assert (COMMAND.COM_QUERY, COMMAND.COM_STMT_PREPARE, COMMAND.COM_STMT_CLOSE) == (3, 22, 25)
    assert not hasattr(COMMAND, "COM_RESET_CONNECTION") or COMMAND.COM_RESET_CONNECTION == COM_RESET_CONNECTION


# --- what they do, against a scripted server --------------------------------------------------

def _pg_message(code: bytes, payload: bytes = b"") -> bytes:
    return code + struct.pack("!i", len(payload) + 4) + payload


def _pg_frontend(stream: bytes) -> list[tuple[bytes, bytes]]:
    messages, pos = [], 0
    while pos < len(stream):
        length = struct.unpack("!i", stream[pos + 1 : pos + 5])[0]
        messages.append((stream[pos : pos + 1], stream[pos + 5 : pos + 1 + length]))
        pos += 1 + length
    return messages


def _serve(sock: socket.socket, script: list[tuple[bytes, int, bytes]], received: list[bytes]) -> None:
    """For each step: read until ``until`` has arrived ``times`` times, then send ``reply``."""
    buffer = b""
    for until, times, reply in script:
        while buffer.count(until) < times:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
        received.append(buffer)
        buffer = b""
        sock.sendall(reply)


def _complete(tag: bytes) -> bytes:
    return _pg_message(b"1") + _pg_message(b"2") + _pg_message(b"C", tag + b"\x00")


def test_pg8000_wire_runs_a_request_and_resets_the_session() -> None:
    client, server = socket.socketpair()
    login = _pg_message(b"R", struct.pack("!i", 0)) + _pg_message(b"K", struct.pack("!ii", 4242, 7)) + _pg_message(b"Z", b"I")
    column = b"n\x00" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0)
    request = (
        _complete(b"BEGIN")
        + _pg_message(b"1") + _pg_message(b"2") + _pg_message(b"T", struct.pack("!h", 1) + column)
        + _pg_message(b"D", struct.pack("!hi", 1, 1) + b"7") + _pg_message(b"C", b"SELECT 1\x00")
        + _complete(b"COMMIT") + _pg_message(b"Z", b"I")
        + _complete(b"ROLLBACK") + _complete(b"DISCARD ALL") + _pg_message(b"Z", b"I")
    )
    sync = PG_CONSTANTS["SYNC_MSG"]
    received: list[bytes] = []
    thread = threading.Thread(target=_serve, args=(server, [(b"TimeZone", 1, login), (sync, 2, request)], received), daemon=True)
    thread.start()
    try:
        wire = PgWire("rdsgate", sock=client, ssl_context=False, startup_params={"TimeZone": "UTC"}, timeout=5)
        wire.pg_types.clear()
        wire.pg_types.default_factory = lambda: str
        assert wire.backend_pid() == 4242 and wire.is_open()
        wire.set_timeout(5)
        context = wire.run("SELECT $1::int4", ["7"], [0], ["BEGIN"], row_limit=2)
    finally:
        thread.join(5)
        client.close()
        server.close()
    assert context.completions[:2] == [(b"BEGIN", 0), (b"SELECT", 1)]
    assert [c["name"] for c in context.columns] == ["n"] and context.columns[0]["type_oid"] == 23
    assert context.columns[0]["table_oid"] == 0 and context.columns[0]["column_attrnum"] == 0
    assert context.rows == [["7"]], "pg8000 no longer hands rows through pg_types as text"
    assert not wire.reset_failed and not wire.in_transaction() and not wire.transaction_failed()
    codes = [code for code, _ in _pg_frontend(received[1])]
    # BEGIN; the statement (pg8000's send_PARSE and send_BIND each add a Flush); COMMIT, Sync; the reset, Sync.
    statement = [b"P", b"H", b"B", b"H", b"D", b"E"]
    assert codes == [b"P", b"B", b"E", *statement, b"P", b"B", b"E", b"S"] + [b"P", b"B", b"E"] * len(POSTGRES_RESET) + [b"S"], codes


def _my_packet(sequence: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


def _my_ok(sequence: int, status: int = SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT) -> bytes:
    return _my_packet(sequence, b"\x00\x00\x00" + struct.pack("<HH", status, 0))


def _my_eof(sequence: int) -> bytes:
    return _my_packet(sequence, b"\xfe\x00\x00" + struct.pack("<H", SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT))


def _lenenc(text: bytes) -> bytes:
    return bytes([len(text)]) + text


def _my_field(name: bytes, type_code: int) -> bytes:
    return b"".join(_lenenc(part) for part in (b"def", b"db", b"t", b"t", name, name)) + b"\x0c" + struct.pack(
        "<HIBHBxx", 63, 11, type_code, 0, 0
    )


def _attached(client: socket.socket) -> MysqlWire:
    wire = MysqlWire(host="localhost", user="rdsgate", defer_connect=True, autocommit=True, charset="utf8mb4")
    # What Connection.connect() does once the socket is open, before the handshake.
    wire._sock, wire._rfile, wire._next_seq_id = client, client.makefile("rb"), 0
    wire._current_timeout = wire._read_timeout
    return wire


def test_pymysql_wire_pipelines_and_reads_rows() -> None:
    client, server = socket.socketpair()
    result_set = (
        _my_packet(1, b"\x01") + _my_packet(2, _my_field(b"n", 3)) + _my_eof(3)
        + _my_packet(4, _lenenc(b"1")) + _my_packet(5, _lenenc(b"2")) + _my_eof(6)
    )
    received: list[bytes] = []
    select = bytes([COMMAND.COM_QUERY]) + b"SELECT n"
    thread = threading.Thread(target=_serve, args=(server, [(select, 1, _my_ok(1) + _my_ok(1) + result_set)], received), daemon=True)
    thread.start()
    try:
        wire = _attached(client)
        wire.queue_command(COM_RESET_CONNECTION)
        wire.queue_query("SET autocommit = 1")
        assert wire.owes_replies() is False
        wire.set_timeout(5)
        cursor, result = wire.unbuffered("SELECT n", {})
        rows, ended = read_rows(wire, result, [(None, int)], 10)
        assert wire.socket_idle()
    finally:
        thread.join(5)
        client.close()
        server.close()
    assert not wire.owes_replies(), "the queued commands' replies were not read before the statement's"
    assert [field.name for field in result.fields] == ["n"] and result.converters, "MySQLResult.fields/converters"
    assert (rows, ended) == ([[1], [2]], True)
    assert result.unbuffered_active is False
    sent = received[0]
    assert sent.startswith(_my_packet(0, bytes([COM_RESET_CONNECTION])) + _my_packet(0, bytes([COMMAND.COM_QUERY]) + b"SET autocommit = 1"))
    assert sent.endswith(_my_packet(0, select)), "the statement no longer follows the queued commands as its own sequence"
    wire.abandon(cursor)
    assert cursor.connection is None


def test_pymysql_wire_describes_with_prepare_and_close() -> None:
    client, server = socket.socketpair()
    prepared = _my_packet(1, b"\x00" + struct.pack("<IHHxH", 9, 1, 1, 0))
    reply = prepared + _my_packet(2, _my_field(b"?", 253)) + _my_eof(3) + _my_packet(4, _my_field(b"n", 3)) + _my_eof(5)
    received: list[bytes] = []
    close = bytes([COMMAND.COM_STMT_CLOSE]) + (9).to_bytes(4, "little")
    script = [(b"SELECT ?", 1, reply), (close, 1, b"")]
    thread = threading.Thread(target=_serve, args=(server, script, received), daemon=True)
    thread.start()
    try:
        wire = _attached(client)
        parameters, fields = wire.prepare_describe("SELECT ?")
    finally:
        thread.join(5)
        client.close()
        server.close()
    assert parameters == 1 and [field.name for field in fields] == ["n"] and fields[0].type_code == 3
    assert received[0] == _my_packet(0, bytes([COMMAND.COM_STMT_PREPARE]) + b"SELECT ?")


def test_row_packets_parse_as_pymysql_does() -> None:
    assert parse_row(b"\x011\xfb\x03abc", [(None, int), ("utf-8", None), ("utf-8", None)]) == [1, None, "abc"]


def test_login_arguments_are_the_drivers_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    pg_keywords, my_keywords = set(_parameters(pgcore.CoreConnection.__init__)), set(_parameters(myconn.Connection.__init__))
    seen: dict[str, Any] = {}
    monkeypatch.setattr(pgcore.CoreConnection, "__init__", lambda self, user, **kw: seen.update(pg={"user": user, **kw}))
    monkeypatch.setattr(myconn.Connection, "__init__", lambda self, **kw: seen.update(my=kw))
    params = ConnectParams(host="h", port=1, database="d", user="u", password="p", ssl_context=ssl.create_default_context(), connect_timeout=3, iam=False)
    PgWire.login(params, {"TimeZone": "UTC"}, str)
    MysqlWire.login(params, {})
    assert set(seen["pg"]) <= pg_keywords, sorted(set(seen["pg"]) - pg_keywords)
    assert set(seen["my"]) <= my_keywords, sorted(set(seen["my"]) - my_keywords)
