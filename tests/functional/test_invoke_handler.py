"""Step Functions inputs (events/sfn_*.json) through rdsgate.invoke.handler: results and error names."""

import json

import pytest

from rdsgate import invoke
from tests.conftest import load_event


def test_saved_step_functions_input(runtime):
    result = invoke.handler(load_event("sfn_query.json"), None)
    assert result["records"] == [{"n": 10}]
    assert result["columns"] == [{"name": "n", "type": "int8"}]


@pytest.mark.parametrize(
    "change, error_name",
    [
        ({"connection": "missing"}, "ConnectionNotFound"),
        ({"connection": None}, "InvalidRequest"),
        ({"sql": "select 1; select 2"}, "InvalidRequest"),
        ({"shape": "table"}, "InvalidRequest"),
        ({"sql": "select * from missing_table", "parameters": {}}, "SqlError"),
        ({"connection": "pg-wrong-user"}, "AuthenticationFailed"),
        ({"connection": "my-wrong-user"}, "AuthenticationFailed"),
    ],
)
def test_failures_raise_the_documented_error_names(runtime, change, error_name):
    event = {**load_event("sfn_query.json"), **change}
    with pytest.raises(Exception) as caught:
        invoke.handler(event, None)
    # Lambda reports type(exc).__name__ as the error type a state machine's Catch matches.
    assert type(caught.value).__name__ == error_name


def test_timeout_and_unavailable_names(runtime, connections, postgres):
    from tests.conftest import iam_definition
    from rdsgate_devstack.servers import free_port

    connections.put(iam_definition("pg-sfn-slow", postgres, "postgres", statement_timeout_ms=200))
    connections.put(iam_definition("pg-sfn-down", postgres, "postgres", port=free_port()))
    with pytest.raises(Exception) as caught:
        invoke.handler({"connection": "pg-sfn-slow", "sql": "select pg_sleep(2)"}, None)
    assert type(caught.value).__name__ == "QueryTimeout"
    with pytest.raises(Exception) as caught:
        invoke.handler({"connection": "pg-sfn-down", "sql": "select 1"}, None)
    assert type(caught.value).__name__ == "DatabaseUnavailable"


def test_results_are_truncated_under_the_256_kib_payload_limit(runtime):
    event = {"connection": "pg", "sql": "select repeat('x', 1000) as v from generate_series(1, 300)"}
    result = invoke.handler(event, None)
    assert result["truncated"] is True and 200 < result["rowCount"] < 300
    assert len(json.dumps(result)) <= 262_144


def test_a_single_row_over_256_kib_raises_result_too_large(runtime):
    with pytest.raises(Exception) as caught:
        invoke.handler({"connection": "pg", "sql": "select repeat('x', 300000) as v"}, None)
    assert type(caught.value).__name__ == "ResultTooLarge" and "single row" in str(caught.value)
