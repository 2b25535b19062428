"""A hostile caller against the clean-session guarantees, on both engines.

Each attack is tried through the service as a caller would send it; afterwards a probe on
the same pooled connection must find a clean session (no temporary tables, locks, cursors,
prepared statements, changed settings or open transaction; read-only and autocommit as the
definition says), and the data must be as it was.
"""

from __future__ import annotations

import pytest

from rdsgate.edge import http_status
from rdsgate import errors
from rdsgate.access import TRUSTED
from rdsgate.request import parse_batch, parse_query, parse_transaction
from rdsgate.service import Invocation
from tests.conftest import DATABASE, IAM_USER, iam_definition, run_query
from tests.integration.sessions_fixtures import ALICE, invocation, runners, session_table, sessions  # noqa: F401

PG_PROBE = (
    "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())::int AS temp_tables, "
    "(SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory')::int AS advisory_locks, "
    "(SELECT count(*) FROM pg_cursors WHERE name <> '')::int AS cursors, "
    "(SELECT count(*) FROM pg_prepared_statements)::int AS prepared, "
    "(SELECT count(*) FROM pg_listening_channels())::int AS listening, "
    "(SELECT count(*) FROM pg_settings WHERE source = 'session' AND name NOT IN ('transaction_read_only', 'transaction_isolation', 'transaction_deferrable'))::int AS session_settings, "
    "current_user::text AS current_user, session_user::text AS session_user, "
    "current_setting('transaction_read_only') AS read_only, "
    "current_setting('default_transaction_read_only') AS default_read_only, "
    "current_setting('TimeZone') AS timezone"
)
PG_CLEAN = {
    "temp_tables": 0, "advisory_locks": 0, "cursors": 0, "prepared": 0, "listening": 0, "session_settings": 0,
    "current_user": IAM_USER, "session_user": IAM_USER, "default_read_only": "off", "timezone": "UTC",
}
MY_PROBE = (
    "SELECT @x AS x, @@autocommit AS autocommit, @@tx_read_only AS read_only, @@time_zone AS tz, "
    "@@max_statement_time AS max_time, DATABASE() AS db, IS_USED_LOCK('hostile') AS lock_holder, "
    "@@character_set_client AS charset, @@in_transaction AS in_transaction"
)


def assert_leftovers_gone(runtime, conn, sql, probe):
    """`sql` may leave state in the session (or fail, as a client error); the next request on the pooled
    connection passes `probe` and sees the real table."""
    run_query(runtime, conn, "SELECT 1")
    try:
        run_query(runtime, conn, sql)
    except errors.RdsgateError as exc:
        assert http_status(exc) < 500
    probe(runtime)
    assert run_query(runtime, conn, "SELECT name FROM customers")["records"] == [{"name": "real"}]


def _pool(runtime):
    return runtime.get().pool


def probe_pg(runtime, name="pg", read_only=False):
    opened = _pool(runtime).stats.opened
    record = run_query(runtime, name, PG_PROBE)["records"][0]
    assert _pool(runtime).stats.opened == opened, "the probe must run on the same pooled connection"
    assert {k: record[k] for k in PG_CLEAN} == PG_CLEAN
    assert record["read_only"] == ("on" if read_only else "off")
    return record


def probe_my(runtime, name="my", read_only=False):
    opened = _pool(runtime).stats.opened
    record = run_query(runtime, name, MY_PROBE)["records"][0]
    assert _pool(runtime).stats.opened == opened, "the probe must run on the same pooled connection"
    assert record == {
        "x": None, "autocommit": 1, "read_only": 1 if read_only else 0, "tz": "+00:00", "max_time": 5.0,
        "db": DATABASE, "lock_holder": None, "charset": "utf8mb4", "in_transaction": 0,
    }
    return record


# Both engines' tables: hostile_t (three rows) and customers (the row a leftover must never hide).
TABLES = (
    "DROP TABLE IF EXISTS hostile_t",
    "CREATE TABLE hostile_t (id int PRIMARY KEY, v int)",
    "INSERT INTO hostile_t VALUES (1, 10), (2, 20), (3, 30)",
    "DROP TABLE IF EXISTS customers",
    "CREATE TABLE customers (name text)",
    "INSERT INTO customers VALUES ('real')",
)


@pytest.fixture
def pg_tables(runtime, postgres, connections):
    """A table with three rows, a read-only definition of the same database, and helpers as superuser."""
    for sql in (
        *TABLES,
        "DROP SEQUENCE IF EXISTS hostile_seq",
        "CREATE SEQUENCE hostile_seq",
    ):
        postgres.execute(sql, database=DATABASE)
    for sql in (
        f"GRANT ALL ON hostile_t, customers, hostile_seq TO {IAM_USER}",
        "DO $$BEGIN CREATE ROLE hostile_role NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$",
        f"GRANT hostile_role TO {IAM_USER}",
        "CREATE OR REPLACE PROCEDURE hostile_commit() LANGUAGE plpgsql AS $$ BEGIN COMMIT; DELETE FROM hostile_t; END $$",
        f"GRANT EXECUTE ON PROCEDURE hostile_commit() TO {IAM_USER}",
        "CREATE OR REPLACE FUNCTION hostile_definer() RETURNS int LANGUAGE plpgsql SECURITY DEFINER "
        "AS $$ BEGIN DELETE FROM hostile_t; RETURN 1; END $$",
        f"GRANT EXECUTE ON FUNCTION hostile_definer() TO {IAM_USER}",
    ):
        postgres.execute(sql, database=DATABASE)
    connections.put(iam_definition("pg-ro", postgres, "postgres", read_only=True))
    yield
    connections.delete("pg-ro")


def pg_count(postgres) -> int:
    return postgres.execute("SELECT count(*) FROM hostile_t", database=DATABASE)[0][0]


# -- PostgreSQL: read-only and atomicity that procedural code cannot end ------------------------

PROCEDURAL_ESCAPES = [
    "DO $$ BEGIN COMMIT; DELETE FROM hostile_t; END $$",
    "DO $$ BEGIN ROLLBACK; DELETE FROM hostile_t; END $$",
    "DO $$ BEGIN EXECUTE 'COMMIT'; DELETE FROM hostile_t; END $$",
    "CALL hostile_commit()",
]


@pytest.mark.parametrize("sql", PROCEDURAL_ESCAPES)
def test_pg_read_only_connection_cannot_be_escaped_by_procedural_commit(runtime, postgres, pg_tables, sql):
    with pytest.raises((errors.SqlError, errors.ReadOnlyViolation)) as caught:
        run_query(runtime, "pg-ro", sql)
    assert caught.value.details.get("sqlstate") in ("2D000", "25006", "0A000")
    assert pg_count(postgres) == 3
    probe_pg(runtime, "pg-ro", read_only=True)


@pytest.mark.parametrize("sql", PROCEDURAL_ESCAPES)
def test_pg_read_only_request_cannot_be_escaped_by_procedural_commit(runtime, postgres, pg_tables, sql):
    with pytest.raises((errors.SqlError, errors.ReadOnlyViolation)):
        run_query(runtime, "pg", sql, readOnly=True)
    assert pg_count(postgres) == 3
    probe_pg(runtime)


def test_pg_security_definer_function_cannot_write_in_a_read_only_request(runtime, postgres, pg_tables):
    # Owned by the superuser, it has every privilege; the read-only transaction still holds.
    with pytest.raises(errors.ReadOnlyViolation):
        run_query(runtime, "pg-ro", "SELECT hostile_definer()")
    with pytest.raises(errors.ReadOnlyViolation):
        run_query(runtime, "pg", "SELECT hostile_definer()", readOnly=True)
    assert pg_count(postgres) == 3
    probe_pg(runtime)


def _atomic(runtime, name, request):
    return runtime.get().run_atomic(name, request, Invocation(caller=TRUSTED, result_limit_bytes=6_000_000))


@pytest.mark.parametrize("escape", PROCEDURAL_ESCAPES[:2] + PROCEDURAL_ESCAPES[3:])
def test_pg_transaction_stays_atomic_whatever_its_statements_do(runtime, postgres, pg_tables, escape):
    request = parse_transaction(
        {"statements": [{"sql": "INSERT INTO hostile_t VALUES (4, 40)"}, {"sql": escape}, {"sql": "SELECT 1/0"}]},
        max_statements=10,
    )
    with pytest.raises(errors.SqlError):
        _atomic(runtime, "pg", request)
    assert postgres.execute("SELECT count(*) FROM hostile_t WHERE id = 4", database=DATABASE)[0][0] == 0
    assert pg_count(postgres) == 3
    probe_pg(runtime)


def test_pg_batch_stays_atomic(runtime, postgres, pg_tables):
    request = parse_batch(
        {"sql": "INSERT INTO hostile_t VALUES (:id, 0)", "parameterSets": [{"id": 5}, {"id": 6}, {"id": 1}]}, max_sets=10
    )
    with pytest.raises(errors.SqlError):
        _atomic(runtime, "pg", request)
    assert pg_count(postgres) == 3


# -- PostgreSQL: nothing a request leaves on the session reaches the next one -------------------

SESSION_LEFTOVERS = [
    "CREATE TEMP TABLE customers AS SELECT 'attacker' AS name",
    "SELECT pg_advisory_lock(42)",
    "SELECT pg_advisory_lock(43), 1/0",
    "DO $$ BEGIN EXECUTE 'PREPARE sneaky AS SELECT 1'; END $$",
    "DO $$ BEGIN EXECUTE 'LISTEN sneaky'; END $$",
    "SELECT set_config('role', 'hostile_role', false)",
    "SELECT set_config('TimeZone', 'Asia/Tokyo', false), 1/0",
    "SELECT set_config('default_transaction_read_only', 'on', false)",
    "SELECT set_config('search_path', 'pg_temp, public', false)",
    "DO $$ DECLARE c refcursor := 'held'; BEGIN OPEN c FOR SELECT 1; END $$",
]


@pytest.mark.parametrize("sql", SESSION_LEFTOVERS)
def test_pg_session_leftovers_never_reach_the_next_request(runtime, postgres, pg_tables, sql):
    assert_leftovers_gone(runtime, "pg", sql, probe_pg)


def test_pg_sequence_state_is_discarded(runtime, postgres, pg_tables):
    run_query(runtime, "pg", "SELECT nextval('hostile_seq')")
    with pytest.raises(errors.SqlError) as caught:  # currval is per session: DISCARD SEQUENCES forgot it
        run_query(runtime, "pg", "SELECT currval('hostile_seq')")
    assert caught.value.details["sqlstate"] == "55000"


def test_pg_timeout_leaves_a_clean_session(runtime, postgres, pg_tables):
    with pytest.raises(errors.QueryTimeout):
        run_query(runtime, "pg", "SELECT pg_advisory_lock(44), pg_sleep(2)", timeoutMs=200)
    probe_pg(runtime)


def test_pg_terminating_its_own_backend_costs_only_that_request(runtime, postgres, pg_tables):
    with pytest.raises(errors.RdsgateError) as caught:
        run_query(runtime, "pg", "SELECT pg_terminate_backend(pg_backend_pid())")
    assert caught.value.code == "DatabaseUnavailable"
    assert run_query(runtime, "pg", "SELECT count(*)::int AS n FROM hostile_t")["records"] == [{"n": 3}]


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("SET ROLE hostile_role", "SET"),
        ("SET SESSION AUTHORIZATION postgres", "SET"),
        ("RESET ROLE", "RESET"),
        ("LOCK TABLE hostile_t", "LOCK"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "DECLARE"),
        ("PREPARE p AS SELECT 1", "PREPARE"),
        ("EXECUTE p", "EXECUTE"),
        ("DEALLOCATE ALL", "DEALLOCATE"),
        ("LISTEN chan", "LISTEN"),
        ("DISCARD ALL", "DISCARD"),
        ("COPY hostile_t TO STDOUT", "COPY"),
        ("PREPARE TRANSACTION 'x'", "PREPARE"),
        ("COMMIT", "COMMIT"),
        ("END", "END"),
        ("/* hidden */ BEGIN", "BEGIN"),
    ],
)
def test_pg_session_statements_are_refused_by_kind(runtime, pg_tables, sql, kind):
    opened = _pool(runtime).stats.opened
    with pytest.raises(errors.InvalidRequest) as caught:
        run_query(runtime, "pg", sql)
    assert f"{kind} is not supported" in caught.value.message
    assert _pool(runtime).stats.opened == opened  # refused before it reached the database


def test_pg_commands_that_refuse_a_block_still_run_on_writable_connections(runtime, postgres, pg_tables):
    assert run_query(runtime, "pg", "VACUUM hostile_t")["records"] == []
    with pytest.raises(errors.SqlError):  # in a read-only request they stay inside BEGIN READ ONLY
        run_query(runtime, "pg", "VACUUM hostile_t", readOnly=True)
    probe_pg(runtime)


# -- MySQL / MariaDB -----------------------------------------------------------------------------

@pytest.fixture
def my_tables(runtime, mariadb, connections):
    for sql in (
        *TABLES,
        "DROP PROCEDURE IF EXISTS hostile_autocommit",
        "CREATE PROCEDURE hostile_autocommit() BEGIN SET autocommit = 0; UPDATE hostile_t SET v = v + 1; END",
        "DROP PROCEDURE IF EXISTS hostile_read_write",
        "CREATE PROCEDURE hostile_read_write() BEGIN SET SESSION TRANSACTION READ WRITE; END",
        "DROP PROCEDURE IF EXISTS hostile_commit",
        "CREATE PROCEDURE hostile_commit() BEGIN COMMIT; END",
    ):
        mariadb.execute(sql, database=DATABASE)
    connections.put(iam_definition("my-ro", mariadb, "mysql", read_only=True))
    yield
    connections.delete("my-ro")


def my_sum(mariadb) -> int:
    return int(mariadb.execute("SELECT COALESCE(SUM(v), 0) FROM hostile_t", database=DATABASE)[0][0])


@pytest.mark.parametrize(
    "sql",
    [
        "/*!SET SESSION TRANSACTION READ WRITE*/",
        "/*!DELETE FROM hostile_t*/",
        "/*!40101 SET autocommit=0 */",
        "/*M!100100 SET max_statement_time=0 */",
        "/*m!100100 SET max_statement_time=0 */",
        "SELECT 1 /*!, SLEEP(0) */",
        "DELETE /*!50000 FROM hostile_t */",
    ],
)
def test_my_executable_comments_are_refused(runtime, mariadb, my_tables, sql):
    with pytest.raises(errors.InvalidRequest, match="executable comments"):
        run_query(runtime, "my-ro", sql)
    assert my_sum(mariadb) == 60
    assert run_query(runtime, "my-ro", "SELECT COUNT(*) AS n FROM hostile_t")["records"] == [{"n": 3}]
    probe_my(runtime, "my-ro", read_only=True)


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("EXECUTE IMMEDIATE CONCAT('DELE', 'TE FROM hostile_t')", "EXECUTE"),
        ("PREPARE s FROM 'DELETE FROM hostile_t'", "PREPARE"),
        ("DEALLOCATE PREPARE s", "DEALLOCATE"),
        ("LOCK TABLES hostile_t READ", "LOCK"),
        ("UNLOCK TABLES", "UNLOCK"),
        ("HANDLER hostile_t OPEN", "HANDLER"),
        ("USE information_schema", "USE"),
        ("SET autocommit = 0", "SET"),
        ("XA START 'x'", "XA"),
        ("START TRANSACTION", "START"),
    ],
)
def test_my_session_statements_are_refused_by_kind(runtime, my_tables, sql, kind):
    with pytest.raises(errors.InvalidRequest) as caught:
        run_query(runtime, "my", sql)
    assert f"{kind} is not supported" in caught.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT @x := 5",
        "SELECT GET_LOCK('hostile', 0)",
        "SELECT GET_LOCK('hostile', 0), 1 FROM no_such_table",
        "CREATE TEMPORARY TABLE customers SELECT 'attacker' AS name",
        "CALL hostile_read_write()",
    ],
)
def test_my_session_leftovers_never_reach_the_next_request(runtime, mariadb, my_tables, sql):
    assert_leftovers_gone(runtime, "my", sql, probe_my)


def test_my_read_only_is_back_after_a_procedure_switches_it_off(runtime, mariadb, my_tables):
    run_query(runtime, "my-ro", "CALL hostile_read_write()")
    with pytest.raises(errors.ReadOnlyViolation):
        run_query(runtime, "my-ro", "DELETE FROM hostile_t WHERE id = 1")
    assert my_sum(mariadb) == 60
    probe_my(runtime, "my-ro", read_only=True)


def test_my_autocommit_switched_off_is_refused_and_never_reaches_the_next_caller(runtime, mariadb, my_tables):
    with pytest.raises(errors.InvalidRequest, match="autocommit"):
        run_query(runtime, "my", "CALL hostile_autocommit()")
    assert my_sum(mariadb) == 60  # rolled back, not silently lost later
    done = run_query(runtime, "my", "UPDATE hostile_t SET v = 0 WHERE id = 1")
    assert done["updatedRows"] == 1
    assert my_sum(mariadb) == 50  # the next caller's write is committed, visible to another connection
    probe_my(runtime)


def test_my_read_only_request_on_a_writable_connection_is_undone_for_the_next(runtime, mariadb, my_tables):
    with pytest.raises(errors.ReadOnlyViolation):
        run_query(runtime, "my", "DELETE FROM hostile_t WHERE id = 1", readOnly=True)
    assert run_query(runtime, "my", "DELETE FROM hostile_t WHERE id = 1")["updatedRows"] == 1
    probe_my(runtime)


def test_my_procedure_that_commits_is_refused_in_atomic_requests(runtime, mariadb, my_tables):
    request = parse_transaction(
        {"statements": [{"sql": "INSERT INTO hostile_t VALUES (4, 40)"}, {"sql": "CALL hostile_commit()"}]}, max_statements=10
    )
    with pytest.raises(errors.InvalidRequest, match="CALL may commit"):
        _atomic(runtime, "my", request)
    assert my_sum(mariadb) == 60


def test_my_timeout_leaves_a_clean_session(runtime, mariadb, my_tables):
    with pytest.raises(errors.QueryTimeout):
        run_query(runtime, "my", "SELECT GET_LOCK('hostile', 0), SLEEP(2)", timeoutMs=200)
    run_query(runtime, "my", "SELECT 1")  # a fresh connection, or the same one reset
    probe_my(runtime)


# -- bad input is a 4xx and never costs the pooled connection ------------------------------------

@pytest.mark.parametrize("engine", ["pg", "my"])
def test_nul_in_sql_is_refused_without_dropping_the_connection(runtime, engine, connections):
    run_query(runtime, engine, "SELECT 1")
    opened = _pool(runtime).stats.opened
    with pytest.raises(errors.InvalidRequest, match="NUL"):
        run_query(runtime, engine, "SELECT 'a\x00b'")
    run_query(runtime, engine, "SELECT 1")
    assert _pool(runtime).stats.opened == opened


def test_nul_in_a_postgres_parameter_is_a_4xx_on_the_same_connection(runtime, connections):
    run_query(runtime, "pg", "SELECT 1")
    opened = _pool(runtime).stats.opened
    with pytest.raises(errors.RdsgateError) as caught:
        run_query(runtime, "pg", "SELECT :v::text AS v", {"v": "a\x00b"})
    assert 400 <= http_status(caught.value) < 500
    run_query(runtime, "pg", "SELECT 1")
    assert _pool(runtime).stats.opened == opened


# -- Comments that end where the server ends them hide no transaction end ------------------------

# (connection, sql): a COMMIT the server runs after a comment that rdsgate's scanners must end where the server does.
COMMENT_ESCAPES = [
    ("pg", "-- \rCOMMIT -- \nAND NO CHAIN"),  # PostgreSQL ends a -- comment at \r
    ("my", "--\x7f '\nCOMMIT -- '"),  # MySQL's -- before DEL opens a comment: the quote is in it
]


@pytest.mark.parametrize("conn, sql", COMMENT_ESCAPES)
def test_a_comment_hides_no_commit_in_a_request_or_a_session(request, runtime, sessions, conn, sql):
    request.getfixturevalue("pg_tables" if conn == "pg" else "my_tables")
    with pytest.raises(errors.InvalidRequest, match="is not supported"):
        run_query(runtime, conn, sql)
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, parse_query({"sql": "UPDATE hostile_t SET v = 0"}), alice)
    with pytest.raises(errors.InvalidRequest, match="gateway owns the session's BEGIN and COMMIT"):
        gateway.run(session, conn, parse_query({"sql": sql}), alice)
    assert gateway.end(session, alice, commit=False) == {"status": "rolledback"}
    total = run_query(runtime, conn, "SELECT SUM(v) AS total FROM hostile_t")["records"][0]["total"]
    assert int(total) == 60  # the UPDATE was rolled back: nothing committed it
