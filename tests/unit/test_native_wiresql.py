"""`rdsgate connect`'s pure parts: SQL scanning and rewriting, value forms, password scrambles, error mapping.

No server is needed; the clients' behaviour is tested in test_native_postgres.py and test_native_mysql.py.
"""

import pytest
from pymysql import _auth

from rdsgate.sql.text import prepare
from rdsgate_tunnel import mysqltypes, mysqlwire, pgtypes
from rdsgate_tunnel.gateway import TunnelError
from rdsgate_tunnel.wiresql import analyse, literal_value, rewrite, split, split_arguments


@pytest.mark.parametrize(
    "sql, dialect, statements",
    [
        ("select 'a;b'; select 2;", "postgres", ["select 'a;b'", "select 2"]),
        ("select $$x;y$$; select E'\\';'", "postgres", ["select $$x;y$$", "select E'\\';'"]),
        ("/* a; /* nested; */ */ select 1; -- c;\n", "postgres", ["/* a; /* nested; */ */ select 1"]),
        (";; ;", "postgres", []),
        ("select 'a\\';b'; select `x;y`", "mysql", ["select 'a\\';b'", "select `x;y`"]),
        ("select 1 # c;\n; select 1--1;", "mysql", ["select 1 # c;", "select 1--1"]),
    ],
)
def test_split_at_top_level_semicolons_only(sql, dialect, statements):
    assert split(sql, dialect) == statements


def test_rewrite_turns_placeholders_into_api_parameters_and_leaves_literals_alone():
    sql = "select a[1:n], x::int, ':y', \":z\", $1, $2 from t where a = $1 and b$1 = 2 -- :c $3"
    out = rewrite(sql, "postgres", dollar=lambda n: f":p{n}")
    assert out == "select a[1: n], x::int, ':y', \":z\", :p1, :p2 from t where a = :p1 and b$1 = 2 -- :c $3"
    assert prepare(out, "postgres").names == ("p1", "p2")  # the API sees exactly the two parameters


def test_literal_sql_with_colon_words_reaches_the_api_without_parameters():
    out = rewrite("select arr[lo:hi], 'a:b' from t", "postgres")
    assert prepare(out, "postgres").names == ()
    mysql = rewrite("select @a, @@version, ?, '?', @b := 1, :x", "mysql", question=lambda k: f":q{k}",
                    variable=lambda name: ":u1" if name == "a" else None)
    assert mysql == "select :u1, @@version, :q1, '?', @b := 1, : x"
    assert prepare(mysql, "mysql").names == ("u1", "q1")


@pytest.mark.parametrize(
    "sql, keyword, main, reads, locks, returning",
    [
        ("SELECT * FROM t", "SELECT", "SELECT", True, False, False),
        ("(select 1) union select 2", "SELECT", "SELECT", True, False, False),
        ("with x as (select 1) update t set a = 1", "WITH", "UPDATE", False, False, False),
        ("with x as (delete from t returning *) select * from x", "WITH", "SELECT", False, False, True),
        ("select replace(a, 'b', 'c') from t for update", "SELECT", "SELECT", True, True, False),
        ("select a into b from t", "SELECT", "SELECT", False, False, False),
        ("explain analyze delete from t", "EXPLAIN", "EXPLAIN", False, False, False),
        ("insert into t values (1) returning id", "INSERT", "INSERT", False, False, True),
        ("-- note\nshow tables", "SHOW", "SHOW", True, False, False),
    ],
)
def test_analyse(sql, keyword, main, reads, locks, returning):
    analysis = analyse(sql, "postgres")
    assert (analysis.keyword, analysis.main, analysis.reads, analysis.locks, analysis.returning) == (
        keyword, main, reads, locks, returning)


def test_arguments_and_literals():
    assert split_arguments("1, f(2, 3), 'a,b', @v", "mysql") == ["1", "f(2, 3)", "'a,b'", "@v"]
    assert literal_value("'it''s'", "postgres") == (True, "it's")
    assert literal_value("'a\\nb'", "mysql") == (True, "a\nb")
    assert literal_value("-12", "postgres") == (True, -12)
    assert literal_value("1.50", "postgres") == (True, "1.50")  # exact, as text
    assert literal_value("NULL", "mysql") == (True, None)
    assert literal_value("now()", "postgres") == (False, None)


@pytest.mark.parametrize(
    "iso, text",
    [
        ("P2DT4H", "2 days 04:00:00"),
        ("P1Y2M-3DT4H5M6.5S", "1 year 2 mons -3 days +04:05:06.5"),
        ("PT0S", "00:00:00"),
        ("-PT1M", "-00:01:00"),
        ("P3D", "3 days"),
    ],
)
def test_intervals_in_postgres_style(iso, text):
    assert pgtypes.interval_text(iso) == text


@pytest.mark.parametrize(
    "value, type_name, text",
    [
        (True, "bool", "t"),
        (100.0, "float8", "100"),
        (1e20, "float8", "1e+20"),
        ("2026-01-05T10:00:00+00:00", "timestamptz", "2026-01-05 10:00:00+00"),
        ("2026-01-05T10:00:00.5+05:30", "timestamptz", "2026-01-05 10:00:00.5+05:30"),
        ("2026-01-05T10:00:00", "timestamp", "2026-01-05 10:00:00"),
        ("iVBORw==", "bytea", "\\x89504e47"),
        (["a,b", None, 'c"d', ""], "_text", '{"a,b",NULL,"c\\"d",""}'),
        ([[1, 2], [3, 4]], "_int4", "{{1,2},{3,4}}"),
        ({"a": [1, "x"]}, "jsonb", '{"a": [1, "x"]}'),
        ("just a string", "json", '"just a string"'),
        (["input", "usb"], "set", "{input,usb}"),
        (None, "text", None),
    ],
)
def test_postgres_text_forms(value, type_name, text):
    assert pgtypes.value_text(value, type_name) == text


def test_type_oids_for_postgres_and_mysql_names():
    assert [pgtypes.type_oid(n) for n in ("int4", "numeric", "timestamptz", "_int4", "order_status", "_mood")] == [
        23, 1700, 1184, 1007, 25, 1009]
    assert [pgtypes.type_oid(n) for n in ("bigint", "varchar", "decimal", "datetime", "json", "set", "blob")] == [
        20, 1043, 1700, 1114, 114, 1009, 17]


@pytest.mark.parametrize(
    "value, type_name, data",
    [
        ("2026-01-05T10:00:00", "datetime", b"2026-01-05 10:00:00"),
        ("2026-01-05T11:00:00+01:00", "timestamptz", b"2026-01-05 10:00:00"),
        (["input", "usb"], "set", b"input,usb"),
        ("iVBORw==", "varbinary", b"\x89PNG"),
        ({"pages": 120}, "json", b'{"pages": 120}'),
        (2.0, "double", b"2"),
        (False, "bool", b"0"),
        (1, "bit", b"\x01"),  # BIT(1), as PyMySQL reads it from MySQL
        (256, "bit", b"\x01\x00"),
    ],
)
def test_mysql_text_forms(value, type_name, data):
    assert mysqltypes.value_bytes(value, type_name) == data


def test_native_password_scramble_matches_pymysql():
    salt = b"abcdefghij0123456789"
    assert mysqlwire.native_scramble(b"s3cret", salt) == _auth.scramble_native_password(b"s3cret", salt)


def test_mysql_error_numbers_and_states():
    assert mysqlwire.error_fields(TunnelError("x", code="SqlError", errno=1146)) == (1146, "42S02")
    assert mysqlwire.error_fields(TunnelError.refused("x")) == (1235, "42000")
    assert mysqlwire.error_fields(TunnelError("x", code="ReadOnlyViolation")) == (1792, "25006")
    assert mysqlwire.error_fields(TunnelError("x", code="DatabaseUnavailable")) == (1105, "HY000")


def test_lenenc_integers():
    assert [mysqlwire.lenenc_int(n) for n in (250, 251, 70000)] == [b"\xfa", b"\xfc\xfb\x00", b"\xfd\x70\x11\x01"]


def test_quoted_user_variables_become_api_parameters():
    """PyMySQL's callproc writes ``SET @`_p_0`=…`` and ``CALL `p`(@`_p_0`)``."""
    known = {"_p_0": ":u1", "it's": ":u2"}
    out = rewrite("CALL `p`(@`_p_0`, @'it''s', @\"x\", @@`y`, '@`_p_0`')", "mysql", variable=known.get)
    assert out == "CALL `p`(:u1, :u2, @\"x\", @@`y`, '@`_p_0`')"
