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

from rdsgate.sql import DEFAULT_PORTS

from .client import ApiClient, ApiError, CliError, path_for
from .wiresql import Analysis
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STARTUP_TIMEOUT_SECONDS = 30.0

# SQLSTATEs of common MySQL error numbers (the API reports the number, not the state).
MYSQL_SQLSTATES = {
    1044: "42000", 1045: "28000", 1048: "23000", 1049: "42000", 1050: "42S01", 1051: "42S02", 1054: "42S22",
    1062: "23000", 1064: "42000", 1065: "42000", 1091: "42000", 1142: "42000", 1146: "42S02", 1153: "08S01",
    1213: "40001", 1227: "42000", 1235: "42000", 1264: "22003", 1292: "22007", 1305: "42000", 1365: "22012",
    1406: "22001", 1451: "23000", 1452: "23000", 1792: "25006", 1969: "70100", 1047: "08S01",
}


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
