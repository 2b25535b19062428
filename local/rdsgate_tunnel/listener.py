"""`rdsgate connect`'s port: a listener on loopback that serves each client on its own thread.

A client's socket goes to ``pgwire`` or ``mysqlwire``, which speak the protocol; its
statements go through the ``Gateway`` it was given (the caller builds the API client:
the command line, or a test). Nothing here logs SQL text, parameter values or passwords.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Any, Callable

from . import mysqlwire, pgwire
from .gateway import Gateway
from .tunnel_sessions import ServerSession, SessionCalls, abandon_thread


class Tunnel:
    """Listens on host:port (port 0: any free one) and serves each client on its own thread."""

    def __init__(self, gateway: Gateway, protocol: str, *, host: str = "127.0.0.1", port: int = 0,
                 password: str | None = None, dialect: str | None = None, database: str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.gateway, self.protocol, self.password = gateway, protocol, password
        self.session_calls = SessionCalls(gateway)  # shared by every client: sessions are probed for once
        self.dialect = dialect or protocol
        self.database = database
        self.log = log or (lambda line: None)
        handler = pgwire.serve_client if protocol == "postgres" else mysqlwire.serve_client
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
        return ServerSession(self.session_calls, dialect, abort_on_error=abort_on_error)

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
