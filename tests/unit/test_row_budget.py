"""RowBudget.take cuts a batch exactly where admitting its rows one by one would."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdsgate.drivers import ExecutionOptions, RowBudget
from rdsgate.errors import ResultTooLarge

values = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=30),
                   st.floats(allow_nan=False, allow_infinity=False))  # fmt: skip
rows = st.lists(st.lists(values, min_size=3, max_size=3), max_size=60)


def one_by_one(budget, batch):
    kept = []
    for row in batch:
        if not budget.admit(row):
            return kept, True
        kept.append(row)
    return kept, False


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(rows, min_size=1, max_size=4),
    max_rows=st.integers(1, 120),
    max_bytes=st.one_of(st.none(), st.integers(1, 3000)),
    objects=st.booleans(),
)
def test_take_is_admit_row_by_row(batches, max_rows, max_bytes, objects):
    options = ExecutionOptions(max_rows=max_rows, max_bytes=max_bytes, records_as_objects=objects)
    ours, theirs = RowBudget(options), RowBudget(options)
    ours.start(["a", "bé", "c"])
    theirs.start(["a", "bé", "c"])
    for batch in batches:
        try:
            expected = one_by_one(theirs, batch)
        except ResultTooLarge:
            with pytest.raises(ResultTooLarge):
                ours.take(batch)
            return
        assert ours.take(batch) == expected
        assert (ours.rows_left, ours.bytes_left, ours.admitted) == (theirs.rows_left, theirs.bytes_left, theirs.admitted)
        if expected[1]:
            return


def test_large_batches_are_measured_in_slices():
    batch = [[i, "x" * 10] for i in range(2500)]
    budget = RowBudget(ExecutionOptions(max_rows=10_000, max_bytes=30_000, records_as_objects=False))
    kept, cut = budget.take(batch)
    assert cut and 1000 < len(kept) < 2500
    assert kept == batch[: len(kept)]


@pytest.mark.parametrize("name", ["id", "a b", "é", 'a"b', "a\\b", "x\x7f", "tab\t", "?column?", "", "日本"])
def test_column_names_are_sized_as_json_strings(name):
    from rdsgate.drivers.base import _json_string_size
    from rdsgate.encoding import dumps

    assert _json_string_size(name) == len(dumps(name).encode("utf-8"))
