"""The console's Runbooks tab in headless Chromium against `rdsgate serve`: the demo's runbook, its form
generated from the parameter schema, a run, and a refusal naming the parameter."""

from __future__ import annotations

from test_console import grid, open_console


def test_the_runbooks_tab_runs_the_demo_runbook_from_its_form(page, server):
    open_console(page, server)
    page.click("#tab-runbooks")
    page.wait_for_selector("#runbook option[value=orders-by-status]", state="attached")
    assert page.is_hidden("#schema-panel") and page.is_visible("#runbooks-panel")
    assert "read-only" in page.inner_text("[data-testid=runbook-about]")
    options = page.eval_on_selector_all("[data-testid=runbook-param-status] option", "o => o.map(x => x.textContent)")
    assert options == ["placed", "shipped", "delivered", "cancelled"]  # the enum, as a select
    page.select_option("[data-testid=runbook-param-status]", label="shipped")
    page.click("[data-testid=runbook-run]")
    page.wait_for_selector("[data-testid=result-summary]")
    names, _, rows = grid(page)
    assert names == ["id", "customer", "quantity", "total", "status", "placed_at"]
    assert [row[1] for row in rows] == ["Grace Hopper"] and "runbook orders-by-status" in page.inner_text("#status")
    # Back to the schema tab: the runbooks panel hides again.
    page.click("#tab-schema")
    assert page.is_hidden("#runbooks-panel") and page.is_visible("#schema-panel")
