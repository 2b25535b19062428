"""Masking: matching columns replaced with a fixed mask or a keyed hash; NULL stays NULL."""

from rdsgate.masking import FIXED_MASK, mask_rows, masked_indexes


def test_glob_patterns_match_case_insensitively():
    assert masked_indexes(["id", "SSN", "ssn_last4", "api_token", "token_count"], ("ssn*", "*_token")) == [1, 2, 3]


def test_fixed_and_hash_masks():
    rows = [[1, "123-45-6789"], [2, None], [3, "123-45-6789"], [4, "987-65-4321"]]
    fixed = [list(r) for r in rows]
    mask_rows(fixed, [1], "fixed", b"k")
    assert [r[1] for r in fixed] == [FIXED_MASK, None, FIXED_MASK, FIXED_MASK]
    hashed = [list(r) for r in rows]
    mask_rows(hashed, [1], "hash", b"key")
    assert hashed[0][1] == hashed[2][1] != hashed[3][1]  # equal values stay joinable
    assert "123-45-6789" not in str(hashed) and hashed[1][1] is None
    other_key = [list(r) for r in rows]
    mask_rows(other_key, [1], "hash", b"another key")
    assert other_key[0][1] != hashed[0][1]
