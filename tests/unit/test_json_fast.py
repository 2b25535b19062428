"""The fast paths of encoding: json_loads and dumps agree with the json module."""

import json
import math

import pytest

from rdsgate.encoding import dumps, json_loads, utf8_length

TEXTS = ['{"k": 1, "tag": "x1"}', '[1, 2.5, "é", null, true]', '"text"', "42", " {\"a\": 1}", '{"a": 1} ',
         "\n[]\n", "1e400", "-Infinity", '{"a": {"b": [1, {"c": "\\u00e9"}]}}', "null"]  # fmt: skip
BAD = ['{"a": 1', "[1, 2] x", "", "   ", "{'a': 1}", "01"]


@pytest.mark.parametrize("text", TEXTS)
def test_json_loads_is_json_loads(text):
    ours, theirs = json_loads(text), json.loads(text)
    if isinstance(theirs, float) and math.isinf(theirs):
        assert ours == theirs
    else:
        assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("text", BAD)
def test_json_loads_rejects_what_json_rejects(text):
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        json_loads(text)


def test_dumps_and_sizes():
    document = {"records": [{"name": "é", "n": 1.5, "none": None}], "ok": True}
    assert dumps(document) == json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    assert utf8_length(dumps(document)) == len(dumps(document).encode("utf-8"))
    assert utf8_length("plain") == 5
