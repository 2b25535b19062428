"""`rdsgate connect`'s binary PostgreSQL values, interval styles, MySQL compound statements and the session's
savepoints, without a server.

The expected bytes are PostgreSQL 15's own: ``SELECT encode(<type>_send(<text>), 'hex')``.
"""

import pytest

from rdsgate_tunnel import pgbinary, pgparams, pgtime, pgtypes
from rdsgate_tunnel.pgoids import OIDS
from rdsgate_tunnel.session import Session
from rdsgate_tunnel.gateway import Result, Statement, TunnelError
from rdsgate_tunnel.wiresql import hex_literals, split

# (the API's JSON value, its column type, PostgreSQL's send bytes, PostgreSQL's text of the same value)
SENT = [
    ("129.90", "numeric", "000200000000000200812328", "129.90"),
    ("-0.000100", "numeric", "0001ffff400000060001", "-0.000100"),
    ("12345678901234567890.123456789", "numeric", "000800040000000904d2162e23340d801ed204d2162e2328",
     "12345678901234567890.123456789"),
    ("NaN", "numeric", "00000000c0000000", "NaN"),
    ("-Infinity", "numeric", "00000000f0000020", "-Infinity"),
    ("20000-01-01", "date", "0064511d", "20000-01-01"),
    ("0044-03-15 BC", "date", "fff49d7b", "0044-03-15 BC"),
    ("infinity", "date", "7fffffff", "infinity"),
    ("1999-12-31T23:59:59.5", "timestamp", "fffffffffff85ee0", "1999-12-31 23:59:59.5"),
    ("2026-01-05T08:00:00+00:00", "timestamptz", "0002ea9e36e30000", "2026-01-05 08:00:00+00"),
    ("0044-03-15T10:00:00 BC", "timestamp", "ff1af9e74e1f8800", "0044-03-15 10:00:00 BC"),
    ("24:00:00", "time", "000000141dd76000", "24:00:00"),
    ("10:00:00.5+05:30", "timetz", "0000000861cc0920ffffb2a8", "10:00:00.5+05:30"),
    ("P1Y2M-3DT4H5M6.5S", "interval", "000000036c9361a0fffffffd0000000e", "14 mons -3 days +04:05:06.5"),
    ([[1, 2], [3, None]], "_int8",
     "00000002000000010000001400000002000000010000000200000001000000080000000000000001000000080000000000000002"
     "000000080000000000000003ffffffff", '{{"1","2"},{"3",NULL}}'),
    ([], "_int4", "000000000000000000000017", "{}"),
    (["a b", None], "_text", "000000010000000100000019000000020000000100000003612062ffffffff", '{"a b",NULL}'),
    ("[1,5)", "int4range", "0200000004000000010000000400000005", '["1","5")'),
    ("(,6)", "int8range", "08000000080000000000000006", '(,"6")'),
    ("empty", "daterange", "01", "empty"),
    ("{[1,3),[5,7)}", "int4multirange",
     "00000002000000110200000004000000010000000400000003000000110200000004000000050000000400000007",
     '{["1","3"),["5","7")}'),
    ({"a": [1, None]}, "jsonb", "017b2261223a205b312c206e756c6c5d7d", '{"a": [1, null]}'),
    ("192.168.0.1/24", "inet", "02180004c0a80001", "192.168.0.1/24"),
    ("10.0.0.0/8", "cidr", "020801040a000000", "10.0.0.0/8"),
    ("::1", "inet", "0380001000000000000000000000000000000001", "::1"),
    ("c56a4180-65aa-42ec-a945-5fd21dec0538", "uuid", "c56a418065aa42eca9455fd21dec0538",
     "c56a4180-65aa-42ec-a945-5fd21dec0538"),
    (0.1, "float4", "3dcccccd", "0.100000001"),
    ("101010101", "varbit", "00000009aa80", "101010101"),
    ("9007199254740993", "int8", "0020000000000001", "9007199254740993"),  # past 2^53: the API sends a string
]


@pytest.mark.parametrize("value, type_name, sent, text", SENT)
def test_results_in_binary_are_postgres_own_bytes(value, type_name, sent, text):
    assert pgbinary.result_bytes(value, type_name).hex() == sent


@pytest.mark.parametrize("value, type_name, sent, text", SENT)
def test_binary_parameters_become_text_postgres_reads_back_the_same(value, type_name, sent, text):
    assert pgparams.parameter_text(bytes.fromhex(sent), OIDS[type_name]) == text


def test_binary_null_unsupported_types_and_bad_data():
    assert pgbinary.result_bytes(None, "int4") is None
    assert pgbinary.result_bytes("happy", "mood") == b"happy"  # a user-defined type is sent as text
    with pytest.raises(TunnelError) as refused:
        pgbinary.result_bytes("$12.50", "money")
    assert refused.value.sqlstate == "0A000" and "money" in refused.value.message
    with pytest.raises(TunnelError) as bad:
        pgparams.parameter_text(b"\x00\x01", OIDS["int4"])
    assert bad.value.sqlstate == "22P03"


def test_calendar_beyond_python_datetime():
    for year, month, day in ((294276, 12, 31), (-4712, 1, 1), (2000, 1, 1), (1600, 2, 29)):
        assert pgtime.civil_from_days(pgtime.days_from_civil(year, month, day)) == (year, month, day)
    assert pgtime.timestamp_text(pgtime.timestamp_us("20000-01-01T10:00:00+02:00"), utc=True) == "20000-01-01 08:00:00+00"


@pytest.mark.parametrize(
    "iso, style, text",
    [  # PostgreSQL 15's output of the same interval in each IntervalStyle
        ("P1Y2M3DT4H5M6.5S", "postgres", "1 year 2 mons 3 days 04:05:06.5"),
        ("P-1D", "postgres", "-1 days"),
        ("P1DT-1S", "postgres", "1 day -00:00:01"),
        ("P1Y2M3DT4H5M6.5S", "postgres_verbose", "@ 1 year 2 mons 3 days 4 hours 5 mins 6.5 secs"),
        ("P-1Y-2M", "postgres_verbose", "@ 1 year 2 mons ago"),
        ("PT1S", "postgres_verbose", "@ 1 sec"),
        ("PT0S", "postgres_verbose", "@ 0"),
        ("P1Y2M", "sql_standard", "1-2"),
        ("P3DT4H", "sql_standard", "3 4:00:00"),
        ("P1Y2M-3DT4H5M6.5S", "sql_standard", "+1-2 -3 +4:05:06.5"),
        ("-PT0.5S", "sql_standard", "-0:00:00.5"),
        ("P1Y2M3DT4H5M6.5S", "iso_8601", "P1Y2M3DT4H5M6.5S"),
    ],
)
def test_interval_styles(iso, style, text):
    assert pgtypes.interval_text(iso, style) == text


def test_text_forms_of_far_and_bc_timestamps():
    assert pgtypes.value_text("20000-01-01T10:00:00", "timestamp") == "20000-01-01 10:00:00"
    assert pgtypes.value_text("20000-01-01T08:00:00+00:00", "timestamptz") == "20000-01-01 08:00:00+00"
    assert pgtypes.value_text("0044-03-15T10:00:00+00:00 BC", "timestamptz") == "0044-03-15 10:00:00+00 BC"
    assert [pgtypes.type_oid(n) for n in ("int4multirange", "_tstzrange", "datemultirange")] == [4451, 3911, 4535]
    assert pgtypes.type_oid("char", "mysql") == 1042 and pgtypes.type_oid("char") == 18  # CHAR(n) vs "char"


@pytest.mark.parametrize(
    "sql, statements",
    [
        ("create procedure p() begin select 1; if 1 then select 2; end if; "
         "set @x = case when 1 then 2 else 3 end; end; select 4",
         ["create procedure p() begin select 1; if 1 then select 2; end if; "
          "set @x = case when 1 then 2 else 3 end; end", "select 4"]),
        ("CREATE DEFINER=`u`@`%` TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 'end;'; END",
         ["CREATE DEFINER=`u`@`%` TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 'end;'; END"]),
        ("begin not atomic select 1; select 2; end; select 3", ["begin not atomic select 1; select 2; end", "select 3"]),
        ("create table t (a int); begin; select 1", ["create table t (a int)", "begin", "select 1"]),
    ],
)
def test_mysql_compound_statements_are_not_split(sql, statements):
    assert split(sql, "mysql") == statements


def test_string_literals_that_are_not_utf8_become_hex_literals():
    query = b"insert into t values (_binary'\xff\\0\\'\x80''', 'caf\xc3\xa9', '\\n')"
    assert hex_literals(query) == "insert into t values (_binary X'ff00278027', 'caf\u00e9', '\\n')"
    with pytest.raises(UnicodeDecodeError):
        hex_literals(b"select \xff")  # outside a literal: not SQL


class Recorder:
    """A gateway that records the calls a session makes."""

    def __init__(self):
        self.calls = []

    def query(self, statement, **options):
        self.calls.append(("query", statement.sql, options))
        return Result([{"name": "n", "type": "int4"}], [[1]])

    def transaction(self, statements, **options):
        self.calls.append(("transaction", [s.sql for s in statements], options))
        return [Result([], [], 1) for _ in statements]


def run(session, sql):
    return session.execute(Statement(sql))


def test_savepoints_mark_places_in_the_queued_block():
    gateway = Recorder()
    session = Session(gateway, "postgres", abort_on_error=True)
    run(session, "begin")
    run(session, "insert into t values (1)")
    run(session, 'savepoint "_pg3_1"')
    run(session, "insert into t values (2)")
    with pytest.raises(TunnelError):
        run(session, "select 1")  # a read after a queued write fails the block…
    assert session.failed
    assert run(session, 'rollback to savepoint "_pg3_1"').notices == ["discarded 1 queued statement(s)"]
    assert not session.failed  # …until ROLLBACK TO, as in PostgreSQL
    run(session, "savepoint b")
    run(session, "insert into t values (3)")
    run(session, "release savepoint B")
    with pytest.raises(TunnelError) as missing:
        run(session, "release b")
    assert missing.value.sqlstate == "3B001"
    run(session, "rollback")  # the failed block ends
    run(session, "begin")
    run(session, "insert into t values (4)")
    assert run(session, "commit").tag == "COMMIT"
    assert gateway.calls == [("transaction", ["insert into t values (4)"], {"read_only": False, "timeout_ms": None})]
    with pytest.raises(TunnelError) as outside:
        run(session, "savepoint c")
    assert outside.value.sqlstate == "25P01"


def test_warnings_outside_a_block_carry_postgres_sqlstates():
    session = Session(Recorder(), "postgres", abort_on_error=True)
    (rollback,) = run(session, "rollback").notices
    assert (rollback, rollback.severity, rollback.sqlstate) == ("there is no transaction in progress", "WARNING", "25P01")
    run(session, "begin")
    (again,) = run(session, "begin").notices
    assert again.sqlstate == "25001"


def test_session_read_only_by_default_and_for_the_next_transaction():
    gateway = Recorder()
    session = Session(gateway, "mysql", abort_on_error=False)
    session.next_read_only = True
    run(session, "select 1")
    run(session, "select 2")
    session.default_read_only = True
    run(session, "select 3")
    assert [call[2]["read_only"] for call in gateway.calls] == [True, False, True]
