"""PyMySQL's private internals, in one place: the wire adapter the MySQL driver runs on.

``MysqlWire`` subclasses PyMySQL's ``Connection`` and uses what PyMySQL does not publish:
``_write_bytes``, ``_read_packet``, ``_read_ok_packet``, ``_read_query_result``,
``_execute_command``, ``_next_seq_id``, ``_force_close``, ``_sock``, an unbuffered cursor's
``_result`` and that result's ``unbuffered_active``/``_check_packet_is_eof``/``fields``/
``converters``. ``tests/unit/test_driver_contract.py`` checks each against the pinned release.
Value conversion is ``mysql_values``'s and error mapping ``mysql_errors``'s, not this module's.
"""

from __future__ import annotations

import struct
from typing import Any

import pymysql
from pymysql.constants import COMMAND
from pymysql.protocol import FieldDescriptorPacket

from .base import ConnectParams, socket_is_idle


class MysqlWire(pymysql.connections.Connection):
    """PyMySQL's connection, plus commands queued to ride ahead of the next one.

    Queued commands are sent together with the next command (or by ``send_queued``);
    the replies they owe are read before that command's own (``read_owed``). MySQL
    servers answer commands strictly in order, so this pipelines without a protocol extension.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._queued: list[bytes] = []
        self._owed = 0  # replies to commands sent but not yet read
        super().__init__(**kwargs)

    @classmethod
    def login(cls, params: ConnectParams, conv: dict[Any, Any]) -> MysqlWire:
        """Log in in autocommit, utf8mb4; ``conv`` decodes values and encodes parameters.

        An explicit SSLContext makes PyMySQL refuse a server without TLS before
        authenticating, which matters: the IAM token goes as mysql_clear_password.
        """
        return cls(
            host=params.host, port=params.port, user=params.user, password=params.password, database=params.database,
            ssl=params.ssl_context, connect_timeout=params.connect_timeout, autocommit=True, charset="utf8mb4",
            conv=conv, program_name="rdsgate",
        )

    def session_sql_mode(self) -> str:
        """The session's sql_mode, checked once after login (``session.check_mysql_sql_mode``); PyMySQL's own
        ``sql_mode`` attribute is only the mode asked for at connect."""
        with self.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            value = cursor.fetchone()[0]
        return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else str(value)

    # -- pipelining ---------------------------------------------------------------------------------

    def queue_query(self, sql: str) -> None:
        self.queue_command(COMMAND.COM_QUERY, sql.encode("utf-8"))

    def queue_command(self, command: int, argument: bytes = b"") -> None:
        # Each command is a new sequence: one packet, sequence id 0.
        self._queued.append(struct.pack("<I", len(argument) + 1)[:3] + b"\x00" + bytes([command]) + argument)

    def send_queued(self) -> None:
        if self._queued:
            self._write_bytes(b"")

    def _write_bytes(self, data: bytes) -> None:
        if self._queued:
            data = b"".join(self._queued) + data
            self._owed += len(self._queued)
            self._queued = []
        super()._write_bytes(data)

    def owes_replies(self) -> bool:
        return self._owed > 0

    def read_owed(self) -> None:
        """Read the OK of every command sent ahead; an error closes the connection (it is out of step)."""
        try:
            while self._owed:
                self._owed -= 1
                self._next_seq_id = 1
                self._read_ok_packet()
        except BaseException:
            self._owed = 0
            self._force_close()
            raise

    def _read_query_result(self, unbuffered: bool = False) -> Any:
        if self._owed:
            self.read_owed()
            self._next_seq_id = 1
        return super()._read_query_result(unbuffered=unbuffered)

    # -- the connection's state ---------------------------------------------------------------------

    def set_timeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def socket_idle(self) -> bool:
        """Nothing from the server waiting on the socket (a closed session leaves an EOF or error)."""
        return socket_is_idle(self._sock)

    # -- statements -----------------------------------------------------------------------------------

    def unbuffered(self, sql: str, args: dict[str, Any]) -> tuple[Any, Any]:
        """Run ``sql`` on an unbuffered cursor (rows are read as they arrive): the cursor and its result."""
        cursor = pymysql.cursors.SSCursor(self)
        cursor.execute(sql, args)  # always a mapping: rdsgate.sql.text doubled every literal '%'
        return cursor, cursor._result

    def abandon(self, cursor: Any) -> None:
        """Drop the connection under an unbuffered result: closing the cursor would read every remaining row."""
        cursor._result.unbuffered_active = False  # nothing left to drain once the socket is gone
        cursor.connection = None

    def prepare_describe(self, text: str) -> tuple[int, list[Any]]:
        """COM_STMT_PREPARE then COM_STMT_CLOSE: the parameter count and the result's field descriptors."""
        self.read_owed()
        self._execute_command(COMMAND.COM_STMT_PREPARE, text)
        header = self._read_packet()
        header.read_uint8()  # status
        statement_id, column_count, parameter_count = header.read_uint32(), header.read_uint16(), header.read_uint16()
        for _ in range(parameter_count):
            self._read_packet()  # parameter definitions carry no useful type before binding
        if parameter_count:
            self._read_packet()  # EOF
        fields = [self._read_packet(FieldDescriptorPacket) for _ in range(column_count)]
        if column_count:
            self._read_packet()  # EOF
        self._execute_command(COMMAND.COM_STMT_CLOSE, statement_id.to_bytes(4, "little"))  # no reply
        return parameter_count, fields


# --- rows: a text-protocol result read without PyMySQL's per-value method calls -------------

def read_rows(conn: MysqlWire, result: Any, converters: list[tuple[str | None, Any]], limit: int) -> tuple[list[list[Any]], bool]:
    """Up to ``limit`` rows of an unbuffered result, and whether the result ended.

    Each column's bytes go through its ``(encoding, converter)`` pair (the driver's),
    giving the values ``fetchone()`` would; only PyMySQL's per-row and per-value call
    overhead is gone (a 100,000-row result reads about twice as fast).
    """
    rows: list[list[Any]] = []
    if not result.unbuffered_active:
        return rows, True
    read_packet = conn._read_packet
    while len(rows) < limit:
        packet = read_packet()  # raises the server's error, if it sends one instead of a row
        data = packet.get_all_data()
        if data[0] == 0xFE and len(data) < 9 and result._check_packet_is_eof(packet):
            result.unbuffered_active = False
            result.connection = None
            result.rows = None
            return rows, True
        rows.append(parse_row(data, converters))
    return rows, False


def parse_row(data: bytes, converters: list[tuple[str | None, Any]]) -> list[Any]:
    """One row packet: a length-encoded string per column (0xFB is NULL)."""
    row: list[Any] = []
    append = row.append
    pos, size = 0, len(data)
    for encoding, converter in converters:
        if pos >= size:  # a short row, as PyMySQL tolerates
            break
        length = data[pos]
        if length < 251:
            pos += 1
        elif length == 251:
            append(None)
            pos += 1
            continue
        elif length == 252:
            length = data[pos + 1] | data[pos + 2] << 8
            pos += 3
        elif length == 253:
            length = data[pos + 1] | data[pos + 2] << 8 | data[pos + 3] << 16
            pos += 4
        else:
            length = int.from_bytes(data[pos + 1 : pos + 9], "little")
            pos += 9
        value: Any = data[pos : pos + length]
        pos += length
        if encoding is not None:
            value = value.decode(encoding)
        if converter is not None:
            value = converter(value)
        append(value)
    return row
