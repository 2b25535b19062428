"""Caller access: ARN patterns with wildcards, roles matching their sessions, secure by default."""

import pytest

from rdsgate.edge import http_status
from rdsgate.access import TRUSTED, Caller
from rdsgate.definitions import parse_definition
from rdsgate.errors import Forbidden

BASE = {"name": "orders", "engine": "postgres", "host": "h", "user": "_aws_iam_rds:app", "password": "_aws_iam_rds:authtoken"}
ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"


def definition(principals):
    return parse_definition({**BASE, **({} if principals is None else {"allowed_principals": principals})})


@pytest.mark.parametrize(
    "patterns, arn, allowed",
    [
        (["arn:aws:iam::123456789012:role/data-engineer"], ALICE, True),
        (["arn:aws:iam::123456789012:role/data-engineer"], "arn:aws:sts::123456789012:assumed-role/data-engineer-x/a", False),
        (["arn:aws:iam::123456789012:role/team/data-engineer"], ALICE, True),  # role paths are not in session ARNs
        (["arn:aws:iam::123456789012:role/data-*"], ALICE, True),
        (["arn:aws:sts::123456789012:assumed-role/data-engineer/*"], ALICE, True),
        (["arn:aws:sts::123456789012:assumed-role/data-engineer/bob"], ALICE, False),
        (["arn:aws:iam::999999999999:role/data-engineer"], ALICE, False),
        (["arn:aws:iam::123456789012:user/carol"], "arn:aws:iam::123456789012:user/carol", True),
        (["arn:aws:iam::123456789012:user/carol"], "arn:aws:iam::123456789012:user/carol2", False),
        (["arn:aws:iam::123456789012:user/car.l"], "arn:aws:iam::123456789012:user/carxl", False),  # '.' is literal
        (["*"], ALICE, True),
        ([], ALICE, False),
        (None, ALICE, False),
    ],
)
def test_allowed_principals(patterns, arn, allowed):
    assert Caller(arn, governed=True).may_use(definition(patterns)) is allowed


def test_forbidden_names_the_connection_but_not_the_list():
    with pytest.raises(Forbidden) as caught:
        Caller(ALICE, governed=True).check(definition(["arn:aws:iam::1:role/secret-admins"]))
    assert "'orders'" in caught.value.message and "secret-admins" not in caught.value.message
    assert http_status(caught.value) == 403


def test_unsigned_api_caller_is_denied_and_invoke_callers_are_trusted():
    assert Caller(None, governed=True).may_use(definition(["*"])) is False
    assert TRUSTED.may_use(definition(None)) is True
