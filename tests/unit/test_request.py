"""Request documents: strict JSON, fields validated by name."""

import pytest

from rdsgate.errors import InvalidRequest
from rdsgate.request import decode_json_body, parse_batch, parse_query, parse_transaction


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


def test_a_batch_or_transaction_names_its_own_fields_and_ignores_none():
    """Batches and transactions list what they allow; a field of another request kind is refused, never ignored."""
    with pytest.raises(InvalidRequest, match=r"^bogus: unknown field \(allowed: idempotencyKey, parameterSets, readOnly, sql, timeoutMs, typeHints\)$"):
        parse_batch({"sql": "x", "parameterSets": [{}], "bogus": 1}, max_sets=5)
    with pytest.raises(InvalidRequest, match=r"^parameters: unknown field"):
        parse_batch({"sql": "x", "parameterSets": [{"a": 1}], "parameters": {"a": 2}}, max_sets=5)
    with pytest.raises(InvalidRequest, match=r"^bogus: unknown field \(allowed: idempotencyKey, maxBytes, maxRows, readOnly, shape, statements, timeoutMs\)$"):
        parse_transaction({"statements": [{"sql": "x"}], "bogus": 1}, max_statements=5)
    with pytest.raises(InvalidRequest, match=r"^sql: unknown field"):
        parse_transaction({"statements": [{"sql": "SELECT 1"}], "sql": "DROP TABLE t"}, max_statements=5)
    batch = parse_batch({"sql": "x", "parameterSets": [{"a": 1}], "readOnly": True, "timeoutMs": 5}, max_sets=5)
    assert batch.read_only and batch.timeout_ms == 5 and batch.statements[0].parameters == {"a": 1}
    transaction = parse_transaction({"statements": [{"sql": "x"}], "shape": "arrays", "maxRows": 3}, max_statements=5)
    assert (transaction.shape, transaction.max_rows, transaction.batch) == ("arrays", 3, False)
