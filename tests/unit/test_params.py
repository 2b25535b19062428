"""Parameters: every named parameter bound, type hints parsed, bad values named."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from rdsgate.errors import InvalidRequest
from rdsgate.params import JsonText, bind_values


def test_values_follow_the_sql_names():
    assert bind_values(("a", "b"), {"b": 2, "a": "x"}, {}) == {"a": "x", "b": 2}


def test_missing_and_unused_parameters_are_rejected():
    with pytest.raises(InvalidRequest, match=":b"):
        bind_values(("a", "b"), {"a": 1}, {})
    with pytest.raises(InvalidRequest, match="'c' is not used"):
        bind_values(("a",), {"a": 1, "c": 2}, {})
    with pytest.raises(InvalidRequest, match="typeHints"):
        bind_values(("a",), {"a": 1}, {"z": "DATE"})


@pytest.mark.parametrize(
    "hint, value, expected",
    [
        ("DATE", "2024-02-29", dt.date(2024, 2, 29)),
        ("TIME", "13:14:15.5", dt.time(13, 14, 15, 500000)),
        ("TIMESTAMP", "2024-01-02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("TIMESTAMP", "2024-01-02T03:04:05+02:00", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        ("DECIMAL", "12345678901234567890.123456789", Decimal("12345678901234567890.123456789")),
        ("DECIMAL", 1.5, Decimal("1.5")),
        ("UUID", "6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10", uuid.UUID("6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10")),
        ("JSON", {"a": [1, 2]}, JsonText('{"a":[1,2]}')),
        ("JSON", '{"already": "text"}', JsonText('{"already": "text"}')),
    ],
)
def test_type_hints(hint, value, expected):
    bound = bind_values(("v",), {"v": value}, {"v": hint})["v"]
    assert bound == expected and type(bound) is type(expected)


def test_null_stays_null_whatever_the_hint():
    assert bind_values(("v",), {"v": None}, {"v": "DATE"}) == {"v": None}


@pytest.mark.parametrize("hint, value", [("DATE", "2024-13-01"), ("UUID", "nope"), ("DECIMAL", "abc"), ("DECIMAL", "Infinity"), ("DECIMAL", True), ("JSON", "{bad"), ("TIME", 5)])
def test_bad_hinted_values_name_the_parameter(hint, value):
    with pytest.raises(InvalidRequest, match=f"'v' is not a valid {hint}"):
        bind_values(("v",), {"v": value}, {"v": hint})
