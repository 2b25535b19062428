"""The result path on both engines: records shaped and encoded once, limits counted on what is sent."""

import json

import pytest

from rdsgate.encoding import dumps
from tests.conftest import ENGINES, run_query

SERIES = {
    "postgres": "SELECT g AS id, 'name-' || g AS name, g * 1.5 AS amount, g % 2 = 0 AS even FROM generate_series(1, {n}) g",
    "mysql": "SELECT seq AS id, CONCAT('name-', seq) AS name, seq * 1.5 AS amount, seq % 2 = 0 AS even FROM seq_1_to_{n}",
}


@pytest.mark.parametrize("max_rows", [2_500, 12_000])  # one round trip, and streamed in batches
def test_objects_and_arrays_carry_the_same_values_in_any_size(runtime, engine, max_rows):
    sql = SERIES[engine].format(n=max_rows)
    objects = run_query(runtime, ENGINES[engine], sql, maxRows=max_rows)
    arrays = run_query(runtime, ENGINES[engine], sql, maxRows=max_rows, shape="arrays")
    keys = [column["name"] for column in objects["columns"]]
    assert objects["rowCount"] == arrays["rowCount"] == max_rows
    assert objects["records"] == [dict(zip(keys, row)) for row in arrays["records"]]
    # The text sent is the text of those values, whichever way it was made.
    for document in (objects, arrays):
        assert json.loads(dumps(document)) == json.loads(json.dumps(document))


def test_repeated_column_names_count_with_their_suffixes(runtime, engine):
    sql = SERIES[engine].format(n=2_000).replace(" AS name,", " AS name, 'x' AS name,")
    result = run_query(runtime, ENGINES[engine], sql, maxBytes=5_000)
    assert result["truncated"] is True and result["records"][0]["name_2"] == "x"
    assert len(json.dumps(result["records"], separators=(",", ":")).encode()) <= 5_000


def test_mariadb_json_stays_json_when_a_result_is_truncated(runtime):
    run_query(runtime, "my", "DROP TABLE IF EXISTS docs")
    run_query(runtime, "my", "CREATE TABLE docs (id INT PRIMARY KEY, doc JSON, tags SET('a','b'))")
    try:
        run_query(runtime, "my", "INSERT INTO docs VALUES (1, '{\"k\": [1, 2]}', 'a,b'), (2, '[]', ''), (3, NULL, NULL)")
        first = run_query(runtime, "my", "SELECT doc, tags FROM docs ORDER BY id")  # learns that doc is JSON
        truncated = run_query(runtime, "my", "SELECT doc, tags FROM docs ORDER BY id", maxRows=1)
        assert [c["type"] for c in truncated["columns"]] == [c["type"] for c in first["columns"]] == ["json", "set"]
        assert truncated["truncated"] is True
        assert truncated["records"] == [{"doc": {"k": [1, 2]}, "tags": ["a", "b"]}]
        assert first["records"][1:] == [{"doc": [], "tags": []}, {"doc": None, "tags": None}]
    finally:
        run_query(runtime, "my", "DROP TABLE IF EXISTS docs")
