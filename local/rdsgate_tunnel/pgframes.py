"""PostgreSQL v3 messages for `rdsgate connect`: reading and buffering them, and the client's prepared statements.

``Wire`` reads a client's messages and buffers the answers until a flush; ``Reader``
reads the fields of one message. ``Prepared`` is a statement as the client prepared
it (``$n`` placeholders, declared types) and ``Portal`` one bound to values.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rdsgate.sql.sqlstates import MYSQL_SQLSTATES

from .gateway import Outcome, Statement, TunnelError
from .wiresql import Analysis, rewrite

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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

    hold = False  # while writes wait for a Sync, what is answered after them waits too

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.out += kind + struct.pack("!i", len(payload) + 4) + payload
        if len(self.out) > 256 * 1024 and not self.hold:
            self.flush()

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()


def cstr(text: str) -> bytes:
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

    def count(self) -> int:
        """A count of parameters, formats or values: unsigned, up to 65,535 as in PostgreSQL."""
        (value,) = struct.unpack_from("!H", self.data, self.at)
        self.at += 2
        return value

    def int16s(self, count: int) -> list[int]:
        values = list(struct.unpack_from(f"!{count}h", self.data, self.at))
        self.at += 2 * count
        return values

    def int32s(self, count: int) -> list[int]:
        values = list(struct.unpack_from(f"!{count}i", self.data, self.at))
        self.at += 4 * count
        return values

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
    numbers: list[int] = field(default_factory=list)  # the distinct $n in the SQL, in order
    parameter_oids: list[int] | None = None  # each parameter's type: declared, else as /describe found it
    _api_sql: str | None = None

    def api_sql(self, expressions: dict[int, str] | None = None) -> str:
        """The SQL for the API: ``$n`` as ``:pn`` (cast to a declared type), or as a given SQL expression."""
        if not expressions and self._api_sql is not None:
            return self._api_sql

        def place(n: int) -> str:
            cast = self.types[n - 1] if n <= len(self.types) else None
            inner = f"({expressions[n]})" if expressions and n in expressions else f":p{n}"
            return f"{inner}::{cast}" if cast else inner

        sql = rewrite(self.sql, self.dialect, dollar=place if self.count else None)
        if not expressions:
            self._api_sql = sql
        return sql

    def statement(self, values: list[Any], expressions: dict[int, str] | None = None) -> Statement:
        skip = expressions or {}
        return Statement(self.api_sql(expressions), {f"p{n}": values[n - 1] for n in self.numbers if n not in skip},
                         self.analysis)


@dataclass
class Portal:
    """A bound statement; its outcome is kept, since Describe may have run it already."""

    prepared: Prepared
    values: list[Any]
    formats: list[int] = field(default_factory=list)  # result formats as Bind gave them (none: all text)
    outcome: Outcome | None = None
    sent: int = 0  # rows already sent (Execute with a row limit suspends the portal)


def sqlstate(exc: TunnelError) -> str:
    """The SQLSTATE to report for a failure: the API's, a MySQL error number's, or one for the API's code."""
    if exc.sqlstate:
        return exc.sqlstate
    if exc.errno:  # a MySQL connection served to a PostgreSQL client
        return MYSQL_SQLSTATES.get(exc.errno, "XX000")
    return {"InvalidRequest": "42601", "Forbidden": "42501", "GuardrailViolation": "42501",
            "ReadOnlyViolation": "25006", "QueryTimeout": "57014", "DatabaseUnavailable": "08006",
            "Unreachable": "08006", "NotFound": "3D000", "AuthenticationFailed": "28000",
            "ResultTooLarge": "54000", "RequestTooLarge": "54000", "Refused": "0A000"}.get(exc.code, "XX000")
