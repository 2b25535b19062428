"""Sessions on both engines: a real transaction held across calls by a runner process, through the gateway.

The runners are local worker processes running ``rdsgate.sessions.runner.handler`` (as the
deployed runner function does), reached through the session table on moto.
"""

from __future__ import annotations

import time

import pytest

from rdsgate.edge import http_status
from rdsgate import errors
from rdsgate.audit import DynamoDBAuditTrail
from rdsgate.request import parse_batch, parse_query
from rdsgate.sessions import codec
from rdsgate.sessions.store import DynamoDBSessionStore
from rdsgate_devstack.sessions_local import LocalRunners
from tests.conftest import ENGINES, fresh_table, iam_definition, run_query
from tests.integration.sessions_fixtures import ALICE, BOB, invocation, runners, session_table, sessions  # noqa: F401
from tests.integration.test_governance import ensure_table



@pytest.fixture
def conn(runtime, engine):
    yield from fresh_table(runtime, ENGINES[engine], "tx_items", "id INT PRIMARY KEY, label VARCHAR(40)")


def q(sql, **parameters):
    return parse_query({"sql": sql, "parameters": parameters})


def outside(runtime, name):
    """What a request outside any session sees (committed rows only)."""
    return [r["id"] for r in run_query(runtime, name, "SELECT id FROM tx_items ORDER BY id")["records"]]


def ids(result):
    return [r["id"] for r in result["records"]]


def runner_pid(session_table, session_id):
    item = DynamoDBSessionStore(session_table).get(codec.key_of(session_id))
    return int(item.runner.split(":")[1])


def test_begin_write_read_own_write_commit(sessions, conn, runtime):
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    inserted = gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (:id, :label)", id=1, label="one"), alice)
    assert inserted["updatedRows"] == 1
    assert ids(gateway.run(session, conn, q("SELECT id FROM tx_items"), alice)) == [1]  # its own write
    assert outside(runtime, conn) == []  # not committed yet
    assert gateway.end(session, alice, commit=True) == {"status": "committed"}
    assert outside(runtime, conn) == [1]
    with pytest.raises(errors.TransactionNotFound, match="ended"):
        gateway.run(session, conn, q("SELECT 1"), alice)


def test_rollback_leaves_nothing(sessions, conn, runtime):
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (2, 'two')"), alice)
    batch = parse_batch({"sql": "INSERT INTO tx_items (id, label) VALUES (:id, 'b')", "parameterSets": [{"id": 3}, {"id": 4}]}, max_sets=10)
    assert [u["updatedRows"] for u in gateway.run(session, conn, batch, alice)["updateResults"]] == [1, 1]
    assert ids(gateway.run(session, conn, q("SELECT id FROM tx_items ORDER BY id"), alice)) == [2, 3, 4]
    assert gateway.end(session, alice, commit=False) == {"status": "rolledback"}
    assert outside(runtime, conn) == []


def test_two_sessions_do_not_see_each_others_uncommitted_rows(sessions, conn, runtime):
    gateway, alice = sessions.get(), invocation(ALICE)
    first = gateway.begin(conn, alice)["sessionId"]
    second = gateway.begin(conn, alice)["sessionId"]
    gateway.run(first, conn, q("INSERT INTO tx_items (id, label) VALUES (10, 'first')"), alice)
    gateway.run(second, conn, q("INSERT INTO tx_items (id, label) VALUES (20, 'second')"), alice)
    assert ids(gateway.run(first, conn, q("SELECT id FROM tx_items ORDER BY id"), alice)) == [10]
    assert ids(gateway.run(second, conn, q("SELECT id FROM tx_items ORDER BY id"), alice)) == [20]
    gateway.end(first, alice, commit=True)
    gateway.end(second, alice, commit=False)
    assert outside(runtime, conn) == [10]


def test_a_session_used_by_another_caller_is_not_found_and_audited(sessions, conn, runtime, monkeypatch, runners):
    monkeypatch.setenv("RDSGATE_AUDIT_TABLE", ensure_table("rdsgate-audit-test", "connection", "at"))
    runtime.reset()
    gateway, alice, bob = sessions.get(), invocation(ALICE), invocation(BOB)
    started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (5, 'alice')"), alice)
    with pytest.raises(errors.TransactionNotFound) as foreign:
        gateway.run(session, conn, q("DELETE FROM tx_items"), bob)
    with pytest.raises(errors.TransactionNotFound) as unknown:
        gateway.run(codec.new_session_id(), conn, q("SELECT 1"), bob)
    assert foreign.value.message == unknown.value.message  # a foreign session is answered as an unknown one
    with pytest.raises(errors.TransactionNotFound):
        gateway.end(session, bob, commit=True)
    with pytest.raises(errors.TransactionNotFound):  # the right caller, another connection
        gateway.run(session, "pg" if conn == "my" else "my", q("SELECT 1"), alice)
    assert ids(gateway.run(session, conn, q("SELECT id FROM tx_items"), alice)) == [5]  # untouched
    gateway.end(session, alice, commit=True)
    runners.wait_idle()  # the runner's own record of the session comes as it ends
    records = DynamoDBAuditTrail("rdsgate-audit-test").read(conn, started + "Z")
    refused = [r for r in records if r["caller"] == BOB]
    assert {r["outcome"] for r in refused} == {"TransactionNotFound"} and len(refused) >= 2
    fingerprint = codec.key_of(session)[:12]
    assert any(r.get("session") == fingerprint and r["statementType"] == "COMMIT" for r in refused)
    # The runner audited alice's statements, with the session named; the id itself is never recorded.
    mine = [r for r in records if r["caller"] == ALICE and r.get("session") == fingerprint]
    assert {"BEGIN", "INSERT", "SELECT", "COMMIT", "SESSION"} <= {r["statementType"] for r in mine}
    assert [r["outcome"] for r in mine if r["statementType"] == "SESSION"] == ["committed"]
    assert session not in str(records)


def test_idle_session_is_rolled_back_and_the_next_call_says_expired(sessions, conn, runtime, monkeypatch):
    monkeypatch.setenv("RDSGATE_SESSION_IDLE_SECONDS", "1")
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (7, 'idle')"), alice)
    time.sleep(2.0)
    with pytest.raises(errors.TransactionExpired, match="no call came for 1 seconds"):
        gateway.run(session, conn, q("SELECT id FROM tx_items"), alice)
    with pytest.raises(errors.TransactionExpired):
        gateway.end(session, alice, commit=True)
    assert outside(runtime, conn) == []


def test_a_killed_runner_leaves_no_transaction_open(sessions, conn, runtime, runners, session_table):
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (8, 'crash')"), alice)
    runners.kill(runner_pid(session_table, session))
    started = time.monotonic()
    with pytest.raises(errors.TransactionNotFound, match="runner stopped"):
        gateway.run(session, conn, q("SELECT id FROM tx_items"), alice)
    assert time.monotonic() - started < 10  # within the lease (2 s here), not a hang
    assert outside(runtime, conn) == []
    # Its row lock went with its connection: another transaction may write the same key at once.
    run_query(runtime, conn, "INSERT INTO tx_items (id, label) VALUES (8, 'after')")
    assert outside(runtime, conn) == [8]


def test_a_runner_at_its_time_limit_rolls_back_first(sessions, conn, runtime):
    from rdsgate.sessions.launcher import launcher_for, use_local_launcher

    previous = launcher_for(None)
    short = LocalRunners(timeout_seconds=5)  # the runner serves until 3 s before its limit: 2 s here
    use_local_launcher(short)
    try:
        gateway, alice = sessions.get(), invocation(ALICE)
        session = gateway.begin(conn, alice)["sessionId"]
        gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (9, 'late')"), alice)
        time.sleep(3.5)
        with pytest.raises(errors.TransactionExpired, match="time limit"):
            gateway.run(session, conn, q("SELECT id FROM tx_items"), alice)
        short.wait_idle(timeout=10)
        assert [w.outcomes for w in short._workers] == [["expired"]]
    finally:
        use_local_launcher(previous)
        short.close()
    assert outside(runtime, conn) == []


def test_a_read_only_connection_cannot_write_in_a_session(sessions, conn, runtime, connections, postgres, mariadb):
    server = postgres if conn == "pg" else mariadb
    reader = f"{conn}-session-reader"
    connections.put(iam_definition(reader, server, "postgres" if conn == "pg" else "mysql", read_only=True))
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(reader, alice)["sessionId"]
    with pytest.raises(errors.ReadOnlyViolation):
        gateway.run(session, reader, q("INSERT INTO tx_items (id, label) VALUES (11, 'no')"), alice)
    gateway.end(session, alice, commit=False)
    # readOnly at the begin makes a writable connection's session read-only too.
    session = gateway.begin(conn, alice, read_only=True)["sessionId"]
    with pytest.raises(errors.ReadOnlyViolation):
        gateway.run(session, conn, q("UPDATE tx_items SET label = 'x'"), alice)
    gateway.end(session, alice, commit=False)
    assert outside(runtime, conn) == []


def test_savepoints_work_and_transaction_control_is_refused(sessions, conn, runtime):
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (1, 'kept')"), alice)
    gateway.run(session, conn, q("SAVEPOINT before_two"), alice)
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (2, 'undone')"), alice)
    gateway.run(session, conn, q("ROLLBACK TO SAVEPOINT before_two"), alice)
    gateway.run(session, conn, q("RELEASE SAVEPOINT before_two"), alice)
    for sql in ("COMMIT", "ROLLBACK", "BEGIN", "START TRANSACTION", "/* rollback to x */ ROLLBACK"):
        with pytest.raises(errors.InvalidRequest, match="gateway owns the session's BEGIN and COMMIT"):
            gateway.run(session, conn, q(sql), alice)
    with pytest.raises(errors.InvalidRequest, match="SET is not supported"):
        gateway.run(session, conn, q("SET lock_timeout = 0" if conn == "pg" else "SET autocommit = 1"), alice)
    assert ids(gateway.run(session, conn, q("SELECT id FROM tx_items ORDER BY id"), alice)) == [1]
    gateway.end(session, alice, commit=True)
    assert outside(runtime, conn) == [1]


def test_postgres_error_fails_the_transaction_until_rollback(sessions, runtime):
    conn = "pg"
    run_query(runtime, conn, "DROP TABLE IF EXISTS tx_items")
    run_query(runtime, conn, "CREATE TABLE tx_items (id INT PRIMARY KEY, label VARCHAR(40))")
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (1, 'a')"), alice)
    with pytest.raises(errors.SqlError) as duplicate:
        gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (1, 'b')"), alice)
    assert duplicate.value.details["sqlstate"] == "23505"
    with pytest.raises(errors.SqlError) as aborted:
        gateway.run(session, conn, q("SELECT 1"), alice)
    assert aborted.value.details["sqlstate"] == "25P02"
    with pytest.raises(errors.SqlError, match="nothing was committed") as commit:
        gateway.end(session, alice, commit=True)
    assert commit.value.details["sqlstate"] == "25P02"
    assert outside(runtime, conn) == []
    run_query(runtime, conn, "DROP TABLE IF EXISTS tx_items")


def test_mysql_ddl_commits_implicitly_and_the_session_goes_on(sessions, runtime):
    conn = "my"
    run_query(runtime, conn, "DROP TABLE IF EXISTS tx_items")
    run_query(runtime, conn, "DROP TABLE IF EXISTS tx_other")
    run_query(runtime, conn, "CREATE TABLE tx_items (id INT PRIMARY KEY, label VARCHAR(40))")
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(conn, alice)["sessionId"]
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (1, 'before ddl')"), alice)
    created = gateway.run(session, conn, q("CREATE TABLE tx_other (id INT)"), alice)
    assert created["rdsgate"]["implicitCommits"] == 1  # said, not hidden
    assert outside(runtime, conn) == [1]  # as MySQL does: the DDL committed what came before it
    gateway.run(session, conn, q("INSERT INTO tx_items (id, label) VALUES (2, 'after ddl')"), alice)
    gateway.end(session, alice, commit=False)
    assert outside(runtime, conn) == [1]  # what came after it was still one transaction
    run_query(runtime, conn, "DROP TABLE IF EXISTS tx_other")
    run_query(runtime, conn, "DROP TABLE IF EXISTS tx_items")


def test_the_runners_connection_is_reset_before_the_next_session(sessions, conn, runtime, runners, session_table):
    gateway, alice = sessions.get(), invocation(ALICE)
    runners.wait_idle()
    session = gateway.begin(conn, alice)["sessionId"]
    temporary = "CREATE TEMP TABLE tx_scratch (n INT)" if conn == "pg" else "CREATE TEMPORARY TABLE tx_scratch (n INT)"
    gateway.run(session, conn, q(temporary), alice)
    gateway.run(session, conn, q("INSERT INTO tx_scratch VALUES (1)"), alice)
    pid = runner_pid(session_table, session)
    gateway.end(session, alice, commit=True)
    runners.wait_idle()
    others = [p for p in runners.pids if p != pid]
    for other in others:  # only the environment that ran the first session may run the next
        runners.kill(other)
    session = gateway.begin(conn, alice)["sessionId"]
    assert runner_pid(session_table, session) == pid
    with pytest.raises(errors.SqlError):  # the temporary table went with the reset
        gateway.run(session, conn, q("SELECT n FROM tx_scratch"), alice)
    gateway.end(session, alice, commit=False)


def test_sessions_per_caller_are_limited(sessions, conn, runtime, monkeypatch):
    monkeypatch.setenv("RDSGATE_MAX_SESSIONS_PER_CALLER", "1")
    gateway, alice, bob = sessions.get(), invocation(ALICE), invocation(BOB)
    first = gateway.begin(conn, alice)["sessionId"]
    with pytest.raises(errors.TooManySessions, match="this caller has 1 open sessions") as refused:
        gateway.begin(conn, alice)
    assert http_status(refused.value) == 503 and refused.value.details["retry_after"] > 0
    other = gateway.begin(conn, bob)["sessionId"]  # the limit is per caller
    gateway.end(first, alice, commit=False)
    again = gateway.begin(conn, alice)["sessionId"]  # ended sessions no longer count
    for session, who in ((other, bob), (again, alice)):
        gateway.end(session, who, commit=False)


def test_sessions_per_connection_are_limited_and_a_lost_runner_frees_its_slot(sessions, conn, runtime, monkeypatch, runners, session_table):
    monkeypatch.setenv("RDSGATE_MAX_SESSIONS_PER_CONNECTION", "1")
    gateway, alice, bob = sessions.get(), invocation(ALICE), invocation(BOB)
    first = gateway.begin(conn, alice)["sessionId"]
    with pytest.raises(errors.TooManySessions, match=f"connection '{conn}' has 1 open sessions"):
        gateway.begin(conn, bob)
    runners.kill(runner_pid(session_table, first))
    time.sleep(2.5)  # the lease (2 s) runs out
    second = gateway.begin(conn, bob)["sessionId"]  # the dead runner's session no longer counts
    gateway.end(second, bob, commit=False)


def test_masking_and_guardrails_apply_in_a_session(sessions, conn, runtime, connections, postgres, mariadb):
    server = postgres if conn == "pg" else mariadb
    guarded = f"{conn}-session-guarded"
    connections.put(iam_definition(guarded, server, "postgres" if conn == "pg" else "mysql", masked_columns=["tx_items.label"],
                                   guardrails=[{"name": "no-delete", "deny_statements": ["DELETE"]}]))
    run_query(runtime, conn, "INSERT INTO tx_items (id, label) VALUES (1, 'secret')")
    gateway, alice = sessions.get(), invocation(ALICE)
    session = gateway.begin(guarded, alice)["sessionId"]
    read = gateway.run(session, guarded, q("SELECT id, label AS shown FROM tx_items"), alice)
    assert read["records"] == [{"id": 1, "shown": "****"}]  # masked through the alias, inside the transaction
    with pytest.raises(errors.GuardrailViolation):
        gateway.run(session, guarded, q("DELETE FROM tx_items"), alice)
    assert ids(gateway.run(session, guarded, q("SELECT id FROM tx_items"), alice)) == [1]
    gateway.end(session, alice, commit=False)
    assert outside(runtime, conn) == [1]


def test_a_session_statement_cannot_change_how_the_server_reads_the_next(sessions, runtime, connections, postgres):
    """A session call that switches standard_conforming_strings off: the next call is still read as the guardrail read it."""
    from tests.integration.test_hostile_guardrails import STRING_RULE_ATTACK, SWITCH_OFF

    yield_table = fresh_table(runtime, "pg", "hg_victim", "id INT PRIMARY KEY")
    next(yield_table)
    try:
        run_query(runtime, "pg", "INSERT INTO hg_victim (id) VALUES (1), (2), (3)")
        guarded = "pg-session-reading"
        connections.put(iam_definition(guarded, postgres, "postgres", guardrails=[{"name": "no-delete", "deny_statements": ["DELETE"]}]))
        gateway, alice = sessions.get(), invocation(ALICE)
        session = gateway.begin(guarded, alice)["sessionId"]
        gateway.run(session, guarded, q(SWITCH_OFF), alice)
        gateway.run(session, guarded, q(STRING_RULE_ATTACK), alice)  # two strings, as the guardrail read it
        assert len(gateway.run(session, guarded, q("SELECT id FROM hg_victim"), alice)["records"]) == 3
        gateway.end(session, alice, commit=True)
        assert len(run_query(runtime, "pg", "SELECT id FROM hg_victim")["records"]) == 3
    finally:
        next(yield_table, None)
