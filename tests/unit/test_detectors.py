"""Content detectors on their own: what each recognizer masks and what it leaves alone."""

import pytest

from rdsgate.detectors import DETECTORS, scan_rows


def masked(value, names=DETECTORS, column_type="text"):
    rows = [[value]]
    scan_rows(rows, tuple(names), lambda text: "****", [{"name": "v", "type": column_type}])
    return rows[0][0]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("mail ada.l@example.co.uk today", "mail **** today"),
        ("call +44 20 7946 0958", "call ****"),
        ("card 4111-1111-1111-1111", "card ****"),
        ("ssn 123-45-6789", "ssn ****"),
        ("iban GB82 WEST 1234 5698 7654 32", "iban ****"),
        ("from 192.168.10.1 now", "from **** now"),
        ("from 2001:db8::7 now", "from **** now"),
        ("key AKIAIOSFODNN7EXAMPLE", "key ****"),
    ],
)
def test_each_recognizer_masks_what_it_knows(value, expected):
    assert masked(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "card 4111-1111-1111-1112",  # fails Luhn
        "iban GB00 WEST 1234 5698 7654 32",  # fails mod-97
        "ssn 000-45-6789",  # never issued
        "version 1.2.3",
        "cast x::int",
        "at 12:30:45",
        "order 42",
        "AKIAshort",
    ],
)
def test_lookalikes_stay(value):
    assert masked(value) == value


def test_only_the_listed_recognizers_run():
    assert masked("ada@example.org 123-45-6789", names=["ssn"]) == "ada@example.org ****"


def test_columns_of_non_text_types_and_uuid_columns_are_not_scanned():
    assert masked("ada@example.org", column_type="uuid") == "ada@example.org"
    rows = [["550e8400-e29b-41d4-a716-446655440000"], ["123e4567-e89b-12d3-a456-426614174000"]]
    assert scan_rows(rows, DETECTORS, lambda text: "****", [{"name": "id", "type": "char"}]) is False


def test_null_and_non_strings_are_left_alone_and_many_values_map_back():
    rows = [[None], [42], ["a@b.io"], ["none here"], ["x c@d.io y"]]
    assert scan_rows(rows, ("email",), lambda text: "#", None) is True
    assert rows == [[None], [42], ["#"], ["none here"], ["x # y"]]
