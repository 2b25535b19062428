"""API Gateway events (events/*.json) through rdsgate.api.handler, against the real test servers."""

import base64
import json

import pytest

from rdsgate import api
from tests.conftest import load_event


def call(event):
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"]), response


def query_event(connection="pg", body=None, raw_body=None):
    event = load_event("api_query.json")
    event["path"] = f"/connections/{connection}/query"
    event["pathParameters"] = {"name": connection}
    if body is not None or raw_body is not None:
        event["body"] = raw_body if raw_body is not None else json.dumps(body)
    return event


def test_health(runtime):
    status, body, response = call(load_event("api_health.json"))
    assert (status, body) == (200, {"status": "ok"})
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]


def test_saved_query_event(runtime):
    status, body, _ = call(query_event())
    assert status == 200
    assert body["records"] == [{"greeting": "hello", "after": True}]
    assert body["columns"] == [{"name": "greeting", "type": "text"}, {"name": "after", "type": "bool"}]
    assert body["rowCount"] == 1 and body["truncated"] is False and body["updatedRows"] is None


def test_list_connections_shows_names_engines_descriptions(runtime):
    status, body, _ = call(load_event("api_list_connections.json"))
    assert status == 200
    listed = {c["name"]: c for c in body["connections"]}
    assert listed["pg"] == {"name": "pg", "engine": "postgres", "description": "postgres test database", "read_only": False}
    assert listed["my-hoop"]["engine"] == "mysql"


def test_get_connection_never_shows_a_secret(runtime):
    status, body, _ = call(load_event("api_get_connection.json"))
    assert status == 200 and body["auth"] == "iam" and body["user"] == "app_iam"
    event = load_event("api_get_connection.json")
    event["path"], event["pathParameters"] = "/connections/pg-static", {"name": "pg-static"}
    status, body, _ = call(event)
    assert status == 200 and body["auth"] == "password"
    assert "static-Passw0rd" not in json.dumps(body) and "password" not in body


@pytest.mark.parametrize(
    "event_change, status, code",
    [
        ({"connection": "missing", "body": {"sql": "select 1"}}, 404, "NotFound"),
        ({"raw_body": "{not json"}, 400, "InvalidRequest"),
        ({"body": {"sql": "select 1", "limit": 5}}, 400, "InvalidRequest"),
        ({"body": {"sql": "select 1; select 2"}}, 400, "InvalidRequest"),
        ({"body": {"sql": "select :x"}}, 400, "InvalidRequest"),
        ({"body": {"sql": "select * from missing_table"}}, 422, "SqlError"),
        ({"connection": "pg-wrong-user", "body": {"sql": "select 1"}}, 502, "AuthenticationFailed"),
        ({"connection": "my-wrong-user", "body": {"sql": "select 1"}}, 502, "AuthenticationFailed"),
    ],
)
def test_errors_have_one_shape(runtime, event_change, status, code):
    got_status, body, _ = call(query_event(**event_change))
    assert got_status == status
    assert body["error"]["code"] == code and body["error"]["message"]
    assert "Traceback" not in json.dumps(body)


def test_sql_error_has_sqlstate_and_auth_error_has_hint(runtime):
    _, body, _ = call(query_event(body={"sql": "select * from missing_table"}))
    assert body["error"]["sqlstate"] == "42P01"
    _, body, _ = call(query_event("my", body={"sql": "select * from missing_table"}))
    assert body["error"]["errno"] == 1146
    _, body, _ = call(query_event("pg-wrong-user", body={"sql": "select 1"}))
    assert "GRANT rds_iam" in body["error"]["hint"]


def test_unknown_route_uses_the_error_shape(runtime):
    event = load_event("api_health.json")
    event["path"] = event["resource"] = "/nowhere"
    status, body, _ = call(event)
    assert status == 404 and body["error"]["code"] == "NotFound" and "/nowhere" in body["error"]["message"]


def test_body_over_the_limit_is_413(runtime, monkeypatch):
    monkeypatch.setenv("RDSGATE_MAX_REQUEST_BYTES", "100")
    runtime.reset()
    status, body, _ = call(query_event(body={"sql": "select '" + "x" * 200 + "'"}))
    assert (status, body["error"]["code"]) == (413, "RequestTooLarge")


def test_base64_body_is_decoded(runtime):
    event = query_event(raw_body=base64.b64encode(b'{"sql": "select 7 as n"}').decode())
    event["isBase64Encoded"] = True
    status, body, _ = call(event)
    assert (status, body["records"]) == (200, [{"n": 7}])


def test_results_are_truncated_to_the_response_limit(runtime, monkeypatch):
    monkeypatch.setattr(api, "API_RESPONSE_LIMIT_BYTES", 10_000)
    status, body, response = call(query_event(body={"sql": "select repeat('x', 1000) as v from generate_series(1, 50)"}))
    assert status == 200 and body["truncated"] is True
    assert 0 < body["rowCount"] < 10 and len(response["body"]) <= 10_000


def test_a_single_row_over_the_response_limit_is_413(runtime, monkeypatch):
    monkeypatch.setattr(api, "API_RESPONSE_LIMIT_BYTES", 10_000)
    status, body, _ = call(query_event(body={"sql": "select repeat('x', 20000) as big"}))
    assert (status, body["error"]["code"]) == (413, "ResultTooLarge")
    assert "single row" in body["error"]["message"]


def test_unreachable_database_is_503_with_retry_after(runtime, connections, postgres):
    from tests.conftest import iam_definition
    from rdsgate_devstack.servers import free_port

    connections.put(iam_definition("pg-down", postgres, "postgres", port=free_port()))
    status, body, response = call(query_event("pg-down", body={"sql": "select 1"}))
    assert (status, body["error"]["code"]) == (503, "DatabaseUnavailable")
    assert response["multiValueHeaders"]["Retry-After"] == ["1"]


# -- bad input is always a clear 4xx -------------------------------------------------------------

def _body_event(raw: str, *, base64_encoded: bool = False):
    event = query_event(raw_body=raw)
    event["isBase64Encoded"] = base64_encoded
    return event


@pytest.mark.parametrize(
    "event, status, fragment",
    [
        (_body_event(base64.b64encode(b'{"sql": "select \xff"}').decode(), base64_encoded=True), 400, "UTF-8"),
        (_body_event("not base64 !!", base64_encoded=True), 400, "base64"),
        (_body_event("[" * 5000 + "]" * 5000), 400, "deeper"),
        (_body_event('{"sql": "select :v", "parameters": {"v": ' + "[" * 100 + "]" * 100 + "}}"), 400, "deeper"),
        (_body_event('{"sql": "select :v", "parameters": {"v": "\\ud800"}}'), 400, "surrogate"),
        (_body_event('{"sql": "select 1", "parameters": {"\\udfff": 1}}'), 400, "surrogate"),
        (_body_event('{"sql": "select 1", "timeoutMs": 1000000000000000}'), 400, "timeoutMs"),
        (_body_event('{"sql": "select 1", "maxRows": 1000000000000000}'), 400, "maxRows"),
        (_body_event('{"sql": "select 1\\u0000"}'), 400, "NUL"),
    ],
)
def test_bad_bodies_are_a_4xx_naming_the_problem(runtime, event, status, fragment):
    got, body, _ = call(event)
    assert got == status
    assert fragment in body["error"]["message"]


def test_paired_surrogates_are_ordinary_text(runtime):
    got, body, _ = call(_body_event('{"sql": "select :v::text AS v", "parameters": {"v": "\\ud83d\\ude00"}}'))
    assert got == 200 and body["records"] == [{"v": "\U0001F600"}]


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e.pop("requestContext"),
        lambda e: e.__setitem__("requestContext", "nope"),
        lambda e: e["requestContext"].pop("identity"),
        lambda e: e.pop("httpMethod"),
    ],
)
def test_events_that_are_not_api_gateway_proxy_events_are_a_4xx(runtime, change):
    event = query_event()
    change(event)
    response = api.handler(event, None)
    assert response["statusCode"] in (400, 404)  # 404: no caller may use a connection, as for a missing name
    assert "error" in json.loads(response["body"])
