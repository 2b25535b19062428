"""Describing a statement without running it, and the schema browser's catalog, on both engines."""

import json

import pytest

from rdsgate import api, errors
from rdsgate.access import TRUSTED
from rdsgate.service import Invocation
from tests.conftest import ENGINES, fresh_table, load_event, run_query

INVOCATION = Invocation(caller=TRUSTED, result_limit_bytes=10**6)


@pytest.fixture
def conn(runtime, engine):
    yield from fresh_table(runtime, ENGINES[engine], "gadgets", "id INT PRIMARY KEY, label VARCHAR(20) NOT NULL, price DECIMAL(10, 2)")


def test_describe_reports_parameters_and_columns_without_running(runtime, conn):
    described = runtime.get().describe(conn, "SELECT id, label, price FROM gadgets WHERE id = :id AND label <> :label", INVOCATION)
    assert [p["name"] for p in described["parameters"]] == ["id", "label"]
    assert [c["name"] for c in described["columns"]] == ["id", "label", "price"]
    types = [c["type"] for c in described["columns"]]
    assert types == (["int4", "varchar", "numeric"] if conn == "pg" else ["int", "varchar", "decimal"])
    if conn == "pg":
        assert [p["type"] for p in described["parameters"]] == ["int4", "text"]  # as PostgreSQL infers them
    # Describing a write does not perform it.
    described = runtime.get().describe(conn, "DELETE FROM gadgets WHERE id = :id", INVOCATION)
    assert described == {"parameters": [{"name": "id", "type": described["parameters"][0]["type"]}], "columns": []}


def test_describe_reports_sql_errors(runtime, conn):
    with pytest.raises(errors.SqlError):
        runtime.get().describe(conn, "SELECT nope FROM gadgets", INVOCATION)
    assert run_query(runtime, conn, "SELECT 1 AS one")["records"] == [{"one": 1}]


def test_schema_lists_tables_and_typed_columns(runtime, conn):
    catalog = runtime.get().schema(conn, INVOCATION)
    tables = {t["name"]: t for s in catalog["schemas"] for t in s["tables"]}
    gadgets = tables["gadgets"]
    assert [(c["name"], c["nullable"]) for c in gadgets["columns"]] == [("id", False), ("label", False), ("price", True)]
    assert gadgets["columns"][1]["type"] == "varchar" and gadgets["type"] == "BASE TABLE"


def test_api_routes_check_the_caller(runtime):
    event = load_event("api_get_connection.json")
    event["path"], event["resource"] = "/connections/pg/schema", "/connections/{name}/schema"
    assert api.handler(event, None)["statusCode"] == 200
    event["requestContext"]["identity"]["userArn"] = "arn:aws:iam::123456789012:user/mallory"
    assert api.handler(event, None)["statusCode"] == 404  # as for a name that does not exist
    event = load_event("api_query.json")
    event["path"], event["resource"] = "/connections/pg/describe", "/connections/{name}/describe"
    event["body"] = json.dumps({"sql": "select :a::int as a"})
    response = api.handler(event, None)
    assert json.loads(response["body"]) == {"parameters": [{"name": "a", "type": "int4"}], "columns": [{"name": "a", "type": "int4"}]}
