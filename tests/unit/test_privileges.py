"""Reading MySQL's SHOW GRANTS and summarising write privileges (no server: the lines are what MariaDB 10.11 and
MySQL 8 print). The PostgreSQL catalog query, and both engines end to end:
tests/functional/cli/test_cli_readonly_user.py."""

import pytest

from rdsgate import privileges as pv
from rdsgate.drivers import StatementResult

HASH = "*D821809F681A40A6E379B50D0463EFAE20BDD122"


class Rows:
    """A connection whose one statement returns ``rows``; it records what it was asked."""

    def __init__(self, rows, truncated=False):
        self.rows, self.truncated, self.asked = rows, truncated, []

    def execute(self, prepared, values, options):
        self.asked.append((prepared.text, dict(values), options))
        return StatementResult([{"name": "Grants", "type": "varchar"}], [list(r) for r in self.rows],
                               self.truncated, None)


def mysql(*lines, truncated=False):
    connection = Rows([[line] for line in lines], truncated)
    found, cut = pv.write_privileges(connection, "mysql")
    return connection, found, cut


def test_a_select_only_iam_user_holds_nothing_to_report():
    connection, found, cut = mysql(
        "GRANT USAGE ON *.* TO `reporting`@`%` IDENTIFIED VIA pam USING 'rdsgate-mariadb-1a2b' REQUIRE SSL",
        "GRANT SELECT, SHOW VIEW ON `shop`.* TO `reporting`@`%`")
    assert (found, cut) == ([], False)
    text, values, options = connection.asked[0]
    assert text == "SHOW GRANTS" and values == {} and options.session.read_only


def test_each_scope_and_privilege_is_named_and_the_password_hash_never_is():
    _, found, _ = mysql(
        f"GRANT PROCESS, READ_ONLY ADMIN ON *.* TO `ro`@`%` IDENTIFIED BY PASSWORD '{HASH}'",
        "GRANT CREATE TEMPORARY TABLES, EXECUTE ON `shop`.* TO `ro`@`%`",
        "GRANT SELECT, UPDATE, UPDATE (`v`, `w`) ON `shop`.`t` TO `ro`@`%`",
        "GRANT EXECUTE, ALTER ROUTINE ON PROCEDURE `shop`.`p` TO `ro`@`%`",
        "GRANT SELECT ON `we``ird db`.* TO `ro`@`%` WITH GRANT OPTION")
    assert [(f.privilege, f.kind, f.target, f.severity) for f in found] == [
        ("READ_ONLY ADMIN", "global", "*.*", "fail"),
        ("CREATE TEMPORARY TABLES", "database", "shop", "warn"),
        ("EXECUTE", "database", "shop", "warn"),
        ("UPDATE", "table", "shop.t", "fail"),
        ("UPDATE", "table", "shop.t", "fail"),  # the column grant: the same privilege, same table
        ("EXECUTE", "procedure", "shop.p", "warn"),
        ("ALTER ROUTINE", "procedure", "shop.p", "fail"),
        ("GRANT OPTION", "database", "we`ird db", "warn"),
    ]
    text = pv.summarise(found, groups=10)
    assert HASH not in text and HASH not in repr([f.to_dict() for f in found])
    assert text.startswith("READ_ONLY ADMIN on *.* (every database); UPDATE on table shop.t; ALTER ROUTINE, EXECUTE")


def test_mysql_8_dynamic_privileges_roles_and_partial_revokes():
    _, found, _ = mysql(
        "GRANT SELECT ON *.* TO `u`@`%`",
        "GRANT BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `u`@`%`",
        "REVOKE INSERT ON `mysql`.* FROM `u`@`%`",
        "GRANT `app_read`@`%`,`app_write`@`%` TO `u`@`%`",
        "GRANT PROXY ON ``@`` TO `u`@`%`")
    assert [(f.privilege, f.kind, f.target, f.severity) for f in found] == [
        ("BACKUP_ADMIN", "global", "*.*", "fail"),
        ("SYSTEM_VARIABLES_ADMIN", "global", "*.*", "fail"),
        ("PROXY", "proxy", "@", "fail"),
        ("ROLE", "role", "app_read@%", "warn"),  # MySQL 8 does not list a role's grants in SHOW GRANTS
        ("ROLE", "role", "app_write@%", "warn"),
    ]


def test_mariadb_lists_the_current_roles_grants_and_they_count():
    _, found, _ = mysql(
        "GRANT `writer` TO `ro`@`%`",
        "GRANT USAGE ON *.* TO `ro`@`%`",
        "GRANT USAGE ON *.* TO `writer`",
        "GRANT INSERT, DELETE ON `shop`.* TO `writer`",
        "SET DEFAULT ROLE `writer` FOR `ro`@`%`")
    assert [(f.privilege, f.target) for f in found] == [("INSERT", "shop (through role writer)"),
                                                      ("DELETE", "shop (through role writer)")]
    assert pv.summarise(found) == "INSERT, DELETE on database shop (through role writer)"


@pytest.mark.parametrize("line, expected", [
    ("GRANT ALL PRIVILEGES ON `rdsgate_test`.* TO `app_iam`@`%`", (["ALL PRIVILEGES"], "database", "rdsgate_test")),
    ("GRANT SELECT ON `a.b`.`c.d` TO `u`@`h`", (["SELECT"], "table", "a.b.c.d")),
    ("GRANT EXECUTE ON FUNCTION `db`.`f` TO 'u'@'%'", (["EXECUTE"], "function", "db.f")),
    ("GRANT EXECUTE ON PACKAGE BODY `db`.`pk` TO `u`@`%`", (["EXECUTE"], "package", "db.pk")),
    ("grant insert on db.* to u@'%'", (["INSERT"], "database", "db")),
])
def test_parse_grant_scopes(line, expected):
    privileges, kind, name, _ = pv.parse_grant(line)
    assert (privileges, kind, name) == expected


def test_the_summary_groups_objects_and_cuts_long_lists():
    found = [pv.Finding(p, "table", f"public.t{i}", "fail") for i in range(5) for p in ("INSERT", "UPDATE")]
    found += [pv.Finding("TEMPORARY", "database", "shop", "warn"), pv.Finding("CREATE", "schema", "public", "fail"),
              pv.Finding("MEMBER", "role", "pg_write_all_data", "fail"), pv.Finding("SUPERUSER", "role", "u", "fail"),
              pv.Finding("lo_compat_privileges", "setting", "on", "fail")]
    assert pv.summarise(found) == (
        "INSERT, UPDATE on tables public.t0, public.t1, public.t2 and 2 more; CREATE on schema public; "
        "member of pg_write_all_data; SUPERUSER (role attribute); lo_compat_privileges = on; "
        "TEMPORARY on database shop")
    assert pv.summarise(found, groups=2).endswith("CREATE on schema public; and 4 more")


def test_postgres_rows_get_their_severity():
    connection = Rows([[2, "TEMPORARY", "database", "shop"], [1, "MEMBER", "role", "pg_signal_backend"],
                       [7, "EXECUTE", "function", "public.f()"], [5, "TRUNCATE", "table", "public.t"]], truncated=True)
    found, cut = pv.write_privileges(connection, "postgres")
    assert cut is True
    assert [f.severity for f in found] == ["warn", "warn", "warn", "fail"]
    text, values, options = connection.asked[0]
    assert text.startswith("WITH me AS") and values == {} and options.max_rows == pv.MAX_FINDINGS
