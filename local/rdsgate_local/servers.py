"""Run real PostgreSQL / MariaDB servers on loopback with TLS and RDS-style IAM token auth through PAM."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from typing import Any, Iterable

from . import iam_verifier
from .iam_verifier import VerifierConfig
from .pki import PKIFiles, create_pki

__all__ = ["ServerError", "MissingDependency", "PostgresServer", "MariaDBServer", "free_port"]

PAM_DIR = "/etc/pam.d"
PAM_PREFIX = "rdsgate-"
PAM_PYTHON_CANDIDATES = (
    "/lib/security/pam_python.so",
    "/usr/lib/security/pam_python.so",
    "/lib/x86_64-linux-gnu/security/pam_python.so",
    "/usr/lib/x86_64-linux-gnu/security/pam_python.so",
)


class ServerError(RuntimeError):
    """A local server failed to initialise, start or answer."""


class MissingDependency(ServerError):
    """A binary or file the local servers need is not installed."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _find(candidates: Iterable[str], apt_package: str, what: str) -> str:
    for path in candidates:
        if os.path.exists(path):
            return path
    raise MissingDependency(f"{what} not found (looked in {', '.join(candidates)}); apt-get install {apt_package}")


def _pg_bindir() -> str:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), reverse=True)
    found = [d for d in dirs if os.path.exists(os.path.join(d, "postgres"))]
    if not found:
        raise MissingDependency("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; apt-get install postgresql")
    return found[0]


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def _readable_by(path: str, user: str) -> bool:
    """Whether OS ``user`` (primary group only, as the servers run) can read ``path``."""
    entry = pwd.getpwnam(user)

    def allowed(p: str, bit: int) -> bool:
        st = os.stat(p)
        if st.st_uid == entry.pw_uid:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid == entry.pw_gid:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    parent = os.path.dirname(os.path.abspath(path))
    while True:
        if not allowed(parent, 1):
            return False
        if parent == os.path.dirname(parent):
            return allowed(path, 4)
        parent = os.path.dirname(parent)


def remove_stale_pam_services() -> None:
    """Delete /etc/pam.d/rdsgate-* files left by killed runs (their work folder is gone)."""
    for path in glob.glob(os.path.join(PAM_DIR, PAM_PREFIX + "*")):
        try:
            with open(path) as f:
                match = re.search(r"^# workdir: (\S+)$", f.read(), re.M)
            if match and not os.path.isdir(match.group(1)):
                os.unlink(path)
        except OSError:
            pass


class _LocalServer:
    """Shared lifecycle: work folder, TLS files, PAM service, process, admin SQL."""

    kind = "db"
    os_user = "nobody"
    _pam_runs_as_server_user = True  # False when a setuid helper runs PAM (MariaDB)

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        pki: PKIFiles | None = None,
        verifier: VerifierConfig | None = None,
        region: str = "us-east-1",
        extra_hostnames: Iterable[str] = (),
        base_dir: str | None = None,
        force_ssl: bool = True,
        iam: bool = True,
    ):
        self.host = host
        self.port = port
        self.region = region
        self.extra_hostnames = tuple(extra_hostnames)
        self.force_ssl = force_ssl
        self.iam = iam
        self.server_version: str | None = None
        self.workdir: str | None = None
        self.pam_service = f"{PAM_PREFIX}{self.kind}-{secrets.token_hex(4)}"
        self._base_dir = base_dir
        self._pki = pki
        self._verifier = verifier
        self._own_verifier = verifier is None
        self._proc: subprocess.Popen | None = None
        self._initialised = False
        self._as_root = os.geteuid() == 0
        self._run_as = self.os_user if self._as_root else None

    # -- public API ---------------------------------------------------------

    @property
    def ca_file(self) -> str:
        return self.pki.ca_cert

    @property
    def pki(self) -> PKIFiles:
        if self._pki is None:
            raise ServerError("server not started")
        return self._pki

    @property
    def verifier(self) -> VerifierConfig:
        if self._verifier is None:
            raise ServerError("server not started")
        return self._verifier

    @property
    def endpoints(self) -> list[str]:
        """host:port values an IAM token may name (all covered by the certificate)."""
        names = dict.fromkeys(["localhost", "127.0.0.1", self.host, *self.extra_hostnames])
        return [f"{n}:{self.port}" for n in names]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def trust(self, access_key_id: str, secret_access_key: str, session_token: str | None = None) -> None:
        """Accept IAM tokens signed with these credentials (shortcut for ``verifier.trust``)."""
        self.verifier.trust(access_key_id, secret_access_key, session_token)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA (hostname checking on)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def start(self) -> "_LocalServer":
        if self.running:
            return self
        atexit.register(self.stop)
        try:
            if not self._initialised:
                self._initialised = True
                self._prepare()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete everything it created (work folder, PAM service)."""
        atexit.unregister(self.stop)
        try:
            self._terminate()
        finally:
            if self.iam:
                self._remove_pam_service()
            if self._verifier is not None and not self._own_verifier and self.port:
                for entry in self.endpoints:
                    host, _, port = entry.rpartition(":")
                    self._verifier.remove_endpoint(host, int(port))
            if self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            self._initialised = False
            if self._own_verifier:
                self._verifier = None

    def restart(self) -> None:
        """Stop and start the server process: same port, same data, same users."""
        if not self._initialised:
            raise ServerError("restart() before start()")
        self._terminate()
        self._launch()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- lifecycle internals -------------------------------------------------

    def _prepare(self) -> None:
        if self.iam and not self._as_root:
            raise ServerError(f"IAM auth needs root: it writes {PAM_DIR}/{self.pam_service} (or pass iam=False)")
        self.port = self.port or free_port(self.host)
        self.workdir = tempfile.mkdtemp(prefix=f"rdsgate-{self.kind}-", dir=self._base_dir)
        os.chmod(self.workdir, 0o755)  # the server user must traverse it
        for sub in ("tls", "data", "run"):
            self._mkdir(sub, owned=True)
        if self._pki is None:
            self._pki = create_pki(self._path("pki"), extra_names=[self.host, *self.extra_hostnames])
        # Copy the key pair (and CA) so the server user owns private copies it can reach.
        copies = (
            (self._pki.ca_cert, "ca.pem", 0o644),
            (self._pki.server_cert, "server.pem", 0o644),
            (self._pki.server_key, "server.key", 0o600),
        )
        for src, name, mode in copies:
            dst = self._path("tls", name)
            shutil.copyfile(src, dst)
            os.chmod(dst, mode)
            self._chown(dst)
        if self.iam:
            self._install_pam_service()
        self._init_data()

    def _install_pam_service(self) -> None:
        remove_stale_pam_services()
        pam_python = _find(PAM_PYTHON_CANDIDATES, "libpam-python", "pam_python.so")
        pam_dir = self._mkdir("pam", owned=False)
        module = os.path.join(pam_dir, "iam_verifier.py")
        shutil.copyfile(iam_verifier.__file__, module)  # a world-readable copy, whatever the checkout's perms
        os.chmod(module, 0o644)
        if self._verifier is None:
            self._verifier = VerifierConfig(os.path.join(pam_dir, "verifier.json"), region=self.region)
        for entry in self.endpoints:
            host, _, port = entry.rpartition(":")
            self._verifier.add_endpoint(host, int(port))
        if self._pam_runs_as_server_user and self._run_as and not _readable_by(self._verifier.path, self._run_as):
            raise ServerError(
                f"{self._verifier.path} is not readable by OS user {self._run_as}: keep a shared verifier "
                "config in a folder every server user can traverse (pytest's tmp_path is 0700)"
            )
        if any(c.isspace() for c in module + self._verifier.path):
            raise ServerError("PAM arguments cannot contain whitespace; use a base_dir without spaces")
        with open(os.path.join(PAM_DIR, self.pam_service), "w") as f:
            f.write(
                f"# Written by rdsgate_local; removed when the server stops.\n# workdir: {self.workdir}\n"
                f"auth    required {pam_python} {module} {self._verifier.path}\n"
                "account required pam_permit.so\n"
            )

    def _remove_pam_service(self) -> None:
        try:
            os.unlink(os.path.join(PAM_DIR, self.pam_service))
        except FileNotFoundError:
            pass

    def _launch(self) -> None:
        log = open(self._path("server.log"), "ab")
        self._chown(log.name)  # MariaDB reopens it as log-error
        try:
            self._proc = subprocess.Popen(
                self._server_command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir, env=self._env(), start_new_session=True, **self._user_kwargs(),
            )
        finally:
            log.close()
        deadline = time.monotonic() + 60
        while True:
            if self._proc.poll() is not None:
                raise ServerError(f"{self.kind} exited with {self._proc.returncode}:\n{_tail(self._path('server.log'))}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self._terminate()
                raise ServerError(f"{self.kind} did not start in 60s:\n{_tail(self._path('server.log'))}")
            time.sleep(0.02)
        self._after_start()

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self._stop_signal)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        # Children (backends, auth helpers) share the session's process group.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

    # -- helpers for subclasses ------------------------------------------------

    _stop_signal = signal.SIGTERM

    def _path(self, *parts: str) -> str:
        assert self.workdir is not None
        return os.path.join(self.workdir, *parts)

    def _mkdir(self, name: str, *, owned: bool) -> str:
        path = self._path(name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o700 if owned else 0o755)
        if owned:
            self._chown(path)
        return path

    def _chown(self, path: str) -> None:
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _user_kwargs(self) -> dict[str, Any]:
        if not self._run_as:
            return {}
        entry = pwd.getpwnam(self._run_as)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        # A clean environment: nothing from pyenv/PYTHONPATH leaks into pam_python.
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TZ": "UTC", "HOME": self._path("run")}

    def _run(self, cmd: list[str], what: str) -> None:
        result = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=self.workdir, env=self._env(), **self._user_kwargs(),
        )
        if result.returncode != 0:
            raise ServerError(f"{what} failed ({result.returncode}):\n{result.stdout.decode(errors='replace')[-3000:]}")

    # -- per-engine hooks --------------------------------------------------------

    def _init_data(self) -> None:
        raise NotImplementedError

    def _server_command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _after_start(self) -> None:
        raise NotImplementedError


class PostgresServer(_LocalServer):
    """PostgreSQL: ``rds_iam`` members log in only over TLS with an IAM token (PAM)."""

    kind = "postgres"
    os_user = "postgres"
    superuser = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back, checkpoint, exit

    def _init_data(self) -> None:
        self._bindir = _pg_bindir()
        self._run(
            [os.path.join(self._bindir, "initdb"), "-D", self._path("data"), "-U", self.superuser, "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            "initdb",
        )
        hba = self._path("pg_hba.conf")
        nossl = "reject" if self.force_ssl else "scram-sha-256"
        with open(hba, "w") as f:
            # First match wins. "+rds_iam" = members of role rds_iam, as on RDS.
            f.write(
                "# TYPE  DATABASE USER      ADDRESS METHOD\n"
                f"local   all      {self.superuser}           trust\n"
                "local   all      all                reject\n"
                + (f"hostssl all      +rds_iam  all     pam pamservice={self.pam_service}\n" if self.iam else "")
                + "host    all      +rds_iam  all     reject\n"
                "hostssl all      all       all     scram-sha-256\n"
                f"host    all      all       all     {nossl}\n"
            )
        os.chmod(hba, 0o644)

    def _server_command(self) -> list[str]:
        settings = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": self._path("run"),
            "hba_file": self._path("pg_hba.conf"),
            "ssl": "on",
            "ssl_cert_file": self._path("tls", "server.pem"),
            "ssl_key_file": self._path("tls", "server.key"),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "minimal",
            "max_wal_senders": 0,
            "shared_buffers": "32MB",
            "max_connections": 50,
            "jit": "off",
            "log_connections": "on",
            "logging_collector": "off",
        }
        cmd = [os.path.join(self._bindir, "postgres"), "-D", self._path("data")]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _ready(self) -> bool:
        # Line 8 of postmaster.pid turns to "ready" once connections are accepted.
        try:
            with open(self._path("data", "postmaster.pid")) as f:
                lines = f.read().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _after_start(self) -> None:
        self.server_version = self.execute("SHOW server_version")[0][0]
        self.execute("DO $$BEGIN CREATE ROLE rds_iam NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$")

    # -- admin ---------------------------------------------------------------

    def connect_admin(self, database: str = "postgres"):
        """A pg8000.native connection as the superuser over the unix socket."""
        import pg8000.native

        return pg8000.native.Connection(
            self.superuser, database=database, unix_sock=self._path("run", f".s.PGSQL.{self.port}")
        )

    def execute(self, sql: str, params: dict | None = None, *, database: str = "postgres") -> list:
        """Run one statement as superuser; ``params`` bind ``:name`` placeholders. Returns the rows."""
        conn = self.connect_admin(database)
        try:
            return conn.run(sql, **(params or {})) or []
        finally:
            conn.close()

    @staticmethod
    def ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    @staticmethod
    def literal(value: str) -> str:
        if "\0" in value:
            raise ValueError("NUL in literal")
        return "'" + value.replace("'", "''") + "'"

    def create_iam_user(self, name: str) -> None:
        """A login role that can only authenticate with an IAM token over TLS (member of rds_iam)."""
        self.execute(f"CREATE ROLE {self.ident(name)} LOGIN")
        self.execute(f"GRANT rds_iam TO {self.ident(name)}")

    def create_password_user(self, name: str, password: str) -> None:
        """A login role with a SCRAM password (TLS required unless force_ssl=False)."""
        self.execute(f"CREATE ROLE {self.ident(name)} LOGIN PASSWORD {self.literal(password)}")

    def create_database(self, name: str, owner: str | None = None) -> None:
        owner_sql = f" OWNER {self.ident(owner)}" if owner else ""
        self.execute(f"CREATE DATABASE {self.ident(name)}{owner_sql}")

    def grant_all(self, user: str, database: str) -> None:
        """Let ``user`` connect to ``database`` and create/use objects in its public schema."""
        self.execute(f"GRANT ALL PRIVILEGES ON DATABASE {self.ident(database)} TO {self.ident(user)}")
        self.execute(f"GRANT ALL ON SCHEMA public TO {self.ident(user)}", database=database)


class MariaDBServer(_LocalServer):
    """MariaDB: IAM users are ``IDENTIFIED VIA pam`` and ``REQUIRE SSL``; the client sends the token in clear text."""

    kind = "mariadb"
    os_user = "mysql"
    _pam_runs_as_server_user = False  # auth_pam_tool is setuid root
    admin_user = "rdsgate_admin"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._admin_password = secrets.token_urlsafe(24)

    def _init_data(self) -> None:
        self._mariadbd = _find(("/usr/sbin/mariadbd", "/usr/sbin/mysqld"), "mariadb-server", "mariadbd")
        install = _find(("/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"), "mariadb-server", "mariadb-install-db")
        if self.iam:
            _find(("/usr/lib/mysql/plugin/auth_pam.so",), "mariadb-server", "MariaDB auth_pam plugin")
        cnf = self._path("my.cnf")
        settings = {
            "datadir": self._path("data"),
            "socket": self._path("run", "mysqld.sock"),
            "pid-file": self._path("run", "mysqld.pid"),
            "port": self.port,
            "bind-address": self.host,
            "log-error": self._path("server.log"),
            "skip-name-resolve": "ON",  # client host is the IP, so 'user'@'%' matches 127.0.0.1
            "ssl-ca": self._path("tls", "ca.pem"),
            "ssl-cert": self._path("tls", "server.pem"),
            "ssl-key": self._path("tls", "server.key"),
            "character-set-server": "utf8mb4",
            "collation-server": "utf8mb4_general_ci",
            "max-connections": 50,
            "performance-schema": "OFF",
            "skip-log-bin": "ON",
            "innodb-buffer-pool-size": "32M",
            "innodb-log-file-size": "8M",
            "innodb-flush-log-at-trx-commit": 0,
            "innodb-doublewrite": 0,
            "innodb-flush-method": "nosync",
            "innodb-use-native-aio": 0,
            "init-file": self._path("run", "init.sql"),
        }
        if self.iam:
            # auth_pam (v2) runs PAM in the setuid helper auth_pam_tool_dir/auth_pam_tool,
            # so pam_python runs as root there. With pam_use_cleartext_plugin the server
            # asks the client to switch to mysql_clear_password (as RDS MySQL does) and
            # the password given to PAM's conversation is the whole token (no 511-char cap).
            settings.update({"plugin-load-add": "auth_pam", "pam-use-cleartext-plugin": "ON"})
        with open(cnf, "w") as f:
            f.write("[mariadbd]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        os.chmod(cnf, 0o644)
        self._write_init_file()
        cmd = [install, f"--defaults-file={cnf}", "--auth-root-authentication-method=socket", "--skip-test-db"]
        if self._run_as:
            cmd.append(f"--user={self._run_as}")
        # install-db runs the server in bootstrap mode with the [mariadbd] group of cnf.
        self._run([c for c in cmd], "mariadb-install-db")

    def _write_init_file(self) -> None:
        # Runs at every start before connections are accepted: (re)creates the admin
        # login used by execute() (unix socket only) and drops anonymous accounts,
        # which would otherwise shadow 'user'@'%'.
        admin = f"'{self.admin_user}'@'localhost'"
        path = self._path("run", "init.sql")
        with open(path, "w") as f:
            f.write(
                f"CREATE USER IF NOT EXISTS {admin} IDENTIFIED BY '{self._admin_password}';\n"
                f"GRANT ALL PRIVILEGES ON *.* TO {admin} WITH GRANT OPTION;\n"
                "DELETE FROM mysql.global_priv WHERE User = '';\n"
                "FLUSH PRIVILEGES;\n"
            )
        os.chmod(path, 0o600)
        self._chown(path)

    def _server_command(self) -> list[str]:
        return [self._mariadbd, f"--defaults-file={self._path('my.cnf')}"]

    def _ready(self) -> bool:
        if not os.path.exists(self._path("run", "mysqld.sock")):
            return False
        try:
            self.connect_admin().close()
            return True
        except Exception:  # noqa: BLE001 - not accepting connections yet
            return False

    def _after_start(self) -> None:
        self.server_version = self.execute("SELECT VERSION()")[0][0]

    # -- admin ---------------------------------------------------------------

    def connect_admin(self, database: str | None = None):
        """A PyMySQL connection (autocommit) as the admin user over the unix socket."""
        import pymysql

        return pymysql.connect(
            unix_socket=self._path("run", "mysqld.sock"), user=self.admin_user, password=self._admin_password,
            database=database, autocommit=True, connect_timeout=5,
        )

    def execute(self, sql: str, params: Any = None, *, database: str | None = None) -> list:
        """Run one statement as admin; ``params`` bind ``%s`` placeholders. Returns the rows."""
        conn = self.connect_admin(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    @staticmethod
    def ident(name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    @staticmethod
    def literal(value: str) -> str:
        from pymysql.converters import escape_string

        return "'" + escape_string(value) + "'"

    def account(self, name: str) -> str:
        return f"{self.literal(name)}@'%'"

    def create_iam_user(self, name: str) -> None:
        """``'name'@'%'`` authenticated by PAM (token verifier) and only over TLS."""
        self.execute(
            f"CREATE USER {self.account(name)} IDENTIFIED VIA pam USING {self.literal(self.pam_service)} REQUIRE SSL"
        )

    def create_password_user(self, name: str, password: str) -> None:
        """``'name'@'%'`` with a password (REQUIRE SSL unless force_ssl=False)."""
        require = " REQUIRE SSL" if self.force_ssl else ""
        self.execute(f"CREATE USER {self.account(name)} IDENTIFIED BY {self.literal(password)}{require}")

    def create_database(self, name: str, owner: str | None = None) -> None:
        self.execute(f"CREATE DATABASE {self.ident(name)}")
        if owner:
            self.grant_all(owner, name)

    def grant_all(self, user: str, database: str) -> None:
        self.execute(f"GRANT ALL PRIVILEGES ON {self.ident(database)}.* TO {self.account(user)}")
