"""A read-only user for real: `rdsgate readonly-user` prints SQL, the DBA's client runs it on the test servers,
rdsgate logs in as that user with IAM tokens, and `rdsgate doctor` checks its privileges.

The local servers verify IAM tokens through PAM, not RDS's plugins: PostgreSQL's printed script runs
unchanged through psql (the servers' rds_iam role decides who logs in with a token), and MariaDB's
CREATE USER … AWSAuthenticationPlugin becomes the servers' own IAM user (``create_iam_user``); every
other printed statement runs as printed, through the mariadb client.
"""

import json
import os
import subprocess

import pytest

from rdsgate import errors
from tests.conftest import iam_definition, run_query

USER = "ro-reporter"  # needs quoting on both engines
DATABASE = "ro-shop"


def run_psql(server, script):
    run = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", server._path("run"), "-p", str(server.port),
         "-U", server.superuser, "-d", "postgres", "-f", "-"],
        input=script, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def run_mariadb(server, script):
    run = subprocess.run(
        ["mariadb", "--no-defaults", f"--socket={server._path('run', 'mysqld.sock')}", "-u", server.admin_user],
        input=script, capture_output=True, text=True, timeout=60,
        env={**os.environ, "MYSQL_PWD": server._admin_password})
    assert run.returncode == 0, run.stderr


@pytest.fixture(scope="module")
def readonly_users(postgres, mariadb):
    """The printed SQL, run on both servers over a fresh database holding one table (and one created later)."""
    from rdsgate_cli.cli import main

    postgres.create_database(DATABASE)
    postgres.execute("CREATE TABLE items (id int PRIMARY KEY, name text)", database=DATABASE)
    postgres.execute("INSERT INTO items VALUES (1, 'pen'), (2, 'ink')", database=DATABASE)
    mariadb.execute(f"CREATE DATABASE `{DATABASE}`")
    mariadb.execute("CREATE TABLE items (id int PRIMARY KEY, name text)", database=DATABASE)
    mariadb.execute("INSERT INTO items VALUES (1, 'pen'), (2, 'ink')", database=DATABASE)
    scripts = {}
    for engine in ("postgres", "mysql"):
        with pytest.MonkeyPatch.context() as patch:
            out = []
            patch.setattr("builtins.print", lambda text="", **_: out.append(str(text)))
            assert main(["readonly-user", "--engine", engine, "--user", USER, "--database", DATABASE]) == 0
        scripts[engine] = "\n".join(out)
    run_psql(postgres, scripts["postgres"])
    # A table made after the grants: the default privileges of its creator (the role that ran them) cover it.
    postgres.execute("CREATE TABLE later (id int)", database=DATABASE)
    postgres.execute("INSERT INTO later VALUES (7)", database=DATABASE)
    login = [line for line in scripts["mysql"].splitlines() if "AWSAuthenticationPlugin" in line]
    assert login == [f"CREATE USER '{USER}'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL;"]
    mariadb.create_iam_user(USER)
    run_mariadb(mariadb, scripts["mysql"].replace(login[0], ""))
    return scripts


@pytest.fixture
def definitions(readonly_users, connections, postgres, mariadb):
    """For each engine: the read-only user behind a read_only definition and behind a writable one (so that only
    the database's privileges stop its writes), and the test's app user, who may write, behind a read_only one."""
    names = []
    for prefix, engine, server in (("pg", "postgres", postgres), ("my", "mysql", mariadb)):
        user = {"user": f"_aws_iam_rds:{USER}", "database": DATABASE}
        for name, fields in ((f"ro-{prefix}", {**user, "read_only": True}), (f"ro-{prefix}-rw", user),
                             (f"app-{prefix}-ro", {"read_only": True})):
            connections.put(iam_definition(name, server, engine, **fields))
            names.append(name)
    yield
    for name in names:
        connections.delete(name)


@pytest.mark.parametrize("prefix", ["pg", "my"])
def test_the_user_reads_and_the_database_refuses_its_writes(prefix, runtime, definitions):
    rows = run_query(runtime, f"ro-{prefix}-rw", "select id, name from items order by id", shape="arrays")
    assert rows["records"] == [[1, "pen"], [2, "ink"]]
    if prefix == "pg":
        assert run_query(runtime, "ro-pg-rw", "select id from later", shape="arrays")["records"] == [[7]]
    writes = {
        "pg": [("insert into items values (3, 'cap')", "42501", "permission denied for table items"),
               ("update items set name = 'x'", "42501", "permission denied for table items"),
               ("create table mine (id int)", "42501", "permission denied for schema public"),
               ("create temp table mine (id int)", "42501", "permission denied to create temporary tables")],
        "my": [("insert into items values (3, 'cap')", 1142, "INSERT command denied"),
               ("delete from items", 1142, "DELETE command denied"),
               ("create table mine (id int)", 1142, "CREATE command denied"),
               ("create temporary table mine (id int)", 1044, "Access denied for user 'ro-reporter'@'%' to database")],
    }[prefix]
    for sql, code, message in writes:
        # The driver reports MySQL's 1044 (here: no CREATE TEMPORARY TABLES) as AuthenticationFailed, for now.
        with pytest.raises((errors.SqlError, errors.AuthenticationFailed)) as raised:
            run_query(runtime, f"ro-{prefix}-rw", sql)
        assert raised.value.details.get("sqlstate" if prefix == "pg" else "errno") == code, (sql, raised.value)
        assert message in raised.value.message
    assert run_query(runtime, f"ro-{prefix}-rw", "select count(*) as n from items")["records"] == [{"n": 2}]


def privileges_check(cli, endpoint, name):
    code, out, err = cli("doctor", name, "--endpoint", endpoint, "--json")
    report = json.loads(out)
    assert err == "" and code == (0 if report["ok"] else 1)
    checks = {check["step"]: check for check in report["checks"]}
    assert checks["login"]["status"] == "pass", checks["login"]
    return report, checks["privileges"]


@pytest.mark.parametrize("prefix", ["pg", "my"])
def test_doctor_passes_the_read_only_user(prefix, endpoint, definitions, cli):
    report, check = privileges_check(cli, endpoint, f"ro-{prefix}")
    assert report["ok"] is True
    assert check["status"] == "pass" and check["findings"] == []
    assert check["detail"] == f"{USER} holds no write privilege: read-only is enforced by the database too"


def test_doctor_names_the_app_users_write_privileges_on_postgres(endpoint, definitions, postgres, cli):
    report, check = privileges_check(cli, endpoint, "app-pg-ro")
    assert report["ok"] is False and check["status"] == "fail"
    assert check["detail"].startswith("the connection is read_only, but app_iam can write: ")
    # conftest grants it ALL on the database and on schema public.
    assert "CREATE on schema public" in check["detail"]
    assert "CREATE, TEMPORARY on database rdsgate_test" in check["detail"]
    assert {"privilege": "CREATE", "on": "schema", "object": "public", "severity": "fail"} in check["findings"]
    assert {"privilege": "TEMPORARY", "on": "database", "object": "rdsgate_test", "severity": "warn"} \
        in check["findings"]
    assert "rdsgate readonly-user --engine postgres" in check["fix"]

    # A table it owns and one it may only write to are named, with the privilege.
    postgres.execute("CREATE TABLE doctor_owned (id int)", database="rdsgate_test")
    postgres.execute("ALTER TABLE doctor_owned OWNER TO app_iam", database="rdsgate_test")
    postgres.execute("CREATE TABLE doctor_granted (id int)", database="rdsgate_test")
    postgres.execute("GRANT SELECT, DELETE ON doctor_granted TO app_iam", database="rdsgate_test")
    try:
        _, check = privileges_check(cli, endpoint, "app-pg-ro")
    finally:
        postgres.execute("DROP TABLE doctor_owned, doctor_granted", database="rdsgate_test")
    assert {"privilege": "OWNER", "on": "table", "object": "public.doctor_owned", "severity": "fail"} \
        in check["findings"]
    assert {"privilege": "DELETE", "on": "table", "object": "public.doctor_granted", "severity": "fail"} \
        in check["findings"]
    assert not any(f["privilege"] == "SELECT" for f in check["findings"])


def test_doctor_names_the_app_users_write_privileges_on_mariadb(endpoint, definitions, cli):
    report, check = privileges_check(cli, endpoint, "app-my-ro")
    assert report["ok"] is False and check["status"] == "fail"
    assert "app_iam can write: ALL PRIVILEGES on database rdsgate_test" in check["detail"]
    assert check["findings"] == [
        {"privilege": "ALL PRIVILEGES", "on": "database", "object": "rdsgate_test", "severity": "fail"}]
    assert "pam" not in json.dumps(check)  # SHOW GRANTS' IDENTIFIED VIA … part is never repeated


def test_a_writable_connection_skips_the_step(endpoint, definitions, cli):
    _, check = privileges_check(cli, endpoint, "ro-pg-rw")
    assert check["status"] == "skip" and "not read_only" in check["detail"]


def test_a_warning_only_user_still_passes_overall(endpoint, definitions, postgres, cli):
    """TEMPORARY alone (PUBLIC's default, before the script revokes it) is a warning, not a failure."""
    postgres.execute(f'GRANT TEMPORARY ON DATABASE "{DATABASE}" TO "{USER}"')
    try:
        report, check = privileges_check(cli, endpoint, "ro-pg")
    finally:
        postgres.execute(f'REVOKE TEMPORARY ON DATABASE "{DATABASE}" FROM "{USER}"')
    assert report["ok"] is True and check["status"] == "warn"
    assert check["detail"] == (f"the connection is read_only, but {USER} holds privileges that may write: "
                               f'TEMPORARY on database "{DATABASE}"')  # named as SQL names it: quote_ident


def test_doctor_names_each_kind_of_postgres_write_privilege(endpoint, definitions, postgres, cli):
    """Grants the read-only user one of each, then takes them back: what the catalog query must find (and not)."""
    role, run = f'"{USER}"', lambda sql: postgres.execute(sql, database=DATABASE)
    run("CREATE SEQUENCE counter")
    run("CREATE FUNCTION bump() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'select nextval(''counter'')'")
    run("CREATE FUNCTION peek() RETURNS int LANGUAGE sql SECURITY DEFINER STABLE AS 'select 1'")
    run("CREATE FUNCTION plain() RETURNS int LANGUAGE sql AS 'select 1'")  # PUBLIC may EXECUTE all three
    run("SELECT lo_create(424242)")
    grants = [f"GRANT UPDATE (name) ON items TO {role}", f"GRANT UPDATE ON SEQUENCE counter TO {role}",
              f"GRANT UPDATE ON LARGE OBJECT 424242 TO {role}"]
    try:
        for sql in grants:
            run(sql)
        report, check = privileges_check(cli, endpoint, "ro-pg")
        grants.append(f"GRANT pg_write_all_data TO {role}")
        run(grants[-1])
        _, member = privileges_check(cli, endpoint, "ro-pg")
    finally:
        for sql in grants:
            run(sql.replace("GRANT", "REVOKE", 1).replace(" TO ", " FROM "))
        run("DROP FUNCTION bump(), peek(), plain()")
        run("DROP SEQUENCE counter")
        run("SELECT lo_unlink(424242)")
    found = {(f["privilege"], f["on"], f["object"]): f["severity"] for f in check["findings"]}
    assert found == {
        ("UPDATE", "table", "public.items"): "fail",  # a column grant counts
        ("UPDATE", "large object", "424242"): "fail",
        ("UPDATE", "sequence", "public.counter"): "warn",
        ("EXECUTE", "function", "public.bump()"): "warn",  # volatile SECURITY DEFINER: it may write
    }
    assert report["ok"] is False and check["detail"].startswith(f"the connection is read_only, but {USER} can write: ")
    found = {(f["privilege"], f["on"], f["object"]) for f in member["findings"]}
    assert ("MEMBER", "role", "pg_write_all_data") in found
    # … and what membership gives, named table by table
    assert {(p, "table", f"public.{t}") for p in ("INSERT", "UPDATE", "DELETE") for t in ("items", "later")} <= found
    assert "member of pg_write_all_data" in member["detail"]
    assert privileges_check(cli, endpoint, "ro-pg")[1]["status"] == "pass"  # and all of it is gone again


def test_doctor_names_mariadb_routine_and_role_privileges(endpoint, definitions, mariadb, cli):
    account = f"'{USER}'@'%'"
    mariadb.execute("CREATE PROCEDURE `ro-shop`.tidy() DELETE FROM items WHERE id < 0")
    mariadb.execute("CREATE ROLE ro_writer")
    statements = [f"GRANT EXECUTE ON PROCEDURE `ro-shop`.tidy TO {account}", "GRANT INSERT ON `ro-shop`.* TO ro_writer",
                  f"GRANT ro_writer TO {account}", f"SET DEFAULT ROLE ro_writer FOR {account}"]
    try:
        for sql in statements:
            mariadb.execute(sql)
        report, check = privileges_check(cli, endpoint, "ro-my")
        mariadb.execute(f"SET DEFAULT ROLE NONE FOR {account}")  # granted but not enabled: its grants are unlisted
        _, unlisted = privileges_check(cli, endpoint, "ro-my")
    finally:
        mariadb.execute("DROP ROLE ro_writer")
        mariadb.execute("DROP PROCEDURE `ro-shop`.tidy")
    assert report["ok"] is False and check["findings"] == [
        {"privilege": "EXECUTE", "on": "procedure", "object": "ro-shop.tidy", "severity": "warn"},
        {"privilege": "INSERT", "on": "database", "object": "ro-shop (through role ro_writer)", "severity": "fail"}]
    assert unlisted["status"] == "warn" and {"privilege": "ROLE", "on": "role", "object": "ro_writer",
                                             "severity": "warn"} in unlisted["findings"]
    assert "can use role ro_writer" in unlisted["detail"]
    assert privileges_check(cli, endpoint, "ro-my")[1]["status"] == "pass"
