"""What a database user may write: the privilege check behind the diagnosis's ``privileges`` step.

A ``read_only`` connection is read-only because rdsgate asks for read-only
transactions; only the database's privileges make that hold whatever the SQL does.
``write_privileges`` asks the server, on an open rdsgate connection, which write
privileges the logged-in user holds, and ``summarise`` says so in a sentence.

PostgreSQL: one constant catalog query (privilege functions over pg_class,
pg_namespace, pg_proc, pg_largeobject_metadata, the database and role attributes).
MySQL/MariaDB: ``SHOW GRANTS`` (the user's, and its current role's on MariaDB),
parsed here; the raw lines may hold a password hash and are never reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .drivers import DriverConnection, ExecutionOptions, SessionPolicy
from .sql.text import prepare

FAIL, WARN = "fail", "warn"
MAX_FINDINGS = 500  # a superuser-like user could list every object; the first ones say enough


@dataclass(frozen=True)
class Finding:
    """One write privilege: ``privilege`` on ``kind`` ``target`` (an object, a role, a setting)."""

    privilege: str
    kind: str
    target: str
    severity: str  # FAIL: it can change data or objects, or gain such rights; WARN: limited or conditional

    def to_dict(self) -> dict[str, str]:
        return {"privilege": self.privilege, "on": self.kind, "object": self.target, "severity": self.severity}


# -- PostgreSQL --------------------------------------------------------------------------------

_PG_NOT_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"
_PG_RELKIND = ("CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' "
               "WHEN 'S' THEN 'sequence' ELSE 'table' END")
_PG_RELNAME = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
_PG_PROC = ("quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || "
            "pg_get_function_identity_arguments(p.oid) || ')'")
# Rows (rank, privilege, kind, object), most telling first. A superuser is reported once, not
# with every object it could touch. Owners hold every privilege on what they own, so ownership
# is its own finding. INSERT and UPDATE count column grants too (has_any_column_privilege).
# Routines: PUBLIC may EXECUTE every function by default, and a SECURITY INVOKER function in a
# trusted language can do nothing its caller cannot, so only volatile SECURITY DEFINER routines
# (they run with their owner's rights) and untrusted-language ones (plpython3u …) may write.
# The planner may test conditions in any order: CASE keeps has_sequence_privilege off other relations.
POSTGRES_SQL = f"""WITH me AS (SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user)
SELECT 0, 'SUPERUSER', 'role', quote_ident(current_user) FROM me WHERE rolsuper
UNION ALL SELECT 1, 'CREATEROLE', 'role', quote_ident(current_user) FROM me WHERE rolcreaterole AND NOT rolsuper
UNION ALL SELECT 1, 'CREATEDB', 'role', quote_ident(current_user) FROM me WHERE rolcreatedb AND NOT rolsuper
UNION ALL SELECT 1, 'MEMBER', 'role', quote_ident(r.rolname) FROM pg_roles r
  WHERE r.rolname IN ('pg_write_all_data', 'pg_write_server_files', 'pg_execute_server_program',
                      'pg_signal_backend', 'rds_superuser')
    AND NOT (SELECT rolsuper FROM me) AND pg_has_role(r.oid, 'MEMBER')
UNION ALL SELECT 1, 'lo_compat_privileges', 'setting', 'on'
  WHERE current_setting('lo_compat_privileges') = 'on' AND NOT (SELECT rolsuper FROM me)
UNION ALL SELECT 2, 'OWNER', 'database', quote_ident(d.datname) FROM pg_database d
  WHERE d.datname = current_database() AND NOT (SELECT rolsuper FROM me) AND pg_has_role(d.datdba, 'MEMBER')
UNION ALL SELECT 2, x.privilege, 'database', quote_ident(current_database())
  FROM (VALUES ('CREATE'), ('TEMPORARY')) AS x(privilege)
  WHERE NOT (SELECT rolsuper FROM me) AND has_database_privilege(current_database(), x.privilege)
UNION ALL SELECT 3, 'OWNER', 'schema', quote_ident(n.nspname) FROM pg_namespace n
  WHERE {_PG_NOT_SYSTEM} AND NOT (SELECT rolsuper FROM me) AND pg_has_role(n.nspowner, 'MEMBER')
UNION ALL SELECT 3, 'CREATE', 'schema', quote_ident(n.nspname) FROM pg_namespace n
  WHERE n.nspname !~ '^pg_(toast|temp_)' AND NOT (SELECT rolsuper FROM me) AND has_schema_privilege(n.oid, 'CREATE')
UNION ALL SELECT 4, 'OWNER', {_PG_RELKIND}, {_PG_RELNAME}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_PG_NOT_SYSTEM}
    AND NOT (SELECT rolsuper FROM me) AND pg_has_role(c.relowner, 'MEMBER')
UNION ALL SELECT 5, x.privilege, {_PG_RELKIND}, {_PG_RELNAME}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('TRIGGER')) AS x(privilege)
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_PG_NOT_SYSTEM} AND NOT (SELECT rolsuper FROM me)
    AND NOT pg_has_role(c.relowner, 'MEMBER')
    AND CASE WHEN x.privilege IN ('INSERT', 'UPDATE') THEN has_any_column_privilege(c.oid, x.privilege)
             ELSE has_table_privilege(c.oid, x.privilege) END
UNION ALL SELECT 6, 'UPDATE', 'sequence', {_PG_RELNAME}
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'S' AND {_PG_NOT_SYSTEM} AND NOT (SELECT rolsuper FROM me)
    AND NOT pg_has_role(c.relowner, 'MEMBER')
    AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'UPDATE') END
UNION ALL SELECT 6, 'OWNER', CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, {_PG_PROC}
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE {_PG_NOT_SYSTEM} AND NOT (SELECT rolsuper FROM me) AND pg_has_role(p.proowner, 'MEMBER')
UNION ALL SELECT 7, 'EXECUTE', CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END, {_PG_PROC}
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
  WHERE {_PG_NOT_SYSTEM} AND p.prokind IN ('f', 'p') AND NOT (SELECT rolsuper FROM me)
    AND (p.prosecdef AND p.provolatile = 'v' OR NOT l.lanpltrusted AND l.lanname NOT IN ('c', 'internal'))
    AND NOT pg_has_role(p.proowner, 'MEMBER') AND has_function_privilege(p.oid, 'EXECUTE')
UNION ALL SELECT 8, 'OWNER', 'large object', m.oid::text FROM pg_largeobject_metadata m
  WHERE NOT (SELECT rolsuper FROM me) AND pg_has_role(m.lomowner, 'MEMBER')
UNION ALL SELECT 8, 'UPDATE', 'large object', m.oid::text FROM pg_largeobject_metadata m, aclexplode(m.lomacl) a
  WHERE a.privilege_type = 'UPDATE' AND NOT (SELECT rolsuper FROM me)
    AND CASE WHEN a.grantee = 0 THEN true ELSE pg_has_role(a.grantee, 'USAGE') END
ORDER BY 1, 4, 2"""

# Limited in scope: temporary objects vanish with the session, a sequence's value is not data,
# cancelling others' queries writes nothing; a routine writes only if its code does.
_PG_WARN = {("TEMPORARY", "database"), ("UPDATE", "sequence"), ("MEMBER", "pg_signal_backend"),
            ("EXECUTE", "function"), ("EXECUTE", "procedure"), ("CREATEDB", "role")}


def _postgres(rows: list[list[Any]]) -> list[Finding]:
    findings = []
    for _rank, privilege, kind, target in rows:
        warn = (privilege, kind) in _PG_WARN or (privilege, target) in _PG_WARN
        findings.append(Finding(privilege, kind, target, WARN if warn else FAIL))
    return findings


# -- MySQL and MariaDB ---------------------------------------------------------------------------

MYSQL_SQL = "SHOW GRANTS"
# Privileges that write nothing. Anything else (including privileges newer than this list) is reported.
_MYSQL_READS = frozenset({
    "USAGE", "SELECT", "SHOW VIEW", "SHOW DATABASES", "PROCESS", "REPLICATION CLIENT", "BINLOG MONITOR",
    "SLAVE MONITOR", "REPLICA MONITOR", "REFERENCES", "SHOW CREATE ROUTINE", "SHOW_ROUTINE",
})
# Limited: a routine writes only if its code does; temporary tables vanish with the session;
# LOCK TABLES blocks others but writes nothing; GRANT OPTION passes on only what the user holds.
_MYSQL_WARN = frozenset({"EXECUTE", "CREATE TEMPORARY TABLES", "LOCK TABLES", "GRANT OPTION"})
_TOKEN = re.compile(r"`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|[(),.*@]|[^\s`'\"(),.*@]+")
_ROUTINE_KINDS = {"FUNCTION": "function", "PROCEDURE": "procedure", "PACKAGE": "package"}


def _unquote(token: str) -> str:
    if token[:1] == "`":
        return token[1:-1].replace("``", "`")
    if token[:1] in "'\"":
        return token[1:-1].replace(token[0] * 2, token[0]).replace("\\" + token[0], token[0])
    return token


def _split_top(tokens: list[str]) -> list[list[str]]:
    """``tokens`` split on the commas outside parentheses (column lists)."""
    parts: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        depth += token == "("
        depth -= token == ")"
        if token == "," and depth == 0:
            parts.append([])
        elif depth == 0 and token != ")":
            parts[-1].append(token)
    return [part for part in parts if part]


def _account(tokens: list[str]) -> str:
    """``user@host`` (or a MariaDB role's bare name) from the tokens of one account."""
    names = [_unquote(token) for token in tokens if token != "@"]
    return "@".join(names[:2]) if "@" in tokens else (names[0] if names else "")


def parse_grant(line: str) -> tuple[list[str], str, str, str] | list[str] | None:
    """One ``SHOW GRANTS`` line: (privileges, kind, object, grantee), the roles a role grant gives, or None."""
    tokens = _TOKEN.findall(line)
    if not tokens or tokens[0].upper() != "GRANT":
        return None  # SET DEFAULT ROLE, MySQL's partial REVOKE lines
    words = [token.upper() for token in tokens]
    to = words.index("TO") if "TO" in words else len(words)
    on = words.index("ON") if "ON" in words[:to] else None
    if on is None:  # GRANT `role`[@`host`], … TO account
        return [_account(part) for part in _split_top(tokens[1:to])]
    privileges = [" ".join(word for word in part).upper() for part in _split_top(tokens[1:on])]
    target = tokens[on + 1 : to]
    kind = "global"
    if target and target[0].upper() in _ROUTINE_KINDS:
        kind = _ROUTINE_KINDS[target[0].upper()]
        target = [t for t in target[1:] if t.upper() != "BODY"]
    if privileges == ["PROXY"]:
        kind, name = "proxy", _account(target)
    elif target in (["*", ".", "*"], ["*"]):
        name = "*.*"
    elif len(target) == 3 and target[1] == "." and target[2] == "*":
        kind, name = "database", _unquote(target[0])
    else:
        kind = "table" if kind == "global" else kind
        name = ".".join(_unquote(t) for t in target if t != ".")
    after = words[to + 1 :]
    grantee_end = next((i for i, w in enumerate(after) if w in ("IDENTIFIED", "REQUIRE", "WITH", "PASSWORD", "VIA")),
                       len(after))
    grantee = _account(tokens[to + 1 : to + 1 + grantee_end])
    if any(after[i : i + 3] == ["WITH", "GRANT", "OPTION"] for i in range(len(after))):
        privileges.append("GRANT OPTION")
    return privileges, kind, name, grantee


def _mysql(rows: list[list[Any]]) -> list[Finding]:
    findings: list[Finding] = []
    roles: list[str] = []
    grantees: set[str] = set()
    for row in rows:
        parsed = parse_grant(str(row[0]))
        if parsed is None:
            continue
        if isinstance(parsed, list):
            roles.extend(parsed)
            continue
        privileges, kind, name, grantee = parsed
        grantees.add(grantee)
        through = f" (through role {grantee})" if grantee and "@" not in grantee else ""
        for privilege in privileges:
            if privilege not in _MYSQL_READS:
                severity = WARN if privilege in _MYSQL_WARN else FAIL
                findings.append(Finding(privilege, kind, name + through, severity))
    for role in roles:
        if role not in grantees:  # MySQL 8 never lists a role's grants here; MariaDB only the current role's
            findings.append(Finding("ROLE", "role", role, WARN))
    return findings


# -- both ---------------------------------------------------------------------------------------


def write_privileges(connection: DriverConnection, engine: str) -> tuple[list[Finding], bool]:
    """The write privileges of the user logged in on ``connection``, and whether the list was cut short."""
    sql = POSTGRES_SQL if engine == "postgres" else MYSQL_SQL
    options = ExecutionOptions(max_rows=MAX_FINDINGS, records_as_objects=False, session=SessionPolicy(read_only=True))
    result = connection.execute(prepare(sql, engine), {}, options)
    findings = _postgres(result.rows) if engine == "postgres" else _mysql(result.rows)
    return findings, result.truncated


def summarise(findings: list[Finding], *, limit: int = 3, groups: int = 6) -> str:
    """``INSERT, UPDATE on tables public.a, public.b and 3 more; CREATE on schema public``, most severe first."""
    by_object: dict[tuple[str, str], list[str]] = {}
    for finding in sorted(findings, key=lambda f: f.severity != FAIL):
        by_object.setdefault((finding.kind, finding.target), []).append(finding.privilege)
    by_privileges: dict[tuple[tuple[str, ...], str], list[str]] = {}
    for (kind, target), privileges in by_object.items():
        by_privileges.setdefault((tuple(dict.fromkeys(privileges)), kind), []).append(target)
    parts = [_phrase(", ".join(privileges), kind, targets, limit)
             for (privileges, kind), targets in list(by_privileges.items())[:groups]]
    hidden = len(by_privileges) - groups
    return "; ".join(parts) + (f"; and {hidden} more" if hidden > 0 else "")


def _phrase(privileges: str, kind: str, targets: list[str], limit: int) -> str:
    names = ", ".join(targets[:limit]) + (f" and {len(targets) - limit} more" if len(targets) > limit else "")
    if kind == "role":
        if privileges == "MEMBER":
            return f"member of {names}"
        if privileges == "ROLE":
            return f"can use role {names} (its grants are not listed here: SHOW GRANTS FOR it)"
        return f"{privileges} (role attribute)"
    if kind == "setting":
        return f"{privileges} = {names}"
    if kind == "global":
        return f"{privileges} on *.* (every database)"
    plural = kind if len(targets) == 1 else (kind[:-1] + "ies" if kind.endswith("y") else kind + "s")
    return f"{privileges} on {plural} {names}"
