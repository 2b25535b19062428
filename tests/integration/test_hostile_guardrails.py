"""Guardrails against a hostile caller, on both engines through the query service.

A connection denies DELETE, DROP and UPDATE; the caller tries every wrapper that has been
seen to run those anyway (DO blocks and dynamic SQL in them, EXPLAIN ANALYZE, MERGE
actions, data-modifying CTEs, functions, procedures, rules, triggers and events whose
bodies write, MySQL executable comments and EXECUTE IMMEDIATE, MariaDB's ANALYZE and
SET STATEMENT … FOR). Each is refused and the table is unchanged afterwards; the control
tests run the same attacks on an unguarded connection and see them change the table, so
the refusals are not vacuous. Also: allow_statements, require_where against WHERE clauses
that are always true, describe, and pathological SQL answered 403 quickly.
"""

import time

import pytest

from rdsgate.edge import http_status
from rdsgate import errors
from rdsgate.access import TRUSTED
from rdsgate.service import Invocation
from rdsgate.sql.lexrules import is_dash_comment, line_end
from tests.conftest import ENGINES, iam_definition, run_query

ROWS = [{"id": 1, "owner": "ann", "n": 10}, {"id": 2, "owner": "bob", "n": 20}, {"id": 3, "owner": "cat", "n": 30}]
NO_WRITES = [{"name": "no-writes", "deny_statements": ["DELETE", "DROP", "UPDATE"]}]
SAFE_WRITES = [{"name": "safe-writes", "require_where": True}]
SELECT_ONLY = [{"name": "select-only", "allow_statements": ["SELECT"]}]


@pytest.fixture
def victim(runtime, engine):
    """Tables hg_victim (three rows) and hg_log (empty) on the writable connection; code objects dropped after."""
    yield from _victim(runtime, engine)


def _victim(runtime, engine):
    conn = ENGINES[engine]
    _drop_everything(runtime, conn, engine)
    run_query(runtime, conn, "CREATE TABLE hg_victim (id INT PRIMARY KEY, owner VARCHAR(40), n INT)")
    run_query(runtime, conn, "CREATE TABLE hg_log (id INT)")
    run_query(runtime, conn, "INSERT INTO hg_victim VALUES (1, 'ann', 10), (2, 'bob', 20), (3, 'cat', 30)")
    yield conn
    _drop_everything(runtime, conn, engine)


def _drop_everything(runtime, conn, engine):
    if engine == "postgres":
        statements = [
            "DROP TABLE IF EXISTS hg_victim CASCADE", "DROP TABLE IF EXISTS hg_log CASCADE", "DROP TABLE IF EXISTS hg_copy",
            "DROP FUNCTION IF EXISTS hg_f()", "DROP PROCEDURE IF EXISTS hg_p()", "DROP FUNCTION IF EXISTS hg_trigger_fn() CASCADE",
        ]  # fmt: skip
    else:
        statements = [
            "DROP TABLE IF EXISTS hg_victim", "DROP TABLE IF EXISTS hg_log", "DROP TABLE IF EXISTS hg_copy",
            "DROP PROCEDURE IF EXISTS hg_p", "DROP FUNCTION IF EXISTS hg_f", "DROP EVENT IF EXISTS hg_e",
        ]  # fmt: skip
    for sql in statements:
        run_query(runtime, conn, sql)


def guarded(connections, server, engine, rules, suffix):
    name = f"{ENGINES[engine]}-hg-{suffix}"
    connections.put(iam_definition(name, server, engine, guardrails=rules))
    return name


def table(runtime, conn):
    return run_query(runtime, conn, "SELECT id, owner, n FROM hg_victim ORDER BY id")["records"]


def code_objects(runtime, conn, engine):
    """Functions, procedures, rules, triggers and events named hg_… (none should be created by a refused attack)."""
    if engine == "postgres":
        sql = (
            "SELECT (SELECT count(*) FROM pg_proc WHERE proname LIKE 'hg%') + (SELECT count(*) FROM pg_rules WHERE rulename LIKE 'hg%')"
            " + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'hg%') AS n"
        )
    else:
        sql = (
            "SELECT (SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_NAME LIKE 'hg%')"
            " + (SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME LIKE 'hg%')"
            " + (SELECT count(*) FROM information_schema.EVENTS WHERE EVENT_NAME LIKE 'hg%') AS n"
        )
    return int(run_query(runtime, conn, sql)["records"][0]["n"])


# --- attacks on deny_statements: ["DELETE", "DROP", "UPDATE"] ------------------------------
# Each is refused by the guardrail (403 GuardrailViolation) before anything runs.

PG_ATTACKS = [
    "DO $$ BEGIN DELETE FROM hg_victim; END $$",
    "DO $$ BEGIN EXECUTE 'dele' || 'te from hg_victim'; END $$",
    "DO $do$ DECLARE r record; BEGIN FOR r IN SELECT id FROM hg_victim LOOP IF r.id > 1 THEN UPDATE hg_victim SET n = 0 WHERE id = r.id; END IF; END LOOP; END $do$",
    "DO LANGUAGE plpgsql 'BEGIN PERFORM 1; DELETE FROM hg_victim WHERE owner = ''ann''; END'",
    "DO $$ BEGIN EXECUTE format('DELETE FROM %I', 'hg_victim'); END $$",
    "EXPLAIN ANALYZE DELETE FROM hg_victim",
    "EXPLAIN (ANALYZE, COSTS OFF) UPDATE hg_victim SET n = 0",
    "MERGE INTO hg_victim v USING (SELECT 1 AS id) s ON v.id = s.id WHEN MATCHED THEN DELETE",
    "MERGE INTO hg_victim v USING (SELECT 2 AS id) s ON v.id = s.id WHEN MATCHED THEN UPDATE SET n = 0",
    "WITH gone AS (DELETE FROM hg_victim RETURNING id) SELECT count(*) FROM gone",
    "CREATE FUNCTION hg_f() RETURNS void LANGUAGE sql AS $$ DELETE FROM hg_victim $$",
    "CREATE OR REPLACE FUNCTION hg_f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN UPDATE hg_victim SET n = 0; RETURN 1; END $$",
    "CREATE PROCEDURE hg_p() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM hg_victim'; END $$",
    "CREATE PROCEDURE hg_p() LANGUAGE sql AS 'DELETE FROM hg_victim'",
    "CREATE FUNCTION hg_f() RETURNS void LANGUAGE sql AS 'SELECT 1; '\n'DELETE FROM hg_victim'",
    "CREATE RULE hg_r AS ON INSERT TO hg_log DO ALSO DELETE FROM hg_victim",
    "CREATE TRIGGER hg_t AFTER INSERT ON hg_log FOR EACH ROW EXECUTE FUNCTION hg_trigger_fn()",
    "ALTER TABLE hg_victim ENABLE TRIGGER ALL",
    "SELECT query_to_xml('DELETE FROM hg_victim RETURNING id', true, false, '')",
    "TRUNCATE hg_victim",
]
MY_ATTACKS = [
    "ANALYZE DELETE FROM hg_victim",
    "ANALYZE FORMAT=JSON UPDATE hg_victim SET n = 0",
    "EXPLAIN ANALYZE DELETE FROM hg_victim",
    "CREATE TRIGGER hg_t AFTER INSERT ON hg_log FOR EACH ROW DELETE FROM hg_victim",
    "CREATE EVENT hg_e ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 HOUR DO DELETE FROM hg_victim",
    "CREATE PROCEDURE hg_p() DELETE FROM hg_victim",
    "CREATE DEFINER = CURRENT_USER PROCEDURE hg_p() MODIFIES SQL DATA UPDATE hg_victim SET n = 0",
    "ALTER EVENT hg_e DO DELETE FROM hg_victim",
    "REPLACE INTO hg_victim VALUES (1, 'eve', 0)",
    "INSERT INTO hg_victim VALUES (1, 'eve', 0) ON DUPLICATE KEY UPDATE owner = 'eve'",
    "DELETE hg_victim FROM hg_victim JOIN hg_log ON 1 = 1",
    "CREATE PROCEDURE hg_p() BEGIN DECLARE x INT DEFAULT 1; WHILE x > 0 DO DELETE FROM hg_victim; SET x = x - 1; END WHILE; END",
    "CREATE TRIGGER hg_t AFTER INSERT ON hg_log FOR EACH ROW BEGIN IF NEW.id > 0 THEN UPDATE hg_victim SET n = 0; END IF; END",
    "CREATE FUNCTION hg_f() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM hg_victim WHERE id = 1; RETURN 1; END",
    "CREATE PROCEDURE hg_p() BEGIN PREPARE s FROM 'SELECT 1'; EXECUTE s; END",
    "CREATE OR REPLACE TABLE hg_victim (id INT PRIMARY KEY, owner VARCHAR(40), n INT)",
]
# Refused before the guardrail by the SQL checks (session control, several statements, executable
# comments) or by the guardrail: either way nothing runs. The classifier refuses each on its own too
# (tests/unit/test_guardrails_hostile.py).
PG_REFUSED_EITHER_WAY = [
    "CREATE FUNCTION hg_f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM hg_victim; SELECT 1; END",
    "PREPARE hg_s AS DELETE FROM hg_victim",
    "DO $$ BEGIN DELETE FROM hg_victim; END $$; SELECT 1",
    "COPY (DELETE FROM hg_victim RETURNING id) TO STDOUT",
    "CREATE TABLE hg_copy AS SELECT * FROM hg_victim; DELETE FROM hg_victim",
]
MY_REFUSED_EITHER_WAY = [
    "/*!DELETE*/ FROM hg_victim",
    "SELECT 1 /*M!, (SELECT 1) */",
    "EXECUTE IMMEDIATE CONCAT('DELE', 'TE FROM hg_victim')",
    "PREPARE hg_s FROM 'DELETE FROM hg_victim'",
    "SET STATEMENT max_statement_time = 10 FOR DELETE FROM hg_victim",
    "BEGIN NOT ATOMIC DELETE FROM hg_victim; END",
    "SELECT 1; DELETE FROM hg_victim",
]


def per_engine(postgres_cases, mysql_cases):
    """Parameters (engine, case) for both engines' lists, with the SQL in the test id."""
    return [
        pytest.param(engine, case, id=f"{engine}-{str(case)[:60]}")
        for engine, cases in (("postgres", postgres_cases), ("mysql", mysql_cases))
        for case in cases
    ]


@pytest.mark.parametrize("engine, sql", per_engine(PG_ATTACKS, MY_ATTACKS))
def test_attack_is_refused_and_the_table_is_unchanged(runtime, connections, server, engine, victim, sql):
    conn = guarded(connections, server, engine, NO_WRITES, "deny")
    with pytest.raises(errors.GuardrailViolation) as caught:
        run_query(runtime, conn, sql)
    assert caught.value.details["rule"] == "no-writes"
    assert http_status(caught.value) == 403
    assert table(runtime, victim) == ROWS
    assert code_objects(runtime, victim, engine) == 0
    # The connection still serves what the rule allows.
    assert run_query(runtime, conn, "SELECT count(*) AS n FROM hg_victim")["records"] == [{"n": 3}]


@pytest.mark.parametrize("engine, sql", per_engine(PG_REFUSED_EITHER_WAY, MY_REFUSED_EITHER_WAY))
def test_attack_refused_by_the_sql_checks_or_the_guardrail(runtime, connections, server, engine, victim, sql):
    conn = guarded(connections, server, engine, NO_WRITES, "deny")
    with pytest.raises((errors.GuardrailViolation, errors.InvalidRequest)) as caught:
        run_query(runtime, conn, sql)
    assert http_status(caught.value) in (400, 403)
    assert table(runtime, victim) == ROWS
    assert code_objects(runtime, victim, engine) == 0


# Controls: the same attacks on the unguarded connection do change the table (setup, then the
# statement that makes the installed code run), so the refusals above are not vacuous.
PG_CONTROLS = [
    ([], "DO $$ BEGIN DELETE FROM hg_victim; END $$"),
    ([], "DO $$ BEGIN EXECUTE 'dele' || 'te from hg_victim'; END $$"),
    ([], "EXPLAIN ANALYZE DELETE FROM hg_victim"),
    ([], "MERGE INTO hg_victim v USING (SELECT 1 AS id) s ON v.id = s.id WHEN MATCHED THEN DELETE"),
    ([], "WITH gone AS (DELETE FROM hg_victim RETURNING id) SELECT count(*) FROM gone"),
    (["CREATE FUNCTION hg_f() RETURNS void LANGUAGE sql AS $$ DELETE FROM hg_victim $$"], "SELECT hg_f()"),
    (["CREATE PROCEDURE hg_p() LANGUAGE sql AS 'DELETE FROM hg_victim'"], "CALL hg_p()"),
    (["CREATE FUNCTION hg_f() RETURNS void LANGUAGE sql AS 'SELECT 1; '\n'DELETE FROM hg_victim'"], "SELECT hg_f()"),
    (["CREATE RULE hg_r AS ON INSERT TO hg_log DO ALSO DELETE FROM hg_victim"], "INSERT INTO hg_log VALUES (1)"),
    ([], "TRUNCATE hg_victim"),
]
MY_CONTROLS = [
    ([], "ANALYZE DELETE FROM hg_victim"),
    (["CREATE TRIGGER hg_t AFTER INSERT ON hg_log FOR EACH ROW DELETE FROM hg_victim"], "INSERT INTO hg_log VALUES (1)"),
    (["CREATE PROCEDURE hg_p() DELETE FROM hg_victim"], "CALL hg_p()"),
    ([], "REPLACE INTO hg_victim VALUES (1, 'eve', 0)"),
    ([], "INSERT INTO hg_victim VALUES (1, 'eve', 0) ON DUPLICATE KEY UPDATE owner = 'eve'"),
    ([], "CREATE OR REPLACE TABLE hg_victim (id INT PRIMARY KEY, owner VARCHAR(40), n INT)"),
]


@pytest.mark.parametrize("engine, control", per_engine(PG_CONTROLS, MY_CONTROLS))
def test_control_the_attack_works_without_the_guardrail(runtime, engine, victim, control):
    setup, trigger = control
    for sql in setup:
        run_query(runtime, victim, sql)
    run_query(runtime, victim, trigger)
    assert table(runtime, victim) != ROWS


def test_plain_explain_runs_nothing_and_is_allowed(runtime, connections, server, engine, victim):
    conn = guarded(connections, server, engine, NO_WRITES, "deny")
    result = run_query(runtime, conn, "EXPLAIN DELETE FROM hg_victim")
    assert result["rowCount"] >= 1
    assert table(runtime, victim) == ROWS


def test_calls_of_existing_functions_are_not_seen_into(runtime, connections, server, engine, victim):
    """Documented limit: a function created elsewhere runs what it holds; that is a privilege matter."""
    if engine == "postgres":
        run_query(runtime, victim, "CREATE FUNCTION hg_f() RETURNS int LANGUAGE sql AS $$ UPDATE hg_victim SET n = 0 WHERE id = 1 RETURNING 1 $$")
        call = "SELECT hg_f() AS r"
    else:
        run_query(runtime, victim, "CREATE PROCEDURE hg_p() UPDATE hg_victim SET n = 0 WHERE id = 1")
        call = "CALL hg_p()"
    conn = guarded(connections, server, engine, NO_WRITES, "deny")
    run_query(runtime, conn, call)
    assert table(runtime, victim)[0] == {"id": 1, "owner": "ann", "n": 0}
    with pytest.raises(errors.GuardrailViolation, match="CALL statements are not allowed"):
        run_query(runtime, guarded(connections, server, engine, SELECT_ONLY, "allow"), "CALL hg_p()")


# --- require_where ------------------------------------------------------------------------

ALWAYS_TRUE = [
    "DELETE FROM hg_victim WHERE true",
    "DELETE FROM hg_victim WHERE 1 = 1",
    "DELETE FROM hg_victim WHERE 'a' = 'a'",
    "UPDATE hg_victim SET n = 0 WHERE id = id",
    "UPDATE hg_victim SET n = 0 WHERE NOT false",
    "DELETE FROM hg_victim WHERE id > 2 OR 1 = 1",
    "DELETE FROM hg_victim WHERE n IS NULL OR n IS NOT NULL",
    "UPDATE hg_victim SET n = 0 WHERE (2 > 1)",
    "DELETE FROM hg_victim WHERE lower('A') = 'a'",
    "DELETE FROM hg_victim",
]
PG_ALWAYS_TRUE = [
    "WITH d AS (DELETE FROM hg_victim WHERE true RETURNING id) SELECT count(*) FROM d",
    "DO $$ BEGIN DELETE FROM hg_victim WHERE 1 = 1; END $$",
    "EXPLAIN ANALYZE DELETE FROM hg_victim WHERE true",
    "MERGE INTO hg_victim v USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
]
MY_ALWAYS_TRUE = ["DELETE FROM hg_victim WHERE 1", "ANALYZE DELETE FROM hg_victim WHERE 1", "UPDATE hg_victim SET n = 0 WHERE n <=> n"]


@pytest.mark.parametrize("engine, sql", per_engine(ALWAYS_TRUE + PG_ALWAYS_TRUE, ALWAYS_TRUE + MY_ALWAYS_TRUE))
def test_require_where_refuses_a_where_that_is_always_true(runtime, connections, server, engine, victim, sql):
    conn = guarded(connections, server, engine, SAFE_WRITES, "where")
    with pytest.raises(errors.GuardrailViolation) as caught:
        run_query(runtime, conn, sql)
    assert caught.value.details["rule"] == "safe-writes"
    assert "WHERE" in caught.value.message or "TRUNCATE" in caught.value.message or "ON condition" in caught.value.message
    assert table(runtime, victim) == ROWS


def test_require_where_refuses_a_parameter_compared_with_itself(runtime, connections, server, engine, victim):
    conn = guarded(connections, server, engine, SAFE_WRITES, "where")
    with pytest.raises(errors.GuardrailViolation, match="always true"):
        run_query(runtime, conn, "DELETE FROM hg_victim WHERE :p = :p", {"p": 1})
    assert table(runtime, victim) == ROWS


def test_require_where_lets_real_conditions_through(runtime, connections, server, engine, victim):
    conn = guarded(connections, server, engine, SAFE_WRITES, "where")
    assert run_query(runtime, conn, "UPDATE hg_victim SET n = n + 1 WHERE id = :id", {"id": 2})["updatedRows"] == 1
    assert run_query(runtime, conn, "DELETE FROM hg_victim WHERE id IN (3, 4) AND owner <> 'x'")["updatedRows"] == 1
    assert run_query(runtime, conn, "DELETE FROM hg_victim WHERE 1 = 0")["updatedRows"] == 0  # always false: deletes nothing
    assert table(runtime, victim) == [ROWS[0], {"id": 2, "owner": "bob", "n": 21}]


# --- allow_statements ---------------------------------------------------------------------

def test_allow_statements_lets_only_the_listed_kinds_run(runtime, connections, server, engine, victim):
    conn = guarded(connections, server, engine, SELECT_ONLY, "allow")
    assert run_query(runtime, conn, "SELECT id FROM hg_victim WHERE id = :id", {"id": 2})["records"] == [{"id": 2}]
    assert run_query(runtime, conn, "WITH x AS (SELECT 1 AS a) SELECT a FROM x")["records"] == [{"a": 1}]
    refused = [
        "INSERT INTO hg_victim VALUES (9, 'eve', 0)",
        "EXPLAIN SELECT 1",
        "CALL anything()",
        "CREATE TABLE hg_copy (id INT)",
        "TRUNCATE hg_victim",
    ]
    if engine == "postgres":
        refused += [
            "SELECT * INTO hg_copy FROM hg_victim",  # SELECT … INTO creates a table
            "WITH d AS (DELETE FROM hg_victim RETURNING id) SELECT count(*) FROM d",
            "NOTIFY hg_channel",
            "DO $$ BEGIN PERFORM 1; END $$",
        ]
    else:
        refused += ["DO 1", "REPLACE INTO hg_victim VALUES (1, 'eve', 0)", "ANALYZE SELECT 1"]
    for sql in refused:
        with pytest.raises(errors.GuardrailViolation) as caught:
            run_query(runtime, conn, sql)
        assert caught.value.details["rule"] == "select-only", sql
        assert "only SELECT" in caught.value.message, sql
    assert table(runtime, victim) == ROWS
    tables = "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'hg_copy'"
    assert run_query(runtime, victim, tables)["records"] == [{"n": 0}]


# --- describe -----------------------------------------------------------------------------

def test_describe_is_checked_by_the_guardrails(runtime, connections, server, engine, victim):
    conn = guarded(connections, server, engine, NO_WRITES, "deny")
    invocation = Invocation(caller=TRUSTED, result_limit_bytes=6_000_000)
    described = runtime.get().describe(conn, "SELECT id, owner FROM hg_victim WHERE id = :id", invocation)
    assert [c["name"] for c in described["columns"]] == ["id", "owner"]
    with pytest.raises(errors.GuardrailViolation, match="DELETE statements are not allowed"):
        runtime.get().describe(conn, "DELETE FROM hg_victim WHERE id = :id", invocation)


# --- pathological SQL: a quick 403 naming the limit, never a 5xx ----------------------------

PATHOLOGICAL = {
    "a 700 KB OR chain": ("DELETE FROM hg_victim WHERE " + " OR ".join(f"id = {i}" for i in range(60_000)), "65,536"),
    "3,000 nested parentheses": ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "over the 24"),
    "nested array constructors": ("SELECT " + "ARRAY[" * 14 + "1" + "]" * 14, "parsing steps"),
    "10,000 tokens": ("SELECT " + ", ".join("1" for _ in range(5000)), "8,192 tokens"),
    "200 prefix operators": ("SELECT " + "NOT " * 200 + "true", "over the 32"),
}


@pytest.mark.parametrize("case", sorted(PATHOLOGICAL))
def test_pathological_sql_answers_403_quickly(runtime, connections, server, engine, victim, case):
    sql, limit = PATHOLOGICAL[case]
    conn = guarded(connections, server, engine, NO_WRITES, "deny")
    started = time.perf_counter()
    with pytest.raises(errors.GuardrailViolation) as caught:
        run_query(runtime, conn, sql)
    elapsed = time.perf_counter() - started
    # The step budget and the wall-clock deadline bound the same work: on a loaded machine the
    # deadline may be the one that answers first. Either way it is a quick 403 naming a limit.
    message = caught.value.message
    assert http_status(caught.value) == 403 and (limit in message or (limit == "parsing steps" and "0.5 s" in message))
    assert elapsed < 1.5, f"{case}: {elapsed:.2f} s"
    assert table(runtime, victim) == ROWS


def test_comments_end_where_the_server_ends_them(runtime, connections, server, engine, victim):
    """The scanners must never see less code than the server: a comment ends where the server ends it.

    PostgreSQL nests block comments and reads the "/*" of "/*/" first (one more level); MySQL does
    not nest, so its "/*/" closes the comment. A scanner that got this wrong would bind a parameter
    the server never sees, or miss a statement the server runs.
    """
    if engine == "postgres":
        sql = "SELECT 1 AS a /* x /*/ :p, 2 AS b */ */"
        result = run_query(runtime, victim, sql)  # no parameter: ":p" is inside the nested comment
        assert [column["name"] for column in result["columns"]] == ["a"]
        hidden = "SELECT owner FROM hg_victim WHERE id = 1 /* x /*/ */ ; DELETE FROM hg_victim */"
    else:
        result = run_query(runtime, victim, "SELECT 1 AS a /* x /*/ , :p AS b", {"p": 2})
        assert [column["name"] for column in result["columns"]] == ["a", "b"]
        assert result["records"] == [{"a": 1, "b": 2}]
        hidden = "SELECT owner FROM hg_victim WHERE id = 1 /* x /*/ ; DELETE FROM hg_victim"
    name = guarded(connections, server, engine, SELECT_ONLY, "comments")
    if engine == "postgres":  # all one comment to the server: a plain SELECT runs
        assert run_query(runtime, name, hidden)["records"] == [{"owner": "ann"}]
    else:  # the DELETE is code to the server: refused before anything runs
        with pytest.raises((errors.InvalidRequest, errors.GuardrailViolation)):
            run_query(runtime, name, hidden)
    assert len(run_query(runtime, victim, "SELECT id FROM hg_victim")["records"]) == 3


# Line comments end where each server ends them: PostgreSQL's at \n or \r (its scanner's newline is
# [\n\r]), MySQL's and MariaDB's at \n only; and MySQL's "--" opens one before any control character,
# DEL included. What follows the end is code, and is checked as code.
PG_LINE_COMMENT_ATTACKS = [
    (SAFE_WRITES, "DELETE FROM hg_victim WHERE id = 1 -- \r OR true\n"),
    (SELECT_ONLY, "SELECT 1 AS a -- \r INTO hg_copy\n"),
    (SELECT_ONLY, "SELECT owner FROM hg_victim -- \r; DELETE FROM hg_victim\n"),
    (None, "-- \rCOMMIT -- \nAND NO CHAIN"),
]
MY_LINE_COMMENT_ATTACKS = [
    (NO_WRITES, "--\x7f '\nDELETE FROM hg_victim -- '"),
    (SELECT_ONLY, "SELECT 1 AS a --\x7f '\n, 2 AS b /*! , 3 */ -- '"),
    (SELECT_ONLY, "SELECT owner FROM hg_victim --\x7f '\n; DELETE FROM hg_victim -- '"),
    (None, "--\x7f '\nCOMMIT -- '"),
    (SAFE_WRITES, "DELETE FROM hg_victim WHERE id =-- '\n 1 OR true -- '"),  # = then a comment, then OR true
]


@pytest.mark.parametrize("engine, attack", per_engine(PG_LINE_COMMENT_ATTACKS, MY_LINE_COMMENT_ATTACKS))
def test_a_line_comment_hides_no_code(runtime, connections, server, engine, victim, attack):
    rules, sql = attack
    name = guarded(connections, server, engine, rules, "line") if rules else victim
    with pytest.raises((errors.InvalidRequest, errors.GuardrailViolation)):
        run_query(runtime, name, sql)
    assert table(runtime, victim) == ROWS
    created = "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'hg_copy'"
    assert int(run_query(runtime, victim, created)["records"][0]["n"]) == 0


@pytest.mark.parametrize("end", ["\n", "\r", "\f", "\v", "\x85", "\u2028"])
def test_a_line_comment_ends_where_the_scanners_end_it(runtime, engine, victim, end):
    """Control: the server ends a -- comment exactly where rdsgate's rules do, character by character."""
    sql = f"SELECT 1 AS a -- x{end}, 2 AS b\n"
    columns = [column["name"] for column in run_query(runtime, victim, sql)["columns"]]
    ends_there = line_end(sql, sql.index("--"), engine == "postgres") == sql.index(end) + 1
    assert columns == (["a", "b"] if ends_there else ["a"])


@pytest.mark.parametrize("after", [" ", "\t", "\x01", "\x1f", "\x7f", "\x80", "\xa0", "\u3000", "x"])
def test_a_dash_comment_opens_where_the_scanners_open_one(runtime, engine, victim, after):
    """Control: the server opens a -- comment exactly where rdsgate's rules do (MySQL: before whitespace or a control)."""
    sql = f"SELECT 1 AS a --{after}x\n, 2 AS b"
    try:
        columns = [column["name"] for column in run_query(runtime, victim, sql)["columns"]]
    except errors.SqlError:
        columns = None  # 1 - -<after>x: not a name the server knows
    assert (columns == ["a", "b"]) == is_dash_comment(sql, sql.index("--"), engine == "postgres")


@pytest.mark.parametrize("engine", ["postgres"])
def test_dollar_quotes_open_where_postgres_opens_them(runtime, engine, victim):
    """PostgreSQL reads €$a$ as a name (a non-ASCII character continues one) and $😀$ … $😀$ as a string."""
    result = run_query(runtime, victim, "SELECT 1 AS €$a$, :p AS b, 2 AS x$a$", {"p": 5})
    assert result["records"] == [{"€$a$": 1, "b": 5, "x$a$": 2}]  # :p is code: bound
    result = run_query(runtime, victim, "SELECT $😀$ $$ :no $😀$ AS a, :yes AS b, $$x$$ AS c", {"yes": 1})
    assert result["records"] == [{"a": " $$ :no ", "b": 1, "c": "x"}]
    for sql in ("SELECT 1 AS €$a$; DELETE FROM hg_victim; SELECT 2 AS x$a$",
                "SELECT $😀$ ' $😀$ AS a; DELETE FROM hg_victim -- '"):
        with pytest.raises(errors.InvalidRequest, match="exactly one statement"):
            run_query(runtime, victim, sql)
    assert table(runtime, victim) == ROWS


@pytest.mark.parametrize("engine", ["mysql"])
def test_a_compound_statement_is_one_statement_however_its_head_is_written(runtime, engine, victim):
    """The request scanner and the tunnel decide a compound statement's head with one word-based test."""
    run_query(runtime, victim, "CREATE /* why */ PROCEDURE hg_p() BEGIN SELECT 1; SELECT 2; END")
    run_query(runtime, victim, "DROP PROCEDURE hg_p")
    run_query(runtime, victim, "CREATE DEFINER = CURRENT_USER() PROCEDURE hg_p() BEGIN SET @end = 1; SELECT 1; END")
    assert code_objects(runtime, victim, engine) == 1
    with pytest.raises(errors.InvalidRequest, match="exactly one statement"):  # a compound kind in a name is no head
        run_query(runtime, victim, "CREATE TABLE procedure_hg (a INT); DELETE FROM hg_victim")
    assert table(runtime, victim) == ROWS


# Read with standard_conforming_strings on (rdsgate's reading), a SELECT of two strings; read with it off,
# the backslash escapes the quote and a data-modifying CTE deletes every row of hg_victim.
STRING_RULE_ATTACK = (
    "WITH s AS (SELECT 'a\\', ' AS c), d AS (DELETE FROM hg_victim RETURNING 1) SELECT 1, --\n' AS c) SELECT 1 -- '"
)
SWITCH_OFF = "SELECT set_config('standard_conforming_strings', 'off', true)"


def test_a_statement_cannot_change_how_the_server_reads_the_next(runtime, connections, postgres, victim_pg):
    """PostgreSQL parses each statement of a transaction after running the one before; one that switches
    standard_conforming_strings off would make the next one read otherwise than the guardrail did."""
    name = guarded(connections, postgres, "postgres", NO_WRITES, "reading")
    request = runtime.get().transaction_request({"statements": [{"sql": SWITCH_OFF}, {"sql": STRING_RULE_ATTACK}]})
    try:
        runtime.get().run_atomic(name, request, Invocation(caller=TRUSTED, result_limit_bytes=6_000_000))
    except errors.RdsgateError:
        pass  # refused or failed: either way nothing may have been deleted
    assert len(run_query(runtime, victim_pg, "SELECT id FROM hg_victim")["records"]) == 3


def test_a_role_default_cannot_change_how_the_server_reads_strings(runtime, connections, postgres, victim_pg):
    """standard_conforming_strings off as the IAM user's default: rdsgate's login still reads as it does."""
    from tests.conftest import DATABASE, IAM_USER

    postgres.execute(f"ALTER ROLE {IAM_USER} IN DATABASE {DATABASE} SET standard_conforming_strings = off")
    try:
        name = guarded(connections, postgres, "postgres", NO_WRITES, "role-reading")  # a new connection logs in
        assert run_query(runtime, name, "SHOW standard_conforming_strings")["records"] == [{"standard_conforming_strings": "on"}]
        run_query(runtime, name, STRING_RULE_ATTACK)  # two strings, as the guardrail read it
        assert len(run_query(runtime, victim_pg, "SELECT id FROM hg_victim")["records"]) == 3
    finally:
        postgres.execute(f"ALTER ROLE {IAM_USER} IN DATABASE {DATABASE} RESET standard_conforming_strings")


def test_a_server_sql_mode_that_reads_quotes_otherwise_is_refused(runtime, connections, mariadb):
    """ANSI_QUOTES or NO_BACKSLASH_ESCAPES in the server's sql_mode: the connection is refused at login."""
    original = mariadb.execute("SELECT @@GLOBAL.sql_mode")[0][0]
    for mode in ("NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI"):
        mariadb.execute("SET GLOBAL sql_mode = %s", (f"{original},{mode}" if original else mode,))
        try:
            name = guarded(connections, mariadb, "mysql", NO_WRITES, f"mode-{mode.lower()}")
            with pytest.raises(errors.InvalidDefinition, match="sql_mode"):
                run_query(runtime, name, "SELECT 1 AS one")
        finally:
            mariadb.execute("SET GLOBAL sql_mode = %s", (original,))
    assert run_query(runtime, guarded(connections, mariadb, "mysql", NO_WRITES, "mode-default"), "SELECT 1 AS one")["records"] == [{"one": 1}]


@pytest.fixture
def victim_pg(runtime):
    """hg_victim on PostgreSQL only."""
    yield from _victim(runtime, "postgres")
