"""The query path on both engines: parameters, SQL safety, transactions, errors, reuse, logging."""

import json

import boto3
import pytest

from rdsgate import errors
from tests.conftest import ENGINES, run_query


@pytest.fixture(params=sorted(ENGINES))
def conn(request):
    """The IAM connection name of each engine (``pg`` or ``my``)."""
    return ENGINES[request.param]


def run(runtime, name, sql, parameters=None, **options):
    return run_query(runtime, name, sql, parameters, **options)


@pytest.fixture
def scratch(runtime, conn):
    """A fresh table ``notes`` for the test."""
    run(runtime, conn, "DROP TABLE IF EXISTS notes")
    run(runtime, conn, "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(200))")
    yield "notes"
    run(runtime, conn, "DROP TABLE IF EXISTS notes")


def test_named_parameters_next_to_casts_and_literals(runtime):
    result = run(runtime, "pg", "SELECT :a::int + 1 AS n, ':a' AS literal, $$ :a $$ AS dollar, :a::text AS again", {"a": "41"})
    assert result["records"] == [{"n": 42, "literal": ":a", "dollar": " :a ", "again": "41"}]


def test_mysql_named_parameters_next_to_percent_and_literals(runtime):
    result = run(runtime, "my", "SELECT :a AS a, ':a' AS literal, '100%' AS pct, `id` FROM (SELECT 1 AS id) t", {"a": "v"})
    assert result["records"] == [{"a": "v", "literal": ":a", "pct": "100%", "id": 1}]


def test_injection_attempt_stays_data(runtime, conn, scratch):
    hostile = "x'); DROP TABLE notes; --"
    run(runtime, conn, "INSERT INTO notes (id, body) VALUES (:id, :body)", {"id": 1, "body": hostile})
    result = run(runtime, conn, "SELECT body FROM notes WHERE body = :body", {"body": hostile})
    assert result["records"] == [{"body": hostile}]
    assert run(runtime, conn, "SELECT count(*) AS n FROM notes")["records"][0]["n"] == 1


def test_multi_statement_sql_is_rejected(runtime, conn, scratch):
    with pytest.raises(errors.InvalidRequest, match="exactly one statement"):
        run(runtime, conn, "INSERT INTO notes VALUES (1, 'a'); DROP TABLE notes")
    assert run(runtime, conn, "SELECT count(*) AS n FROM notes")["records"] == [{"n": 0}]


def test_dml_reports_updated_rows(runtime, conn, scratch):
    inserted = run(runtime, conn, "INSERT INTO notes (id, body) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    assert (inserted["updatedRows"], inserted["records"], inserted["columns"]) == (3, [], [])
    updated = run(runtime, conn, "UPDATE notes SET body = :b WHERE id >= :min", {"b": "z", "min": 2})
    assert updated["updatedRows"] == 2
    assert run(runtime, conn, "SELECT id FROM notes ORDER BY id")["updatedRows"] is None


def test_failed_statement_is_rolled_back_and_reported(runtime, conn, scratch):
    run(runtime, conn, "INSERT INTO notes (id, body) VALUES (1, 'a')")
    with pytest.raises(errors.SqlError) as caught:
        run(runtime, conn, "INSERT INTO notes (id, body) VALUES (2, 'b'), (1, 'duplicate')")
    if conn == "pg":
        assert caught.value.details["sqlstate"] == "23505"
    else:
        assert caught.value.details["errno"] == 1062
    assert run(runtime, conn, "SELECT id FROM notes")["records"] == [{"id": 1}]


def test_sql_error_carries_the_server_code(runtime, conn):
    with pytest.raises(errors.SqlError) as caught:
        run(runtime, conn, "SELECT * FROM no_such_table")
    expected = {"pg": ("sqlstate", "42P01"), "my": ("errno", 1146)}[conn]
    assert caught.value.details[expected[0]] == expected[1]
    assert "no_such_table" in caught.value.message


def test_transaction_control_is_refused(runtime, conn):
    with pytest.raises(errors.InvalidRequest, match="own transaction"):
        run(runtime, conn, "BEGIN")


def test_max_rows_truncates_and_shape_arrays(runtime, conn):
    sql = {"pg": "SELECT g AS n FROM generate_series(1, 50) g", "my": "SELECT seq AS n FROM seq_1_to_50"}[conn]
    result = run(runtime, conn, sql, maxRows=3, shape="arrays")
    assert result["records"] == [[1], [2], [3]]
    assert (result["rowCount"], result["truncated"]) == (3, True)
    assert run(runtime, conn, sql, maxRows=50)["truncated"] is False


def test_definition_max_rows_caps_the_request(runtime, connections, postgres):
    from tests.conftest import iam_definition

    connections.put(iam_definition("pg-capped", postgres, "postgres", max_rows=2))
    result = run(runtime, "pg-capped", "SELECT generate_series(1, 10) AS n", maxRows=5)
    assert (result["rowCount"], result["truncated"]) == (2, True)


def test_statement_timeout(runtime, connections, postgres, mariadb, conn):
    from tests.conftest import iam_definition

    server, engine = (postgres, "postgres") if conn == "pg" else (mariadb, "mysql")
    connections.put(iam_definition(f"{conn}-slow", server, engine, statement_timeout_ms=300))
    with pytest.raises(errors.QueryTimeout):
        run(runtime, f"{conn}-slow", "SELECT pg_sleep(3)" if conn == "pg" else "SELECT SLEEP(3)")


@pytest.mark.parametrize("suffix", ["hoop", "static", "alias"])
def test_other_definition_forms_connect(runtime, conn, suffix):
    # Hoop env-style keys; a static password; a token signed for iam_host while dialling 127.0.0.1.
    result = run(runtime, f"{conn}-{suffix}", "SELECT current_user AS u" if conn == "pg" else "SELECT current_user() AS u")
    user = result["records"][0]["u"]
    assert user.split("@")[0] == ("app_static" if suffix == "static" else "app_iam")


@pytest.mark.parametrize("suffix", ["wrong-user", "wrong-host"])
def test_refused_iam_login_reports_the_hint(runtime, conn, suffix):
    with pytest.raises(errors.AuthenticationFailed) as caught:
        run(runtime, f"{conn}-{suffix}", "SELECT 1")
    assert "rds_iam" in caught.value.details["hint"] and "iam_host" in caught.value.details["hint"]


def test_token_signed_with_other_credentials_is_refused(runtime, conn, aws, monkeypatch):
    other = boto3.session.Session().client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/other", RoleSessionName="intruder")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", other["Credentials"]["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", other["Credentials"]["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", other["Credentials"]["SessionToken"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(errors.AuthenticationFailed) as caught:
        run(runtime, conn, "SELECT 1")
    assert "clock" in caught.value.details["hint"]
    monkeypatch.undo()
    boto3.DEFAULT_SESSION = None


def test_unknown_connection(runtime):
    with pytest.raises(errors.ConnectionNotFound, match="'nope'"):
        run(runtime, "nope", "SELECT 1")


def test_warm_requests_reuse_one_connection_and_one_token(runtime, conn):
    service = runtime.get()
    for value in range(20):
        assert run(runtime, conn, "SELECT :v AS v", {"v": value})["records"] == [{"v": value}]
    assert (service.pool.stats.opened, service.pool._signer.tokens_signed) == (1, 1)
    assert service.pool.stats.reused == 19


def test_restarted_server_is_reconnected_transparently(runtime, conn, postgres, mariadb):
    server = postgres if conn == "pg" else mariadb
    assert run(runtime, conn, "SELECT 1 AS one")["records"] == [{"one": 1}]
    server.restart()
    assert run(runtime, conn, "SELECT 2 AS two")["records"] == [{"two": 2}]
    stats = runtime.get().pool.stats
    assert (stats.opened, stats.replaced, runtime.get().pool._signer.tokens_signed) == (2, 1, 2)


def test_changed_definition_replaces_the_cached_connection(runtime, connections, postgres):
    from tests.conftest import iam_definition

    connections.put(iam_definition("pg-changing", postgres, "postgres"))
    assert run(runtime, "pg-changing", "SELECT current_user AS u")["records"] == [{"u": "app_iam"}]
    connections.put(iam_definition("pg-changing", postgres, "postgres", user="app_static", password="static-Passw0rd"))
    runtime.get().catalog._items.clear()  # as if the TTL had passed
    assert run(runtime, "pg-changing", "SELECT current_user AS u")["records"] == [{"u": "app_static"}]
    assert runtime.get().pool.stats.replaced == 1


def test_definitions_are_cached_for_the_ttl(runtime, connections, postgres):
    from tests.conftest import iam_definition

    connections.put(iam_definition("pg-cached", postgres, "postgres"))
    run(runtime, "pg-cached", "SELECT 1")
    connections.delete("pg-cached")
    assert run(runtime, "pg-cached", "SELECT 1 AS one")["records"] == [{"one": 1}]  # still within the TTL
    runtime.get().catalog._items.clear()
    with pytest.raises(errors.ConnectionNotFound):
        run(runtime, "pg-cached", "SELECT 1")


def test_log_line_has_the_request_facts_but_never_a_secret(runtime, conn, caplog):
    from rdsgate.runtime import LOGGER

    with caplog.at_level("DEBUG"):
        run(runtime, conn, "SELECT :secret AS s", {"secret": "parameter-value-42"})
    # Every record as the function would write it (Powertools' JSON formatter), libraries' included.
    output = "\n".join(LOGGER.registered_formatter.format(record) for record in caplog.records)
    line = json.loads([l for l in output.splitlines() if '"message":"query"' in l][-1])
    assert {k: line[k] for k in ("connection", "statementType", "rows", "outcome")} == {
        "connection": conn, "statementType": "SELECT", "rows": 1, "outcome": "ok"
    }
    assert line["engine"] in ("postgres", "mysql") and line["durationMs"] >= 0
    assert "parameter-value-42" not in output
    assert "X-Amz-Signature" not in output and "Action=connect" not in output
