"""`rdsgate connect` with real transactions: a transaction block is a session on the API (rdsgate serve has them).

Unpatched drivers through the tunnel, on both engines: pg8000's DB-API with INSERT … RETURNING and
reading its own writes, SQLAlchemy's ORM over pg8000 and over PyMySQL (flush, commit, rollback),
PyMySQL's lastrowid, savepoints; and that a block's writes are invisible outside it until COMMIT.
"""

from __future__ import annotations

import time

import pg8000.dbapi
import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from tests.local_processes import api_records as api, serve_fixture, tunnel_fixture

serve = serve_fixture()
pg_tunnel = tunnel_fixture("demo")
my_tunnel = tunnel_fixture("demo-mysql")


@pytest.fixture
def pg_table(serve):
    api(serve, "demo", "DROP TABLE IF EXISTS tunnel_notes")
    api(serve, "demo", "CREATE TABLE tunnel_notes (id serial PRIMARY KEY, body text NOT NULL)")
    yield "tunnel_notes"
    api(serve, "demo", "DROP TABLE IF EXISTS tunnel_notes")


@pytest.fixture
def my_table(serve):
    api(serve, "demo-mysql", "DROP TABLE IF EXISTS tunnel_notes")
    api(serve, "demo-mysql", "CREATE TABLE tunnel_notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100) NOT NULL)")
    yield "tunnel_notes"
    api(serve, "demo-mysql", "DROP TABLE IF EXISTS tunnel_notes")


def committed(serve, connection):
    return [row[1] for row in api(serve, connection, "SELECT id, body FROM tunnel_notes ORDER BY id")]


# -- PostgreSQL ------------------------------------------------------------------------------------


def test_pg8000_returning_own_writes_savepoints_commit_and_rollback(pg_tunnel, serve, pg_table):
    conn = pg8000.dbapi.connect("tester", host="127.0.0.1", port=pg_tunnel.port, database="demo", timeout=60)
    try:
        cursor = conn.cursor()
        cursor.execute("INSERT INTO tunnel_notes (body) VALUES (%s) RETURNING id", ("first",))
        (first,) = cursor.fetchone()  # RETURNING in a transaction: the row comes back now
        cursor.execute("SELECT body FROM tunnel_notes WHERE id = %s", (first,))
        assert [list(row) for row in cursor.fetchall()] == [["first"]]  # its own uncommitted write
        assert committed(serve, "demo") == []  # nobody else sees it
        cursor.execute("SAVEPOINT before_second")
        cursor.execute("INSERT INTO tunnel_notes (body) VALUES ('second')")
        cursor.execute("ROLLBACK TO SAVEPOINT before_second")
        cursor.execute("SELECT count(*) FROM tunnel_notes")
        assert cursor.fetchone() == [1]
        conn.commit()
        assert committed(serve, "demo") == ["first"]
        cursor.execute("INSERT INTO tunnel_notes (body) VALUES ('dropped') RETURNING id")
        assert cursor.fetchone()[0] > first
        conn.rollback()
        assert committed(serve, "demo") == ["first"]
        with pytest.raises(pg8000.dbapi.DatabaseError):  # an error fails the transaction, as in PostgreSQL
            cursor.execute("INSERT INTO tunnel_notes (id, body) VALUES (%s, 'dup')", (first,))
        with pytest.raises(pg8000.dbapi.DatabaseError, match="25P02"):
            cursor.execute("SELECT 1")
        conn.rollback()
        cursor.execute("SELECT count(*) FROM tunnel_notes")
        assert cursor.fetchone() == [1]
        conn.commit()
    finally:
        conn.close()


class Base(orm.DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "tunnel_notes"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=True)
    body: orm.Mapped[str] = orm.mapped_column(sa.String(100))


@pytest.mark.parametrize("engine_name", ["postgresql+pg8000", "mysql+pymysql"])
def test_sqlalchemy_orm_commit_and_rollback_through_the_tunnel(engine_name, pg_tunnel, my_tunnel, serve, request):
    postgres = engine_name.startswith("postgresql")
    request.getfixturevalue("pg_table" if postgres else "my_table")
    port, connection = (pg_tunnel.port, "demo") if postgres else (my_tunnel.port, "demo-mysql")
    engine = sa.create_engine(f"{engine_name}://tester@127.0.0.1:{port}/demo")
    try:
        with orm.Session(engine) as session:
            ann, bo = Note(body="ann"), Note(body="bo")
            session.add_all([ann, bo])
            session.flush()  # PostgreSQL: INSERT … RETURNING; MySQL: the OK packet's last insert id
            assert ann.id and bo.id and ann.id != bo.id
            assert session.scalars(sa.select(Note.body).order_by(Note.id)).all() == ["ann", "bo"]
            assert committed(serve, connection) == []
            session.commit()
        assert committed(serve, connection) == ["ann", "bo"]
        with orm.Session(engine) as session:
            session.add(Note(body="gone"))
            session.flush()
            assert session.scalar(sa.select(sa.func.count()).select_from(Note)) == 3
            session.rollback()
        assert committed(serve, connection) == ["ann", "bo"]
    finally:
        engine.dispose()


# -- MySQL -----------------------------------------------------------------------------------------


def test_pymysql_lastrowid_own_writes_commit_and_rollback(my_tunnel, serve, my_table):
    conn = pymysql.connect(host="127.0.0.1", port=my_tunnel.port, user="tester", database="demo", connect_timeout=30)
    try:
        with conn.cursor() as cursor:  # PyMySQL turns autocommit off: the block is open from the start
            cursor.execute("INSERT INTO tunnel_notes (body) VALUES (%s)", ("first",))
            first = cursor.lastrowid
            assert first > 0
            cursor.execute("INSERT INTO tunnel_notes (body) VALUES (%s)", ("second",))
            assert cursor.lastrowid == first + 1
            cursor.execute("SELECT body FROM tunnel_notes ORDER BY id")
            assert cursor.fetchall() == (("first",), ("second",))
            assert committed(serve, "demo-mysql") == []
            conn.commit()
            assert committed(serve, "demo-mysql") == ["first", "second"]
            cursor.execute("DELETE FROM tunnel_notes")
            cursor.execute("SELECT count(*) FROM tunnel_notes")
            assert cursor.fetchone() == (0,)
            conn.rollback()
        assert committed(serve, "demo-mysql") == ["first", "second"]
    finally:
        conn.close()


def test_a_client_that_leaves_mid_transaction_writes_nothing(my_tunnel, serve, my_table):
    rollbacks = serve.text.count("/rollback -> 200")
    conn = pymysql.connect(host="127.0.0.1", port=my_tunnel.port, user="tester", database="demo", connect_timeout=30)
    with conn.cursor() as cursor:
        cursor.execute("INSERT INTO tunnel_notes (body) VALUES ('left behind')")
    conn.close()  # no COMMIT: the tunnel rolls the session back at once (not after three idle minutes)
    deadline = time.monotonic() + 20
    while serve.text.count("/rollback -> 200") == rollbacks:  # rdsgate serve's access log
        assert time.monotonic() < deadline, serve.text[-2000:]
        time.sleep(0.1)
    api(serve, "demo-mysql", "UPDATE tunnel_notes SET body = body")  # no row lock left to wait for
    assert committed(serve, "demo-mysql") == []
