"""Statements `rdsgate connect` answers itself for MySQL clients, since no server session outlives a statement.

``SET NAMES`` / character sets (utf8mb4 only), ``SET autocommit`` (0 keeps a transaction
block open), ``time_zone`` (UTC only), ``sql_mode`` (the server's own only), the statement
timeout (also per statement: ``SET STATEMENT max_statement_time=… FOR``), READ ONLY and
isolation levels are answered; settings that change only waiting are accepted with a
warning; other SETs are refused (docs/NATIVE.md). ``@@autocommit`` and friends in a query
read the tunnel's session. User variables (``SET @id = 2``) are evaluated once through the
API and kept here; a later ``@id`` (or ``@`id```) becomes an API parameter. ``PREPARE …
FROM`` / ``EXECUTE … USING`` / ``DEALLOCATE PREPARE`` are kept here too, ``?`` becoming API
parameters. ``USE`` and ``SHOW WARNINGS`` are answered; everything else goes to the session.
"""

from __future__ import annotations

import re
from typing import Any

from .gateway import Notice, Outcome, Statement, TunnelError
from .mysqltypes import value_bytes
from .session import Session
from .wiresql import analyse, chunks, literal_value, rewrite, split, split_arguments

# Session variables the tunnel keeps itself, so a query reading them gets the tunnel's answer.
_OWN_VARIABLES = re.compile(r"(?i)@@(?:session\.|local\.)?(autocommit|in_transaction|tx_read_only|transaction_read_only)\b")
# Settings that change only how long a session waits, not what a statement means or returns.
IGNORED_SETTINGS = frozenset({"wait_timeout", "interactive_timeout", "net_read_timeout", "net_write_timeout",
                              "innodb_lock_wait_timeout", "lock_wait_timeout", "net_buffer_length"})
# sql_mode flags that do not change what a query means or returns.
_NEUTRAL_MODES = frozenset({"NO_ENGINE_SUBSTITUTION", "NO_AUTO_CREATE_USER", "NO_DIR_IN_CREATE"})


class LocalStatements:
    """Mixed into the protocol's client: needs ``session``, ``dialect``, ``variables``, ``prepared``,
    ``warnings`` and ``_check_database``."""

    session: Session
    dialect: str
    variables: dict[str, Any]
    prepared: dict[str, tuple[str, int]]
    warnings: list[tuple[str, int, str]]

    def _statement(self, sql: str) -> Outcome:
        analysis = analyse(sql, self.dialect)
        keyword, words = analysis.keyword, analysis.words
        if keyword == "SET" and words[1:2] == ("STATEMENT",):
            return self._set_statement(sql)
        if keyword == "SET":
            return self._set(sql)
        if keyword == "USE":
            self._check_database(sql.split(None, 1)[1].strip().strip("`"))
            return Outcome()
        if keyword == "SHOW" and words[1:2] in (("WARNINGS",), ("ERRORS",)):
            return Outcome(columns=[{"name": "Level", "type": "varchar"}, {"name": "Code", "type": "int"},
                                    {"name": "Message", "type": "varchar"}], rows=[list(w) for w in self.warnings])
        if keyword == "PREPARE":
            return self._prepare(sql)
        if keyword == "EXECUTE":
            return self._execute(sql)
        if keyword in ("DEALLOCATE", "DROP") and words[1:2] == ("PREPARE",):
            name = sql.split()[2].strip("`").lower()
            if self.prepared.pop(name, None) is None:
                raise TunnelError(f"Unknown prepared statement handler ({name}) given to DEALLOCATE PREPARE", errno=1243)
            return Outcome()
        if keyword == "KILL":
            raise TunnelError.refused("KILL is not supported through rdsgate connect")
        parameters: dict[str, Any] = {}
        text = rewrite(self._own_variables(sql), self.dialect, variable=self._variable(parameters))
        return self.session.execute(Statement(text, parameters, analysis))

    def _own_variables(self, sql: str) -> str:
        """``@@autocommit`` and friends read the tunnel's session, not the pooled server session's."""
        if "@@" not in sql:
            return sql
        session = self.session
        values = {"autocommit": session.autocommit, "in_transaction": session.explicit or bool(session.queued),
                  "tx_read_only": session.read_only if session.in_block else session.default_read_only}
        values["transaction_read_only"] = values["tx_read_only"]
        out = []
        for code, text in chunks(sql, self.dialect):
            if code and "@@" in text:
                def place(match: re.Match[str], text: str = text) -> str:
                    value = "1" if values[match.group(1).lower()] else "0"
                    before, after = text[:match.start()].rstrip(), text[match.end():].lstrip()
                    item = (before.upper().endswith("SELECT") or before.endswith(",")) and (
                        not after or after[0] in ",;" or re.match(r"(?i)from\b", after))
                    return f"{value} AS `{match.group()}`" if item else value

                text = _OWN_VARIABLES.sub(place, text)
            out.append(text)
        return "".join(out)

    def _variable(self, parameters: dict[str, Any]) -> Any:
        """A rewrite callback: a user variable the tunnel knows becomes an API parameter."""

        def place(name: str) -> str | None:
            key = name.lower()
            if key not in self.variables:
                return None
            parameter = f"u{len(parameters) + 1}"
            parameters[parameter] = self.variables[key]
            return f":{parameter}"

        return place

    def _set(self, sql: str) -> Outcome:
        body = re.sub(r"(?is)^\s*set\s+", "", sql)
        charset = re.match(r"(?is)(names|character\s+set|charset)\s+['\"`]?([\w]+)", body)
        if charset:
            if not charset.group(2).lower().startswith("utf8"):
                raise TunnelError.refused(f"rdsgate connect speaks utf8mb4 only, not {charset.group(2)}")
            return Outcome()
        if re.match(r"(?is)((session|local)\s+)?transaction\b", body):
            return self._set_transaction(body)
        assignments = []
        for item in split_arguments(body, self.dialect):
            match = re.match(r"(?is)\s*(@?@?(?:(?:global|session|local)[.\s]+)?[\w$.@`'\"]+)\s*:?=\s*(.*)$", item)
            if match is None:
                raise TunnelError("You have an error in your SQL syntax near SET", errno=1064)
            assignments.append((match.group(1).strip(), match.group(2).strip()))
        user = [(name[1:].strip("`'\"").lower(), value) for name, value in assignments
                if name.startswith("@") and not name.startswith("@@")]
        system = [(name, value) for name, value in assignments if not (name.startswith("@") and not name.startswith("@@"))]
        actions = [self._system_variable(name, value) for name, value in system]  # check all before any applies
        if user:
            parameters: dict[str, Any] = {}
            select = "SELECT " + ", ".join(rewrite(value, self.dialect, variable=self._variable(parameters))
                                           for _, value in user)
            result = self.session.gateway.query(Statement(select, parameters), read_only=True,
                                                timeout_ms=self.session.timeout_ms)
            row = result.rows[0] if result.rows else [None] * len(user)
            for (name, _), value, column in zip(user, row, result.columns):
                self.variables[name] = _variable_value(value, column.get("type", ""))
        outcome = Outcome()
        for action in actions:
            done = action()
            if done is not None:
                outcome = done
        return outcome

    def _system_variable(self, name: str, value: str) -> Any:
        key = re.sub(r"(?i)^@@|^(session|local)[.\s]+", "", name.strip("`")).lower()
        key = re.sub(r"(?i)^(session|local)[.\s]+", "", key)
        plain = value.strip("'\"` ").lower()
        if key.startswith("global") or name.lower().startswith("@@global"):
            raise TunnelError.refused("SET GLOBAL is not supported through rdsgate connect")
        if key == "autocommit":
            if plain not in ("0", "1", "on", "off", "true", "false"):
                raise TunnelError(f"Variable 'autocommit' can't be set to the value of '{value}'", errno=1231)
            on = plain in ("1", "on", "true")
            return lambda: self.session.set_autocommit(on)
        if key in ("character_set_client", "character_set_results", "character_set_connection", "collation_connection"):
            if not plain.startswith("utf8") and plain not in ("null", "binary"):
                raise TunnelError.refused(f"rdsgate connect speaks utf8mb4 only, not {value}")
            return lambda: None
        if key == "time_zone":
            if plain not in ("+00:00", "utc", "+0:00", "system"):
                raise TunnelError.refused("the gateway's sessions run in UTC (time_zone '+00:00'); "
                                          "convert with CONVERT_TZ in the query")
            return lambda: None
        if key == "sql_mode":
            return self._sql_mode(value)
        if key in ("tx_read_only", "transaction_read_only"):
            on = plain in ("1", "on", "true")

            def read_only() -> None:
                self.session.default_read_only = on

            return read_only
        if key in IGNORED_SETTINGS:
            return lambda: Outcome(notices=[Notice(f"SET {key} has no effect through rdsgate connect: each statement "
                                                   "runs on a pooled server session with the connection's settings")])
        if key in ("max_statement_time", "max_execution_time"):
            try:
                number = float(plain)
            except ValueError:
                raise TunnelError(f"Incorrect argument type to variable '{key}'", errno=1232) from None
            milliseconds = int(number * 1000) if key == "max_statement_time" else int(number)

            def apply() -> None:
                self.session.timeout_ms = milliseconds or None

            return apply
        raise TunnelError.refused(f"SET {key} is not supported through rdsgate connect: each statement runs on a "
                                  "pooled server session, where the setting would not last")

    def _set_statement(self, sql: str) -> Outcome:
        """MariaDB's ``SET STATEMENT max_statement_time=N FOR statement``: the statement with that timeout (the
        request's timeoutMs). Other variables are refused: the gateway refuses SET STATEMENT, since its settings
        could switch read-only or the timeout off for the statement it wraps."""
        at = 0
        for code, text in chunks(sql, self.dialect):
            match = re.search(r"(?i)\bfor\b", text) if code else None
            if match:
                at += match.start()
                break
            at += len(text)
        else:
            raise TunnelError("You have an error in your SQL syntax near SET STATEMENT: FOR expected", errno=1064)
        head = re.sub(r"(?is)^\s*set\s+statement\s+", "", sql[:at])
        timeout: int | None = None
        for item in split_arguments(head, self.dialect):
            match = re.fullmatch(r"(?is)\s*(?:@@)?(?:session\.)?(max_statement_time|max_execution_time)\s*=\s*"
                                 r"([\d.]+)\s*", item)
            if match is None:
                name = item.split("=")[0].strip()
                raise TunnelError.refused(f"SET STATEMENT {name}=… FOR is not supported through rdsgate connect: "
                                          "only max_statement_time can apply to one statement (as the request's "
                                          "timeout); the gateway refuses other settings")
            seconds = float(match.group(2)) if match.group(1).lower() == "max_statement_time" \
                else float(match.group(2)) / 1000
            timeout = max(1, int(seconds * 1000)) if seconds else None
        previous = self.session.timeout_ms
        if timeout and (previous is None or timeout < previous):
            self.session.timeout_ms = timeout
        try:
            return self._statement(sql[at + 3:].strip())
        finally:
            self.session.timeout_ms = previous

    def _set_transaction(self, body: str) -> Outcome:
        """SET [SESSION] TRANSACTION: READ ONLY / READ WRITE are kept (later requests are read-only); an isolation
        level is the server's default for every request: REPEATABLE READ or READ COMMITTED are accepted with a
        warning (one statement or one queued block behaves the same under both), the others refused."""
        text = " ".join(body.upper().split())
        if "SERIALIZABLE" in text or "UNCOMMITTED" in text:
            raise TunnelError.refused("only the database's default isolation level is available through rdsgate "
                                      "connect (each request is its own transaction)")
        notices = []
        if "READ ONLY" in text or "READ WRITE" in text:
            only = "READ ONLY" in text
            if text.startswith(("SESSION", "LOCAL")):
                self.session.default_read_only = only
            elif self.session.in_block and not self.session.queued:
                self.session.read_only = only
            elif self.session.in_block:
                raise TunnelError("Transaction characteristics can't be changed while a transaction is in progress",
                                  errno=1568)
            else:
                self.session.next_read_only = only
        if "ISOLATION" in text:
            notices.append(Notice("the isolation level is the server's default for every request through rdsgate "
                                  "connect; a statement, or a transaction block sent at COMMIT, runs the same "
                                  "under REPEATABLE READ and READ COMMITTED"))
        return Outcome(notices=notices)

    def _sql_mode(self, value: str) -> Any:
        """``SET sql_mode``: accepted when it is the server's own mode (flags that change no query aside)."""
        parameters: dict[str, Any] = {}
        select = "SELECT " + rewrite(value, self.dialect, variable=self._variable(parameters)) + ", @@sql_mode"
        result = self.session.gateway.query(Statement(select, parameters), read_only=True,
                                            timeout_ms=self.session.timeout_ms)
        wanted, server = (str(v or "") for v in result.rows[0]) if result.rows else ("", "")

        def flags(mode: str) -> set[str]:
            return {flag.strip().upper() for flag in mode.split(",") if flag.strip()} - _NEUTRAL_MODES

        if flags(wanted) != flags(server):
            raise TunnelError.refused(f"SET sql_mode is not supported through rdsgate connect unless it is the "
                                      f"server's own mode ('{server}'): each statement runs on a pooled server "
                                      "session, where another mode would not last")
        return lambda: None

    def _prepare(self, sql: str) -> Outcome:
        match = re.match(r"(?is)\s*prepare\s+`?(\w+)`?\s+from\s+(.*)$", sql)
        if match is None:
            raise TunnelError("You have an error in your SQL syntax near PREPARE", errno=1064)
        source = match.group(2).strip()
        if source.startswith("@"):
            text = self.variables.get(source[1:].strip("`'\"").lower())
        else:
            is_literal, text = literal_value(source, self.dialect)
            if not is_literal:
                raise TunnelError("PREPARE … FROM takes a string literal or a user variable", errno=1064)
        if not isinstance(text, str) or not split(text, self.dialect):
            raise TunnelError("Query was empty", errno=1065)
        count = 0

        def counted(k: int) -> str:
            nonlocal count
            count = k
            return "?"

        rewrite(text, self.dialect, question=counted)
        self.prepared[match.group(1).lower()] = (text, count)
        return Outcome(notices=["Statement prepared"])

    def _execute(self, sql: str) -> Outcome:
        match = re.match(r"(?is)\s*execute\s+`?(\w+)`?\s*(?:using\s+(.*))?$", sql)
        if match is None:
            raise TunnelError("You have an error in your SQL syntax near EXECUTE", errno=1064)
        name = match.group(1).lower()
        if name not in self.prepared:
            raise TunnelError(f"Unknown prepared statement handler ({name}) given to EXECUTE", errno=1243)
        text, count = self.prepared[name]
        values = []
        for argument in split_arguments(match.group(2) or "", self.dialect):
            if argument.startswith("@"):
                values.append(self.variables.get(argument[1:].strip("`'\"").lower()))
                continue
            is_literal, value = literal_value(argument, self.dialect)
            if not is_literal:
                raise TunnelError.refused("EXECUTE … USING takes user variables and literals through rdsgate connect")
            values.append(value)
        if len(values) != count:
            raise TunnelError("Incorrect arguments to EXECUTE", errno=1210)
        parameters: dict[str, Any] = {f"p{k}": v for k, v in enumerate(values, 1)}
        final = rewrite(text, self.dialect, question=lambda k: f":p{k}", variable=self._variable(parameters))
        return self.session.execute(Statement(final, parameters, analyse(text, self.dialect)))


def _variable_value(value: Any, type_name: str) -> Any:
    """A user variable's value as the tunnel keeps it: numbers as numbers, everything else as MySQL text."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    data = value_bytes(value, type_name)
    return data.decode("utf-8", "replace") if data is not None else None
