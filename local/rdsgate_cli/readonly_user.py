"""`rdsgate readonly-user`: the SQL that creates a least-privilege, read-only IAM database user.

A ``read_only`` connection asks for read-only transactions; a user that holds SELECT
and nothing else makes the database enforce it too (the ``privileges`` step of
``rdsgate doctor`` checks it). Every name is validated and quoted, so the printed
SQL does exactly what it says whatever the names hold.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from rdsgate_client.api import CliError

ENGINES = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
# PostgreSQL truncates longer names silently; MySQL refuses them.
MAX_LENGTH = {"postgres": 63, "mysql": 64}
MYSQL_MAX_USER = 32  # MySQL 8's limit (MariaDB allows 80)
PG_RESERVED_ROLES = {"public", "none", "current_user", "session_user", "current_role"}


@dataclass(frozen=True)
class Statement:
    """One statement: ``login`` ones create the user and its IAM login, ``grant`` ones set its privileges.

    ``database`` (PostgreSQL) is the database it must run in; None: any.
    """

    sql: str
    purpose: str
    database: str | None = None
    comment: str | None = None


def _name(value: str, what: str, engine: str, limit: int | None = None) -> str:
    """``value`` if it is a name the printed SQL can hold; else a usage error."""
    limit = limit or MAX_LENGTH[engine]
    if not value:
        raise CliError(f"{what} is empty", exit_code=2)
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or "\\" in value:
        # Control characters end comments and psql meta-commands; a backslash means different
        # things in MySQL string literals depending on sql_mode, and starts psql meta-commands.
        raise CliError(f"{what} {value!r} holds a control character or a backslash", exit_code=2)
    if len(value.encode()) > limit:
        raise CliError(f"{what} {value!r} is longer than {limit} bytes", exit_code=2)
    return value


def pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def my_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"  # no backslash can be in value (see _name)


def statements(engine: str, user: str, database: str, *, schemas: tuple[str, ...] = (),
               owners: tuple[str, ...] = (), host: str = "%") -> list[Statement]:
    """The statements, in order, that create ``user`` able to read ``database`` and nothing more."""
    engine = ENGINES.get(engine.lower(), "")
    if not engine:
        raise CliError("--engine must be postgres or mysql", exit_code=2)
    user = _name(user, "--user", engine, MYSQL_MAX_USER if engine == "mysql" else None)
    database = _name(database, "--database", engine)
    if engine == "mysql":
        if schemas or owners:
            raise CliError("--schema and --owner are PostgreSQL's: a MySQL database is its own schema", exit_code=2)
        return _mysql(user, database, _name(host, "--host", engine, 255))
    if user.lower() in PG_RESERVED_ROLES or user.lower().startswith("pg_"):
        raise CliError(f"--user {user!r} is a reserved role name in PostgreSQL", exit_code=2)
    schemas = tuple(_name(s, "--schema", engine) for s in dict.fromkeys(schemas or ("public",)))
    owners = tuple(_name(o, "--owner", engine) for o in dict.fromkeys(owners))
    return _postgres(user, database, schemas, owners)


def _postgres(user: str, database: str, schemas: tuple[str, ...], owners: tuple[str, ...]) -> list[Statement]:
    role, db = pg_ident(user), pg_ident(database)
    out = [
        Statement(f"CREATE ROLE {role} LOGIN;", "login"),
        Statement(f"GRANT rds_iam TO {role};", "login", comment="IAM authentication only: no password"),
        Statement(f"GRANT CONNECT ON DATABASE {db} TO {role};", "grant"),
        Statement(f"REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC;", "grant",
                  comment="PUBLIC may create temporary tables in every database: revoke that for all roles "
                          f"(GRANT TEMPORARY ON DATABASE {db} back to the roles that need it)"),
        Statement(f"REVOKE CREATE, TEMPORARY ON DATABASE {db} FROM {role};", "grant"),
    ]
    for schema in schemas:
        name = pg_ident(schema)
        out += [
            Statement(f"REVOKE CREATE ON SCHEMA {name} FROM PUBLIC;", "grant", database,
                      comment="before PostgreSQL 15, PUBLIC may create objects in schema public"
                      if schema == "public" else None),
            Statement(f"GRANT USAGE ON SCHEMA {name} TO {role};", "grant", database),
            Statement(f"GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO {role};", "grant", database),
        ]
        for index, owner in enumerate(owners or (None,)):
            who = f" FOR ROLE {pg_ident(owner)}" if owner else ""
            comment = None
            if index == 0:
                comment = ("tables created later, by " + (", ".join(owners) if owners else "the role running this")
                           + " (--owner names the roles that create them)")
            out.append(Statement(f"ALTER DEFAULT PRIVILEGES{who} IN SCHEMA {name} GRANT SELECT ON TABLES TO {role};",
                                 "grant", database, comment))
    return out


def _mysql(user: str, database: str, host: str) -> list[Statement]:
    account = f"{my_string(user)}@{my_string(host)}"
    return [
        Statement(f"CREATE USER {account} IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL;", "login",
                  comment="IAM authentication only, over TLS: the token travels in clear text"),
        Statement(f"GRANT SELECT, SHOW VIEW ON {my_ident(database)}.* TO {account};", "grant"),
    ]


def render(engine: str, user: str, database: str, found: list[Statement]) -> str:
    """The script to run as the master user: psql (it holds a \\connect) or the mysql client."""
    postgres = ENGINES[engine.lower()] == "postgres"
    where = "psql, connected to any database of the instance" if postgres else "the mysql client"
    lines = [f"-- A read-only IAM database user {user} for database {database}: SELECT and nothing more.",
             f"-- Run as the master user with {where}."]
    current = None
    for statement in found:
        if statement.database and statement.database != current:
            lines += ["", f"\\connect {pg_ident(statement.database)}"]
            current = statement.database
        if statement.comment:
            lines.append(f"-- {statement.comment}")
        lines.append(statement.sql)
    lines += ["", "-- Then check it: rdsgate doctor <connection> (its privileges step) for a read_only connection "
                  "that logs in as this user."]
    return "\n".join(lines)


def add_readonly_user_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Registers `rdsgate readonly-user` through cli.py's ``command`` helper."""
    sub = command("readonly-user", readonly_user,
                  "print the SQL that creates a least-privilege, read-only IAM database user", api=False)
    sub.add_argument("--engine", required=True, help="postgres or mysql (postgresql and mariadb too)")
    sub.add_argument("--user", required=True, help="the database user to create")
    sub.add_argument("--database", required=True, help="the database it may read")
    sub.add_argument("--schema", action="append", default=[],
                     help="PostgreSQL: a schema it may read (repeatable; default public)")
    sub.add_argument("--owner", action="append", default=[],
                     help="PostgreSQL: a role that creates tables later, whose new tables it may read (repeatable; "
                          "default: the role running the SQL)")
    sub.add_argument("--host", default="%", help="MySQL: the account's host part (default %%)")


def readonly_user(args: argparse.Namespace) -> int:
    found = statements(args.engine, args.user, args.database, schemas=tuple(args.schema),
                       owners=tuple(args.owner), host=args.host)
    print(render(args.engine, args.user, args.database, found))
    return 0
