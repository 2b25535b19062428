"""Create a throw-away CA and a loopback server certificate (PEM files) for the local database servers."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
from dataclasses import dataclass
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["PKIFiles", "create_pki", "DEFAULT_NAMES"]

# Names every server certificate covers; clients may connect to any of them.
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class PKIFiles:
    """Paths of the PEM files written by ``create_pki``."""

    folder: str
    ca_cert: str  # give this to clients: ssl.create_default_context(cafile=ca_cert)
    ca_key: str
    server_cert: str
    server_key: str
    names: tuple[str, ...]  # subject alternative names of the server certificate


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write(path: str, data: bytes, mode: int, owner: str | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode is filtered by the umask
    if owner is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_pki(
    folder: str,
    *,
    extra_names: Iterable[str] = (),
    owner: str | None = None,
    common_name: str = "rdsgate-local",
    days: int = 365,
) -> PKIFiles:
    """Write ``ca.pem``, ``ca.key``, ``server.pem`` and ``server.key`` into ``folder``.

    The server certificate's SAN holds DNS localhost, IP 127.0.0.1, IP ::1 and
    ``extra_names`` (IP addresses become IP SANs, anything else a DNS SAN).
    Private keys are mode 0600 and, when running as root and ``owner`` is given,
    owned by that OS user (e.g. ``postgres``, which insists on a 0600 key it owns).
    ECDSA P-256 keys: generated in microseconds, accepted by PostgreSQL, MariaDB's
    OpenSSL build, and Python's ssl module.
    """
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, 0o755)
    names = tuple(dict.fromkeys([*DEFAULT_NAMES, *extra_names]))
    now = dt.datetime.now(dt.timezone.utc)
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    files = PKIFiles(
        folder=os.path.abspath(folder),
        ca_cert=os.path.join(os.path.abspath(folder), "ca.pem"),
        ca_key=os.path.join(os.path.abspath(folder), "ca.key"),
        server_cert=os.path.join(os.path.abspath(folder), "server.pem"),
        server_key=os.path.join(os.path.abspath(folder), "server.key"),
        names=names,
    )
    _write(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644, None)
    _write(files.ca_key, _key_pem(ca_key), 0o600, None)
    _write(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), 0o644, owner)
    _write(files.server_key, _key_pem(server_key), 0o600, owner)
    return files
