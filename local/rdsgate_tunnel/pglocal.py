"""Statements `rdsgate connect` answers itself for PostgreSQL clients, since no server session outlives a statement.

SET (and the settings of the startup packet) is honoured where the tunnel provides the
setting itself (application_name, statement_timeout, IntervalStyle, client_min_messages,
bytea_output, a read-only default), accepted when it names what the gateway's sessions do
(UTF8, UTC, ISO dates) or changes nothing a statement means (lock_timeout, work_mem, …;
with a warning), and refused otherwise, since it would not last on a pooled server session
(docs/NATIVE.md). SHOW of those settings, RESET, DISCARD, and SQL-level PREPARE / EXECUTE /
DEALLOCATE (kept by the tunnel; EXECUTE's literal arguments become API parameters) are
answered here; BEGIN, COMMIT, ROLLBACK and savepoints go to the session's transaction
block; COPY, LISTEN, cursors and PREPARE TRANSACTION are refused.
"""

from __future__ import annotations

import re
from typing import Any

from .gateway import Notice, Outcome, Statement, TunnelError
from .pgtypes import INTERVAL_STYLES, command_tag
from .session import BEGIN, COMMIT, ROLLBACK, Session
from .wiresql import Analysis, chunks, literal_value, rewrite, split_arguments

BLOCK_KEYWORDS = BEGIN | COMMIT | ROLLBACK | {"SAVEPOINT", "RELEASE"}  # the session's transaction block
LOCAL_KEYWORDS = BLOCK_KEYWORDS | {"SET", "RESET", "DISCARD", "PREPARE", "EXECUTE", "DEALLOCATE", "COPY", "LISTEN",
                                   "UNLISTEN", "DECLARE", "FETCH", "MOVE", "CLOSE"}
LOCAL_SETTINGS = ("application_name", "client_encoding", "statement_timeout", "intervalstyle", "extra_float_digits",
                  "client_min_messages", "bytea_output", "default_transaction_read_only", "timezone", "datestyle")
UTC_NAMES = frozenset({"utc", "etc/utc", "uct", "etc/uct", "gmt", "etc/gmt", "gmt0", "etc/gmt0", "etc/gmt+0",
                       "etc/gmt-0", "greenwich", "etc/greenwich", "universal", "etc/universal", "zulu", "etc/zulu",
                       "z", "0", "+0", "-0", "00:00", "+00:00", "-00:00", "+00", "-00", "local"})
# Settings that change only how long a session waits or how much work it may use, not what a statement
# means or returns. There is no session to apply them to: accepted with a warning.
IGNORED_SETTINGS = frozenset({"lock_timeout", "idle_in_transaction_session_timeout", "idle_session_timeout", "jit",
                              "work_mem", "maintenance_work_mem", "temp_buffers", "synchronous_commit",
                              "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count",
                              "tcp_user_timeout", "lc_messages", "log_statement", "log_min_duration_statement",
                              "trace_notify", "track_io_timing"})
MESSAGE_LEVELS = ("debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error")


class LocalStatements:
    """Mixed into the protocol's client: needs ``session``, ``statements``, ``settings``, ``dialect``,
    ``_prepare``, ``_statement`` and ``_parameter_status``."""

    session: Session
    statements: dict[str, Any]
    settings: dict[str, str]
    dialect: str

    def _is_local(self, analysis: Analysis) -> bool:
        return analysis.keyword in LOCAL_KEYWORDS or (
            analysis.keyword == "SHOW" and bool(analysis.after(1)[:1]) and analysis.after(1)[0].lower() in LOCAL_SETTINGS)

    def _local(self, prepared: Any) -> Outcome:
        analysis, sql = prepared.analysis, prepared.sql
        keyword = analysis.keyword
        if keyword in BLOCK_KEYWORDS:
            return self.session.execute(Statement(sql, {}, analysis))
        if keyword == "SET":
            return self._set(sql, analysis)
        if keyword == "SHOW":
            name = analysis.after(1)[0].lower()
            return Outcome(columns=[{"name": name, "type": "text"}], rows=[[self._show(name)]], tag="SHOW")
        if keyword == "RESET":
            words = analysis.after(1)
            self._reset(LOCAL_SETTINGS if words[:1] == ("ALL",) else [w.lower() for w in words[:1]])
            return Outcome(tag="RESET")
        if keyword == "DISCARD":
            if analysis.after(1)[:1] == ("ALL",):
                self._reset(LOCAL_SETTINGS)
            if analysis.after(1)[:1] in (("ALL",), ("PLANS",)):
                self.statements = {k: v for k, v in self.statements.items() if not k}
            return Outcome(tag="DISCARD " + " ".join(analysis.after(1)[:1]))
        if keyword == "PREPARE":
            if analysis.after(1)[:1] == ("TRANSACTION",) and re.match(r"(?is)\s*prepare\s+transaction\s*'", sql):
                raise TunnelError.refused("PREPARE TRANSACTION (two-phase commit) is not supported through rdsgate "
                                          "connect: a transaction block is sent as one call at COMMIT, and no "
                                          "server session outlives it")
            return self._sql_prepare(sql)
        if keyword == "EXECUTE":
            return self._sql_execute(sql)
        if keyword == "DEALLOCATE":
            words = [w for w in analysis.after(1) if w != "PREPARE"]
            if words[:1] == ["ALL"]:
                self.statements = {k: v for k, v in self.statements.items() if not k}
                return Outcome(tag="DEALLOCATE ALL")
            name = _sql_name(re.sub(r"(?is)^\s*deallocate\s+(prepare\s+)?", "", sql))
            if self.statements.pop(name, None) is None:
                raise TunnelError(f'prepared statement "{name}" does not exist', sqlstate="26000")
            return Outcome(tag="DEALLOCATE")
        if keyword == "COPY":
            raise TunnelError.refused("COPY is not supported through rdsgate connect: use INSERT or SELECT "
                                      "(psql's \\copy is COPY too)")
        if keyword in ("LISTEN", "UNLISTEN"):
            raise TunnelError.refused(f"{keyword} needs a server session that outlives a statement; "
                                      "rdsgate connect has none")
        raise TunnelError.refused(f"{keyword} (cursors) needs a server session that outlives a statement; "
                                  "rdsgate connect has none: run the SELECT itself")

    def _reset(self, names: Any) -> None:
        for name in names:
            if name == "statement_timeout":
                self.session.timeout_ms = None
            elif name == "default_transaction_read_only":
                self.session.default_read_only = False
            elif name == "application_name":
                self.settings[name] = ""
                self._parameter_status(name, "")
            elif name == "intervalstyle" and self.settings.pop(name, "postgres") != "postgres":
                self._parameter_status("IntervalStyle", "postgres")
            else:
                self.settings.pop(name, None)

    def _set(self, sql: str, analysis: Analysis) -> Outcome:
        words = analysis.after(1)
        scope = words[0] if words[:1] in (("SESSION",), ("LOCAL",)) else ""
        if words[:2] == ("SESSION", "CHARACTERISTICS") or words[:1] == ("TRANSACTION",):
            return self._set_transaction(words, session_wide=words[0] == "SESSION")
        if scope == "LOCAL":
            if not self.session.in_block:
                return Outcome(tag="SET", notices=[Notice("SET LOCAL can only be used in transaction blocks",
                                                          sqlstate="25P01")])
            return self._set_local(sql)
        body = re.sub(r"(?is)^\s*set\s+(session\s+)?", "", sql)
        match = re.match(r"(?is)(time\s+zone|[\w.]+)\s*(?:=|\bto\b)?\s*(.*)$", body)
        if match is None:
            raise TunnelError("syntax error in SET", sqlstate="42601")
        name = re.sub(r"\s+", "", match.group(1).lower())
        name = {"timezone": "timezone", "names": "client_encoding"}.get(name, name)
        value = match.group(2).strip()
        plain = value.strip("'\"").strip().lower()
        if plain == "default" or (name == "timezone" and plain == "local"):
            self._reset([name])
            return Outcome(tag="SET")
        notices = self._setting(name, value, plain)
        return Outcome(tag="SET", notices=notices)

    def _set_local(self, sql: str) -> Outcome:
        """SET LOCAL in a block: statement_timeout for the block's calls; settings that are the gateway's own or
        change nothing, accepted; the tunnel's output settings cannot be scoped to a block, so they are refused."""
        match = re.match(r"(?is)\s*set\s+local\s+(time\s+zone|[\w.]+)\s*(?:=|\bto\b)?\s*(.*)$", sql)
        if match is None:
            raise TunnelError("syntax error in SET", sqlstate="42601")
        name = re.sub(r"\s+", "", match.group(1).lower())
        value = match.group(2).strip()
        plain = value.strip("'\"").strip().lower()
        if name == "statement_timeout":
            self.session.local_timeout_ms = None if plain == "default" else _milliseconds(plain)
            return Outcome(tag="SET")
        if name in ("timezone", "datestyle", "standard_conforming_strings", "client_encoding", "names") \
                or name in IGNORED_SETTINGS:
            return Outcome(tag="SET", notices=self._setting({"names": "client_encoding"}.get(name, name), value, plain))
        raise TunnelError.refused(f"SET LOCAL {name} is not supported through rdsgate connect: only "
                                  "statement_timeout can apply to one transaction block (SET applies to the session)")

    def _setting(self, name: str, value: str, plain: str) -> list[str]:
        """Apply one ``SET name = value`` the tunnel can honour; refuse the others, naming why."""
        if name == "client_encoding":
            if plain.replace("-", "").replace("_", "") not in ("utf8", "unicode"):
                raise TunnelError.refused("rdsgate connect speaks UTF8 only")
        elif name == "application_name":
            self.settings[name] = value.strip("'")
            self._parameter_status(name, self.settings[name])
        elif name == "statement_timeout":
            self.session.timeout_ms = _milliseconds(plain)
        elif name == "datestyle":
            if not re.fullmatch(r"iso(\s*,\s*(mdy|us|noneuropean))?|(mdy|us|noneuropean)\s*,\s*iso", plain):
                raise TunnelError.refused("dates are sent in ISO style and read month-first, as the gateway's sessions "
                                          "read them (DateStyle 'ISO, MDY')")
        elif name == "timezone":
            if re.sub(r"^interval\s*'?([^']*)'?.*$", r"\1", plain).strip() not in UTC_NAMES:
                raise TunnelError.refused("the gateway's sessions run in UTC: SET TIME ZONE 'UTC' is the only value "
                                          "(convert with AT TIME ZONE in the query)")
        elif name == "intervalstyle":
            if plain not in INTERVAL_STYLES:
                raise TunnelError(f'invalid value for parameter "IntervalStyle": "{plain}"', sqlstate="22023")
            self.settings[name] = plain
            self._parameter_status("IntervalStyle", plain)
        elif name == "standard_conforming_strings":
            if plain not in ("on", "true", "1", "yes"):
                raise TunnelError.refused("standard_conforming_strings is always on")
        elif name == "extra_float_digits":
            self.settings[name] = plain  # floats are always sent exactly (shortest text that reads back the same)
        elif name == "client_min_messages":
            if plain not in MESSAGE_LEVELS + ("info",):
                raise TunnelError(f'invalid value for parameter "client_min_messages": "{plain}"', sqlstate="22023")
            self.settings[name] = plain
        elif name == "bytea_output":
            if plain not in ("hex", "escape"):
                raise TunnelError(f'invalid value for parameter "bytea_output": "{plain}"', sqlstate="22023")
            self.settings[name] = plain
        elif name in ("default_transaction_read_only", "transaction_read_only"):
            self.session.default_read_only = plain in ("on", "true", "1", "yes")
        elif name in IGNORED_SETTINGS:
            return [Notice(f"SET {name} has no effect through rdsgate connect: each statement runs on a pooled "
                           "server session with the connection's own settings", sqlstate="01000")]
        else:
            hint = " Qualify names with their schema instead." if name == "search_path" else ""
            raise TunnelError.refused(
                f"SET {name} is not supported through rdsgate connect: each statement runs on a pooled server "
                f"session, where the setting would not last.{hint}")
        return []

    def _set_transaction(self, words: tuple[str, ...], *, session_wide: bool) -> Outcome:
        text = " ".join(words)
        if "SERIALIZABLE" in text or "REPEATABLE" in text or "SNAPSHOT" in text:
            raise TunnelError.refused("only the database's default isolation level is available")
        if session_wide:
            if "READ ONLY" in text or "READ WRITE" in text:
                self.session.default_read_only = "READ ONLY" in text
            return Outcome(tag="SET")
        if not self.session.in_block:
            return Outcome(tag="SET", notices=[Notice("SET TRANSACTION can only be used in transaction blocks",
                                                      sqlstate="25P01")])
        if "READ ONLY" in text:
            if self.session.queued:
                raise TunnelError("SET TRANSACTION READ ONLY must be called before any query", sqlstate="25001")
            self.session.read_only = True
        return Outcome(tag="SET")

    def _show(self, name: str) -> str:
        if name == "statement_timeout":
            return f"{self.session.timeout_ms}ms" if self.session.timeout_ms else "0"
        if name == "default_transaction_read_only":
            return "on" if self.session.default_read_only else "off"
        fixed = {"client_encoding": "UTF8", "timezone": "UTC", "datestyle": "ISO, MDY"}
        defaults = {"extra_float_digits": "1", "intervalstyle": "postgres", "client_min_messages": "notice",
                    "bytea_output": "hex"}
        return fixed.get(name) or self.settings.get(name, defaults.get(name, ""))

    def _sql_prepare(self, sql: str) -> Outcome:
        """``PREPARE name [(type, …)] AS statement``, kept by the tunnel for EXECUTE and for Bind."""
        match = re.match(r'(?is)\s*prepare\s+("(?:[^"]|"")+"|[\w$]+)\s*(.*)$', sql)
        if match is None:
            raise TunnelError("syntax error in PREPARE", sqlstate="42601")
        name, rest = _sql_name(match.group(1)), match.group(2)
        types: list[str | None] = []
        if rest.startswith("("):
            close = _matching_paren(rest)
            types = [t or None for t in split_arguments(rest[1:close], self.dialect)]
            rest = rest[close + 1:]
        body = re.match(r"(?is)\s*as\s+(.*)$", rest)
        if body is None:
            raise TunnelError('syntax error in PREPARE: expected "AS"', sqlstate="42601")
        if name in self.statements:
            raise TunnelError(f'prepared statement "{name}" already exists', sqlstate="42P05")
        self.statements[name] = self._prepare(body.group(1).strip(), types)
        return Outcome(tag="PREPARE")

    def _sql_execute(self, sql: str) -> Outcome:
        """``EXECUTE name [(argument, …)]``: literal arguments become API parameters, expressions stay SQL."""
        match = re.match(r'(?is)\s*execute\s+("(?:[^"]|"")+"|[\w$]+)\s*(.*)$', sql)
        if match is None:
            raise TunnelError("syntax error in EXECUTE", sqlstate="42601")
        prepared = self._statement(_sql_name(match.group(1)))
        rest = match.group(2).strip()
        arguments = split_arguments(rest[1:_matching_paren(rest)], self.dialect) if rest.startswith("(") else []
        if len(arguments) != prepared.count:
            raise TunnelError(f"wrong number of parameters for prepared statement: expected {prepared.count}, "
                              f"got {len(arguments)}", sqlstate="42601")
        values: list[Any] = []
        expressions: dict[int, str] = {}
        for n, argument in enumerate(arguments, 1):
            is_literal, value = literal_value(argument, self.dialect)
            values.append(value if not isinstance(value, bool) else ("true" if value else "false"))
            if not is_literal:
                expressions[n] = rewrite(argument, self.dialect)
            elif isinstance(value, int):
                values[-1] = str(value)
        outcome = self.session.execute(prepared.statement(values, expressions))
        outcome.tag = outcome.tag or command_tag(prepared.analysis, outcome, len(outcome.rows))
        return outcome


def _sql_name(text: str) -> str:
    text = text.strip()
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def _matching_paren(text: str) -> int:
    depth, at = 0, 0
    for code, piece in chunks(text, "postgres"):
        if code:
            for index, char in enumerate(piece):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0 and char == ")":
                    return at + index
        at += len(piece)
    raise TunnelError("syntax error: unbalanced parentheses", sqlstate="42601")


def _milliseconds(text: str) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|h)?\s*", text)
    if match is None:
        raise TunnelError(f'invalid value for parameter "statement_timeout": "{text}"', sqlstate="22023")
    value = int(match.group(1)) * {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000}[match.group(2) or "ms"]
    return value or None
