"""What the browser tests share: `rdsgate serve` as a process, Chromium's settings, and the page's guards."""

from __future__ import annotations

import os
import subprocess
from urllib.parse import urlsplit

from tests.local_processes import ROOT, Printing, child_environment, rdsgate  # noqa: F401 - ROOT for conftest

CHROMIUM = os.environ.get("RDSGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
START_TIMEOUT_S = 90
PAGE_TIMEOUT_MS = 10_000


class Serve(Printing):
    """One `rdsgate serve` process; stopped with SIGTERM (its clean shutdown), killed if that hangs."""

    name = "rdsgate serve"

    def __init__(self, *args: str) -> None:
        super().__init__(rdsgate("serve", "--port", "0", "--no-mysql", *args), child_environment())

    def wait_started(self) -> Serve:
        self.wait_for("Ctrl-C stops everything", timeout=START_TIMEOUT_S)
        self.url = self.find(r"API\s+(http://\S+)")
        return self

    def credentials_file(self) -> str:
        return self.find(r"AWS_SHARED_CREDENTIALS_FILE=(\S+)")

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
