"""`rdsgate readonly-user`: the statements, their quoting, and the names refused. Running the SQL for real, and
querying as the user it creates: tests/functional/cli/test_cli_readonly_user.py."""

import pytest

from rdsgate.sql.text import prepare
from rdsgate_cli import readonly_user as ro
from rdsgate_cli.cli import main
from rdsgate_client.api import CliError

HOSTILE = 'x"; DROP TABLE t; -- `\' '


def sql_of(engine, user, database, **options):
    return [s.sql for s in ro.statements(engine, user, database, **options)]


def test_postgres_statements_in_order():
    found = ro.statements("postgresql", "reporting", "shop", owners=("app",))
    assert [(s.sql, s.purpose, s.database) for s in found] == [
        ('CREATE ROLE "reporting" LOGIN;', "login", None),
        ('GRANT rds_iam TO "reporting";', "login", None),
        ('GRANT CONNECT ON DATABASE "shop" TO "reporting";', "grant", None),
        ('REVOKE TEMPORARY ON DATABASE "shop" FROM PUBLIC;', "grant", None),
        ('REVOKE CREATE, TEMPORARY ON DATABASE "shop" FROM "reporting";', "grant", None),
        ('REVOKE CREATE ON SCHEMA "public" FROM PUBLIC;', "grant", "shop"),
        ('GRANT USAGE ON SCHEMA "public" TO "reporting";', "grant", "shop"),
        ('GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "reporting";', "grant", "shop"),
        ('ALTER DEFAULT PRIVILEGES FOR ROLE "app" IN SCHEMA "public" GRANT SELECT ON TABLES TO "reporting";',
         "grant", "shop"),
    ]


def test_mysql_statements():
    assert sql_of("mariadb", "reporting", "shop", host="10.0.%") == [
        "CREATE USER 'reporting'@'10.0.%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL;",
        "GRANT SELECT, SHOW VIEW ON `shop`.* TO 'reporting'@'10.0.%';",
    ]


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_a_hostile_name_stays_a_name(engine):
    for statement in sql_of(engine, HOSTILE[:20], HOSTILE, schemas=() if engine == "mysql" else (HOSTILE,)):
        # One statement each: the name's quotes and semicolons did not end it (prepare refuses two).
        assert prepare(statement, engine).statement_type in ("CREATE", "GRANT", "REVOKE", "ALTER")
    postgres = sql_of("postgres", "a\"b", "c\"d")
    assert postgres[0] == 'CREATE ROLE "a""b" LOGIN;' and '"c""d"' in postgres[2]
    mysql = sql_of("mysql", "o'brien", "sh`op")
    assert mysql[1] == "GRANT SELECT, SHOW VIEW ON `sh``op`.* TO 'o''brien'@'%';"


@pytest.mark.parametrize("user, database, message", [
    ("", "shop", "--user is empty"),
    ("a\nb", "shop", "control character"),
    ("ab", "sh\0op", "control character"),
    ("a\\b", "shop", "backslash"),
    ("ab", "x" * 64, "longer than 63 bytes"),
    ("pg_reader", "shop", "reserved role name"),
    ("public", "shop", "reserved role name"),
])
def test_names_the_sql_cannot_hold_are_refused(user, database, message):
    with pytest.raises(CliError) as raised:
        ro.statements("postgres", user, database)
    assert message in raised.value.message and raised.value.exit_code == 2


def test_mysql_options_that_do_not_apply_are_refused():
    with pytest.raises(CliError, match="--schema and --owner are PostgreSQL's"):
        ro.statements("mysql", "u", "shop", schemas=("public",))
    with pytest.raises(CliError, match="longer than 32 bytes"):
        ro.statements("mysql", "u" * 33, "shop")
    with pytest.raises(CliError, match="--engine must be postgres or mysql"):
        ro.statements("oracle", "u", "shop")


def test_the_command_prints_a_psql_script(capsys):
    code = main(["readonly-user", "--engine", "postgres", "--user", "reporting", "--database", "shop",
                 "--schema", "sales", "--schema", "public"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    connect = lines.index('\\connect "shop"')
    assert lines.index('GRANT CONNECT ON DATABASE "shop" TO "reporting";') < connect
    assert lines.index('GRANT SELECT ON ALL TABLES IN SCHEMA "sales" TO "reporting";') > connect
    assert 'ALTER DEFAULT PRIVILEGES IN SCHEMA "public" GRANT SELECT ON TABLES TO "reporting";' in lines
    assert all(line.startswith(("--", "\\connect", "CREATE", "GRANT", "REVOKE", "ALTER")) for line in lines if line)


def test_the_command_reports_a_bad_name_as_usage(capsys):
    code = main(["readonly-user", "--engine", "mysql", "--user", "a\\b", "--database", "shop"])
    assert code == 2 and "backslash" in capsys.readouterr().err
