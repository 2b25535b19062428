"""What the local database servers need of this machine: free ports, installed programs, a work folder's place,
and the clean-up of what a killed run left behind (servers, work folders, PAM services).

``server_base.LocalServer`` runs one server on top of these; nothing here starts a server.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import tempfile
from typing import Iterable

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


def log_tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def readable_by(path: str, user: str) -> bool:
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


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat: tells a live process from a reused PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_cmdline(pid: int) -> str:
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
                if process_start_time(owner["owner_pid"]) == owner["owner_start"]:
                    continue
            except (OSError, ValueError, KeyError, TypeError):
                continue
            server_pid = owner.get("server_pid")
            if server_pid and workdir + "/" in process_cmdline(server_pid):
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
