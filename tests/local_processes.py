"""`rdsgate serve` and `rdsgate connect` as child processes, as a person runs them, for the tests.

One place for what the integration tests share: the child's environment (none of the caller's
``AWS_*``/``RDSGATE_*`` variables, this checkout on ``PYTHONPATH``), the command (``python -m
rdsgate_cli``, not the installed script, so the checkout under test runs), reading what a process
prints, module-scoped fixtures of a stack and its tunnels, and asking the API directly.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any, Callable

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment without AWS or rdsgate settings, with the checkout on PYTHONPATH."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RDSGATE_"))}
    environment["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("functions", "local", "."))
    environment.update(extra)
    return environment


def rdsgate(*args: str) -> list[str]:
    """The command line of `rdsgate ARGS` from this checkout."""
    return [sys.executable, "-m", "rdsgate_cli", *args]


class Printing:
    """A child process whose output (standard output and error) is read into ``lines`` as it comes."""

    name = "the process"

    def __init__(self, command: list[str], environment: dict[str, str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True, env=environment, cwd=ROOT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, marker: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.text:
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.text}")
            assert time.monotonic() < deadline, f"{marker!r} not printed within {timeout} s:\n{self.text}"
            time.sleep(0.05)

    def find(self, pattern: str) -> str:
        match = re.search(pattern, self.text)
        assert match, f"{pattern!r} not in:\n{self.text}"
        return match.group(1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Serve(Printing):
    """One `rdsgate serve` process on a free port, and everything it printed.

    ``wait=False`` returns at once (to start several side by side); ``wait_started()`` then waits for it.
    """

    name = "rdsgate serve"
    START_TIMEOUT_S = 90

    def __init__(self, *args: str, wait: bool = True) -> None:
        super().__init__(rdsgate("serve", "--port", "0", *args), child_environment())
        if wait:
            self.wait_started()

    def wait_started(self) -> Serve:
        self.wait_for("Ctrl-C stops everything", timeout=self.START_TIMEOUT_S)
        self.url = self.find(r"API\s+(http://\S+)")
        self.folders = re.findall(r"\[(/\S+)\]", self.text)
        return self

    def credentials_file(self) -> str:
        """With --auth sigv4: the file holding the caller role's session credentials."""
        return self.find(r"AWS_SHARED_CREDENTIALS_FILE=(\S+)")

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code

    def shutdown(self) -> None:
        """Stopped with SIGTERM (its clean shutdown), killed if that hangs; nothing happens if it has exited."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)


class Tunnel(Printing):
    """One `rdsgate connect` process on a free port, and everything it printed."""

    name = "rdsgate connect"

    def __init__(self, connection: str, endpoint: str, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(rdsgate("connect", connection, "--endpoint", endpoint, "--port", "0", *args),
                         child_environment(AWS_EC2_METADATA_DISABLED="true", **(env or {})))
        self.wait_for("Ctrl-C stops the tunnel.", timeout=30)
        self.port = int(re.search(r" on 127\.0\.0\.1:(\d+),", self.text).group(1))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


def serve_fixture(*args: str) -> Any:
    """A module-scoped fixture: one `rdsgate serve ARGS` for the module's tests."""

    @pytest.fixture(scope="module")
    def serve():
        running = Serve(*args)
        yield running
        running.kill()

    return serve


def tunnel_fixture(connection: str, *args: str) -> Any:
    """A module-scoped fixture: one `rdsgate connect CONNECTION ARGS` in front of the module's ``serve``."""

    @pytest.fixture(scope="module")
    def tunnel(serve):
        running = Tunnel(connection, serve.url, *args)
        yield running
        running.kill()

    return tunnel


def api_records(serve: Any, connection: str, sql: str) -> list[list[Any]]:
    """Ask the API directly (not through a tunnel, outside any session): the records as arrays."""
    request = urllib.request.Request(f"{serve.url}/connections/{connection}/query", method="POST",
                                     data=json.dumps({"sql": sql, "shape": "arrays"}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response).get("records")  # None for a statement that returns no rows


def psql(tunnel: Tunnel, *args: str, input: str | None = None, password: str | None = None,
         options: str = "sslmode=disable") -> subprocess.CompletedProcess:
    """Debian's psql through a tunnel, as user ``tester`` of database ``demo``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGCONNECT_TIMEOUT="10", **({"PGPASSWORD": password} if password else {}))
    return subprocess.run(
        ["psql", "-X", "-w", f"host=127.0.0.1 port={tunnel.port} dbname=demo user=tester {options}", *args],
        input=input, capture_output=True, text=True, timeout=60, env=env)


def in_fresh_thread(run: Callable[[], Any]) -> Any:
    """``run()`` (an event loop's run) in a thread of its own: Playwright's sync API (the browser tests) keeps
    an event loop running in the main thread for the rest of the test session."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = run()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
