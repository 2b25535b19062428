"""The web console's background statements in headless Chromium against `rdsgate serve`: run, status, the first
page, download from S3, cancel, and a failure."""

from __future__ import annotations

import gzip
import hashlib
import json

from test_console import open_console, write_sql

ROWS = 1000  # the demo definition's max_rows
PAGE = 300
EXPORT = f"select g as n, md5(g::text) as h from generate_series(1, {ROWS}) g order by g"


def run_in_background(page, sql):
    write_sql(page, sql)
    page.click("[data-testid=run-async]")


def test_a_statement_runs_in_the_background_shows_its_first_page_and_downloads_whole(page, server, tmp_path):
    open_console(page, server)
    page.fill("#max-rows", str(PAGE))  # the grid shows this many; the result keeps every row
    run_in_background(page, EXPORT)
    summary = page.wait_for_selector("[data-testid=result-summary]", timeout=60_000)
    assert summary.inner_text() == f"{ROWS} rows", page.inner_text("#status")
    assert f"the first {PAGE} shown" in page.inner_text("[data-testid=statement-size]")
    assert page.locator("table.grid tbody tr").count() == PAGE  # the first page, as many as Max rows
    first = page.eval_on_selector("table.grid tbody tr", "r => [...r.cells].slice(1).map(c => c.textContent)")
    assert first == ["1", hashlib.md5(b"1").hexdigest()]
    assert page.is_hidden("[data-testid=cancel-statement]")
    with page.expect_download() as info:
        page.click("[data-testid=download-statement]")
    download = info.value
    assert download.suggested_filename.endswith(".jsonl.gz")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    lines = gzip.decompress(target.read_bytes()).decode().splitlines()
    assert [json.loads(line) for line in lines] == [[n, hashlib.md5(str(n).encode()).hexdigest()] for n in range(1, ROWS + 1)]


def test_a_background_statement_can_be_cancelled(page, server):
    open_console(page, server)
    run_in_background(page, "select pg_sleep(30) is null as slept")
    page.wait_for_selector("[data-testid=cancel-statement]:not([hidden])", timeout=20_000)
    page.click("[data-testid=cancel-statement]")
    page.wait_for_selector("#status.error", timeout=5_000)  # the page's CSP allows no string evaluation
    assert page.inner_text("#status").startswith("Cancelled")
    assert page.is_hidden("[data-testid=cancel-statement]") and page.is_hidden("[data-testid=download-statement]")
    assert page.is_enabled("[data-testid=run-async]")


def test_a_failed_background_statement_shows_the_database_error(page, server):
    open_console(page, server)
    run_in_background(page, "select * from no_such_table")
    page.wait_for_selector("[data-testid=error]:not([hidden])", timeout=30_000)
    assert page.inner_text("[data-testid=error-code]") == "SqlError"
    assert "no_such_table" in page.inner_text("[data-testid=error-message]")
    assert page.inner_text("[data-testid=error-sqlstate]") == "42P01"
