"""Connection definitions: native fields, Hoop keys, credential forms and field validation."""

import ssl
from decimal import Decimal

import pytest

from rdsgate.definitions import IamAuth, PasswordAuth, parse_definition
from rdsgate.drivers.base import ConnectParams
from rdsgate.errors import InvalidDefinition

IAM_ITEM = {
    "name": "orders",
    "engine": "postgres",
    "host": "orders.abc.eu-west-1.rds.amazonaws.com",
    "database": "orders",
    "user": "_aws_iam_rds:app",
    "password": "_aws_iam_rds:authtoken",
}


def test_iam_definition_gets_engine_defaults():
    definition = parse_definition(IAM_ITEM)
    assert definition.auth == IamAuth("app")
    assert definition.port == 5432
    assert definition.tls == "verify-full"
    assert definition.token_host == IAM_ITEM["host"]


def test_db_user_is_split_on_the_first_colon_only():
    definition = parse_definition({**IAM_ITEM, "user": "_aws_iam_rds:team:reporting"})
    assert definition.db_user == "team:reporting"


def test_iam_host_is_what_the_token_is_signed_for():
    definition = parse_definition({**IAM_ITEM, "host": "db.internal.example", "iam_host": "orders.rds.amazonaws.com"})
    assert definition.token_host == "orders.rds.amazonaws.com"


def test_hoop_style_keys_map_onto_fields():
    item = {
        "name": "legacy",
        "engine": "mysql",
        "HOST": "mysql.internal",
        "PORT": "3307",
        "USER": "_aws_iam_rds:reader",
        "PASS": "_aws_iam_rds:authtoken",
        "DB": "shop",
        "SSLMODE": "require",
    }
    definition = parse_definition(item)
    assert (definition.host, definition.port, definition.database, definition.tls) == ("mysql.internal", 3307, "shop", "require")
    assert definition.auth == IamAuth("reader")


def test_static_password_definition():
    definition = parse_definition({**IAM_ITEM, "user": "dev", "password": "s3cret"})
    assert definition.auth == PasswordAuth("dev", "s3cret")
    assert "s3cret" not in repr(definition)
    assert "password" not in definition.public_view()


def test_connect_params_keep_the_password_out_of_their_repr():
    """What the pool hands a driver (a password, or an IAM token) never reaches a log through repr()."""
    params = ConnectParams(
        host="db.internal", port=5432, database="orders", user="dev", password="s3cret-or-token",
        ssl_context=ssl.create_default_context(), connect_timeout=5.0, iam=False,
    )
    assert params.password == "s3cret-or-token"
    assert "s3cret-or-token" not in repr(params) and "s3cret-or-token" not in str(params)
    assert "user='dev'" in repr(params)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"user": "_aws_iam_rds:app", "password": "literal"}, "password"),
        ({"user": "plain", "password": "_aws_iam_rds:authtoken"}, "user"),
        ({"user": "_aws_iam_rds:", "password": "_aws_iam_rds:authtoken"}, "user"),
        ({"user": "plain", "password": ""}, "password"),
        ({"engine": "oracle"}, "engine"),
        ({"tls": "disable"}, "tls"),
        ({"port": 70000}, "port"),
        ({"port": "abc"}, "port"),
        ({"host": ""}, "host"),
        ({"resource_id": "arn:aws:rds:x"}, "resource_id"),
        ({"read_only": "yes"}, "read_only"),
        ({"statement_timeout_ms": 0}, "statement_timeout_ms"),
        ({"max_rows": -1}, "max_rows"),
    ],
)
def test_invalid_fields_are_named(change, field):
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition({**IAM_ITEM, **change})
    assert caught.value.details["field"] == field
    assert f"'{field}'" in caught.value.message and "'orders'" in caught.value.message


def test_dynamodb_numbers_and_unknown_fields_are_accepted():
    definition = parse_definition(
        {**IAM_ITEM, "port": Decimal(6432), "max_rows": Decimal(100), "owner_team": ["data"]}
    )
    assert definition.port == 6432 and definition.max_rows == 100
    assert definition.extras == (("owner_team", ("data",)),)


def test_equal_items_give_equal_definitions_and_a_change_does_not():
    assert parse_definition(IAM_ITEM) == parse_definition(dict(IAM_ITEM))
    assert parse_definition(IAM_ITEM) != parse_definition({**IAM_ITEM, "port": 5433})


@pytest.mark.parametrize("resource_id", ["db-ABCDEFGHIJKL", "cluster-ABC123", "prx-0123abcd"])
def test_resource_id_forms(resource_id):
    assert parse_definition({**IAM_ITEM, "resource_id": resource_id}).resource_id == resource_id
