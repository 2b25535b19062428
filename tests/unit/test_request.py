"""Request documents: strict JSON, fields validated by name."""

import pytest

from rdsgate.errors import InvalidRequest
from rdsgate.request import decode_json_body, parse_query


def test_a_full_request_parses():
    request = parse_query({"sql": "select :a", "parameters": {"a": 1}, "typeHints": {"a": "DECIMAL"}, "shape": "arrays", "maxRows": 5})
    assert (request.sql, dict(request.parameters), request.shape, request.max_rows) == ("select :a", {"a": 1}, "arrays", 5)


@pytest.mark.parametrize(
    "document, field",
    [
        ({}, "sql"),
        ({"sql": "  "}, "sql"),
        ({"sql": 1}, "sql"),
        ({"sql": "x", "parameters": [1]}, "parameters"),
        ({"sql": "x", "typeHints": {"a": "BLOB"}}, "typeHints"),
        ({"sql": "x", "shape": "rows"}, "shape"),
        ({"sql": "x", "maxRows": 0}, "maxRows"),
        ({"sql": "x", "maxRows": True}, "maxRows"),
        ({"sql": "x", "maxrows": 5}, "maxrows"),
    ],
)
def test_bad_fields_are_named(document, field):
    with pytest.raises(InvalidRequest) as caught:
        parse_query(document)
    assert caught.value.message.startswith(field)


def test_body_must_be_strict_json_object():
    assert decode_json_body('{"sql": "select 1"}') == {"sql": "select 1"}
    for body in ("", None, "{nope", '{"a": NaN}'):
        with pytest.raises(InvalidRequest):
            decode_json_body(body)
    with pytest.raises(InvalidRequest, match="JSON object"):
        parse_query(decode_json_body("[1]"))
