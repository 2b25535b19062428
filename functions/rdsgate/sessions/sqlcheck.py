"""Which statements a session runs beyond what a single request may.

The gateway owns the session's BEGIN and its COMMIT or ROLLBACK, so statements that would end
the transaction from inside stay refused (``BEGIN``, ``START TRANSACTION``, ``COMMIT``,
``ROLLBACK`` without ``TO``, ``XA``, ``PREPARE TRANSACTION``, …). Allowed in a session, because
they live and die inside the transaction and cannot end it:

- ``SAVEPOINT``, ``RELEASE [SAVEPOINT]`` and ``ROLLBACK [WORK] TO [SAVEPOINT]``, on both engines;
- PostgreSQL cursors (``DECLARE``, ``FETCH``, ``MOVE``, ``CLOSE``) and ``LOCK TABLE``, which the
  transaction's end releases (cursors ``WITH HOLD`` are closed by the reset that follows).

Everything else is checked as for any request (``sql.text.check_statement_kind``): ``SET``,
dynamic SQL, ``LISTEN``, ``COPY``, MySQL ``LOCK TABLES``, … stay refused. On MySQL, DDL and
``CALL`` run, with MySQL's own meaning: they may commit the work before them (see
``drivers.mysql.MysqlTransaction``).
"""

from __future__ import annotations

import re

from ..errors import InvalidRequest
from ..sql.text import TRANSACTION_CONTROL, PreparedSql, _skip_blank

POSTGRES_SESSION_KINDS = frozenset({"DECLARE", "FETCH", "MOVE", "CLOSE", "LOCK"})
_ROLLBACK_TO = re.compile(r"ROLLBACK\s+(?:(?:WORK|TRANSACTION)\s+)?TO\s", re.IGNORECASE)
_RELEASE = {
    "postgres": re.compile(r"RELEASE\s+(?:SAVEPOINT\s+)?[A-Za-z_\"]", re.IGNORECASE),
    "mysql": re.compile(r"RELEASE\s+SAVEPOINT\s", re.IGNORECASE),
}


def session_only(prepared: PreparedSql, sql: str, dialect: str) -> bool:
    """True for a statement that sessions allow and single requests refuse."""
    kind = prepared.statement_type
    start = _skip_blank(sql, 0, dialect == "postgres", False)
    if kind == "SAVEPOINT":
        return True
    if kind == "RELEASE":
        return bool(_RELEASE[dialect].match(sql, start))
    if kind == "ROLLBACK":
        return bool(_ROLLBACK_TO.match(sql, start))
    return dialect == "postgres" and kind in POSTGRES_SESSION_KINDS


def check_session_statement(prepared: PreparedSql, sql: str, dialect: str, where: str = "sql") -> None:
    """Raise InvalidRequest for a statement that would end the session's transaction from inside."""
    kind = prepared.statement_type
    if kind in TRANSACTION_CONTROL and not session_only(prepared, sql, dialect):
        raise InvalidRequest(
            f"{where}: {kind} is not supported in a session: the gateway owns the session's BEGIN and COMMIT; "
            "end it with CommitTransaction or RollbackTransaction (POST /sessions/{id}/commit or /rollback). "
            "SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT are allowed",
            field="sql",
        )
