"""What the browser tests share: `rdsgate serve` as a process, Chromium's settings, and the page's guards."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from tests import local_processes
from tests.local_processes import ROOT  # noqa: F401 - ROOT for conftest

CHROMIUM = os.environ.get("RDSGATE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAGE_TIMEOUT_MS = 10_000


class Serve(local_processes.Serve):
    """One `rdsgate serve --no-mysql` process, not waited for: conftest starts two side by side, then waits."""

    def __init__(self, *args: str) -> None:
        super().__init__("--no-mysql", *args, wait=False)


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
