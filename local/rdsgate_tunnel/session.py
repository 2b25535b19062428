"""A client's session for `rdsgate connect`: statements in autocommit, and BEGIN … COMMIT buffered into one call.

There is no database session behind the tunnel's port (docs/NATIVE.md): a statement
outside a transaction block is one ``/query`` call; in a block, writes are queued and
sent at COMMIT as one atomic ``/transaction`` call, savepoints mark places in that
queue, and reads run at once, read-only, while nothing is queued.
"""

from __future__ import annotations

import re
import time

from rdsgate.sql import MYSQL_IMPLICIT_COMMIT, TRANSACTION_BEGIN, TRANSACTION_COMMIT, TRANSACTION_ROLLBACK

from .gateway import Gateway, Notice, Outcome, Statement, TunnelError
from .wiresql import Analysis, analyse

BEGIN, COMMIT, ROLLBACK = TRANSACTION_BEGIN, TRANSACTION_COMMIT, TRANSACTION_ROLLBACK
REFUSED = frozenset({"XA", "LOCK", "UNLOCK"})
_SAVEPOINT_NAME = re.compile(r'(?is)\s*(?:savepoint|release(?:\s+savepoint)?|rollback(?:\s+(?:work|transaction))?\s+to'
                             r'(?:\s+savepoint)?)\s+("(?:[^"]|"")*"|`(?:[^`]|``)*`|[\w$]+)')
NO_TRANSACTION = Notice("there is no transaction in progress", sqlstate="25P01")


class Session:
    """One client's session: autocommit statements, and BEGIN … COMMIT buffered into one /transaction call.

    In a transaction block, a statement that writes is queued and answered at once
    (no rows, a count of 0, a notice); COMMIT sends the queue as one atomic
    ``/transaction`` call. A read runs at once, read-only, when nothing is queued yet;
    after a queued write it is refused, since it could not see that write. Locking
    reads and RETURNING are refused in a block. ``abort_on_error`` (PostgreSQL) makes
    any error in a block fail the block until ROLLBACK, as PostgreSQL does.
    """

    def __init__(self, gateway: Gateway, dialect: str, *, abort_on_error: bool) -> None:
        self.gateway, self.dialect, self.abort_on_error = gateway, dialect, abort_on_error
        self.explicit = False  # inside BEGIN … COMMIT
        self.autocommit = True  # MySQL's SET autocommit = 0 keeps a block open at all times
        self.read_only = False
        self.default_read_only = False  # SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, and the like
        self.next_read_only: bool | None = None  # MySQL's SET TRANSACTION READ ONLY: the next transaction only
        self.failed = False
        self.queued: list[Statement] = []
        self.savepoints: list[tuple[str, int]] = []  # (name, how many statements were queued before it)
        self._timeout_ms: int | None = None  # SET statement_timeout (PostgreSQL), max_statement_time (MySQL)
        self.local_timeout_ms: int | None = None  # SET LOCAL statement_timeout: this block only

    @property
    def timeout_ms(self) -> int | None:
        """The API's timeoutMs for the next call: the block's own (SET LOCAL) in a block, else the session's."""
        return self.local_timeout_ms if self.in_block and self.local_timeout_ms else self._timeout_ms

    @timeout_ms.setter
    def timeout_ms(self, value: int | None) -> None:
        self._timeout_ms = value

    @property
    def in_block(self) -> bool:
        return self.explicit or not self.autocommit

    def execute(self, statement: Statement) -> Outcome:
        try:
            return self._execute(statement)
        except TunnelError:
            self.note_error()
            raise

    def note_error(self) -> None:
        """An error happened in this session; on PostgreSQL it fails the open block."""
        if self.abort_on_error and self.explicit:
            self.failed = True

    def check_usable(self, analysis: Analysis) -> None:
        """PostgreSQL: in a failed block only COMMIT and ROLLBACK are accepted."""
        if self.failed and analysis.keyword not in COMMIT | ROLLBACK:
            raise TunnelError("current transaction is aborted, commands ignored until end of transaction block",
                              code="Refused", sqlstate="25P02")

    def _execute(self, statement: Statement) -> Outcome:
        analysis = statement.analysis or analyse(statement.sql, self.dialect)
        keyword = analysis.keyword
        if keyword in BEGIN and (keyword == "BEGIN" or analysis.after(1)[:1] == ("TRANSACTION",)) \
                and "ATOMIC" not in analysis.words:  # MariaDB's BEGIN NOT ATOMIC is a compound statement
            return self.begin(analysis)
        if keyword in COMMIT:
            return self._commit_words(analysis)
        if keyword in ROLLBACK:
            return self._rollback_words(analysis, statement.sql)
        self.check_usable(analysis)
        if keyword in ("SAVEPOINT", "RELEASE"):
            return self._savepoint(keyword, statement.sql)
        if keyword in REFUSED or (keyword == "PREPARE" and "TRANSACTION" in analysis.words):
            raise TunnelError.refused(
                f"{keyword} is not supported through rdsgate connect: each statement runs on a pooled server "
                "session, and a transaction block is sent as one call at COMMIT (see docs/NATIVE.md)")
        if not self.in_block:
            return Outcome.of(self.gateway.query(statement, read_only=self._take_read_only(),
                                                 timeout_ms=self.timeout_ms), analysis)
        if self.dialect == "mysql" and keyword in MYSQL_IMPLICIT_COMMIT:
            notices = self.commit().notices  # as MySQL does: the open transaction commits first
            self.explicit = False
            outcome = Outcome.of(self.gateway.query(statement, read_only=self.default_read_only,
                                                    timeout_ms=self.timeout_ms), analysis)
            outcome.notices[:0] = notices
            return outcome
        if analysis.locks:
            raise TunnelError.refused("a locking read (FOR UPDATE / FOR SHARE) cannot hold its locks in a "
                                      "transaction block through rdsgate connect; run it outside the block")
        if analysis.reads:
            if self.queued:
                raise TunnelError.refused(
                    f"this read cannot see the {len(self.queued)} statement(s) queued in this transaction block: "
                    "they run at COMMIT, as one call. Read before writing, or after COMMIT (see docs/NATIVE.md)")
            return Outcome.of(self.gateway.query(statement, read_only=True, timeout_ms=self.timeout_ms), analysis)
        if analysis.returning:
            raise TunnelError.refused("RETURNING in a transaction block is not supported: queued statements run "
                                      "at COMMIT, after their rows would be needed; run it outside the block")
        if self.read_only:
            raise TunnelError(f"cannot execute {analysis.main or keyword} in a read-only transaction",
                              code="ReadOnlyViolation", sqlstate="25006", errno=1792)
        self.queued.append(statement)
        return Outcome(updated=0, notices=[f"queued: runs at COMMIT with the other statements of this transaction "
                                           f"({len(self.queued)} so far)"])

    def begin(self, analysis: Analysis) -> Outcome:
        words = " ".join(analysis.words)
        if "SERIALIZABLE" in words or "REPEATABLE" in words:
            raise TunnelError.refused("only the database's default isolation level is available: the queued "
                                      "statements run as one /transaction call")
        notices: list[str] = []
        if self.explicit:
            if self.dialect == "mysql":  # MySQL commits the open transaction
                notices = self.commit().notices
            else:
                return Outcome(tag="BEGIN", notices=[Notice("there is already a transaction in progress",
                                                            sqlstate="25001")])
        elif not self.autocommit and self.queued:
            notices = self.commit().notices
        read_only = "READ ONLY" in words or (self._take_read_only() and "READ WRITE" not in words)
        self.explicit, self.read_only, self.failed, self.local_timeout_ms = True, read_only, False, None
        return Outcome(tag="BEGIN", notices=notices)

    def _take_read_only(self) -> bool:
        read_only = self.default_read_only if self.next_read_only is None else self.next_read_only
        self.next_read_only = None
        return read_only

    def commit(self) -> Outcome:
        """Send the queued statements as one /transaction call; the block ends either way."""
        queued, read_only, failed, timeout_ms = self.queued, self.read_only, self.failed, self.timeout_ms
        self._end_block()
        if failed:
            return Outcome(tag="ROLLBACK")
        if not queued:
            return Outcome(tag="COMMIT")
        started = time.monotonic()
        try:
            results = self.gateway.transaction(queued, read_only=read_only, timeout_ms=timeout_ms)
        except TunnelError as exc:
            exc.message = f"COMMIT failed, nothing was written: {exc.message}"
            raise
        counts = ", ".join(f"{(s.analysis.main if s.analysis else '') or 'statement'} {r.updated or 0}"
                           for s, r in zip(queued, results))
        return Outcome(tag="COMMIT", updated=sum(r.updated or 0 for r in results), notices=[
            f"committed {len(queued)} queued statement(s) in one transaction in "
            f"{(time.monotonic() - started) * 1000:.0f} ms: {counts}"])

    def rollback(self) -> Outcome:
        dropped = len(self.queued)
        self._end_block()
        return Outcome(tag="ROLLBACK", notices=[f"discarded {dropped} queued statement(s)"] if dropped else [])

    def _end_block(self) -> None:
        """The transaction block has ended (committed or rolled back): nothing queued, no savepoints, no SET LOCAL."""
        self.queued, self.explicit, self.read_only, self.failed, self.savepoints = [], False, False, False, []
        self.local_timeout_ms = None

    def set_autocommit(self, on: bool) -> Outcome:
        """MySQL's SET autocommit: switching it on commits what is queued, as MySQL does."""
        outcome = self.commit() if on and self.in_block else Outcome()
        self.autocommit = on
        return Outcome(tag="SET", updated=outcome.updated, notices=outcome.notices)

    def _savepoint(self, keyword: str, sql: str) -> Outcome:
        """SAVEPOINT marks a place in the queue; ROLLBACK TO drops what was queued after it; RELEASE forgets it."""
        match = _SAVEPOINT_NAME.match(sql)
        if match is None:
            raise TunnelError(f"syntax error in {keyword}", sqlstate="42601", errno=1064)
        name = match.group(1)
        name = name[1:-1].replace(name[0] * 2, name[0]) if name[0] in '"`' else name.lower()
        tag = keyword
        if not self.in_block:
            if self.dialect == "mysql" and keyword == "SAVEPOINT":
                return Outcome(tag=tag)  # MySQL accepts it, to no effect, outside a transaction
            raise TunnelError(f"{keyword if keyword != 'ROLLBACK' else 'ROLLBACK TO SAVEPOINT'} can only be used in "
                              "transaction blocks", sqlstate="25P01", errno=1305)
        if keyword == "SAVEPOINT":
            self.savepoints.append((name, len(self.queued)))
            return Outcome(tag=tag)
        at = next((i for i in range(len(self.savepoints) - 1, -1, -1) if self.savepoints[i][0] == name), None)
        if at is None:
            raise TunnelError(f'savepoint "{name}" does not exist' if self.dialect == "postgres"
                              else f"SAVEPOINT {name} does not exist", sqlstate="3B001", errno=1305)
        if keyword == "RELEASE":
            del self.savepoints[at:]
            return Outcome(tag=tag)
        dropped = len(self.queued) - self.savepoints[at][1]
        del self.queued[self.savepoints[at][1]:]
        del self.savepoints[at + 1:]
        self.failed = False
        return Outcome(tag=tag, notices=[f"discarded {dropped} queued statement(s)"] if dropped else [])

    def _commit_words(self, analysis: Analysis) -> Outcome:
        if "PREPARED" in analysis.words or "CHAIN" in analysis.words and "NO" not in analysis.words:
            raise TunnelError.refused(f"{' '.join(analysis.words[:3])} is not supported through rdsgate connect")
        if not self.in_block and self.dialect == "postgres":
            return Outcome(tag="COMMIT", notices=[NO_TRANSACTION])
        return self.commit()

    def _rollback_words(self, analysis: Analysis, sql: str) -> Outcome:
        if "PREPARED" in analysis.words:
            raise TunnelError.refused("ROLLBACK PREPARED (two-phase commit) is not supported through rdsgate connect")
        if "TO" in analysis.words:
            return self._savepoint("ROLLBACK", sql)
        if not self.in_block and self.dialect == "postgres":
            return Outcome(tag="ROLLBACK", notices=[NO_TRANSACTION])
        return self.rollback()
