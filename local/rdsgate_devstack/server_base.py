"""Lifecycle shared by the local database servers: work folder, TLS files, PAM service, process, clean-up."""

from __future__ import annotations

import atexit
import glob
import json
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

__all__ = ["LocalServer", "MissingDependency", "ServerError", "cleanup_stale", "default_base_dir", "free_port"]

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


def find(candidates: Iterable[str], apt_package: str, what: str) -> str:
    for path in candidates:
        if os.path.exists(path):
            return path
    raise MissingDependency(f"{what} not found (looked in {', '.join(candidates)}); apt-get install {apt_package}")


def pg_bindir() -> str:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), reverse=True)
    found = [d for d in dirs if os.path.exists(os.path.join(d, "postgres"))]
    if not found:
        raise MissingDependency("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin; apt-get install postgresql")
    return found[0]


def default_base_dir() -> str:
    """Where work folders go: $RDSGATE_LOCAL_TMPDIR, else tmpfs /dev/shm (initdb and
    mariadb-install-db run ~3x faster there than on disk), else the temp dir."""
    chosen = os.environ.get("RDSGATE_LOCAL_TMPDIR")
    if chosen:
        return chosen
    try:
        st = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize > 2 * 1024**3:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


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


OWNER_FILE = "owner.json"


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a live process from a reused PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cleanup_stale(base_dirs: Iterable[str] | None = None) -> list[str]:
    """Stop servers and delete work folders left by a Python process that died without stop().

    A work folder is stale when the process recorded in its owner.json is gone.
    Its server is killed only if that PID's command line names the work folder,
    so nothing but a server this module started is ever signalled.
    """
    removed = []
    for base in dict.fromkeys(base_dirs or (default_base_dir(), tempfile.gettempdir())):
        for workdir in glob.glob(os.path.join(base, "rdsgate-*-*")):
            try:
                with open(os.path.join(workdir, OWNER_FILE)) as f:
                    owner = json.load(f)
                if _start_time(owner["owner_pid"]) == owner["owner_start"]:
                    continue
            except (OSError, ValueError, KeyError, TypeError):
                continue
            server_pid = owner.get("server_pid")
            if server_pid and workdir + "/" in _cmdline(server_pid):
                try:
                    os.killpg(server_pid, signal.SIGKILL)  # a session leader: takes its backends along
                except (ProcessLookupError, PermissionError):
                    pass
            shutil.rmtree(workdir, ignore_errors=True)
            removed.append(workdir)
    remove_stale_pam_services()
    return removed


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


class LocalServer:
    """Shared lifecycle: work folder, TLS files, PAM service, process, admin SQL.

    host/port: where to listen (port: a free one by default, kept by restart()).
    pki: a CA + server certificate to use (default: a new one in the work folder,
      whose SAN covers localhost, 127.0.0.1, ::1, host and extra_hostnames).
    verifier: a shared VerifierConfig (default: a new one in the work folder);
      start() adds this server's endpoints to it, stop() removes them. For
      PostgreSQL its file must be readable by OS user postgres.
    region: region of a new verifier config. extra_hostnames: further names IAM
      tokens may be signed for (e.g. an RDS endpoint name). base_dir: parent of
      the work folder (default ``default_base_dir()``). force_ssl: refuse
      non-TLS logins for every user (IAM users always need TLS). iam=False: no
      PAM (works without root).
    """

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
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> str:
        """Server log; the PAM verifier writes its rejection reasons here too."""
        return self._path("server.log")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def trust(self, access_key_id: str, secret_access_key: str, session_token: str | None = None) -> None:
        """Accept IAM tokens signed with these credentials (shortcut for ``verifier.trust``)."""
        self.verifier.trust(access_key_id, secret_access_key, session_token)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's CA (hostname checking on)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def start(self) -> "LocalServer":
        if self.running:
            return self
        atexit.register(self.stop)
        try:
            if not self._initialised:
                self._initialised = True
                cleanup_stale({default_base_dir(), tempfile.gettempdir(), self._base_dir or default_base_dir()})
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
        self.workdir = tempfile.mkdtemp(prefix=f"rdsgate-{self.kind}-", dir=self._base_dir or default_base_dir())
        os.chmod(self.workdir, 0o755)  # the server user must traverse it
        self._write_owner()
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
        pam_python = find(PAM_PYTHON_CANDIDATES, "libpam-python", "pam_python.so")
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
                f"# Written by rdsgate_devstack; removed when the server stops.\n# workdir: {self.workdir}\n"
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
        self._write_owner()
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

    def _write_owner(self) -> None:
        # Lets cleanup_stale() in a later run recognise this folder once we are gone.
        with open(self._path(OWNER_FILE), "w") as f:
            json.dump({"owner_pid": os.getpid(), "owner_start": _start_time(os.getpid()), "server_pid": self.pid}, f)

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
