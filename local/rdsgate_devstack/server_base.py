"""Lifecycle shared by the local database servers: work folder, TLS files, PAM service, process, stop.

What they need of the machine (ports, programs, stale clean-up) is ``server_host``."""

from __future__ import annotations

import atexit
import json
import os
import pwd
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from typing import Any, Iterable

from . import iam_verifier
from .iam_verifier import VerifierConfig
from .pki import PKIFiles, create_pki
from .server_host import (OWNER_FILE, PAM_DIR, PAM_PREFIX, PAM_PYTHON_CANDIDATES, ServerError, cleanup_stale,
                          default_base_dir, find, free_port, log_tail, process_start_time, readable_by,
                          remove_stale_pam_services)

__all__ = ["LocalServer"]


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
        if self._pam_runs_as_server_user and self._run_as and not readable_by(self._verifier.path, self._run_as):
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
                raise ServerError(f"{self.kind} exited with {self._proc.returncode}:\n{log_tail(self._path('server.log'))}")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self._terminate()
                raise ServerError(f"{self.kind} did not start in 60s:\n{log_tail(self._path('server.log'))}")
            time.sleep(0.02)
        self._after_start()

    def _write_owner(self) -> None:
        # Lets cleanup_stale() in a later run recognise this folder once we are gone.
        with open(self._path(OWNER_FILE), "w") as f:
            json.dump({"owner_pid": os.getpid(), "owner_start": process_start_time(os.getpid()), "server_pid": self.pid}, f)

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
