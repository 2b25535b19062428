"""`rdsgate connect` on the command line: builds the API client and the tunnel, prints how to connect, runs until Ctrl-C.

The tunnel itself (``rdsgate_tunnel``) is given the client built here; it does not import the command line.
Nothing printed holds a token; a generated password is printed once.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
from typing import Callable

from rdsgate.sql import DEFAULT_PORTS
from rdsgate_client.api import LOOPBACK_HOSTS, CliError
from rdsgate_tunnel.gateway import Gateway, TunnelError
from rdsgate_tunnel.listener import Tunnel

from .options import api_client


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
    gateway = Gateway(api_client(args), args.connection, max_rows=args.max_rows, transactions=args.transactions)
    try:
        info = gateway.info()
    except TunnelError as exc:
        raise CliError(f"connection {args.connection!r}: {exc.message}") from None
    engine = info.get("engine", "postgres")
    protocol = args.protocol or engine
    port = DEFAULT_PORTS[protocol] if args.port is None else args.port
    generated = secrets.token_urlsafe(18) if args.generate_password else None  # 144 bits, [A-Za-z0-9_-]
    password = generated or args.password or os.environ.get("RDSGATE_CONNECT_PASSWORD") or None
    if args.host not in LOOPBACK_HOSTS:
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
