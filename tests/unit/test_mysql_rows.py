"""The MySQL driver's row reader gives PyMySQL's own values for every length encoding."""

from types import SimpleNamespace

import pytest
from pymysql.connections import MySQLResult
from pymysql.converters import decoders
from pymysql.protocol import MysqlPacket

from rdsgate.drivers.mysql_values import _DECODERS
from rdsgate.drivers.pymysql_wire import parse_row as _parse_row


def length_encoded(value):
    if value is None:
        return b"\xfb"
    n = len(value)
    if n < 251:
        prefix = bytes([n])
    elif n < 2**16:
        prefix = b"\xfc" + n.to_bytes(2, "little")
    elif n < 2**24:
        prefix = b"\xfd" + n.to_bytes(3, "little")
    else:
        prefix = b"\xfe" + n.to_bytes(8, "little")
    return prefix + value


CASES = [
    [b"1", b"-42", None, "héllo".encode(), b"\x00\xff binary"],
    [b"x" * 250, b"y" * 251, b"z" * 65535, b"w" * 65536, None],
    [b"2024-01-02 03:04:05.123456", b"12.50", b"", b"1e308", "日本".encode()],
]
CONVERTERS = [
    [("ascii", int), ("ascii", int), ("ascii", int), ("utf8", None), (None, None)],
    [("utf8", None), ("utf8", None), ("utf8", len), (None, len), ("utf8", None)],
    [("ascii", decoders[12]), ("ascii", None), ("utf8", None), ("ascii", float), ("utf8", None)],
]


@pytest.mark.parametrize("values, converters", zip(CASES, CONVERTERS))
def test_rows_match_pymysql(values, converters):
    data = b"".join(length_encoded(v) for v in values)
    theirs = MySQLResult._read_row_from_packet(SimpleNamespace(converters=converters), MysqlPacket(data, "utf8"))
    assert _parse_row(data, converters) == list(theirs)


def test_a_huge_value_uses_the_eight_byte_length():
    value = b"v" * (2**24)
    data = length_encoded(value) + length_encoded(b"7")
    assert _parse_row(data, [("ascii", None), ("ascii", int)]) == ["v" * (2**24), 7]


def test_a_short_row_stops_as_pymysql_does():
    data = length_encoded(b"1")
    assert _parse_row(data, [("ascii", int), ("ascii", int)]) == [1]


def test_the_drivers_decoders_apply():
    datetime_decoder = _DECODERS[12]
    assert _parse_row(length_encoded(b"2024-01-02 03:04:05"), [("ascii", datetime_decoder)]) == ["2024-01-02T03:04:05"]


def test_lean_converters_give_the_same_values():
    from rdsgate.drivers.mysql_values import _CONVERSIONS, _lean_converters

    columns = [("ascii", _CONVERSIONS[t]) for t in (1, 2, 3, 4, 5, 8, 9, 13)] + [("utf8", _CONVERSIONS[253]), (None, _CONVERSIONS[252])]
    values = [b"-7", b"300", b"70000", b"1.5", b"-2.25e-7", b"9007199254740993", b"123", b"2024", "é".encode(), b"\x00\x01"]
    data = b"".join(length_encoded(v) for v in values)
    assert _parse_row(data, _lean_converters(columns)) == _parse_row(data, columns)
    assert _parse_row(data, columns)[5] == "9007199254740993"  # beyond 2**53: kept exact, as text
