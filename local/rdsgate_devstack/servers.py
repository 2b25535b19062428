"""Run real PostgreSQL / MariaDB servers on loopback with TLS and RDS-style IAM token auth through PAM.

Usage (root is needed for IAM: the PAM service goes to /etc/pam.d)::

    with PostgresServer(extra_hostnames=["db.xxxx.us-east-1.rds.amazonaws.com"]) as pg:
        pg.trust("ASIA...", "secret", "session-token")   # credentials tokens may be signed with
        pg.create_iam_user("app")                           # login only via IAM token over TLS
        pg.create_password_user("static", "pw")             # SCRAM password over TLS
        pg.create_database("appdb"); pg.grant_all("app", "appdb")
        token = boto3.client("rds", ...).generate_db_auth_token("localhost", pg.port, "app", "us-east-1")
        pg8000.native.Connection("app", host="localhost", port=pg.port, password=token,
                                 ssl_context=ssl.create_default_context(cafile=pg.ca_file))

Facts found on Debian 12 (PostgreSQL 15, MariaDB 10.11, libpam-python 1.1.0):

* pam_python.so is installed in /lib/security, outside Linux-PAM's module dir
  (/lib/x86_64-linux-gnu/security), so service files name it by absolute path.
* PostgreSQL runs PAM inside the backend (OS user postgres): the verifier module
  and its config must be readable by postgres (we copy the module into the work
  folder). pam_python's embedded interpreter leaves the backend's signal
  handlers alone (pg_cancel_backend still works after a PAM login).
* MariaDB's auth_pam (v2) runs PAM in the setuid-root helper
  /usr/lib/mysql/plugin/auth_pam_tool_dir/auth_pam_tool (folder mysql-owned,
  0700): works with mariadbd running as mysql. With pam_use_cleartext_plugin=ON
  the server switches the client to mysql_clear_password, as RDS MySQL does;
  PyMySQL answers that switch with the raw password even on a plain-TCP
  connection (libmysqlclient needs --enable-cleartext-plugin), so IAM accounts
  are REQUIRE SSL. Both servers hand PAM the whole ~1.2 kB token.
* Client TLS defaults: pg8000 1.31 treats ``ssl_context=None`` as "prefer"
  (unverified TLS if offered; ``False`` = plain TCP), and PyMySQL >= 1.1.2
  without ssl options tries unverified TLS (``ssl_disabled=True`` = plain TCP).
* initdb / mariadb-install-db take ~0.3 s on tmpfs but ~1 s on this disk, hence
  work folders in /dev/shm by default (see ``default_base_dir``).
"""

from __future__ import annotations

import os
import secrets
import signal
from typing import Any

from .server_base import LocalServer
from .server_host import (  # noqa: F401 - re-exported for callers
    PAM_DIR,
    MissingDependency,
    ServerError,
    cleanup_stale,
    default_base_dir,
    find,
    free_port,
    pg_bindir,
)

__all__ = [
    "PAM_DIR", "LocalServer", "MariaDBServer", "MissingDependency", "PostgresServer", "ServerError",
    "cleanup_stale", "default_base_dir", "find", "free_port",
]


class PostgresServer(LocalServer):
    """PostgreSQL: ``rds_iam`` members log in only over TLS with an IAM token (PAM)."""

    kind = "postgres"
    os_user = "postgres"
    superuser = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back, checkpoint, exit

    def _init_data(self) -> None:
        self._bindir = pg_bindir()
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


AUTH_PAM_TOOL = "/usr/lib/mysql/plugin/auth_pam_tool_dir/auth_pam_tool"


class MariaDBServer(LocalServer):
    """MariaDB: IAM users are ``IDENTIFIED VIA pam`` and ``REQUIRE SSL``; the client sends the token in clear text."""

    kind = "mariadb"
    os_user = "mysql"
    _pam_runs_as_server_user = False  # auth_pam_tool is setuid root
    admin_user = "rdsgate_admin"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._admin_password = secrets.token_urlsafe(24)

    def _init_data(self) -> None:
        self._mariadbd = find(("/usr/sbin/mariadbd", "/usr/sbin/mysqld"), "mariadb-server", "mariadbd")
        install = find(("/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"), "mariadb-server", "mariadb-install-db")
        if self.iam:
            find(("/usr/lib/mysql/plugin/auth_pam.so",), "mariadb-server", "MariaDB auth_pam plugin")
            tool = find((AUTH_PAM_TOOL,), "mariadb-server", "MariaDB auth_pam_tool")
            if self._as_root and not os.stat(tool).st_mode & 0o4000:
                raise MissingDependency(f"{tool} is not setuid root; apt-get install --reinstall mariadb-server")
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
        self._run(cmd, "mariadb-install-db")

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
