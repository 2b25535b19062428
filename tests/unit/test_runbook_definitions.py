"""Runbook definitions and approval rules, pure: parsing errors that name the runbook and field, the version,
parameter checks, principals, and which statement kinds need a review."""

from __future__ import annotations

import pytest

from rdsgate.access import Caller
from rdsgate.approval import ApprovalRuleError, parse_approval
from rdsgate.errors import InvalidDefinition, InvalidRequest
from rdsgate.runbooks.definition import parse_runbook

BASE = {"name": "rb", "connection": "orders", "sql": "SELECT * FROM t WHERE a = :a",
        "parameters": [{"name": "a", "type": "integer", "min": 1, "max": 9}], "allowed_principals": ["arn:aws:iam::123456789012:role/support"]}


@pytest.mark.parametrize("change, message", [
    ({"name": "bad name"}, "'name' must be 1 to 128 letters"),
    ({"connection": ""}, "runbook 'rb': 'connection' is required"),
    ({"sql": " "}, "runbook 'rb': 'sql' is required"),
    ({"colour": "red"}, "runbook 'rb': 'colour' is not a runbook field"),
    ({"parameters": [{"name": "a", "type": "integer", "min": 5, "max": 1}]}, "'parameters.a.min' is greater than max"),
    ({"parameters": [{"name": "a", "type": "integer", "min": 1.5}]}, "'parameters.a.min' must be a whole number"),
    ({"parameters": [{"name": "a", "type": "date", "min": "yesterday"}]}, "'parameters.a.min' must be an ISO 8601 date"),
    ({"parameters": [{"name": "a", "type": "boolean", "enum": [True]}]}, "'parameters.a.enum' must be a non-empty list"),
    ({"parameters": [{"name": "a", "type": "integer", "default": 3}]}, "'parameters.a.default' needs \"required\": false"),
    ({"parameters": [{"name": "a", "type": "integer", "required": False, "default": 30, "max": 9}]}, "'parameters.a.default' breaks"),
    ({"parameters": [{"name": "a", "type": "string", "pattern": "("}]}, "'parameters.a.pattern' is not a valid regular expression"),
    ({"parameters": [{"name": "a", "type": "integer"}, {"name": "a", "type": "integer"}]}, "declares 'a' twice"),
    ({"read_only": "yes"}, "'read_only' must be true or false"),
    ({"approval": {"required_for": []}}, "'approval.required_for' must be \"all\" or a non-empty list"),
])
def test_a_malformed_runbook_names_itself_and_the_field(change, message):
    with pytest.raises(InvalidDefinition) as caught:
        parse_runbook({**BASE, **change})
    assert message in caught.value.message


def test_the_version_is_the_hash_of_the_definition():
    one, same = parse_runbook(BASE), parse_runbook(dict(reversed(list(BASE.items()))))
    other = parse_runbook({**BASE, "sql": "SELECT * FROM t WHERE a >= :a"})
    assert one.version == same.version != other.version and len(one.version) == 64


def test_the_sql_must_use_exactly_the_declared_parameters():
    parse_runbook(BASE).check_sql("postgres")
    with pytest.raises(InvalidDefinition, match="uses :b, which 'parameters' does not declare"):
        parse_runbook({**BASE, "sql": "SELECT :a, :b"}).check_sql("mysql")
    with pytest.raises(InvalidDefinition, match="declares 'a', which the sql does not use"):
        parse_runbook({**BASE, "sql": "SELECT 1"}).check_sql("postgres")


def test_principals_are_checked_for_api_callers_only():
    runbook = parse_runbook(BASE)
    assert runbook.may_run(Caller("arn:aws:sts::123456789012:assumed-role/support/sam", governed=True))
    assert not runbook.may_run(Caller("arn:aws:sts::123456789012:assumed-role/other/x", governed=True))
    assert runbook.may_run(Caller(None, governed=False))  # invoke: lambda:InvokeFunction is the authorization
    assert not parse_runbook({**BASE, "allowed_principals": None}).may_run(Caller("arn:aws:iam::1:user/a", governed=True))


def test_binding_types_values_and_hints():
    runbook = parse_runbook({**BASE, "sql": "SELECT :a, :n, :d, :u", "parameters": [
        {"name": "a", "type": "integer"}, {"name": "n", "type": "number"}, {"name": "d", "type": "timestamp"},
        {"name": "u", "type": "uuid", "required": False}]})
    values, hints = runbook.bind({"a": 1, "n": 2.5, "d": "2026-01-01T00:00:00Z"})
    assert values == {"a": 1, "n": 2.5, "d": "2026-01-01T00:00:00Z", "u": None}
    assert hints == {"n": "DECIMAL", "d": "TIMESTAMP"}  # no hint for a NULL uuid
    with pytest.raises(InvalidRequest) as caught:
        runbook.bind([1])
    assert caught.value.details["field"] == "parameters"


@pytest.mark.parametrize("rule, kinds, unreadable, needed", [
    ({"required_for": ["UPDATE"]}, {"SELECT"}, False, False),
    ({"required_for": ["UPDATE"]}, {"SELECT", "UPDATE"}, False, True),
    ({"required_for": ["DDL"]}, {"DROP"}, False, True),
    ({"required_for": ["WRITE"]}, {"MERGE"}, False, True),
    ({"required_for": ["DDL"]}, {"INSERT"}, False, False),
    ({"required_for": ["DDL"]}, set(), True, True),  # what the classifier cannot read always waits
    ({"required_for": "all"}, {"SELECT"}, False, True),
])
def test_which_statements_need_a_review(rule, kinds, unreadable, needed):
    assert parse_approval(rule).requires_review(kinds, unreadable=unreadable) is needed


@pytest.mark.parametrize("rule, message", [
    ("yes", "'approval' must be an object"),
    ({"required_for": ["SELCT"]}, "names 'SELCT'"),
    ({"required_for": "all", "min_approvals": 0}, "'approval.min_approvals' must be a whole number from 1 to 10"),
    ({"required_for": "all", "expires_after_hours": 0}, "'approval.expires_after_hours' must be more than 0"),
    ({"required_for": "all", "approvers": "arn"}, "'approval.approvers' must be a list"),
    ({"required_for": "all", "who": 1}, "'approval.who' is not a field"),
])
def test_a_malformed_rule_names_the_field(rule, message):
    with pytest.raises(ApprovalRuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_approval(rule)


@pytest.mark.parametrize("parameter, value", [
    ({"name": "s", "type": "string", "enum": ["open", "closed"]}, "4111 1111 1111 1111"),
    ({"name": "s", "type": "date"}, "my ssn is 123-45-6789"),
    ({"name": "s", "type": "uuid"}, "secret-token-value"),
    ({"name": "s", "type": "integer", "enum": [1, 2]}, 987654321),
])
def test_a_refused_value_is_never_shown_only_its_type(parameter, value):
    # The message reaches Step Functions' execution history on the invoke path: it names the type, not the value.
    runbook = parse_runbook({**BASE, "sql": "SELECT :s", "parameters": [parameter]})
    with pytest.raises(InvalidRequest) as caught:
        runbook.bind({"s": value})
    assert str(value) not in caught.value.message and str(value) not in str(caught.value.details)
    assert "got a " in caught.value.message
