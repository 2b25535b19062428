"""The web console in a real browser: headless Chromium (Debian's `chromium`) driven by Playwright for Python,
against `rdsgate serve` run as a person runs it (a separate process, PostgreSQL only, any free port).

Skipped, with the reason, where Playwright or Chromium is missing or `rdsgate serve` cannot run (it needs root
for its PAM service). Screenshots go to build/test-output/browser/ (or $RDSGATE_TEST_OUTPUT), which git ignores.
"""

from __future__ import annotations

import configparser
import os
import pathlib
import shutil
from typing import Iterator

import pytest

from browser_helpers import CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, ROOT, PageLog, Serve, keep_on_loopback


def _requirements() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.geteuid() != 0:
        return "rdsgate serve needs root (its IAM verifier is a PAM service)"
    if shutil.which("pg_ctl") is None and not list(pathlib.Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        return "PostgreSQL is not installed"
    return None


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, Serve]]:
    """`rdsgate serve` twice, started side by side: unsigned (the default) and with --auth sigv4."""
    missing = _requirements()
    if missing:
        pytest.skip(missing)
    started = {"none": Serve(), "sigv4": Serve("--auth", "sigv4")}
    try:
        for serve in started.values():
            serve.wait_started()
        yield started
    finally:
        for serve in started.values():
            serve.shutdown()


@pytest.fixture(scope="session")
def server(servers) -> Serve:
    return servers["none"]


@pytest.fixture(scope="session")
def signed_server(servers) -> Serve:
    return servers["sigv4"]


@pytest.fixture(scope="session")
def caller_credentials(signed_server) -> dict[str, str]:
    """The session credentials `rdsgate serve --auth sigv4` wrote for its caller role."""
    parser = configparser.ConfigParser()
    parser.read(signed_server.credentials_file())
    return dict(parser["rdsgate-local"])


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                             timeout=30_000)  # fmt: skip
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh browser context per test: empty storage, so history and drafts start empty; downloads allowed."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    keep_on_loopback(context)
    page = context.new_page()
    page.log = PageLog(page)
    yield page
    blocked = context.blocked
    context.close()
    assert blocked == [], f"the page asked for hosts off this machine: {blocked}"


@pytest.fixture(scope="session")
def output_dir() -> pathlib.Path:
    """Where screenshots go: build/test-output/browser (git ignores build/), or $RDSGATE_TEST_OUTPUT."""
    folder = pathlib.Path(os.environ.get("RDSGATE_TEST_OUTPUT") or ROOT / "build" / "test-output") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
