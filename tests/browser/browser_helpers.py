"""What the browser tests share: `rdsgate serve` as a process, Chromium's settings, and the page's guards."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RDSGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
START_TIMEOUT_S = 90
PAGE_TIMEOUT_MS = 10_000


class Serve:
    """One `rdsgate serve` process; stopped with SIGTERM (its clean shutdown), killed if that hangs."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RDSGATE_"))}
        env["PYTHONPATH"] = os.pathsep.join(str(ROOT / p) for p in ("functions", "local", "."))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rdsgate_cli", "serve", "--port", "0", "--no-mysql", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_started(self) -> Serve:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ctrl-C stops everything" not in self.text:
            if self.process.poll() is not None:
                raise AssertionError(f"rdsgate serve exited with {self.process.returncode}:\n{self.text}")
            assert time.monotonic() < deadline, f"rdsgate serve did not start within {START_TIMEOUT_S} s:\n{self.text}"
            time.sleep(0.05)
        self.url = re.search(r"API\s+(http://\S+)", self.text).group(1)
        return self

    def credentials_file(self) -> str:
        return re.search(r"AWS_SHARED_CREDENTIALS_FILE=(\S+)", self.text).group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)


class PageLog:
    """What the page did that a test may want to look at: errors in its scripts, and every URL it requested."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))


def keep_on_loopback(context) -> None:
    """Abort (and list in ``context.blocked``) any request for a host off this machine: the tests never leave it."""
    context.blocked = []

    def off_machine(url: str) -> bool:
        return urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1")

    def abort(route) -> None:
        context.blocked.append(route.request.url)
        route.abort()

    context.route(off_machine, abort)
