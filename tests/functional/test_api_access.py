"""Per-caller access through API Gateway events: the signer's ARN decides, secure by default."""

import json

from rdsgate import api
from tests.conftest import iam_definition, load_event

MALLORY = "arn:aws:iam::123456789012:user/mallory"


def as_caller(event, arn):
    event["requestContext"]["identity"]["userArn"] = arn
    return event


def call(event):
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def query_event(connection, sql="select 1 as one"):
    event = load_event("api_query.json")
    event["path"], event["pathParameters"] = f"/connections/{connection}/query", {"name": connection}
    event["body"] = json.dumps({"sql": sql})
    return event


def test_listed_caller_may_query(runtime):
    status, body = call(query_event("pg"))
    assert (status, body["records"]) == (200, [{"one": 1}])


def test_unlisted_caller_gets_the_404_of_a_name_that_does_not_exist(runtime):
    status, body = call(as_caller(query_event("pg"), MALLORY))
    _, missing = call(as_caller(query_event("pg-does-not-exist"), MALLORY))
    assert status == 404 and body["error"]["code"] == "NotFound"
    # Nothing tells a name that exists from one that does not, and the list of principals stays unsaid.
    assert body["error"]["message"] == missing["error"]["message"].replace("pg-does-not-exist", "pg")
    assert "data-engineer" not in body["error"]["message"]
    status, _ = call(as_caller(load_event("api_get_connection.json"), MALLORY))
    assert status == 404


def test_connection_without_allowed_principals_is_denied_to_every_api_caller(runtime, connections, postgres):
    item = iam_definition("pg-nobody", postgres, "postgres")
    del item["allowed_principals"]
    connections.put(item)
    status, body = call(query_event("pg-nobody"))
    assert (status, body["error"]["code"]) == (404, "NotFound")


def test_unsigned_request_is_denied(runtime):
    status, _ = call(as_caller(query_event("pg"), None))
    assert status == 404


def test_listing_shows_only_what_the_caller_may_use(runtime, connections, postgres):
    connections.put(iam_definition("pg-mallory-only", postgres, "postgres", allowed_principals=[MALLORY]))
    _, alice_view = call(load_event("api_list_connections.json"))
    _, mallory_view = call(as_caller(load_event("api_list_connections.json"), MALLORY))
    assert "pg" in {c["name"] for c in alice_view["connections"]}
    assert "pg-mallory-only" not in {c["name"] for c in alice_view["connections"]}
    assert {c["name"] for c in mallory_view["connections"]} == {"pg-mallory-only"}


def test_guardrail_and_read_only_are_403_with_their_codes(runtime, connections, postgres):
    connections.put(iam_definition("pg-api-guarded", postgres, "postgres", guardrails=[{"name": "no-drop", "deny_statements": ["DROP"]}]))
    status, body = call(query_event("pg-api-guarded", "drop table if exists x"))
    assert (status, body["error"]["code"], body["error"]["rule"]) == (403, "GuardrailViolation", "no-drop")
    connections.put(iam_definition("pg-api-reader", postgres, "postgres", read_only=True))
    status, body = call(query_event("pg-api-reader", "create table y (id int)"))
    assert (status, body["error"]["code"]) == (403, "ReadOnlyViolation")
