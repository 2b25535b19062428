"""`rdsgate connect`: a local port that speaks PostgreSQL's or MySQL's wire protocol and forwards to the API.

Lambda cannot hold a client's TCP session, so the local end of the tunnel does:
each statement a client sends becomes one signed API call (``/query``), and a
transaction block becomes one ``/transaction`` call at COMMIT. This module holds
what both protocols share: the API calls (``Gateway``), the session's transaction
state (``Session``: BEGIN … COMMIT buffered, see docs/NATIVE.md), the listener
on loopback and the command line. ``pgwire`` and ``mysqlwire`` speak the protocols.

Nothing here logs SQL text, parameter values, passwords or tokens.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .client import ApiClient, ApiError, CliError, path_for
from .wiresql import Analysis, analyse

DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STARTUP_TIMEOUT_SECONDS = 30.0

BEGIN = frozenset({"BEGIN", "START"})
COMMIT = frozenset({"COMMIT", "END"})
ROLLBACK = frozenset({"ROLLBACK", "ABORT"})
REFUSED = frozenset({"SAVEPOINT", "RELEASE", "XA", "LOCK", "UNLOCK"})
# SQLSTATEs of common MySQL error numbers (the API reports the number, not the state).
MYSQL_SQLSTATES = {
    1044: "42000", 1045: "28000", 1048: "23000", 1049: "42000", 1050: "42S01", 1051: "42S02", 1054: "42S22",
    1062: "23000", 1064: "42000", 1065: "42000", 1091: "42000", 1142: "42000", 1146: "42S02", 1153: "08S01",
    1213: "40001", 1227: "42000", 1235: "42000", 1264: "22003", 1292: "22007", 1305: "42000", 1365: "22012",
    1406: "22001", 1451: "23000", 1452: "23000", 1792: "25006", 1969: "70100", 1047: "08S01",
}
# MySQL commits the open transaction before these (and they cannot be part of /transaction there).
MYSQL_IMPLICIT_COMMIT = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE"})


class TunnelError(Exception):
    """A failure to report to the client; the protocol modules turn it into their error message."""

    def __init__(self, message: str, *, code: str = "Refused", sqlstate: str | None = None,
                 errno: int | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.sqlstate, self.errno, self.hint = message, code, sqlstate, errno, hint

    @classmethod
    def refused(cls, message: str, *, sqlstate: str = "0A000", errno: int = 1235) -> TunnelError:
        """Something the tunnel does not do (PostgreSQL feature_not_supported, MySQL ER_NOT_SUPPORTED_YET)."""
        return cls(message, code="Refused", sqlstate=sqlstate, errno=errno)


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

    def __init__(self, client: ApiClient, connection: str, *, max_rows: int | None = None) -> None:
        self.client, self.connection, self.max_rows = client, connection, max_rows
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        """The connection's definition as the API shows it (engine, database; no secret)."""
        return self._call("GET", path_for("connections", self.connection))

    def query(self, statement: Statement, *, read_only: bool = False, timeout_ms: int | None = None) -> Result:
        body: dict[str, Any] = {"sql": statement.sql, "shape": "arrays"}
        if statement.parameters:
            body["parameters"] = statement.parameters
        self._options(body, read_only, timeout_ms)
        return Result.of(self._call("POST", path_for("connections", self.connection, "query"), body))

    def transaction(self, statements: list[Statement], *, read_only: bool = False,
                    timeout_ms: int | None = None) -> list[Result]:
        body: dict[str, Any] = {"shape": "arrays", "statements": [
            {"sql": s.sql, **({"parameters": s.parameters} if s.parameters else {})} for s in statements]}
        self._options(body, read_only, timeout_ms)
        document = self._call("POST", path_for("connections", self.connection, "transaction"), body)
        return [Result.of(result) for result in document.get("results", [])]

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
                              errno=error.get("errno"), hint=error.get("hint")) from None
        except CliError as exc:
            raise TunnelError(exc.message, code="Unreachable") from None


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
        self.failed = False
        self.queued: list[Statement] = []
        self.timeout_ms: int | None = None

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
            return self._rollback_words(analysis)
        self.check_usable(analysis)
        if keyword in REFUSED or (keyword == "PREPARE" and "TRANSACTION" in analysis.words):
            raise TunnelError.refused(
                f"{keyword} is not supported through rdsgate connect: each statement runs on a pooled server "
                "session, and a transaction block is sent as one call at COMMIT (see docs/NATIVE.md)")
        if not self.in_block:
            return Outcome.of(self.gateway.query(statement, timeout_ms=self.timeout_ms), analysis)
        if self.dialect == "mysql" and keyword in MYSQL_IMPLICIT_COMMIT:
            notices = self.commit().notices  # as MySQL does: the open transaction commits first
            self.explicit = False
            outcome = Outcome.of(self.gateway.query(statement, timeout_ms=self.timeout_ms), analysis)
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
                return Outcome(tag="BEGIN", notices=["WARNING: there is already a transaction in progress"])
        elif not self.autocommit and self.queued:
            notices = self.commit().notices
        self.explicit, self.read_only, self.failed = True, "READ ONLY" in words, False
        return Outcome(tag="BEGIN", notices=notices)

    def commit(self) -> Outcome:
        """Send the queued statements as one /transaction call; the block ends either way."""
        queued, read_only, failed = self.queued, self.read_only, self.failed
        self.queued, self.explicit, self.read_only, self.failed = [], False, False, False
        if failed:
            return Outcome(tag="ROLLBACK")
        if not queued:
            return Outcome(tag="COMMIT")
        started = time.monotonic()
        try:
            results = self.gateway.transaction(queued, read_only=read_only, timeout_ms=self.timeout_ms)
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
        self.queued, self.explicit, self.read_only, self.failed = [], False, False, False
        return Outcome(tag="ROLLBACK", notices=[f"discarded {dropped} queued statement(s)"] if dropped else [])

    def set_autocommit(self, on: bool) -> Outcome:
        """MySQL's SET autocommit: switching it on commits what is queued, as MySQL does."""
        outcome = self.commit() if on and self.in_block else Outcome()
        self.autocommit = on
        return Outcome(tag="SET", updated=outcome.updated, notices=outcome.notices)

    def _commit_words(self, analysis: Analysis) -> Outcome:
        if "PREPARED" in analysis.words or "CHAIN" in analysis.words and "NO" not in analysis.words:
            raise TunnelError.refused(f"{' '.join(analysis.words[:3])} is not supported through rdsgate connect")
        if not self.in_block and self.dialect == "postgres":
            return Outcome(tag="COMMIT", notices=["WARNING: there is no transaction in progress"])
        return self.commit()

    def _rollback_words(self, analysis: Analysis) -> Outcome:
        if "TO" in analysis.words or "PREPARED" in analysis.words:
            self.check_usable(analysis)
            raise TunnelError.refused("savepoints are not supported through rdsgate connect")
        if not self.in_block and self.dialect == "postgres":
            return Outcome(tag="ROLLBACK", notices=["WARNING: there is no transaction in progress"])
        return self.rollback()


# -- the listener -------------------------------------------------------------------------------


class Tunnel:
    """Listens on host:port (port 0: any free one) and serves each client on its own thread."""

    def __init__(self, gateway: Gateway, protocol: str, *, host: str = "127.0.0.1", port: int = 0,
                 password: str | None = None, dialect: str | None = None, database: str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        if protocol == "postgres":
            from .pgwire import serve_client
        else:
            from .mysqlwire import serve_client

        self.gateway, self.protocol, self.password = gateway, protocol, password
        self.dialect = dialect or protocol
        self.database = database
        self.log = log or (lambda line: None)
        handler = serve_client
        tunnel = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer = "%s:%s" % self.client_address[:2]
                tunnel.log(f"client {peer} connected")
                started = time.monotonic()
                try:
                    handler(self.request, tunnel)
                except (ConnectionError, TimeoutError, OSError) as exc:
                    tunnel.log(f"client {peer} dropped ({type(exc).__name__})")
                except Exception as exc:  # noqa: BLE001 - one client's failure must not stop the tunnel
                    tunnel.log(f"client {peer} failed ({type(exc).__name__})")  # no message: it might quote SQL
                finally:
                    from .tunnel_sessions import abandon_thread

                    abandon_thread()  # a transaction the client left open is rolled back now
                    tunnel.log(f"client {peer} disconnected after {time.monotonic() - started:.1f} s")

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(socketserver.ThreadingTCPServer):
            address_family = family
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return host, port

    def new_session(self, dialect: str, *, abort_on_error: bool) -> Any:
        """A client's session: transaction blocks are sessions on the API when it has them (tunnel_sessions)."""
        from .tunnel_sessions import ServerSession

        return ServerSession(self.gateway, dialect, abort_on_error=abort_on_error)

    def serve_in_background(self) -> Tunnel:
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), name="rdsgate-connect",
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()


# -- the command line ---------------------------------------------------------------------------


def add_connect_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Registers `rdsgate connect` through cli.py's ``command`` helper (which adds --endpoint and friends)."""
    sub = command("connect", connect, "serve a connection on a local port to psql, mysql and other SQL clients")
    sub.add_argument("connection")
    sub.add_argument("--port", type=int, help="local port (default 5432 for PostgreSQL, 3306 for MySQL; 0 picks one)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    passwords = sub.add_mutually_exclusive_group()
    passwords.add_argument("--password", help="a password clients must give (default: none, trust on loopback); "
                                             "also $RDSGATE_CONNECT_PASSWORD")
    passwords.add_argument("--generate-password", action="store_true",
                           help="require a random password, printed once here (use it on a shared host: any local "
                                "user can reach a loopback port)")
    sub.add_argument("--protocol", choices=("postgres", "mysql"),
                     help="the wire protocol (default: the connection's engine)")
    sub.add_argument("--max-rows", type=int, metavar="N", help="rows per result (default: the API's limit)")
    sub.add_argument("--transactions", choices=("auto", "session", "buffered"), default="auto",
                     help="transaction blocks as sessions on the API (auto: when it has them), or buffered into one "
                          "/transaction call at COMMIT (docs/NATIVE.md)")
    sub.add_argument("--quiet", action="store_true", help="do not log client connections")


def connect(args: argparse.Namespace) -> int:
    import os

    from .cli import _client

    gateway = Gateway(_client(args), args.connection, max_rows=args.max_rows)
    gateway.transactions = getattr(args, "transactions", "auto")  # read by tunnel_sessions
    try:
        info = gateway.info()
    except TunnelError as exc:
        raise CliError(f"connection {args.connection!r}: {exc.message}") from None
    engine = info.get("engine", "postgres")
    protocol = args.protocol or engine
    port = DEFAULT_PORTS[protocol] if args.port is None else args.port
    generated = secrets.token_urlsafe(18) if args.generate_password else None  # 144 bits, [A-Za-z0-9_-]
    password = generated or args.password or os.environ.get("RDSGATE_CONNECT_PASSWORD") or None
    if args.host not in LOOPBACK:
        print(f"rdsgate: warning: {args.host} is not loopback: anyone who reaches this port can run SQL as you"
              + ("" if password else ", without a password"), file=sys.stderr)

    def log(line: str) -> None:
        if not args.quiet:
            print(f"rdsgate: {line}", file=sys.stderr, flush=True)

    try:
        tunnel = Tunnel(gateway, protocol, host=args.host, port=port, password=password, dialect=engine,
                        database=info.get("database"), log=log)
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{port}: {exc.strerror or exc} "
                       "(pass --port; 0 picks a free port)") from None
    host, bound = tunnel.address
    print(f"rdsgate: connection {args.connection} ({engine}) on {host}:{bound}, "
          f"{'PostgreSQL' if protocol == 'postgres' else 'MySQL'} protocol, "
          f"{'password required' if password else 'no password (trust)'}", flush=True)
    database = info.get("database") or args.connection
    if protocol == "postgres":
        print(f'  psql "host={host} port={bound} dbname={database} sslmode=disable"', flush=True)
    else:
        print(f"  mariadb -h {host} -P {bound} --protocol=tcp -D {database}"
              + (" -p" if password else ""), flush=True)
    if generated:
        print(f"  password: {generated}  (generated for this run; not shown again)", flush=True)
    elif not password:
        print("  no password: any user of this machine can connect to this port; on a shared host use "
              "--generate-password", flush=True)
    print("Ctrl-C stops the tunnel.", flush=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    tunnel.serve_in_background()
    try:
        stop.wait()
    finally:
        tunnel.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("rdsgate: tunnel stopped", flush=True)
    return 0
