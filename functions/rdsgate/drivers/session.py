"""The session policy: the state one request's database session must have, decided once per request.

Read-only, the statement timeout and how JSON values come back belong to the request: the
service builds one ``SessionPolicy`` from the definition, the service-wide settings and the
request (``SessionPolicy.for_request``) and hands it to the driver with every call. The pool
computes the same from the definition alone for the login (``ConnectParams.session``), so that
the session a login starts with, and each reset returns to, already is what most requests ask
for; a request's policy applies on top of it (``within``). What each engine sends to apply a
policy, and the clean-session reset that runs after every request, are written here, side by side:

- PostgreSQL: the login's timeout in the startup packet; ``BEGIN [READ ONLY]`` and, for another
  timeout, ``SET LOCAL statement_timeout`` ride ahead of the statement in its round trip; after
  it, ``COMMIT``, then ``ROLLBACK`` and ``DISCARD ALL`` (``POSTGRES_RESET``), back to the login's.
- MySQL/MariaDB: ``COM_RESET_CONNECTION`` then one ``SET`` (``mysql_setup``); the driver repeats
  the last request's setup after each reset, so a request whose policy matches sends nothing more.

rdsgate reads SQL text as the servers do with their default quoting rules (``rdsgate.sql``), so the
settings that change how a server reads a string are pinned too: PostgreSQL's
``standard_conforming_strings`` at login and again before every statement that follows another in
one transaction (``POSTGRES_READING``: a statement could switch it off for the next with
``set_config``), and MySQL's ``sql_mode`` checked at login (``check_mysql_sql_mode``; no request can
change it: SET is refused, and a routine's sql_mode ends with the routine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidDefinition

# The client waits this much longer than the statement timeout: the server cancels first.
SOCKET_GRACE_SECONDS = 2.0
# Run after the request's COMMIT and its Sync, in the same write: undoes whatever the request did to the session.
POSTGRES_RESET = (b"ROLLBACK", b"DISCARD ALL")
# Backslashes in '' strings are plain characters, as rdsgate's scanners read them; reasserted before each
# later statement of a transaction, since the server parses each statement after running the one before.
POSTGRES_READING = b"SET LOCAL standard_conforming_strings = on"
# MySQL modes under which the server reads quotes and backslashes otherwise than rdsgate's scanners.
MYSQL_UNREADABLE_MODES = frozenset({"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES"})
# MySQL's reset: temporary tables, user variables, prepared statements, locks, autocommit, every session variable.
COM_RESET_CONNECTION = 0x1F  # not among PyMySQL's COMMAND constants


@dataclass(frozen=True)
class SessionPolicy:
    """What one request's session is: read-only or not, its statement timeout, JSON as text or parsed."""

    read_only: bool = False
    statement_timeout_ms: int | None = None
    json_as_text: bool = False  # json/jsonb values as the server's text (the Data API's form), not parsed

    @classmethod
    def for_request(
        cls, definition: Any, request: Any = None, *, default_timeout_ms: int | None, deadline_ms: int | None = None,
        streamed: bool = False,
    ) -> SessionPolicy:
        """The policy of one request on ``definition`` (``request`` None: the definition's own, a login's).

        The timeout is the smallest of the definition's (else the service's default), the request's
        ``timeout_ms`` and ``deadline_ms`` (the service's deadline step: the invocation's time left).
        A ``streamed`` request (results to S3) is not bound by the synchronous timeout: only by its
        own and the deadline, else the definition's.
        """
        configured = definition.statement_timeout_ms or default_timeout_ms
        requested = getattr(request, "timeout_ms", None)
        timeout_ms = _smallest(requested, deadline_ms) if streamed else _smallest(configured, requested, deadline_ms)
        if streamed and timeout_ms is None:
            timeout_ms = configured
        return cls(
            read_only=bool(definition.read_only or getattr(request, "read_only", False)),
            statement_timeout_ms=timeout_ms,
            json_as_text=bool(getattr(request, "json_as_text", False)),
        )

    def within(self, login: SessionPolicy) -> SessionPolicy:
        """This policy on a session that logged in with ``login``: never less read-only; no timeout keeps the login's."""
        timeout = self.statement_timeout_ms if self.statement_timeout_ms is not None else login.statement_timeout_ms
        if (self.read_only or not login.read_only) and timeout == self.statement_timeout_ms:
            return self
        return SessionPolicy(read_only=True if login.read_only else self.read_only, statement_timeout_ms=timeout, json_as_text=self.json_as_text)

    def socket_timeout(self) -> float | None:
        """How long the client waits for an answer: past the server's own cancel."""
        return socket_timeout(self.statement_timeout_ms)


def socket_timeout(statement_timeout_ms: int | None) -> float | None:
    """How long the client waits for a statement with this timeout (None: no timeout): past the server's own cancel."""
    return None if statement_timeout_ms is None else statement_timeout_ms / 1000 + SOCKET_GRACE_SECONDS


def postgres_prefix(policy: SessionPolicy, login: SessionPolicy) -> list[str]:
    """What runs ahead of a PostgreSQL request's statements (``policy.within(login)``), in the same round trip.

    The request runs in ``BEGIN … COMMIT``; a timeout other than the login's is transaction-scoped
    (a session-level SET would pin the connection behind RDS Proxy).
    """
    prefix = ["BEGIN READ ONLY" if policy.read_only else "BEGIN"]
    if policy.statement_timeout_ms != login.statement_timeout_ms:
        prefix.append(postgres_timeout(policy.statement_timeout_ms))
    return prefix


def postgres_timeout(timeout_ms: int | None) -> str:
    """The transaction-scoped statement timeout (0 or None: none), ahead of a request's or a held transaction's statements."""
    return f"SET LOCAL statement_timeout = {int(timeout_ms or 0)}"


def check_mysql_sql_mode(sql_mode: str) -> None:
    """Refuse a server whose sql_mode makes it read strings or quoted names otherwise than rdsgate does."""
    unreadable = sorted(MYSQL_UNREADABLE_MODES & {mode.strip().upper() for mode in sql_mode.split(",")})
    if unreadable:
        raise InvalidDefinition(
            f"the server's sql_mode includes {', '.join(unreadable)}, under which it reads quotes and backslashes "
            "otherwise than rdsgate's SQL checks do; remove it from the DB parameter group (or the user's default)"
        )


def mysql_setup(policy: SessionPolicy, is_mariadb: bool) -> str:
    """The one SET after login and after each COM_RESET_CONNECTION: the connection's settings and the policy's.

    Read-only is session-wide, so that DDL's implicit commit cannot escape it.
    """
    settings = ["NAMES utf8mb4", "time_zone = '+00:00'", "autocommit = 1"]
    timeout = policy.statement_timeout_ms
    if timeout:
        settings.append(f"SESSION {mysql_timeout(timeout, is_mariadb)}")
    if policy.read_only:
        settings.append(f"SESSION {mysql_read_only_variable(is_mariadb)} = 1")
    return "SET " + ", ".join(settings)


def mysql_timeout(timeout_ms: int, is_mariadb: bool) -> str:
    """The statement timeout's variable and value: MariaDB's max_statement_time (seconds), MySQL's max_execution_time (ms, SELECT only)."""
    return f"max_statement_time = {timeout_ms / 1000:.3f}" if is_mariadb else f"max_execution_time = {int(timeout_ms)}"


def mysql_read_only_variable(is_mariadb: bool) -> str:
    # MySQL 8 renamed tx_read_only; MariaDB knows only the old name before 11.1.
    return "tx_read_only" if is_mariadb else "transaction_read_only"


def _smallest(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
