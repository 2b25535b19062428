"""`rdsgate connect` for PostgreSQL clients: Debian's psql and pg8000 against a tunnel in front of `rdsgate serve`.

One local stack (without MariaDB) and one tunnel process serve the whole module; the
tests use distinct rows, so their order does not matter.
"""

import datetime as dt
import re
import socket
import struct
import subprocess
import uuid
from decimal import Decimal

import pg8000.dbapi
import pg8000.native
import pytest

from tests.local_processes import (ROOT, Serve, Tunnel, api_records, child_environment, psql, rdsgate, serve_fixture,
                                   tunnel_fixture)

serve = serve_fixture("--no-mysql")
tunnel = tunnel_fixture("demo")
# Transaction blocks buffered into one /transaction call at COMMIT, as without sessions on the API.
buffered_tunnel = tunnel_fixture("demo", "--transactions", "buffered")


def api(serve, sql):
    """Ask the API directly (not through the tunnel): the records as arrays."""
    return api_records(serve, "demo", sql)


def pg(tunnel, **kwargs):
    return pg8000.native.Connection("tester", host="127.0.0.1", port=tunnel.port, database="demo", timeout=30, **kwargs)


# -- psql ----------------------------------------------------------------------------------------


def test_the_tunnel_says_where_it_listens(tunnel):
    assert "connection demo (postgres) on 127.0.0.1:" in tunnel.text
    assert "PostgreSQL protocol, no password (trust)" in tunnel.text
    assert f'psql "host=127.0.0.1 port={tunnel.port} dbname=demo sslmode=disable"' in tunnel.text


def test_psql_select_with_varied_types(tunnel):
    run = psql(tunnel, "-A", "-F", "|", "-c", "select * from products order by id",
               "-c", "select * from orders order by id")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "id|sku|name|price|weight_kg|tags|attributes|thumbnail"
    assert lines[1] == ('1|c56a4180-65aa-42ec-a945-5fd21dec0538|Mechanical keyboard|129.90|1.2|{input,usb}|'
                        '{"layout": "ISO", "switches": "brown"}|\\x89504e47')
    assert lines[3] == "3|9b7c2f40-1e2d-4c3b-8a9f-0d1e2f3a4b5c|Fountain pen|89.00|0.03|{}||"
    assert "1|1|1|1|129.90|delivered|2026-01-05 10:00:00+00|2026-01-08|2 days 04:00:00|" in lines
    assert "2|2|2|10|45.00|shipped|2026-02-11 16:45:00+00|2026-02-14|3 days|leave at the door" in lines


def test_psql_aligns_numbers_right_from_the_type_oids(tunnel):
    run = psql(tunnel, "-c", "select n, t from (values (1, 'a'), (100, 'abc')) v(n, t)")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[2:4] == ["   1 | a", " 100 | abc"]  # int4 right, text left


def test_psql_dml_reports_command_tags(tunnel, serve):
    email = "psql-dml@example.com"
    run = psql(tunnel, "-c", f"insert into customers (name, email, country, signed_up) "
                             f"values ('Psql', '{email}', 'FR', now())")
    assert (run.returncode, run.stdout.strip()) == (0, "INSERT 0 1"), run.stderr
    run = psql(tunnel, "-c", f"update customers set vip = true, country = 'DE' where email = '{email}'")
    assert (run.returncode, run.stdout.strip()) == (0, "UPDATE 1"), run.stderr
    assert api(serve, f"select vip, country from customers where email = '{email}'") == [[True, "DE"]]
    run = psql(tunnel, "-c", f"delete from customers where email = '{email}' returning name")
    assert run.returncode == 0 and "Psql" in run.stdout and "DELETE 1" in run.stdout, run.stderr
    assert api(serve, f"select count(*) from customers where email = '{email}'") == [[0]]


def test_psql_sql_error_carries_the_sqlstate(tunnel):
    run = psql(tunnel, "-v", "ON_ERROR_STOP=1", input="\\set VERBOSITY verbose\nselect 1/0;\nselect 'not reached';\n")
    assert run.returncode == 3
    assert "ERROR:  22012: division by zero" in run.stderr
    assert "not reached" not in run.stdout
    run = psql(tunnel, "-v", "VERBOSITY=verbose", "-c", "select * from no_such_table")
    assert run.returncode == 1 and 'relation "no_such_table" does not exist' in run.stderr
    run = psql(tunnel, "-c", "select $1")
    assert run.returncode == 1 and "there is no parameter $1" in run.stderr


def test_psql_parameterised_query_with_prepare_and_execute(tunnel):
    script = (
        "prepare by_status(text) as select id, total from orders where status::text = $1 order by id;\n"
        "execute by_status('shipped');\n"
        "execute by_status(lower('DELIVERED'));\n"
        "deallocate by_status;\n"
        "execute by_status('placed');\n"
    )
    run = psql(tunnel, "-A", "-F", "|", "-t", input=script)
    assert run.stdout.split() == ["PREPARE", "2|45.00", "1|129.90", "DEALLOCATE"]
    assert 'prepared statement "by_status" does not exist' in run.stderr


def test_psql_meta_commands(tunnel):
    run = psql(tunnel, "-c", "\\dt", "-c", "\\d orders", "-c", "\\dn", "-c", "\\di", "-c", "\\dT", "-c", "\\l")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for table in ("customers", "orders", "products"):
        assert re.search(rf"public \| {table}\s+\| table", out), out
    assert 'Table "public.orders"' in out
    assert re.search(r"delivery_window \| interval\s+\|", out)
    assert re.search(r"placed_at\s+\| timestamp with time zone \|", out)
    assert '"orders_pkey" PRIMARY KEY, btree (id)' in out
    assert "FOREIGN KEY (customer_id) REFERENCES customers(id)" in out
    assert re.search(r"public \| orders_pkey\s+\| index", out)
    assert re.search(r"public \| order_status", out)
    assert re.search(r"^ demo\s+\|", out, re.M)


def test_psql_transaction_block_is_a_session_on_the_api(tunnel, serve):
    emails = ["ses-a@example.com", "ses-b@example.com"]
    inserts = "".join(f"insert into customers (name, email, country, signed_up) values ('Ses', '{e}', 'FR', now()) "
                      "returning email;\n" for e in emails)
    run = psql(tunnel, "-A", "-t", input=f"begin;\n{inserts}select count(*) from customers where email like 'ses-%';\n"
                                         "savepoint s;\ndelete from customers where email like 'ses-%';\nrollback to s;\n"
                                         "select count(*) from customers where email like 'ses-%';\ncommit;\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["BEGIN", "ses-a@example.com", "INSERT 0 1", "ses-b@example.com", "INSERT 0 1",
                                       "2", "SAVEPOINT", "DELETE 2", "ROLLBACK", "2", "COMMIT"]  # RETURNING, own writes
    assert "queued" not in run.stderr
    assert api(serve, "select count(*) from customers where email like 'ses-%'") == [[2]]
    run = psql(tunnel, input="begin;\ndelete from customers where email like 'ses-%';\n"
                             "insert into customers (name, email, country, signed_up) values ('Ada', 'ada@example.com', 'GB', now());\n"
                             "select 1;\ncommit;\n")
    assert "duplicate key value" in run.stderr and "current transaction is aborted" in run.stderr
    assert run.stdout.split()[-1] == "ROLLBACK"  # COMMIT of a failed transaction, as PostgreSQL answers it
    assert api(serve, "select count(*) from customers where email like 'ses-%'") == [[2]]  # nothing written


def test_psql_buffered_transaction_block_commits_as_one(buffered_tunnel, serve):
    tunnel = buffered_tunnel
    emails = ["tx-a@example.com", "tx-b@example.com"]
    inserts = "".join(f"insert into customers (name, email, country, signed_up) values ('Tx', '{e}', 'FR', now());\n"
                      for e in emails)
    run = psql(tunnel, input=f"begin;\nselect count(*) from customers;\n{inserts}commit;\n")
    assert run.returncode == 0, run.stderr
    assert "queued: runs at COMMIT" in run.stderr
    assert "committed 2 queued statement(s) in one transaction" in run.stderr
    assert run.stdout.split().count("COMMIT") == 1
    assert api(serve, "select count(*) from customers where email like 'tx-%'") == [[2]]
    run = psql(tunnel, input="begin;\ndelete from customers where email like 'tx-%';\nrollback;\n")
    assert "ROLLBACK" in run.stdout
    assert api(serve, "select count(*) from customers where email like 'tx-%'") == [[2]]


def test_psql_buffered_transaction_is_atomic_and_refuses_a_read_after_a_write(buffered_tunnel, serve):
    tunnel = buffered_tunnel
    # A read after a queued write cannot see it: refused, and the block fails as PostgreSQL's does.
    run = psql(tunnel, input="begin;\ndelete from customers where email = 'ada@example.com';\nselect 1;\n"
                             "select 2;\ncommit;\n")
    assert "this read cannot see the 1 statement(s) queued" in run.stderr
    assert "current transaction is aborted" in run.stderr
    assert run.stdout.split()[-1] == "ROLLBACK"  # COMMIT of a failed block
    # An error at COMMIT: nothing of the block is written.
    run = psql(tunnel, "-v", "VERBOSITY=verbose", input=(
        "begin;\ninsert into customers (name, email, country, signed_up) values ('Dup', 'dup@example.com', 'FR', now());\n"
        "insert into customers (name, email, country, signed_up) values ('Ada', 'ada@example.com', 'GB', now());\n"
        "commit;\n"))
    assert "ERROR:  23505: COMMIT failed, nothing was written: duplicate key value" in run.stderr
    assert api(serve, "select count(*) from customers where email in ('dup@example.com', 'ada@example.com')") == [[1]]


def test_psql_set_is_answered_honestly(tunnel):
    run = psql(tunnel, "-A", "-t", "-v", "VERBOSITY=verbose", input=(
        "set application_name = 'reports';\nshow application_name;\nset client_encoding = 'UTF8';\n"
        "set search_path = private;\nset time zone 'Europe/Paris';\nset statement_timeout = 200;\n"
        "select pg_sleep(2);\nreset all;\nselect 'after reset', pg_sleep(0.3);\nshow application_name;\n"))
    assert run.stdout.split("\n")[:3] == ["SET", "reports", "SET"]
    assert "ERROR:  0A000: SET search_path is not supported through rdsgate connect" in run.stderr
    assert "the gateway's sessions run in UTC" in run.stderr
    assert "57014" in run.stderr  # the statement timeout, applied by the API to the pg_sleep
    assert run.stdout.split("\n")[-4:] == ["RESET", "after reset|", "", ""]  # no timeout now; the name reset


def test_psql_requiring_tls_is_told_there_is_none(tunnel):
    run = psql(tunnel, "-c", "select 1", options="sslmode=require")
    assert run.returncode == 2 and "server does not support SSL" in run.stderr


# -- pg8000: the extended protocol ---------------------------------------------------------------


def test_pg8000_select_with_varied_types(tunnel):
    con = pg(tunnel)
    try:
        rows = con.run("select * from products where id = :id", id=1)
        assert rows == [[1, uuid.UUID("c56a4180-65aa-42ec-a945-5fd21dec0538"), "Mechanical keyboard", Decimal("129.90"),
                         1.2, ["input", "usb"], {"layout": "ISO", "switches": "brown"}, b"\x89PNG"]]
        assert [c["type_oid"] for c in con.columns] == [23, 2950, 25, 1700, 701, 1009, 3802, 17]
        (order,) = con.run("select placed_at, deliver_on, delivery_window, quantity, id, status from orders where id = 1")
        assert order == [dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone.utc), dt.date(2026, 1, 8),
                         dt.timedelta(days=2, hours=4), 1, 1, "delivered"]
        assert [c["type_oid"] for c in con.columns] == [1184, 1082, 1186, 21, 20, 25]  # order_status: as text
    finally:
        con.close()


def test_pg8000_parameterised_queries_and_dml(tunnel, serve):
    con = pg(tunnel)
    try:
        sql = "select :n::int + 1, :t::text, :d::date, :j::jsonb, :b::bool, :x::numeric * 2, :z::text is null"
        assert con.run(sql, n=41, t="a:b 'c'", d=dt.date(2024, 2, 29), j={"k": [1, None]}, b=False,
                       x=Decimal("1.05"), z=None) == [[42, "a:b 'c'", dt.date(2024, 2, 29), {"k": [1, None]}, False,
                                                       Decimal("2.10"), True]]
        email = "pg8000@example.com"
        (new_id,) = con.run("insert into customers (name, email, country, signed_up) values (:n, :e, 'NL', :s) "
                            "returning id", n="Pg", e=email, s=dt.datetime(2026, 4, 1, 9, 30, tzinfo=dt.timezone.utc))[0]
        assert con.row_count == 1
        con.run("update customers set vip = :v where id = :id", v=True, id=new_id)
        assert con.row_count == 1
        assert api(serve, f"select vip, signed_up from customers where id = {new_id}") == [[True, "2026-04-01T09:30:00+00:00"]]
        statement = con.prepare("select name from customers where id = :id")  # Describe: POST /describe
        assert statement.run(id=1) == [["Ada Lovelace"]] and statement.run(id=2) == [["Grace Hopper"]]
        statement.close()
        assert "POST /connections/demo/describe -> 200" in serve.text
        con.run("delete from customers where email = :e", e=email)
        assert con.row_count == 1
    finally:
        con.close()


def test_pg8000_sql_error_keeps_the_connection_usable(tunnel):
    con = pg(tunnel)
    try:
        with pytest.raises(pg8000.native.DatabaseError) as error:
            con.run("select * from nope where id = :id", id=1)
        assert error.value.args[0]["C"] == "42P01" and error.value.args[0]["M"] == 'relation "nope" does not exist'
        with pytest.raises(pg8000.native.DatabaseError) as error:
            con.run("select 1/:zero", zero=0)
        assert error.value.args[0]["C"] == "22012"
        assert con.run("select 'still here'") == [["still here"]]
    finally:
        con.close()


def test_pg8000_dbapi_transactions(tunnel, serve):
    """pg8000.dbapi opens a transaction block itself (autocommit off): commit and rollback mean what they say."""
    con = pg8000.dbapi.connect("tester", host="127.0.0.1", port=tunnel.port, database="demo", timeout=30)
    try:
        cursor = con.cursor()
        cursor.execute("select count(*) from orders where status = %s", ("shipped",))
        assert cursor.fetchall() == ([1],)
        cursor.execute("insert into customers (name, email, country, signed_up) values (%s, %s, 'IT', now())",
                       ("Db", "dbapi@example.com"))
        con.rollback()
        assert api(serve, "select count(*) from customers where email = 'dbapi@example.com'") == [[0]]
        cursor.execute("insert into customers (name, email, country, signed_up) values (%s, %s, 'IT', now())",
                       ("Db", "dbapi@example.com"))
        con.commit()
        assert api(serve, "select count(*) from customers where email = 'dbapi@example.com'") == [[1]]
    finally:
        con.close()


# -- robustness and security ----------------------------------------------------------------------


def _startup(port):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the tunnel cannot send ahead
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.sendall(struct.pack("!ii", 8, 80877103))
    assert sock.recv(1) == b"N"  # SSLRequest: no TLS on loopback
    parameters = b"user\0tester\0database\0demo\0\0"
    sock.sendall(struct.pack("!ii", len(parameters) + 8, 196608) + parameters)
    received = b""
    while not received.endswith(b"Z\0\0\0\x05I"):
        received += sock.recv(4096)
    return sock


def test_a_client_leaving_mid_result_leaves_the_tunnel_healthy(tunnel):
    sock = _startup(tunnel.port)
    query = b"select g, repeat('x', 5000) from generate_series(1, 1000) g\0"  # about 5 MB of rows
    sock.sendall(b"Q" + struct.pack("!i", len(query) + 4) + query)
    assert sock.recv(1)[:1] == b"T"  # the RowDescription arrived; leave without reading the rest
    sock.close()
    tunnel.wait_for("dropped (")  # the tunnel saw the client go while it was sending rows
    con = pg(tunnel)
    try:
        assert con.run("select count(*) from customers where country = :c", c="US") == [[2]]
    finally:
        con.close()
    run = psql(tunnel, "-A", "-t", "-c", "select 'healthy'")
    assert (run.returncode, run.stdout.strip()) == (0, "healthy")
    assert tunnel.process.poll() is None


def test_password_sigterm_and_nothing_secret_in_the_log(serve):
    password = "tunnel-Passw0rd"
    tunnel = Tunnel("demo", serve.url, "--password", password)
    try:
        assert "password required" in tunnel.text
        run = psql(tunnel, "-A", "-t", "-c", "select 'secret-literal'", password="wrong")
        assert run.returncode == 2 and 'password authentication failed for user "tester"' in run.stderr
        run = psql(tunnel, "-A", "-t", "-c", "select 'secret-literal'", password=password)
        assert (run.returncode, run.stdout.strip()) == (0, "secret-literal"), run.stderr
        with pytest.raises(pg8000.native.InterfaceError):
            pg(tunnel)  # no password given
        con = pg(tunnel, password=password)
        assert con.run("select 1") == [[1]]
        con.close()
        assert tunnel.stop() == 0
        assert "rdsgate: tunnel stopped" in tunnel.text
        assert password not in tunnel.text and "secret-literal" not in tunnel.text
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", tunnel.port), timeout=2)
    finally:
        tunnel.kill()


def test_requests_are_signed_with_sigv4():
    """Against an API that requires SigV4 (as API Gateway's AWS_IAM does), the tunnel signs with the caller's profile."""
    stack = Serve("--auth", "sigv4", "--no-mysql")
    tunnel = None
    try:
        credentials = {"AWS_SHARED_CREDENTIALS_FILE": stack.find(r"export AWS_SHARED_CREDENTIALS_FILE=(\S+)")}
        unsigned = subprocess.run(
            rdsgate("connect", "demo", "--endpoint", stack.url, "--port", "0"),
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=child_environment(
                AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
                AWS_CONFIG_FILE="/nonexistent"))
        assert unsigned.returncode == 1 and "Missing Authentication Token" in unsigned.stderr
        tunnel = Tunnel("demo", stack.url, "--profile", "rdsgate-local", "--region", "us-east-1", env=credentials)
        run = psql(tunnel, "-A", "-t", "-c", "select name from customers where id = 1")
        assert (run.returncode, run.stdout.strip()) == (0, "Ada Lovelace"), run.stderr
        assert "assumed-role/rdsgate-local-caller/local" in stack.text  # the signer reached the handler
    finally:
        if tunnel is not None:
            tunnel.kill()
        stack.kill()
