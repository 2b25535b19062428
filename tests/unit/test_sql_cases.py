"""The shared SQL scanner cases (tests/cases/sql_scanner.json) through the Python scanners.

The same file is what the console's JavaScript scanner is checked against (tests/browser/test_console.py),
so the gateway, the tunnel, the classifier and the console agree on what is code in SQL text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rdsgate.errors import InvalidRequest
from rdsgate.sql.classify import Unclassifiable, classify
from rdsgate.sql.text import prepare
from rdsgate_tunnel import wiresql

CASES = json.loads((Path(__file__).parents[1] / "cases" / "sql_scanner.json").read_text(encoding="utf-8"))["cases"]


def _id(case: dict) -> str:
    return f"{case['dialect']}: {case['sql'][:40]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_gateway_reads_the_case_as_written(case: dict) -> None:
    if "refused" in case:
        with pytest.raises(InvalidRequest, match=re.escape(case["refused"])):
            prepare(case["sql"], case["dialect"])
        return
    prepared = prepare(case["sql"], case["dialect"])
    assert list(prepared.names) == case["parameters"]
    assert prepared.statement_type == case["statement_type"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_tunnel_finds_the_same_code_and_statements(case: dict) -> None:
    chunks = wiresql.chunks(case["sql"], case["dialect"])
    assert [text for code, text in chunks if not code] == case["literals"]
    assert wiresql.split(case["sql"], case["dialect"]) == case["statements"]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_the_classifier_reports_the_kinds(case: dict) -> None:
    if case["kinds"] is None:
        with pytest.raises(Unclassifiable):
            classify(case["sql"], case["dialect"])
    else:
        assert sorted(classify(case["sql"], case["dialect"]).kinds) == case["kinds"]
