"""`rdsgate connect` for MySQL clients: Debian's mariadb client and PyMySQL against a tunnel in front of `rdsgate serve`.

One local stack and one tunnel process serve the whole module; the tests use distinct rows.
"""

import datetime as dt
import socket
import struct
import subprocess
from decimal import Decimal

import pymysql
import pytest

from tests.local_processes import Tunnel, api_records, serve_fixture, tunnel_fixture

serve = serve_fixture()
tunnel = tunnel_fixture("demo-mysql")
# Transaction blocks buffered into one /transaction call at COMMIT, as without sessions on the API.
buffered_tunnel = tunnel_fixture("demo-mysql", "--transactions", "buffered")


def api(serve, sql):
    """Ask the API directly (not through the tunnel): the records as arrays."""
    return api_records(serve, "demo-mysql", sql)


def mariadb(tunnel, *args, input=None, password=None):
    command = ["mariadb", "--no-defaults", "-h", "127.0.0.1", "-P", str(tunnel.port), "--protocol=tcp",
               "-u", "tester", "-D", "demo", "--connect-timeout=10", *args]
    if password is not None:
        command.append(f"-p{password}")
    return subprocess.run(command, input=input, capture_output=True, text=True, timeout=60)


def connect(tunnel, **kwargs):
    return pymysql.connect(host="127.0.0.1", port=tunnel.port, user="tester", database="demo", connect_timeout=10,
                           read_timeout=60, write_timeout=60, **kwargs)


# -- the mariadb client --------------------------------------------------------------------------


def test_the_tunnel_says_where_it_listens(tunnel):
    assert "connection demo-mysql (mysql) on 127.0.0.1:" in tunnel.text and "MySQL protocol" in tunnel.text
    assert f"mariadb -h 127.0.0.1 -P {tunnel.port} --protocol=tcp -D demo" in tunnel.text


def test_mariadb_select_with_varied_types(tunnel):
    run = mariadb(tunnel, "--batch", "-e",
                  "select id, sku, name, price, weight_kg, tags, attributes from products order by id;"
                  "select * from orders order by id")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "id\tsku\tname\tprice\tweight_kg\ttags\tattributes"
    assert lines[1] == ('1\tc56a4180-65aa-42ec-a945-5fd21dec0538\tMechanical keyboard\t129.90\t1.2\tinput,usb\t'
                        '{"layout": "ISO", "switches": "brown"}')
    assert lines[3] == "3\t9b7c2f40-1e2d-4c3b-8a9f-0d1e2f3a4b5c\tFountain pen\t89.00\t0.03\t\tNULL"
    assert "1\t1\t1\t1\t129.90\tdelivered\t2026-01-05 10:00:00\t2026-01-08\t2025\tNULL" in lines
    assert "2\t2\t2\t10\t45.00\tshipped\t2026-02-11 16:45:00\t2026-02-14\t2026\tleave at the door" in lines


def test_mariadb_aligns_numbers_right_from_the_field_types(tunnel):
    run = mariadb(tunnel, "--table", "-e", "select id, country from customers where id in (1, 2) order by id")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[3:5] == ["|    1 | GB      |", "|    2 | US      |"]


def test_mariadb_dml(tunnel, serve):
    email = "mariadb-dml@example.com"
    run = mariadb(tunnel, "-vvv", input=(
        f"insert into customers (name, email, country, signed_up) values ('Cli', '{email}', 'FR', now());\n"
        f"update customers set vip = true, country = 'DE' where email = '{email}';\n"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Query OK, 1 row affected") == 2
    assert api(serve, f"select vip, country from customers where email = '{email}'") == [[1, "DE"]]
    run = mariadb(tunnel, "-vvv", "-e", f"delete from customers where email = '{email}'")
    assert "Query OK, 1 row affected" in run.stdout
    assert api(serve, f"select count(*) from customers where email = '{email}'") == [[0]]


def test_mariadb_sql_error_carries_the_error_number(tunnel):
    run = mariadb(tunnel, input="select * from nope;\nselect 'not reached';\n")
    assert run.returncode == 1
    assert "ERROR 1146 (42S02) at line 1: Table 'demo.nope' doesn't exist" in run.stderr
    assert "not reached" not in run.stdout
    run = mariadb(tunnel, "-e", "selec 1")
    assert run.returncode == 1 and "ERROR 1064 (42000)" in run.stderr


def test_mariadb_parameterised_queries_with_variables_and_prepare(tunnel):
    script = (
        "set @id = 1 + 1, @status = 'delivered';\n"
        "select id, status from orders where id = @id;\n"
        "prepare by_status from 'select id, total from orders where status = ? and id >= ?';\n"
        "execute by_status using @status, 1;\n"
        "execute by_status using 'placed', 0;\n"
        "deallocate prepare by_status;\n"
        "execute by_status using @status, 1;\n"
    )
    run = mariadb(tunnel, "--batch", "--skip-column-names", "-f", input=script)
    assert run.stdout.splitlines() == ["2\tshipped", "1\t129.90", "3\t89.00"]
    assert "Unknown prepared statement handler (by_status) given to EXECUTE" in run.stderr


def test_mariadb_transaction_block_is_a_session_on_the_api(tunnel, serve):
    inserts = "".join(f"insert into customers (name, email, country, signed_up) values ('Ses', '{e}', 'FR', now());\n"
                      for e in ("mses-a@example.com", "mses-b@example.com"))
    run = mariadb(tunnel, "-vvv", input=f"begin;\n{inserts}select count(*) from customers where email like 'mses-%';\n"
                                        "select last_insert_id() > 0;\ncommit;\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Query OK, 1 row affected") == 2 and "queued" not in run.stdout  # real counts at once
    assert "| count(*) |" in run.stdout and "|        2 |" in run.stdout  # its own writes
    assert api(serve, "select count(*) from customers where email like 'mses-%'") == [[2]]
    run = mariadb(tunnel, input="start transaction;\ndelete from customers where email like 'mses-%';\nrollback;\n")
    assert run.returncode == 0, run.stderr
    assert api(serve, "select count(*) from customers where email like 'mses-%'") == [[2]]


def test_mariadb_buffered_transaction_block_commits_as_one(buffered_tunnel, serve):
    tunnel = buffered_tunnel
    inserts = "".join(f"insert into customers (name, email, country, signed_up) values ('Tx', '{e}', 'FR', now());\n"
                      for e in ("mtx-a@example.com", "mtx-b@example.com"))
    run = mariadb(tunnel, "-vvv", input=f"begin;\n{inserts}commit;\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("queued: runs at COMMIT") == 2
    assert "Query OK, 2 rows affected" in run.stdout and "committed 2 queued statement(s)" in run.stdout
    assert api(serve, "select count(*) from customers where email like 'mtx-%'") == [[2]]
    run = mariadb(tunnel, input="start transaction;\ndelete from customers where email like 'mtx-%';\nrollback;\n")
    assert run.returncode == 0, run.stderr
    assert api(serve, "select count(*) from customers where email like 'mtx-%'") == [[2]]


def test_mariadb_set_and_use_are_answered_honestly(tunnel):
    run = mariadb(tunnel, "-f", input="set names utf8mb4;\nset autocommit = 1;\nset sql_mode = '';\nuse demo;\n"
                                      "use mysql;\nselect 'end';\n")
    assert ("ERROR 1235 (42000) at line 3: SET sql_mode is not supported through rdsgate connect unless it is the "
            "server's own mode") in run.stderr
    assert "ERROR 1049 (42000) at line 5: Unknown database 'mysql': this connection serves 'demo'" in run.stderr
    assert run.stderr.count("ERROR ") == 2 and "end" in run.stdout


# -- PyMySQL -------------------------------------------------------------------------------------


def test_pymysql_select_with_varied_types(tunnel):
    with connect(tunnel) as con, con.cursor() as cursor:
        cursor.execute("select * from products where id = %s", (1,))
        assert cursor.fetchall() == ((1, "c56a4180-65aa-42ec-a945-5fd21dec0538", "Mechanical keyboard", Decimal("129.90"),
                                      1.2, "input,usb", '{"layout": "ISO", "switches": "brown"}', b"\x89PNG"),)
        cursor.execute("select placed_at, deliver_on, model_year, status, total, note from orders where id = %s", (1,))
        assert cursor.fetchone() == (dt.datetime(2026, 1, 5, 10, 0), dt.date(2026, 1, 8), 2025, "delivered",
                                     Decimal("129.90"), None)
        assert [d[1] for d in cursor.description] == [12, 10, 13, 254, 246, 252]


def test_pymysql_parameterised_queries_and_dml_with_commit_and_rollback(tunnel, serve):
    email = "pymysql@example.com"
    with connect(tunnel) as con, con.cursor() as cursor:  # autocommit off, PyMySQL's default
        cursor.execute("select %s, %s, %s", ("100% a:b 'c'", None, 7))
        assert cursor.fetchone() == ("100% a:b 'c'", None, 7)
        cursor.execute("insert into customers (name, email, country, signed_up) values (%s, %s, %s, %s)",
                       ("Py", email, "ES", dt.datetime(2026, 5, 1, 8, 0)))
        con.rollback()
        assert api(serve, f"select count(*) from customers where email = '{email}'") == [[0]]
        cursor.execute("insert into customers (name, email, country, signed_up) values (%s, %s, %s, %s)",
                       ("Py", email, "ES", dt.datetime(2026, 5, 1, 8, 0)))
        con.commit()
        assert api(serve, f"select signed_up from customers where email = '{email}'") == [["2026-05-01T08:00:00"]]
    with connect(tunnel, autocommit=True) as con, con.cursor() as cursor:
        assert cursor.execute("update customers set vip = true where email = %s", (email,)) == 1
        assert cursor.execute("delete from customers where email = %s", (email,)) == 1
    assert api(serve, f"select count(*) from customers where email = '{email}'") == [[0]]


def test_pymysql_sql_errors_carry_the_error_number(tunnel):
    with connect(tunnel, autocommit=True) as con, con.cursor() as cursor:
        with pytest.raises(pymysql.err.ProgrammingError) as error:
            cursor.execute("select * from nope")
        assert error.value.args[0] == 1146
        with pytest.raises(pymysql.err.OperationalError) as error:
            cursor.execute("select nope from orders")
        assert error.value.args == (1054, "Unknown column 'nope' in 'SELECT'")
        con.ping(reconnect=False)
        cursor.execute("select 'still here'")
        assert cursor.fetchone() == ("still here",)


def _read_packet(sock):
    header = b""
    while len(header) < 4:
        header += sock.recv(4 - len(header))
    length, payload = int.from_bytes(header[:3], "little"), b""
    while len(payload) < length:
        payload += sock.recv(length - len(payload))
    return payload


def test_a_client_leaving_mid_result_leaves_the_tunnel_healthy(tunnel):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the tunnel cannot send ahead
    sock.settimeout(30)
    sock.connect(("127.0.0.1", tunnel.port))
    assert _read_packet(sock)[:1] == b"\x0a"  # handshake v10
    flags = 512 | 32768 | (1 << 19)  # protocol 41, secure connection, plugin auth
    response = struct.pack("<IIB", flags, 1 << 24, 45) + b"\0" * 23 + b"tester\0" + b"\0" + b"mysql_native_password\0"
    sock.sendall(len(response).to_bytes(3, "little") + b"\x01" + response)
    assert _read_packet(sock)[:1] == b"\0"  # OK: trust on loopback
    query = b"\x03select seq, repeat('x', 5000) from seq_1_to_1000"  # COM_QUERY, about 5 MB of rows
    sock.sendall(len(query).to_bytes(3, "little") + b"\0" + query)
    assert _read_packet(sock) == b"\x02"  # two columns; leave without reading the rest
    sock.close()
    tunnel.wait_for("dropped (")  # the tunnel saw the client go while it was sending rows
    with connect(tunnel) as again, again.cursor() as fresh:
        fresh.execute("select count(*) from customers where country = %s", ("US",))
        assert fresh.fetchone() == (2,)
    run = mariadb(tunnel, "--batch", "--skip-column-names", "-e", "select 'healthy'")
    assert (run.returncode, run.stdout.strip()) == (0, "healthy")
    assert tunnel.process.poll() is None


def test_password(serve):
    password = "tunnel-Passw0rd"
    tunnel = Tunnel("demo-mysql", serve.url, env={"RDSGATE_CONNECT_PASSWORD": password})
    try:
        assert "password required" in tunnel.text
        with pytest.raises(pymysql.err.OperationalError) as error:
            connect(tunnel, password="wrong")
        assert error.value.args[0] == 1045
        with connect(tunnel, password=password) as con, con.cursor() as cursor:
            cursor.execute("select 1")
            assert cursor.fetchone() == (1,)
        run = mariadb(tunnel, "--batch", "--skip-column-names", "-e", "select 'in'", password=password)
        assert (run.returncode, run.stdout.strip()) == (0, "in"), run.stderr
        run = mariadb(tunnel, "--batch", "--skip-column-names", "--default-auth=mysql_clear_password", "-e",
                      "select 'clear'", password=password)
        assert (run.returncode, run.stdout.strip()) == (0, "clear"), run.stderr
        run = mariadb(tunnel, "-e", "select 1", password="wrong")
        assert run.returncode == 1 and "ERROR 1045 (28000)" in run.stderr
        assert password not in tunnel.text
    finally:
        tunnel.kill()
