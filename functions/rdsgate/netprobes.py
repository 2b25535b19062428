"""The network probes of a diagnosis (``diagnose``): DNS, TCP, and each engine's own start of TLS.

Each probe is the raw step a driver's login takes, done alone so that its failure is the
step's: a name that does not resolve, a port that does not answer, a server that does not
offer TLS or whose certificate does not verify.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from .definitions import ConnectionDefinition


def resolve(host: str, port: int) -> tuple[str | None, list[tuple]]:
    """The host's canonical name and its addresses; OSError when it does not resolve."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME)
    return found[0][3] or None, [entry[4] for entry in found]


def connect(addresses: list[tuple], timeout: float) -> socket.socket:
    """A TCP connection to the first address that answers; the last error when none does."""
    last: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if len(address) == 4 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address")


def start_tls(addresses: list[tuple], timeout: float, engine: str, context: ssl.SSLContext, server_hostname: str) -> tuple[str | None, dict[str, Any]]:
    """The TLS version and the peer certificate, after the engine's own request for TLS.

    Raises ``NoTls`` when the server does not agree to TLS, ``ssl.SSLError`` (a certificate that
    does not verify among them) or ``OSError``.
    """
    with connect(addresses, timeout) as sock:
        _START_TLS[engine](sock)
        with context.wrap_socket(sock, server_hostname=server_hostname) as tls_sock:
            return tls_sock.version(), tls_sock.getpeercert() or {}


class NoTls(Exception):
    """The server did not agree to TLS."""


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise NoTls("the server closed the connection before TLS")
        data += chunk
    return data


def _start_tls_postgres(sock: socket.socket) -> None:
    sock.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest
    if _recv_exactly(sock, 1) != b"S":
        raise NoTls("the server does not offer TLS")


def _start_tls_mysql(sock: socket.socket) -> None:
    header = _recv_exactly(sock, 4)
    greeting = _recv_exactly(sock, int.from_bytes(header[:3], "little"))
    if greeting[:1] == b"\xff":
        raise NoTls(f"the server refused the connection: {greeting[3:].decode(errors='replace')}")
    after_version = greeting.index(b"\0", 1) + 1 + 4 + 8 + 1  # thread id, auth data part 1, filler
    if not int.from_bytes(greeting[after_version:after_version + 2], "little") & 0x0800:  # CLIENT_SSL
        raise NoTls("the server does not offer TLS")
    flags = 0x0001 | 0x0200 | 0x0800 | 0x8000  # long password, protocol 41, SSL, secure connection
    payload = struct.pack("<IIB23x", flags, 1 << 24, 45)  # SSLRequest, utf8mb4
    sock.sendall(len(payload).to_bytes(3, "little") + bytes([header[3] + 1]) + payload)


_START_TLS = {"postgres": _start_tls_postgres, "mysql": _start_tls_mysql}


def certificate_fix(message: str, d: ConnectionDefinition) -> str:
    """What to change when the certificate does not verify (``message``: the verifier's reason)."""
    if "mismatch" in message.lower() or "doesn't match" in message.lower():
        return (f"the certificate does not name {d.iam_host or d.host}: connect to the RDS endpoint name, or set "
                "'iam_host' to it when host is a CNAME, proxy alias or tunnel")
    if "expired" in message.lower():
        return "the server certificate has expired: rotate the instance's certificate authority"
    return ("the server's CA is not in the bundle: drop 'ca_bundle' to use the shipped RDS bundle, refresh it "
            "(scripts/update_rds_ca_bundle.py), or point 'ca_bundle' at the server's CA")


def name_of(rdns: Any) -> str:
    """The common name in a certificate's subject or issuer."""
    for rdn in rdns:
        for key, value in rdn:
            if key == "commonName":
                return value
    return "(no common name)"
