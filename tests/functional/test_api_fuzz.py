"""A bounded property-based run over the API: whatever the body, only documented statuses,
the error shape, no stack trace and no token come back."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdsgate import api
from tests.conftest import load_event

DOCUMENTED = {200, 400, 403, 404, 413, 422, 502, 503, 504}
SQL = st.one_of(
    st.sampled_from([
        "select :a as a", "select :a::int + :b::int as s", "select * from missing", "select 1; select 2",
        "select ':a' as t", "begin", "select pg_sleep(0)", "select $$:x$$", "select :a::date", "select :a::jsonb",
        "update nowhere set x = 1", "select repeat('x', 10) from generate_series(1, :a::int)", "",
    ]),
    st.text(max_size=60),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
BODIES = st.fixed_dictionaries(
    {"sql": SQL},
    optional={
        "parameters": st.one_of(st.dictionaries(st.sampled_from(["a", "b", "x"]), JSON_VALUES, max_size=3), JSON_VALUES),
        "typeHints": st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["DATE", "JSON", "UUID", "DECIMAL", "BAD", 3])),
        "shape": st.sampled_from(["objects", "arrays", "other", 1]),
        "maxRows": st.one_of(st.integers(-3, 50), st.text(max_size=3)),
        "maxBytes": st.integers(-1, 5000),
        "timeoutMs": st.integers(-1, 5000),
        "readOnly": st.one_of(st.booleans(), st.integers()),
        "extra": JSON_VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(BODIES, JSON_VALUES.map(json.dumps).map(lambda text: {"__raw__": text})))
def test_any_body_gets_a_documented_answer(runtime, body):
    event = load_event("api_query.json")
    event["body"] = body["__raw__"] if "__raw__" in body else json.dumps(body)
    response = api.handler(event, None)
    assert response["statusCode"] in DOCUMENTED
    document = json.loads(response["body"])
    if response["statusCode"] != 200:
        assert set(document) == {"error"} and document["error"]["code"] and document["error"]["message"]
    text = response["body"]
    assert "Traceback" not in text and "X-Amz-Signature" not in text and "Action=connect" not in text
