"""PostgreSQL drivers through `rdsgate connect`, as their users run them: psycopg 3 (binary parameters under
``%s``, binary results on request), asyncpg (binary both ways), SQLAlchemy with psycopg, and pg8000.

Each driver is checked for typed values both ways, NULLs, errors with their SQLSTATE, and large results.
One local stack (without MariaDB) and one tunnel serve the module; each test uses its own rows.
"""

import asyncio
import datetime as dt
import json
import subprocess
import uuid
from decimal import Decimal

import asyncpg
import pg8000.native
import psycopg
import pytest
import sqlalchemy as sa
from psycopg.types.multirange import Multirange
from psycopg.types.range import Range
from psycopg.types.string import TextLoader

from tests.local_processes import api_records, in_fresh_thread, psql, serve_fixture, tunnel_fixture

UTC = dt.timezone.utc

serve = serve_fixture("--no-mysql")
tunnel = tunnel_fixture("demo")


def api(serve, sql):
    """Ask the API directly (not through the tunnel): the records as arrays."""
    return api_records(serve, "demo", sql)


def dsn(tunnel):
    return f"host=127.0.0.1 port={tunnel.port} dbname=demo user=tester sslmode=disable connect_timeout=10"


# Values of many types, and what they come back as. The driver sends most of them in binary.
VALUES = [
    7, -2**40, 2**63 - 1, 1.5, float("inf"), True, Decimal("-1234567890.000100"), "a:b 'c' \u00e9",
    dt.date(2024, 2, 29), dt.time(23, 59, 59, 999999), dt.datetime(2026, 1, 5, 10, 0, 0, 5),
    dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))), dt.timedelta(days=-1, microseconds=1),
    uuid.UUID("c56a4180-65aa-42ec-a945-5fd21dec0538"), b"\x00\xff\x80 binary", [1, None, 3], None,
]


# -- psycopg 3 ------------------------------------------------------------------------------------


def test_psycopg_parameters_in_binary_arrive_typed_and_exact(tunnel):
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        row = conn.execute("select " + ", ".join(["%s"] * len(VALUES)), VALUES).fetchone()
        assert row == tuple(VALUES[:11]) + (VALUES[11].astimezone(UTC),) + tuple(VALUES[12:])
        # The server typed each parameter as psycopg declared it (binary int2 for 7, float8, bool, …).
        types = conn.execute("select " + ", ".join(["pg_typeof(%s)::text"] * 6), VALUES[:6]).fetchone()
        assert types == ("smallint", "bigint", "bigint", "double precision", "double precision", "boolean")
        assert conn.execute("select %s::numeric * 2, %s::date + 1", (Decimal("0.1"), dt.date(2000, 2, 28))).fetchone() == (
            Decimal("0.2"), dt.date(2000, 2, 29))


def test_psycopg_results_in_binary_equal_the_text_ones(tunnel):
    sql = ("select o.*, p.sku, p.price, p.weight_kg, p.tags, p.attributes, p.thumbnail, '[1,5)'::int4range r, "
           "'{[1,3),[5,7)}'::int4multirange m, '1 year -2 days 00:00:01.5'::interval i, 1e-20::numeric n, "
           "'2026-01-05 10:00:00.123456+02'::timestamptz t, '192.168.0.1/24'::inet a, null::int8 z "
           "from orders o join products p on p.id = o.product_id order by o.id")
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        text = conn.execute(sql).fetchall()
        binary = conn.cursor(binary=True).execute(sql).fetchall()
        described = conn.cursor(binary=True).execute(sql).description
    assert binary == text and len(binary) == 3
    first = binary[0]
    assert first[:10] == (1, 1, 1, 1, Decimal("129.90"), "delivered", dt.datetime(2026, 1, 5, 10, tzinfo=UTC),
                          dt.date(2026, 1, 8), dt.timedelta(days=2, hours=4), None)
    assert first[10:] == (uuid.UUID("c56a4180-65aa-42ec-a945-5fd21dec0538"), Decimal("129.90"), 1.2, ["input", "usb"],
                          {"layout": "ISO", "switches": "brown"}, b"\x89PNG", Range(1, 5),
                          Multirange([Range(1, 3), Range(5, 7)]), dt.timedelta(days=363, seconds=1, microseconds=500000),
                          Decimal("1E-20"), dt.datetime(2026, 1, 5, 8, 0, 0, 123456, tzinfo=UTC), first[-2], None)
    assert str(first[-2]) == "192.168.0.1/24"
    assert [d.type_code for d in described][-6:] == [4451, 1186, 1700, 1184, 869, 20]  # multirange: not text


def test_psycopg_nulls_errors_and_sqlstates(tunnel):
    with psycopg.connect(dsn(tunnel)) as conn:  # autocommit off: psycopg opens a block itself
        assert conn.execute("select %s::int, %s::text, %s::jsonb", (None, None, None)).fetchone() == (None, None, None)
        with pytest.raises(psycopg.errors.DivisionByZero) as error:
            conn.execute("select 1 / %s", (0,))
        assert error.value.sqlstate == "22012"
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):  # the block failed, as in PostgreSQL
            conn.execute("select 1")
        conn.rollback()
        with pytest.raises(psycopg.errors.UndefinedTable) as error:
            conn.execute("select * from no_such_table where id = %s", (1,))
        assert error.value.diag.message_primary == 'relation "no_such_table" does not exist'
        conn.rollback()
        with pytest.raises(psycopg.errors.UniqueViolation):  # when the write runs: at once, or at COMMIT
            conn.execute("insert into customers (name, email, country, signed_up) values (%s, %s, 'FR', now())",
                         ("Dup", "ada@example.com"))
            conn.commit()
        conn.rollback()
        assert conn.execute("select %s", ("usable",)).fetchone() == ("usable",)


def test_psycopg_transactions_savepoints_and_executemany(tunnel, serve):
    emails = [f"psy-{i}@example.com" for i in range(3)]
    insert = "insert into customers (name, email, country, signed_up) values (%s, %s, 'FR', %s)"
    with psycopg.connect(dsn(tunnel)) as conn:
        with conn.transaction():
            conn.execute(insert, ("Psy", emails[0], dt.datetime(2026, 5, 1, tzinfo=UTC)))
            with pytest.raises(KeyError), conn.transaction():  # a savepoint, rolled back to
                conn.execute(insert, ("Psy", emails[1], dt.datetime(2026, 5, 1, tzinfo=UTC)))
                raise KeyError("the application changed its mind")
        assert api(serve, "select email from customers where email like 'psy-%'") == [[emails[0]]]
        with pytest.raises(ZeroDivisionError), conn.transaction():
            conn.execute(insert, ("Psy", emails[1], dt.datetime(2026, 5, 1, tzinfo=UTC)))
            1 / 0
        assert api(serve, "select count(*) from customers where email like 'psy-%'") == [[1]]
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        with conn.cursor() as cursor:  # pipelined: one atomic /batch call
            cursor.executemany(insert, [("Many", e, dt.datetime(2026, 5, 2, tzinfo=UTC)) for e in emails[1:]])
        with pytest.raises(psycopg.errors.UniqueViolation), conn.cursor() as cursor:
            cursor.executemany(insert, [("New", "psy-new@example.com", dt.datetime(2026, 5, 3, tzinfo=UTC)),
                                        ("Dup", emails[0], dt.datetime(2026, 5, 3, tzinfo=UTC))])
        assert conn.execute("select count(*) from customers where email like 'psy-%'").fetchone() == (3,)
        assert conn.execute("delete from customers where email like 'psy-%'").rowcount == 3


def test_psycopg_large_results_and_the_row_limit(tunnel):
    notices = []
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        conn.add_notice_handler(lambda diagnostic: notices.append((diagnostic.severity, diagnostic.message_primary)))
        sql = "select g, repeat('x', 2000) || g, g * 1.5::numeric, now() from generate_series(1, %s) g"
        rows = conn.cursor(binary=True).execute(sql, (1000,)).fetchall()  # the demo connection's max_rows
        assert len(rows) == 1000 and rows[-1][:3] == (1000, "x" * 2000 + "1000", Decimal("1500.0"))
        assert notices == []
        assert len(conn.execute(sql, (1001,)).fetchall()) == 1000
    assert notices == [("WARNING", "the result was cut to 1000 rows by the gateway's row limit")]


def test_many_parameters_past_32767(tunnel):
    count = 33000  # more than a signed 16-bit count: once this closed the client's connection
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        sql = "select array_length(array[" + ",".join(["%s"] * count) + "]::text[], 1)"
        assert conn.execute(sql, ["x"] * count).fetchone() == (count,)
    con = pg8000.native.Connection("tester", host="127.0.0.1", port=tunnel.port, database="demo", timeout=60)
    try:  # pg8000 describes the statement first: the ParameterDescription holds 33,000 types
        sql = "select array_length(array[" + ",".join(f":p{i}" for i in range(count)) + "]::text[], 1)"
        assert con.run(sql, **{f"p{i}": "y" for i in range(count)}) == [[count]]
    finally:
        con.close()


# -- asyncpg --------------------------------------------------------------------------------------


def asyncpg_run(tunnel, work, **options):
    async def main():
        conn = await asyncpg.connect(host="127.0.0.1", port=tunnel.port, user="tester", database="demo", timeout=30,
                                     **options)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return in_fresh_thread(lambda: asyncio.run(main()))


def test_asyncpg_binary_both_ways(tunnel):
    async def work(conn):
        sql = ("select $1::int4, $2::int8, $3::float8, $4::bool, $5::numeric, $6::text, $7::date, $8::time, "
               "$9::timestamp, $10::timestamptz, $11::interval, $12::uuid, $13::bytea, $14::int4[], $15::text")
        row = await conn.fetchrow(sql, 7, -2**40, 1.5, True, Decimal("-1234567890.000100"), "a:b 'c'",
                                  dt.date(2024, 2, 29), dt.time(23, 59, 59, 999999), dt.datetime(2026, 1, 5, 10, 0, 0, 5),
                                  dt.datetime(2026, 1, 5, 10, tzinfo=UTC), dt.timedelta(days=-1, microseconds=1),
                                  uuid.UUID("c56a4180-65aa-42ec-a945-5fd21dec0538"), b"\x00\xff", [1, None, 3], None)
        products = await conn.fetch("select * from products order by id")
        ranges = await conn.fetchrow("select $1::int8range, '{[1,3),[5,7)}'::int4multirange, $2::jsonb",
                                     asyncpg.Range(1, 10), '{"a": [1, null]}')
        with pytest.raises(asyncpg.FeatureNotSupportedError, match="binary format of type box is not supported"):
            await conn.fetchval("select box(point(0, 0), point(1, 1))")  # asyncpg asks for it in binary
        assert await conn.fetchval("select box(point(0, 0), point(1, 1))::text") == "(1,1),(0,0)"
        return tuple(row), products, ranges

    row, products, ranges = asyncpg_run(tunnel, work)
    assert row == (7, -2**40, 1.5, True, Decimal("-1234567890.000100"), "a:b 'c'", dt.date(2024, 2, 29),
                   dt.time(23, 59, 59, 999999), dt.datetime(2026, 1, 5, 10, 0, 0, 5), dt.datetime(2026, 1, 5, 10, tzinfo=UTC),
                   dt.timedelta(days=-1, microseconds=1), uuid.UUID("c56a4180-65aa-42ec-a945-5fd21dec0538"), b"\x00\xff",
                   [1, None, 3], None)
    assert [tuple(p) for p in products][0] == (1, uuid.UUID("c56a4180-65aa-42ec-a945-5fd21dec0538"), "Mechanical keyboard",
                                               Decimal("129.90"), 1.2, ["input", "usb"],
                                               '{"layout": "ISO", "switches": "brown"}', b"\x89PNG")
    assert products[2]["attributes"] is None and products[2]["tags"] == []
    assert ranges[0] == asyncpg.Range(1, 10) and [(r.lower, r.upper) for r in ranges[1]] == [(1, 3), (5, 7)]
    assert json.loads(ranges[2]) == {"a": [1, None]}


def test_asyncpg_errors_transactions_and_executemany(tunnel, serve):
    insert = "insert into customers (name, email, country, signed_up) values ($1, $2, 'DE', now())"

    async def work(conn):
        caught = []
        for sql, args in (("select 1 / $1", (0,)), ("select * from nope where id = $1", (1,))):
            try:
                await conn.fetch(sql, *args)
            except asyncpg.PostgresError as exc:
                caught.append((type(exc).__name__, exc.sqlstate))
        await conn.executemany(insert, [("Apg", f"apg-{i}@example.com") for i in range(120)])  # one /batch call
        try:
            await conn.executemany(insert, [("Apg", "apg-new@example.com"), ("Apg", "apg-7@example.com")])
        except asyncpg.UniqueViolationError as exc:
            caught.append(("executemany", exc.sqlstate))
        try:
            async with conn.transaction():
                await conn.execute(insert, "Apg", "apg-tx@example.com")
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        async with conn.transaction():
            await conn.execute(insert, "Apg", "apg-tx2@example.com")
        rows = []
        async with conn.transaction():  # a cursor: Execute with a row limit, the portal suspended between
            async for row in conn.cursor("select g from generate_series(1, 700) g"):
                rows.append(row["g"])
        return caught, rows

    caught, rows = asyncpg_run(tunnel, work)
    assert caught == [("DivisionByZeroError", "22012"), ("UndefinedTableError", "42P01"), ("executemany", "23505")]
    assert rows == list(range(1, 701))
    assert api(serve, "select count(*), count(*) filter (where email like 'apg-tx%') from customers "
                      "where email like 'apg-%'") == [[121, 1]]
    assert api(serve, "select count(*) from customers where email = 'apg-new@example.com'") == [[0]]  # atomic
    api(serve, "delete from customers where email like 'apg-%' returning 1")


def test_asyncpg_large_results_and_startup_settings(tunnel):
    async def work(conn):
        rows = await conn.fetch("select g, md5(g::text), g::numeric / 7, null::text, '1 day'::interval "
                                "from generate_series(1, 1000) g")
        return rows, await conn.fetchval("show application_name"), await conn.fetchval("show intervalstyle")

    # asyncpg sends server_settings in the startup packet: kept, honoured, or (TimeZone) not applied with a warning
    rows, name, style = asyncpg_run(tunnel, work, server_settings={
        "application_name": "reports", "IntervalStyle": "sql_standard", "TimeZone": "Europe/Paris"})
    assert len(rows) == 1000 and rows[999][0] == 1000 and rows[6][2] == Decimal(1) and rows[0][3] is None
    assert rows[0][4] == dt.timedelta(days=1)  # binary: the same whatever the style
    assert (name, style) == ("reports", "sql_standard")


# -- SQLAlchemy with psycopg ----------------------------------------------------------------------


def test_sqlalchemy_core_and_orm_in_autocommit(tunnel, serve):
    engine = sa.create_engine(f"postgresql+psycopg://tester@127.0.0.1:{tunnel.port}/demo?sslmode=disable",
                              isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            orders = sa.Table("orders", sa.MetaData(), autoload_with=conn)
            customers = sa.Table("customers", sa.MetaData(), autoload_with=conn)
            assert isinstance(orders.c.delivery_window.type, sa.dialects.postgresql.INTERVAL)
            row = conn.execute(sa.select(orders).where(orders.c.id == 2)).one()
            assert (row.total, row.placed_at, row.delivery_window, row.note) == (
                Decimal("45.00"), dt.datetime(2026, 2, 11, 16, 45, tzinfo=UTC), dt.timedelta(days=3), "leave at the door")
            new = conn.execute(customers.insert().values(name="Sa", email="sa@example.com", country="PT",
                                                         signed_up=dt.datetime(2026, 6, 1, tzinfo=UTC)))
            (new_id,) = new.inserted_primary_key  # RETURNING, outside a block
            assert conn.execute(customers.update().where(customers.c.id == new_id).values(vip=True)).rowcount == 1
            with pytest.raises(sa.exc.IntegrityError) as error:
                conn.execute(customers.insert().values(name="Dup", email="sa@example.com", signed_up=sa.func.now()))
            assert error.value.orig.sqlstate == "23505"
            assert conn.execute(sa.select(sa.func.count()).select_from(sa.text("generate_series(1, 1000)"))).scalar() == 1000
        assert api(serve, f"select vip, country from customers where id = {new_id}") == [[True, "PT"]]
    finally:
        api(serve, "delete from customers where email = 'sa@example.com' returning 1")
        engine.dispose()


def test_sqlalchemy_transactions_and_savepoints(tunnel, serve):
    engine = sa.create_engine(f"postgresql+psycopg://tester@127.0.0.1:{tunnel.port}/demo?sslmode=disable")
    try:
        customers = sa.Table("customers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                             sa.Column("name", sa.Text), sa.Column("email", sa.Text), sa.Column("country", sa.Text),
                             sa.Column("signed_up", sa.DateTime(timezone=True)))
        rows = [{"name": "Tx", "email": f"satx-{i}@example.com", "country": "FR",
                 "signed_up": dt.datetime(2026, 6, 1, tzinfo=UTC)} for i in range(4)]
        with engine.begin() as conn:
            assert conn.execute(sa.select(customers.c.name).where(customers.c.id == 1)).scalar() == "Ada Lovelace"
            conn.execute(customers.insert(), rows[:2])  # executemany: queued until COMMIT
            nested = conn.begin_nested()  # a savepoint
            conn.execute(customers.insert(), rows[2:])
            nested.rollback()
        assert api(serve, "select email from customers where email like 'satx-%' order by 1") == [
            [rows[0]["email"]], [rows[1]["email"]]]
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.execute(customers.insert(), rows[2:])
            raise RuntimeError("rolled back")
        assert api(serve, "select count(*) from customers where email like 'satx-%'") == [[2]]
    finally:
        api(serve, "delete from customers where email like 'satx-%' returning 1")
        engine.dispose()


# -- pg8000 ---------------------------------------------------------------------------------------


def test_pg8000_types_nulls_errors_and_large_results(tunnel):
    con = pg8000.native.Connection("tester", host="127.0.0.1", port=tunnel.port, database="demo", timeout=30)
    try:
        assert con.run("select :a::int8, :b::numeric, :c::timestamptz, :d::interval, :e::text[], :f::bytea, :g::int",
                       a=2**62, b=Decimal("0.000100"), c=dt.datetime(2026, 1, 1, 12, tzinfo=UTC),
                       d=dt.timedelta(hours=-30), e=["a", None], f=b"\x00\x01", g=None) == [
            [2**62, Decimal("0.000100"), dt.datetime(2026, 1, 1, 12, tzinfo=UTC), dt.timedelta(hours=-30), ["a", None],
             b"\x00\x01", None]]
        with pytest.raises(pg8000.native.DatabaseError) as error:
            con.run("insert into orders (customer_id, quantity, total, status, placed_at) values (999, 1, 1, 'placed', now())")
        assert error.value.args[0]["C"] == "23503"
        rows = con.run("select g, repeat('y', 1000) from generate_series(1, 1000) g")
        assert len(rows) == 1000 and rows[-1] == [1000, "y" * 1000]
    finally:
        con.close()


# -- small protocol differences and settings --------------------------------------------------------


def test_warnings_and_refusals_carry_postgres_codes(tunnel):
    notices = []
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.severity, d.sqlstate, d.message_primary)))
        conn.execute("rollback")
        conn.execute("commit")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="PREPARE TRANSACTION .two-phase commit. is not "):
            conn.execute("prepare transaction 'gid-1'")
        assert conn.execute("select '20000-01-01 10:00'::timestamp::text, %s::\"char\"", ("z",)).fetchone() == (
            "20000-01-01 10:00:00", "z")
    assert notices == [("WARNING", "25P01", "there is no transaction in progress")] * 2
    run = psql(tunnel, "-A", "-t", "-c", "select '20000-01-01 10:00'::timestamp, '0044-03-15 10:00+00 BC'::timestamptz")
    assert run.stdout.strip() == "20000-01-01 10:00:00|0044-03-15 10:00:00+00 BC", run.stderr
    run = psql(tunnel, "-c", "IDENTIFY_SYSTEM", options="sslmode=disable replication=database")
    assert run.returncode == 2 and "FATAL:  replication connections are not supported" in run.stderr


def test_settings_clients_send_are_honoured_or_refused(tunnel):
    notices = []
    with psycopg.connect(dsn(tunnel), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.severity, d.message_primary)))
        conn.adapters.register_loader("interval", TextLoader)  # the interval as the tunnel wrote it
        for style, shown in (("sql_standard", "+1-2 +3 +4:05:06"), ("iso_8601", "P1Y2M3DT4H5M6S"),
                             ("postgres_verbose", "@ 1 year 2 mons 3 days 4 hours 5 mins 6 secs")):
            conn.execute(f"set intervalstyle = {style}")
            assert conn.info.parameter_status("IntervalStyle") == style
            assert conn.execute("select '1 year 2 mons 3 days 04:05:06'::interval").fetchone() == (shown,)
            assert conn.execute("show intervalstyle").fetchone() == (style,)
        conn.execute("set intervalstyle to default")
        assert conn.execute("select '-1 day'::interval").fetchone() == ("-1 days",)
        conn.execute("set time zone 'UTC'")
        conn.execute("set client_min_messages = warning")
        conn.execute("rollback")  # its WARNING is kept
        conn.execute("set lock_timeout = '5s'")  # accepted, with a warning: there is no session to wait in
        assert notices == [("WARNING", "there is no transaction in progress"),
                           ("WARNING", "SET lock_timeout has no effect through rdsgate connect: each statement runs "
                                       "on a pooled server session with the connection's own settings")]
        conn.execute("set client_min_messages = error")
        conn.execute("rollback")
        assert len(notices) == 2
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="sessions run in UTC"):
            conn.execute("set timezone = 'Europe/Paris'")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="search_path"):
            conn.execute("set search_path = private")
        conn.execute("set session characteristics as transaction read only")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("update customers set vip = vip where id = 1")
    run = subprocess.run(["psql", "-X", "-A", "-t", dsn(tunnel), "-c", "select '1 year 2 mons'::interval, '3 days'::interval"],
                         capture_output=True, text=True, timeout=60,
                         env={"PGOPTIONS": "-c IntervalStyle=sql_standard -c TimeZone=Europe/Paris", "PATH": "/usr/bin:/bin"})
    assert run.stdout.strip() == "1-2|3 0:00:00"
    assert "TimeZone=Europe/Paris from the startup packet is not applied: the gateway's sessions run in UTC" in run.stderr
