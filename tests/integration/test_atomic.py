"""Batches and transactions on both engines: all statements commit, or none do."""

import json

import pytest

from rdsgate import api, errors, invoke
from rdsgate.access import TRUSTED
from rdsgate.request import parse_batch, parse_transaction
from rdsgate.service import Invocation
from tests.conftest import ENGINES, fresh_table, load_event, run_query

INVOCATION = Invocation(caller=TRUSTED, result_limit_bytes=10**6)


@pytest.fixture
def items(runtime, engine):
    yield from fresh_table(runtime, ENGINES[engine], "items", "id INT PRIMARY KEY, label VARCHAR(20) NOT NULL")


def count(runtime, conn):
    return run_query(runtime, conn, "SELECT count(*) AS n FROM items")["records"][0]["n"]


def batch(runtime, conn, sets):
    request = parse_batch({"sql": "INSERT INTO items (id, label) VALUES (:id, :label)", "parameterSets": sets}, max_sets=100)
    return runtime.get().run_atomic(conn, request, INVOCATION)


def test_batch_returns_each_update_count(runtime, items):
    result = batch(runtime, items, [{"id": i, "label": f"item {i}"} for i in range(1, 6)])
    assert result["updateResults"] == [{"updatedRows": 1}] * 5 and result["updatedRows"] == 5
    assert count(runtime, items) == 5


def test_batch_failure_in_the_middle_writes_nothing(runtime, items):
    sets = [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}, {"id": 1, "label": "duplicate"}, {"id": 4, "label": "d"}]
    with pytest.raises(errors.SqlError) as caught:
        batch(runtime, items, sets)
    assert caught.value.details["statement"] == 2
    assert count(runtime, items) == 0


def test_transaction_returns_each_result(runtime, items):
    request = parse_transaction(
        {
            "statements": [
                {"sql": "INSERT INTO items (id, label) VALUES (:id, :label)", "parameters": {"id": 1, "label": "one"}},
                {"sql": "UPDATE items SET label = :label WHERE id = :id", "parameters": {"id": 1, "label": "uno"}},
                {"sql": "SELECT id, label FROM items ORDER BY id"},
            ]
        },
        max_statements=10,
    )
    result = runtime.get().run_atomic(items, request, INVOCATION)
    assert [r["updatedRows"] for r in result["results"]] == [1, 1, None]
    assert result["results"][2]["records"] == [{"id": 1, "label": "uno"}]


def test_transaction_failure_names_the_statement_and_writes_nothing(runtime, items):
    request = parse_transaction(
        {
            "statements": [
                {"sql": "INSERT INTO items (id, label) VALUES (1, 'one')"},
                {"sql": "UPDATE items SET label = NULL WHERE id = 1"},
                {"sql": "INSERT INTO items (id, label) VALUES (2, 'two')"},
            ]
        },
        max_statements=10,
    )
    with pytest.raises(errors.SqlError) as caught:
        runtime.get().run_atomic(items, request, INVOCATION)
    assert caught.value.details["statement"] == 1
    assert count(runtime, items) == 0


def test_checks_happen_before_anything_runs(runtime, items):
    request = parse_transaction(
        {"statements": [{"sql": "INSERT INTO items VALUES (1, 'a')"}, {"sql": "select :missing"}]}, max_statements=10
    )
    with pytest.raises(errors.InvalidRequest) as caught:
        runtime.get().run_atomic(items, request, INVOCATION)
    assert caught.value.details["statement"] == 1 and count(runtime, items) == 0


def test_mysql_refuses_ddl_in_a_transaction(runtime):
    request = parse_transaction({"statements": [{"sql": "INSERT INTO t VALUES (1)"}, {"sql": "CREATE TABLE x (id INT)"}]}, max_statements=10)
    with pytest.raises(errors.InvalidRequest, match="commits implicitly"):
        runtime.get().run_atomic("my", request, INVOCATION)


@pytest.mark.parametrize(
    "document, limit, field",
    [
        ({"sql": "select :a", "parameterSets": []}, 5, "parameterSets"),
        ({"sql": "select :a", "parameterSets": [{"a": 1}] * 6}, 5, "parameterSets"),
        ({"sql": "select :a", "parameterSets": [1]}, 5, "parameterSets"),
    ],
)
def test_batch_limits_and_shapes(document, limit, field):
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_batch(document, max_sets=limit)
    assert caught.value.details["field"] == field


def test_transaction_limit():
    with pytest.raises(errors.InvalidRequest, match="over the limit of 2"):
        parse_transaction({"statements": [{"sql": "select 1"}] * 3}, max_statements=2)


def api_event(conn, path, body):
    event = load_event("api_query.json")
    event["path"], event["resource"] = f"/connections/{conn}/{path}", "/connections/{name}/" + path
    event["pathParameters"], event["body"] = {"name": conn}, json.dumps(body)
    return event


def test_api_routes(runtime, items):
    response = api.handler(api_event(items, "batch", {"sql": "INSERT INTO items VALUES (:id, 'x')", "parameterSets": [{"id": 1}, {"id": 2}]}), None)
    assert response["statusCode"] == 200 and json.loads(response["body"])["updatedRows"] == 2
    response = api.handler(api_event(items, "transaction", {"statements": [{"sql": "DELETE FROM items WHERE id = 1"}, {"sql": "SELECT * FROM nope"}]}), None)
    body = json.loads(response["body"])
    assert response["statusCode"] == 422 and body["error"]["statement"] == 1
    assert count(runtime, items) == 2


def test_invoke_forms(runtime, items):
    result = invoke.handler({"connection": items, "sql": "INSERT INTO items VALUES (:id, 'x')", "parameterSets": [{"id": 7}]}, None)
    assert result["updateResults"] == [{"updatedRows": 1}]
    result = invoke.handler({"connection": items, "statements": [{"sql": "SELECT id FROM items"}]}, None)
    assert result["results"][0]["records"] == [{"id": 7}]
    with pytest.raises(Exception) as caught:
        invoke.handler({"connection": items, "statements": [{"sql": "INSERT INTO items VALUES (8, 'y')"}, {"sql": "SELECT * FROM nope"}]}, None)
    assert type(caught.value).__name__ == "SqlError" and count(runtime, items) == 1
