"""What `rdsgate connect`'s modules share: the API calls of one connection (``Gateway``) and what they carry.

Lambda cannot hold a client's TCP session, so the local end of the tunnel does:
each statement a client sends becomes one signed API call (``/query``), and a
transaction block becomes one ``/transaction`` call at COMMIT. This module holds
what both protocols share: the API calls (``Gateway``), statements, results and
outcomes, and ``TunnelError``. Below it is only the statement scanner (``wiresql``);
the session (``session``, ``tunnel_sessions``), the protocols (``pgwire``, ``mysqlwire``)
and the listener (``listener``) import it, never the other way round.

Nothing here logs SQL text, parameter values, passwords or tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from rdsgate_client.api import ApiClient, ApiError, CliError, path_for

from .wiresql import Analysis

class TunnelError(Exception):
    """A failure to report to the client; the protocol modules turn it into their error message."""

    def __init__(self, message: str, *, code: str = "Refused", sqlstate: str | None = None,
                 errno: int | None = None, hint: str | None = None, statement: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.sqlstate, self.errno, self.hint = message, code, sqlstate, errno, hint
        self.statement = statement  # which statement of a /batch or /transaction call failed

    @classmethod
    def refused(cls, message: str, *, sqlstate: str = "0A000", errno: int = 1235) -> TunnelError:
        """Something the tunnel does not do (PostgreSQL feature_not_supported, MySQL ER_NOT_SUPPORTED_YET)."""
        return cls(message, code="Refused", sqlstate=sqlstate, errno=errno)


class Notice(str):
    """A notice's text with PostgreSQL's severity and SQLSTATE (plain strings are NOTICE 00000)."""

    severity: str
    sqlstate: str

    def __new__(cls, text: str, severity: str = "WARNING", sqlstate: str = "01000") -> Notice:
        notice = super().__new__(cls, text)
        notice.severity, notice.sqlstate = severity, sqlstate
        return notice


@dataclass
class Result:
    """One statement's result from the API, records as arrays."""

    columns: list[dict[str, str]]
    rows: list[list[Any]]
    updated: int | None = None
    truncated: bool = False
    last_insert_id: int | None = None  # MySQL: the AUTO_INCREMENT id the statement set (the API's lastInsertId)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Result:
        return cls(document.get("columns") or [], document.get("records") or [], document.get("updatedRows"),
                   bool(document.get("truncated")), document.get("lastInsertId"))


@dataclass
class Statement:
    """A statement ready for the API: SQL with ``:name`` parameters and their values."""

    sql: str
    parameters: dict[str, Any] = field(default_factory=dict)
    analysis: Analysis | None = None


@dataclass
class Outcome:
    """What a statement produced, for the protocol to send: rows (or none), a count, a tag, notices."""

    columns: list[dict[str, str]] | None = None  # None: the statement returns no rows
    rows: list[list[Any]] = field(default_factory=list)
    updated: int | None = None
    tag: str | None = None  # set for statements the tunnel answered itself (BEGIN, COMMIT, SET, …)
    notices: list[str] = field(default_factory=list)
    truncated: bool = False
    last_insert_id: int | None = None

    @classmethod
    def of(cls, result: Result, analysis: Analysis | None) -> Outcome:
        returns_rows = bool(result.columns) or (analysis is not None and analysis.main in ("SELECT", "VALUES", "TABLE", "SHOW"))
        return cls(result.columns if returns_rows else None, result.rows, result.updated, truncated=result.truncated,
                   last_insert_id=result.last_insert_id)


class Gateway:
    """The API calls of one connection; API and transport failures become ``TunnelError``."""

    def __init__(self, client: ApiClient, connection: str, *, max_rows: int | None = None,
                 transactions: str = "auto") -> None:
        self.client, self.connection, self.max_rows = client, connection, max_rows
        self.transactions = transactions  # how transaction blocks run: tunnel_sessions.MODES
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """The connection's definition as the API shows it (engine, database; no secret)."""
        return self._call("GET", path_for("connections", self.connection))

    def query(self, statement: Statement, *, read_only: bool = False, timeout_ms: int | None = None,
              session_id: str | None = None) -> Result:
        """One statement; with ``session_id``, inside that session's transaction (begin_session)."""
        body: dict[str, Any] = {"sql": statement.sql, "shape": "arrays"}
        if session_id is not None:
            body["sessionId"] = session_id
        if statement.parameters:
            body["parameters"] = statement.parameters
        self._options(body, read_only, timeout_ms)
        return Result.of(self._call("POST", path_for("connections", self.connection, "query"), body))

    def begin_session(self, *, read_only: bool = False) -> str:
        """A new session on the API (a database transaction a session runner holds open): its id."""
        body = {"readOnly": True} if read_only else {}
        return self._call("POST", path_for("connections", self.connection, "sessions"), body)["sessionId"]

    def end_session(self, session_id: str, *, commit: bool) -> None:
        """Commits or rolls back a session that begin_session opened."""
        self._call("POST", path_for("sessions", session_id, "commit" if commit else "rollback"), {})

    def transaction(self, statements: list[Statement], *, read_only: bool = False,
                    timeout_ms: int | None = None) -> list[Result]:
        body: dict[str, Any] = {"shape": "arrays", "statements": [
            {"sql": s.sql, **({"parameters": s.parameters} if s.parameters else {})} for s in statements]}
        self._options(body, read_only, timeout_ms)
        document = self._call("POST", path_for("connections", self.connection, "transaction"), body)
        return [Result.of(result) for result in document.get("results", [])]

    def batch(self, sql: str, parameter_sets: list[dict[str, Any]], *, read_only: bool = False,
              timeout_ms: int | None = None) -> list[int]:
        """One statement with many parameter sets, atomically: the rows each set changed."""
        body: dict[str, Any] = {"sql": sql, "parameterSets": parameter_sets}
        self._options(body, read_only, timeout_ms)
        body.pop("maxRows", None)
        document = self._call("POST", path_for("connections", self.connection, "batch"), body)
        return [result.get("updatedRows") or 0 for result in document.get("updateResults", [])]

    def describe(self, sql: str) -> dict[str, Any]:
        return self._call("POST", path_for("connections", self.connection, "describe"), {"sql": sql})

    def once(self, key: str, sql: str) -> Any:
        """The first value of a read-only query, asked once per tunnel (the server's version, say)."""
        with self._lock:
            if key not in self._cache:
                result = self.query(Statement(sql), read_only=True)
                self._cache[key] = result.rows[0][0] if result.rows and result.rows[0] else None
            return self._cache[key]

    def _options(self, body: dict[str, Any], read_only: bool, timeout_ms: int | None) -> None:
        if self.max_rows:
            body["maxRows"] = self.max_rows
        if read_only:
            body["readOnly"] = True
        if timeout_ms:
            body["timeoutMs"] = timeout_ms

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self.client.call(method, path, body)
        except ApiError as exc:
            error = exc.error
            if not error:  # API Gateway's own answer (authorization, throttling)
                raise TunnelError(exc.message, code=exc.code) from None
            raise TunnelError(str(error.get("message") or exc.code), code=exc.code, sqlstate=error.get("sqlstate"),
                              errno=error.get("errno"), hint=error.get("hint"),
                              statement=error.get("statement")) from None
        except CliError as exc:
            raise TunnelError(exc.message, code="Unreachable") from None
