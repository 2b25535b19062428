"""Guardrails: statement kinds from a real parser, WHERE requirements, denied patterns."""

import pytest

from rdsgate.definitions import Guardrail, parse_definition
from rdsgate.errors import GuardrailViolation, InvalidDefinition
from rdsgate.guardrails import check_guardrails

NO_DDL = Guardrail("no-ddl", deny_statements=("DROP", "TRUNCATE", "ALTER", "GRANT"))
SAFE_WRITES = Guardrail("safe-writes", require_where=True)
NO_PII = Guardrail("no-pii", deny_pattern="(?i)credit_card")


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
@pytest.mark.parametrize(
    "sql, rule",
    [
        ("DROP TABLE orders", "no-ddl"),
        ("/* harmless */ dRoP   TaBlE orders", "no-ddl"),
        ("-- comment\ntruncate table orders", "no-ddl"),
        ("ALTER TABLE orders ADD COLUMN x INT", "no-ddl"),
        ("GRANT SELECT ON orders TO someone", "no-ddl"),
        ("UPDATE orders SET total = 0", "safe-writes"),
        ("delete from orders", "safe-writes"),
        ("SELECT Credit_Card FROM customers", "no-pii"),
    ],
)
def test_violations_name_the_rule(engine, sql, rule):
    with pytest.raises(GuardrailViolation) as caught:
        check_guardrails((NO_DDL, SAFE_WRITES, NO_PII), sql, engine)
    assert caught.value.details["rule"] == rule and f"'{rule}'" in caught.value.message


def test_nested_delete_without_where_is_found():
    with pytest.raises(GuardrailViolation, match="DELETE without a WHERE"):
        check_guardrails((SAFE_WRITES,), "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone", "postgres")


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM orders WHERE id = :id", "UPDATE orders SET total = 1 WHERE id = :id", "INSERT INTO t VALUES (1)", "SELECT 'drop table x'"],
)
def test_allowed_statements_pass(sql):
    check_guardrails((NO_DDL, SAFE_WRITES, NO_PII), sql, "postgres")


def test_unparseable_sql_is_refused_only_when_a_statement_rule_applies():
    check_guardrails((NO_PII,), "SELEC garbage ((", "postgres")
    with pytest.raises(GuardrailViolation, match="could not be parsed"):
        check_guardrails((NO_DDL,), "SELEC garbage ((", "postgres")


@pytest.mark.parametrize(
    "rules",
    [
        [{"name": "x"}],
        [{"name": "x", "deny_statements": []}],
        [{"name": "x", "require_where": False}],
        [{"name": "x", "deny_pattern": "("}],
        [{"name": "x", "deny_pattern": "a", "require_where": True}],
        [{"deny_pattern": "a"}],
    ],
)
def test_malformed_rules_are_rejected_with_the_field(rules):
    item = {"name": "c", "engine": "postgres", "host": "h", "user": "u", "password": "p", "guardrails": rules}
    with pytest.raises(InvalidDefinition, match=r"guardrails\[0\]"):
        parse_definition(item)
