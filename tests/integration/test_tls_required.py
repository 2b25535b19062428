"""rdsgate never sends a credential to a server that does not offer TLS.

Fake servers on loopback answer like a database without TLS: PostgreSQL answers the
SSLRequest with "N"; MySQL sends a handshake without the SSL capability. The driver
must give up before anything else is sent, since the IAM token is a password sent in
the clear by both protocols.
"""

import socket
import struct
import threading

import pytest

from rdsgate import errors
from rdsgate.drivers import ConnectParams, open_connection
from rdsgate.tls import client_context

TOKEN = "host:1/?Action=connect&X-Amz-Signature=secret-token-value"


class FakeServer:
    """Accepts one connection, sends ``greeting`` (or answers the first packet), records what arrives."""

    def __init__(self, reply_to_first_packet: bytes | None = None, greeting: bytes | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self._reply, self._greeting = reply_to_first_packet, greeting
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(2)
        with conn:
            if self._greeting:
                conn.sendall(self._greeting)
            try:
                while chunk := conn.recv(65536):
                    self.received += chunk
                    if self._reply and len(self.received) >= 8:
                        conn.sendall(self._reply)
                        self._reply = None
            except OSError:
                pass

    def close(self) -> None:
        self._thread.join(timeout=3)
        self.listener.close()


def params(port: int) -> ConnectParams:
    return ConnectParams(
        host="127.0.0.1", port=port, database="db", user="app_iam", password=TOKEN,
        ssl_context=client_context("require"), connect_timeout=2, iam=True,
    )


def mysql_handshake_without_tls() -> bytes:
    capabilities = 0x0000_F7FF & ~0x0800  # everything usual but CLIENT_SSL
    payload = (
        b"\x0a" + b"10.11.0-MariaDB-fake\x00" + struct.pack("<I", 7) + b"abcdefgh" + b"\x00"
        + struct.pack("<H", capabilities & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
        + struct.pack("<H", 0x0008) + b"\x15" + b"\x00" * 10 + b"ijklmnopqrst\x00" + b"mysql_native_password\x00"
    )
    return struct.pack("<I", len(payload))[:3] + b"\x00" + payload


def test_postgres_client_stops_when_the_server_refuses_tls():
    server = FakeServer(reply_to_first_packet=b"N")
    with pytest.raises(errors.DatabaseUnavailable, match="does not offer TLS"):
        open_connection("postgres", params(server.port))
    server.close()
    assert server.received == struct.pack("!ii", 8, 80877103)  # only the SSLRequest
    assert b"secret-token-value" not in server.received


def test_mysql_client_stops_when_the_server_offers_no_tls():
    server = FakeServer(greeting=mysql_handshake_without_tls())
    with pytest.raises(errors.DatabaseUnavailable):
        open_connection("mysql", params(server.port))
    server.close()
    assert b"secret-token-value" not in server.received
    assert b"app_iam" not in server.received  # not even the handshake response was sent
