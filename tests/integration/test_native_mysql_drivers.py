"""MySQL drivers through `rdsgate connect`, as their users run them: PyMySQL and mysql-connector-python (pure
Python, text protocol), each checked for typed values both ways, NULLs, errors with their numbers and SQLSTATEs,
large results, the settings they send at connect, and the tunnel's own session variables.

One local stack and one tunnel serve the module; each test uses its own rows.
"""

import datetime as dt
from decimal import Decimal

import mysql.connector
import pymysql
import pytest

from tests.local_processes import Tunnel, api_records, serve_fixture

SERVER_SQL_MODE = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"

serve = serve_fixture()


@pytest.fixture(scope="module")
def tunnel(serve):
    running = Tunnel("demo-mysql", serve.url)
    api(serve, "CREATE TABLE native_values (id int PRIMARY KEY, b varbinary(32), t text, d datetime(6), n decimal(20,6), "
               "f bit(1) DEFAULT 1)")
    yield running
    api(serve, "DROP TABLE native_values")
    running.kill()


def api(serve, sql):
    """Ask the API directly (not through the tunnel): the records as arrays."""
    return api_records(serve, "demo-mysql", sql)


def pymysql_connect(tunnel, **kwargs):
    return pymysql.connect(host="127.0.0.1", port=tunnel.port, user="tester", database="demo", connect_timeout=10,
                           read_timeout=60, write_timeout=60, **kwargs)


def connector_connect(tunnel, **kwargs):
    return mysql.connector.connect(host="127.0.0.1", port=tunnel.port, user="tester", database="demo", use_pure=True,
                                   connection_timeout=10, **kwargs)


VALUES = (7, -2**62, 1.5, Decimal("-12345678901234.000100"), "a:b 'c' \\ \u00e9 \U0001f600", dt.date(2024, 2, 29),
          dt.datetime(2026, 1, 5, 10, 0, 0, 123456), None)


# -- PyMySQL --------------------------------------------------------------------------------------


def test_pymysql_values_both_ways(tunnel, serve):
    with pymysql_connect(tunnel, autocommit=True) as con, con.cursor() as cursor:
        cursor.execute("select " + ", ".join(["%s"] * len(VALUES)), VALUES)
        row = cursor.fetchone()
        assert row[:3] == (7, -2**62, 1.5) and row[4] == VALUES[4] and row[7] is None
        assert Decimal(row[3]) == VALUES[3] and row[5] == "2024-02-29" and row[6] == "2026-01-05 10:00:00.123456"
        cursor.execute("insert into native_values (id, b, t, d, n) values (%s, %s, %s, %s, %s)",
                       (1, b"\xff\x00\x80'\\", VALUES[4], VALUES[6], VALUES[3]))
        cursor.execute("select b, t, d, n, length(b), f from native_values where id = %s", (1,))
        assert cursor.fetchone() == (b"\xff\x00\x80'\\", VALUES[4], VALUES[6], VALUES[3], 5, b"\x01")  # BIT as bytes
        assert [d[1] for d in cursor.description] == [253, 252, 12, 246, 3, 16]  # VARBINARY, BLOB, DATETIME, …, BIT
    assert api(serve, "select hex(b) from native_values where id = 1") == [["FF0080275C"]]


def test_pymysql_errors_large_results_and_autocommit_state(tunnel):
    with pymysql_connect(tunnel) as con, con.cursor() as cursor:  # autocommit off, PyMySQL's default
        assert con.get_autocommit() is False
        cursor.execute("select @@autocommit, @@session.autocommit as ac, @@in_transaction")
        assert cursor.fetchone() == (0, 0, 0) and [d[0] for d in cursor.description] == ["@@autocommit", "ac",
                                                                                         "@@in_transaction"]
        con.autocommit(True)
        cursor.execute("select @@autocommit")
        assert cursor.fetchone() == (1,)
        with pytest.raises(pymysql.err.ProgrammingError) as error:
            cursor.execute("select * from no_such_table")
        assert error.value.args[0] == 1146
        with pytest.raises(pymysql.err.IntegrityError) as error:
            cursor.execute("insert into customers (name, email, country, signed_up) values ('D', %s, 'FR', now())",
                           ("ada@example.com",))
        assert error.value.args[0] == 1062
        assert cursor.execute("select seq, repeat('x', 500), seq / 3 from seq_1_to_5000") == 5000
        rows = cursor.fetchall()
        assert rows[-1] == (5000, "x" * 500, Decimal("1666.6667")) and rows[0][0] == 1
    with pymysql_connect(tunnel, cursorclass=pymysql.cursors.SSCursor) as con, con.cursor() as cursor:
        cursor.execute("select seq from seq_1_to_3000")
        assert sum(1 for _ in cursor) == 3000


def test_pymysql_compound_statements_and_callproc(tunnel):
    with pymysql_connect(tunnel, autocommit=True) as con, con.cursor() as cursor:
        cursor.execute("DROP PROCEDURE IF EXISTS native_double")
        cursor.execute("""CREATE PROCEDURE native_double(IN x INT)
            BEGIN
                DECLARE y INT DEFAULT 0;
                IF x IS NULL THEN SET y = -1; ELSE SET y = x * 2; END IF;
                SELECT y AS doubled, CASE WHEN y > 40 THEN 'big' ELSE 'small' END AS size;
            END""")
        try:
            cursor.callproc("native_double", (21,))  # SET @_native_double_0 = 21; CALL native_double(@_…)
            assert cursor.fetchall() == ((42, "big"),)
        finally:
            cursor.execute("DROP PROCEDURE native_double")


def test_pymysql_settings_at_connect(tunnel):
    with pymysql_connect(tunnel, sql_mode=SERVER_SQL_MODE, init_command="SET time_zone = '+00:00'") as con, \
            con.cursor() as cursor:
        cursor.execute("set session transaction isolation level read committed")
        assert con.show_warnings()[0][2].startswith("the isolation level is the server's default")
    with pytest.raises(pymysql.err.NotSupportedError) as error:
        pymysql_connect(tunnel, sql_mode="ANSI")
    assert error.value.args[0] == 1235 and "unless it is the server's own mode" in error.value.args[1]
    with pytest.raises(pymysql.err.NotSupportedError, match="utf8mb4 only, not latin1"):
        pymysql_connect(tunnel, charset="latin1")


# -- mysql-connector-python -------------------------------------------------------------------------


def test_connector_values_both_ways_and_bytes_that_are_not_utf8(tunnel, serve):
    con = connector_connect(tunnel, autocommit=True)
    try:
        cursor = con.cursor()
        cursor.execute("select " + ", ".join(["%s"] * len(VALUES)), VALUES)
        row = cursor.fetchone()
        assert row[:3] == (7, -2**62, 1.5) and row[4] == VALUES[4] and row[7] is None
        # The connector sends bytes as they are, inside a quoted literal: the tunnel makes it a hex literal.
        cursor.execute("insert into native_values (id, b, t, d, n) values (%s, %s, %s, %s, %s)",
                       (2, b"\xff\x00\x80'\\\n\x1a", VALUES[4], VALUES[6], VALUES[3]))
        cursor.execute("select b, t, d, n, id, f from native_values where id = %s", (2,))
        assert cursor.fetchone() == (bytearray(b"\xff\x00\x80'\\\n\x1a"), VALUES[4], VALUES[6], VALUES[3], 2, 1)
        cursor.execute("select %s", (b"\xc3\xa9t\xe9",))
        assert bytes(cursor.fetchone()[0]) == b"\xc3\xa9t\xe9"
        cursor.execute("select placed_at, deliver_on, model_year, status, total, note from orders where id = %s", (1,))
        assert cursor.fetchone() == (dt.datetime(2026, 1, 5, 10), dt.date(2026, 1, 8), 2025, "delivered",
                                     Decimal("129.90"), None)
    finally:
        con.close()
    assert api(serve, "select hex(b) from native_values where id = 2") == [["FF0080275C0A1A"]]


def test_connector_errors_large_results_and_autocommit_state(tunnel):
    con = connector_connect(tunnel)  # autocommit off, the connector's default
    try:
        assert con.autocommit is False  # SELECT @@session.autocommit: the tunnel's session answers
        cursor = con.cursor()
        with pytest.raises(mysql.connector.Error) as error:
            cursor.execute("select * from no_such_table")
        assert (error.value.errno, error.value.sqlstate) == (1146, "42S02")
        con.rollback()
        con.autocommit = True
        assert con.autocommit is True
        with pytest.raises(mysql.connector.Error) as error:
            cursor.execute("selec 1")
        assert (error.value.errno, error.value.sqlstate) == (1064, "42000")
        cursor.execute("select seq, md5(seq), null from seq_1_to_5000")
        rows = cursor.fetchall()
        assert len(rows) == 5000 and rows[4999][0] == 5000 and rows[0][2] is None
        with pytest.raises(mysql.connector.Error) as error:
            cursor.execute("set statement max_statement_time=0.2 for select sleep(3)")  # the timeout, per statement
        assert error.value.errno == 1969
        with pytest.raises(mysql.connector.Error) as error:
            cursor.execute("set statement sql_mode='' for select 1")
        assert error.value.errno == 1235 and "only max_statement_time" in error.value.msg
    finally:
        con.close()


def test_connector_settings_at_connect(tunnel):
    con = connector_connect(tunnel, sql_mode=SERVER_SQL_MODE, time_zone="+00:00", charset="utf8mb4",
                            collation="utf8mb4_general_ci")
    try:
        cursor = con.cursor()
        cursor.execute("select @@time_zone, %s", ("ok",))
        assert cursor.fetchone()[1] == "ok"
    finally:
        con.close()
    with pytest.raises(mysql.connector.Error) as error:
        connector_connect(tunnel, time_zone="+02:00")
    assert error.value.errno == 1235 and "run in UTC" in error.value.msg
