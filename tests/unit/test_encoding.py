"""JSON encoding: no value loses precision, results over a transport limit are refused."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from rdsgate.encoding import encode_within, iso_duration, json_value
from rdsgate.errors import ResultTooLarge


@pytest.mark.parametrize(
    "value, expected",
    [
        (2**53 - 1, 2**53 - 1),
        (2**53, "9007199254740992"),
        (-(2**63), "-9223372036854775808"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (1.5, 1.5),
        (Decimal("0.1000000000000000000001"), "0.1000000000000000000001"),
        (b"\x00\xff", "AP8="),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2024-01-02T03:04:05+00:00"),
        (dt.date(2024, 1, 2), "2024-01-02"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        ([1, [2**60]], [1, ["1152921504606846976"]]),
        (None, None),
    ],
)
def test_json_value(value, expected):
    assert json_value(value) == expected


@pytest.mark.parametrize(
    "delta, expected",
    [
        (dt.timedelta(0), "PT0S"),
        (dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000), "P1DT2H3M4.5S"),
        (-dt.timedelta(minutes=5), "-PT5M"),
    ],
)
def test_iso_duration(delta, expected):
    assert iso_duration(delta) == expected


def test_encode_within_refuses_results_over_the_limit():
    document = {"records": ["x" * 100]}
    assert encode_within(document, 1000, "Step Functions") == '{"records":["' + "x" * 100 + '"]}'
    with pytest.raises(ResultTooLarge, match="Step Functions.*maxRows"):
        encode_within(document, 50, "Step Functions")
    with pytest.raises(ResultTooLarge):  # multi-byte characters count in bytes
        encode_within({"r": "é" * 30}, 40, "API Gateway")
