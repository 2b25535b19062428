"""The web console in headless Chromium against `rdsgate serve`: what a person does with it, click by click."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from browser_helpers import keep_on_loopback

ORDERS_SQL = (
    "select c.name, o.total, o.note, p.attributes, p.tags, o.placed_at\n"
    "from orders o join customers c on c.id = o.customer_id\n"
    "  left join products p on p.id = o.product_id\n"
    "where o.quantity >= :min_quantity and o.status <> :skipped\n"
    "order by o.id"
)


def open_console(page, server):
    page.goto(server.url + "/")
    page.wait_for_selector("#connection option[value=demo]", state="attached")
    page.wait_for_selector("#schema-tree li")  # the demo's schema has loaded: the page is ready
    return page


def write_sql(page, sql):
    """Replace the editor's text by typing, as a person does (input events, parameter detection)."""
    page.click("#sql")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(sql)


def run(page):
    page.keyboard.press("Control+Enter")  # marks the status "running" before it returns
    page.wait_for_selector("#status:not(.running)")


def grid(page):
    """The result grid as (column names, column types, rows of cell texts)."""
    names = page.locator("table.grid thead .col-name").all_inner_texts()
    types = page.locator("table.grid thead .col-type").all_inner_texts()
    rows = page.eval_on_selector_all(
        "table.grid tbody tr",
        "rows => rows.map(r => [...r.cells].slice(1).map(c => c.dataset.null ? null : c.querySelector('button.expand') "
        "? c.querySelector('button.expand').dataset.full : c.textContent))",
    )
    return names, types, rows


def test_the_page_lists_the_callers_connections_with_engine_and_read_only(page, server):
    open_console(page, server)
    assert page.title() == "rdsgate console"
    options = page.eval_on_selector_all("#connection option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [["demo", "demo — postgres"], ["demo-hoop", "demo-hoop — postgres"], ["demo-reviewed", "demo-reviewed — postgres"]]
    assert page.inner_text("[data-testid=engine]") == "postgres"
    assert page.inner_text("[data-testid=read-write]") == "read-write"
    # Everything the page loaded came from the local server: no CDN, no other host.
    assert {urlsplit(url).netloc for url in page.log.requests} == {urlsplit(server.url).netloc}
    assert page.log.errors == []


def test_select_1_runs_against_demo_with_no_setup(page, server):
    open_console(page, server)
    assert page.input_value("#sql") == "select 1"
    page.click("#run")
    page.wait_for_selector("table.grid")
    assert grid(page) == (["?column?"], ["int4"], [["1"]])
    assert page.inner_text("[data-testid=result-summary]").startswith("1 row · ")


def test_a_query_with_parameters_fills_the_grid_with_types_nulls_and_expandable_values(page, server, output_dir):
    open_console(page, server)
    page.select_option("#connection", "demo")
    write_sql(page, ORDERS_SQL)
    # The parameters come from the SQL, in order of appearance, each with an input.
    assert page.eval_on_selector_all("[data-param]", "inputs => inputs.map(i => i.dataset.param)") == [
        "min_quantity", "skipped"]  # fmt: skip
    page.fill("[data-param=min_quantity]", "1")  # JSON: sent as the number 1
    page.fill("[data-param=skipped]", "cancelled")  # not JSON: sent as the text 'cancelled'
    page.click("#sql")
    run(page)

    names, types, rows = grid(page)
    assert names == ["name", "total", "note", "attributes", "tags", "placed_at"]
    assert types == ["text", "numeric", "text", "jsonb", "_text", "timestamptz"]
    assert rows == [
        ["Ada Lovelace", "129.90", None, '{"layout":"ISO","switches":"brown"}', '["input","usb"]',
         "2026-01-05T10:00:00+00:00"],
        ["Grace Hopper", "45.00", "leave at the door", '{"pages":120}', '["paper"]', "2026-02-11T16:45:00+00:00"],
        ["Katherine Johnson", "89.00", None, None, "[]", "2026-03-01T08:05:00+00:00"],
    ]  # fmt: skip
    nulls = page.locator("table.grid td.null")
    assert nulls.count() == 3 and set(nulls.all_inner_texts()) == {"NULL"}
    assert page.locator("table.grid td.null").first.evaluate("td => getComputedStyle(td).fontStyle") == "italic"
    summary = page.inner_text("[data-testid=result-summary]")
    assert summary.startswith("3 rows · ") and summary.endswith(" ms")
    assert page.locator("[data-testid=truncated]").count() == 0
    page.locator("[data-testid=result]").screenshot(path=str(output_dir / "result-grid.png"))
    page.screenshot(path=str(output_dir / "console.png"))

    # A long value is cut, and expands in place.
    write_sql(page, "select repeat('abc', 100) as long_text, 'short' as short_text")
    run(page)
    cell = page.locator("table.grid td.long")
    assert cell.locator(".cell-text").inner_text() == ("abc" * 100)[:80]
    cell.locator("button.expand").click()
    assert cell.locator(".cell-text").inner_text() == "abc" * 100
    assert cell.locator("button.expand").inner_text() == "less"
    assert page.log.errors == []


def test_max_rows_sets_the_truncated_flag_and_type_hints_reach_the_server(page, server):
    open_console(page, server)
    write_sql(page, "select g, :day::text as day from generate_series(1, 10) g")
    page.fill("[data-param=day]", "2026-03-01")
    page.select_option("[data-hint=day]", "DATE")
    page.fill("#max-rows", "4")
    page.click("#sql")
    run(page)
    names, _, rows = grid(page)
    assert rows == [[str(g), "2026-03-01"] for g in range(1, 5)]
    assert page.inner_text("[data-testid=truncated]") == "truncated"
    assert page.inner_text("[data-testid=result-summary]").startswith("4 rows")


def test_a_failing_query_shows_code_sqlstate_and_message_in_the_error_panel(page, server):
    open_console(page, server)
    write_sql(page, "select * from no_such_table")
    run(page)
    panel = page.locator("[data-testid=error]")
    assert panel.is_visible()
    assert page.inner_text("[data-testid=error-code]") == "SqlError"
    assert page.inner_text("[data-testid=error-sqlstate]") == "42P01"
    assert 'relation "no_such_table" does not exist' in page.inner_text("[data-testid=error-message]")
    assert page.inner_text("[data-testid=error-status]") == "422"
    assert page.locator("table.grid").count() == 0
    assert page.is_disabled("[data-testid=download-csv]")

    # Refused before the database: the gateway's own code, with no SQLSTATE.
    write_sql(page, "select 1; select 2")
    run(page)
    assert page.inner_text("[data-testid=error-code]") == "InvalidRequest"
    assert page.locator("[data-testid=error-sqlstate]").count() == 0

    # A hint (as AuthenticationFailed carries) is shown under the message.
    page.evaluate("""async () => {
        const { renderError } = await import('/assets/results.js');
        renderError(document.getElementById('error'), {status: 502, error: {code: 'AuthenticationFailed',
            message: 'PAM authentication failed', sqlstate: '28000', hint: 'GRANT rds_iam TO the user'}});
    }""")
    assert page.inner_text("[data-testid=error-hint]") == "hint GRANT rds_iam TO the user"
    assert page.inner_text("[data-testid=error-sqlstate]") == "28000"
    # The run is recorded in the history with its outcome.
    page.click("#tab-history")
    assert page.locator("#history-list li .badge").first.inner_text() == "InvalidRequest"


def test_the_schema_tree_shows_tables_and_typed_columns_and_inserts_names(page, server):
    open_console(page, server)
    tables = page.locator("#schema-tree .tree-table > details > summary .name").all_inner_texts()
    assert tables == ["customers", "orders", "products"]
    assert page.inner_text("[data-testid=schema-status]") == "3 tables"
    page.click("#schema-tree summary:has-text('orders')")
    columns = page.eval_on_selector_all(
        "#schema-tree .tree-table:has(summary:has-text('orders')) .tree-column",
        "items => items.map(i => [i.querySelector('.name').textContent, i.querySelector('.type').textContent, "
        "Boolean(i.querySelector('.notnull'))])",
    )
    assert columns[:6] == [["id", "int8", True], ["customer_id", "int4", True], ["product_id", "int4", False],
                           ["quantity", "int2", True], ["total", "numeric", True], ["status", "order_status", True]]
    # The filter keeps the tables with a matching name or column.
    page.fill("#schema-filter", "deliver")
    assert page.locator("#schema-tree .tree-table").count() == 1
    assert page.locator("#schema-tree .tree-column .name").all_inner_texts() == ["deliver_on", "delivery_window"]
    # A click on a column writes its name at the caret.
    write_sql(page, "select  from orders")
    page.evaluate("document.getElementById('sql').setSelectionRange(7, 7)")
    page.click("#schema-tree .tree-column:has-text('deliver_on')")
    assert page.input_value("#sql") == "select deliver_on from orders"


def test_autocompletion_offers_the_schemas_tables_and_columns(page, server):
    open_console(page, server)
    write_sql(page, "select  from customers c")
    page.evaluate("document.getElementById('sql').setSelectionRange(7, 7)")
    page.keyboard.type("c.na")
    page.wait_for_selector("#completions:not([hidden])")
    assert page.locator("#completions li .label").all_inner_texts() == ["name"]
    page.keyboard.press("Tab")
    assert page.input_value("#sql") == "select c.name from customers c"
    # Bare words: the tables in the statement's columns first, then tables, keywords.
    page.keyboard.press("End")
    page.keyboard.type(" join prod")
    page.wait_for_selector("#completions:not([hidden])")
    assert page.locator("#completions li .label").first.inner_text() == "products"
    page.keyboard.press("Enter")
    assert page.input_value("#sql") == "select c.name from customers c join products"
    assert page.is_hidden("#completions")


def test_results_download_as_csv_and_json(page, server):
    open_console(page, server)
    write_sql(page, "select id, name, vip, email, null::text as missing, 'a,\"b\"' as tricky, "
                    "json_build_object('k', id) as doc from customers where id <= :last order by id")
    page.fill("[data-param=last]", "2")
    page.click("#sql")
    run(page)
    with page.expect_download() as download_info:
        page.click("[data-testid=download-csv]")
    download = download_info.value
    assert download.suggested_filename.startswith("demo-") and download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8").read()
    assert text == (
        'id,name,vip,email,missing,tricky,doc\n'
        '1,Ada Lovelace,true,ada@example.com,,"a,""b""","{""k"":1}"\n'
        '2,Grace Hopper,false,grace@example.com,,"a,""b""","{""k"":2}"\n'
    )
    assert list(csv.reader(io.StringIO(text)))[1] == ["1", "Ada Lovelace", "true", "ada@example.com", "", 'a,"b"',
                                                      '{"k":1}']  # fmt: skip

    with page.expect_download() as download_info:
        page.click("[data-testid=download-json]")
    rows = json.loads(open(download_info.value.path(), encoding="utf-8").read())
    assert rows[0] == {"id": 1, "name": "Ada Lovelace", "vip": True, "email": "ada@example.com", "missing": None,
                       "tricky": 'a,"b"', "doc": {"k": 1}}  # fmt: skip
    assert len(rows) == 2


def test_history_is_kept_in_the_browser_and_reloads_statements(page, server):
    open_console(page, server)
    write_sql(page, "select name from customers where country = :country")
    page.fill("[data-param=country]", "GB")
    page.click("#sql")
    run(page)
    write_sql(page, "select 2 as two")
    run(page)
    page.reload()
    page.wait_for_selector("#schema-tree li")
    assert page.input_value("#sql") == "select 2 as two"  # the draft survives a reload
    page.click("#tab-history")
    entries = page.locator("#history-list li")
    assert entries.count() == 2
    assert entries.nth(0).locator("pre").inner_text() == "select 2 as two"
    entries.nth(1).click()
    assert page.input_value("#sql") == "select name from customers where country = :country"
    assert page.input_value("[data-param=country]") == "GB"
    stored = page.evaluate("JSON.parse(localStorage.getItem('rdsgate.console.history'))")
    assert [e["outcome"] for e in stored] == ["ok", "ok"] and stored[1]["connection"] == "demo"


# The scanner cases the Python scanners are checked against too (tests/unit/test_sql_cases.py).
SQL_CASES = json.loads((Path(__file__).parents[1] / "cases" / "sql_scanner.json").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize("case", SQL_CASES, ids=lambda case: f"{case['dialect']}: {case['sql'][:40]}")
def test_the_editor_detects_the_same_parameters_as_the_server(page, server, case):
    """The editor's parameters are the server's ``:name``s, and its strings, quoted names and comments the same pieces."""
    open_console(page, server)
    found = page.evaluate(
        """async ([sql, dialect]) => {
            const scanner = await import('/assets/sql.js');
            const literals = scanner.tokenize(sql, dialect)
                .filter((token) => ['string', 'quoted', 'comment'].includes(token.type)).map((token) => token.text);
            return {parameters: scanner.parameterNames(sql, dialect), literals};
        }""",
        [case["sql"], case["dialect"]],
    )
    if "parameters" in case:
        assert found["parameters"] == case["parameters"]
    assert found["literals"] == case["literals"]


def test_a_signed_server_takes_pasted_credentials_and_the_page_signs_with_sigv4(page, signed_server,
                                                                                 caller_credentials):
    page.goto(signed_server.url + "/")
    dialog = page.locator("#credentials-dialog")
    dialog.wait_for(state="visible")  # the page asks for credentials before it calls the API
    profile = "[rdsgate-local]\n" + "\n".join(f"{k} = {v}" for k, v in caller_credentials.items())
    page.fill("[data-testid=credentials-text]", profile)
    page.click("[data-testid=credentials-save]")
    page.wait_for_selector("#schema-tree li")
    assert page.locator("#connection option").count() == 3  # demo, demo-mysql, demo-reviewed
    page.click("#run")
    page.wait_for_selector("table.grid")
    assert grid(page)[2] == [["1"]]
    # The requests were signed by the bundled aws4fetch: the server verified them as API Gateway would.
    signed = page.evaluate("JSON.parse(sessionStorage.getItem('rdsgate.console.credentials')).accessKeyId")
    assert signed == caller_credentials["aws_access_key_id"]

    # A wrong secret: the signature is refused, and the panel shows API Gateway's answer.
    wrong = profile.replace(caller_credentials["aws_secret_access_key"], "not-the-secret")
    page.click("#credentials-button")
    page.fill("[data-testid=credentials-text]", wrong)
    page.click("[data-testid=credentials-save]")
    page.wait_for_selector("[data-testid=error]:not([hidden])")
    assert page.inner_text("[data-testid=error-code]") == "AccessDenied"
    assert "signature we calculated does not match" in page.inner_text("[data-testid=error-message]")


def test_the_deployed_sign_in_flow_pkce_identity_pool_credentials_and_signed_calls(browser, signed_server,
                                                                                    caller_credentials):
    """The console's Cognito mode, with Cognito played by the test: the hosted UI's redirect, the token exchange
    (whose PKCE verifier is checked), the identity pool's GetId and GetCredentialsForIdentity; the credentials
    it hands out are the signed local server's, so the page's SigV4 calls are verified for real."""
    domain = "https://rdsgate-test.auth.us-east-1.amazoncognito.com"
    provider = "cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
    page_url = signed_server.url + "/"
    config = {"auth": "cognito", "apiUrl": "", "region": "us-east-1", "userPoolId": "us-east-1_TEST",
              "userPoolClientId": "console-client", "identityPoolId": "us-east-1:pool", "cognitoDomain": domain,
              "redirectUri": page_url}  # fmt: skip
    claims = {"sub": "u-1", "email": "alice@example.com", "cognito:groups": ["analysts"]}
    id_token = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                        for part in ({"alg": "none"}, claims, {}))  # fmt: skip
    seen: dict[str, object] = {}
    cors = {"Access-Control-Allow-Origin": signed_server.url, "Access-Control-Allow-Headers": "*",
            "Access-Control-Allow-Methods": "POST"}  # fmt: skip

    def authorize(route):
        query = parse_qs(urlsplit(route.request.url).query)
        seen["authorize"] = query
        location = f"{query['redirect_uri'][0]}?code=the-code&state={query['state'][0]}"
        route.fulfill(status=302, headers={"Location": location})

    def token(route):
        if route.request.method == "OPTIONS":
            return route.fulfill(status=204, headers=cors)
        form = parse_qs(route.request.post_data)
        seen["token"] = form
        verifier = form["code_verifier"][0].encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).decode().rstrip("=")
        if challenge != seen["authorize"]["code_challenge"][0] or form["code"] != ["the-code"]:
            return route.fulfill(status=400, headers=cors, json={"error": "invalid_grant"})
        route.fulfill(headers=cors, json={"id_token": id_token, "access_token": "a", "refresh_token": "r",
                                          "expires_in": 3600, "token_type": "Bearer"})  # fmt: skip

    def identity(route):
        if route.request.method == "OPTIONS":
            return route.fulfill(status=204, headers=cors)
        target = route.request.headers["x-amz-target"]
        body = json.loads(route.request.post_data)
        seen.setdefault("identity", []).append((target, body))
        if body.get("Logins") != {provider: id_token}:
            return route.fulfill(status=400, headers=cors, json={"__type": "NotAuthorizedException"})
        if target.endswith(".GetId"):
            return route.fulfill(headers=cors, json={"IdentityId": "us-east-1:alice"})
        route.fulfill(headers=cors, json={"IdentityId": "us-east-1:alice", "Credentials": {
            "AccessKeyId": caller_credentials["aws_access_key_id"],
            "SecretKey": caller_credentials["aws_secret_access_key"],
            "SessionToken": caller_credentials["aws_session_token"], "Expiration": time.time() + 3600}})

    # The local server's CSP allows only itself; the deployed one (tests/infra) names Cognito and the API.
    def logout(route):
        query = parse_qs(urlsplit(route.request.url).query)
        seen["logout"] = query
        route.fulfill(status=302, headers={"Location": query["logout_uri"][0]})

    context = browser.new_context(bypass_csp=True)
    context.set_default_timeout(10_000)
    keep_on_loopback(context)
    try:
        page = context.new_page()
        page.route("**/console-config.json", lambda route: route.fulfill(json=config))
        page.route(f"{domain}/logout?*", logout)
        page.route(f"{domain}/oauth2/authorize?*", authorize)
        page.route(f"{domain}/oauth2/token", token)
        page.route("https://cognito-identity.us-east-1.amazonaws.com/", identity)
        page.goto(page_url)
        page.wait_for_selector("#sign-in:not([hidden])")
        assert page.is_visible("#signed-out") and page.is_hidden("#workspace")
        page.click("#sign-in")
        page.wait_for_selector("#schema-tree li")
        assert page.inner_text("#identity") == "alice@example.com (analysts)"
        assert page.url == page_url  # the code and state were taken off the address
        assert seen["authorize"]["code_challenge_method"] == ["S256"] and seen["authorize"]["client_id"] == [
            "console-client"]  # fmt: skip
        assert [target for target, _ in seen["identity"]] == [
            "AWSCognitoIdentityService.GetId", "AWSCognitoIdentityService.GetCredentialsForIdentity"]
        assert seen["identity"][0][1]["IdentityPoolId"] == "us-east-1:pool"
        page.click("#run")
        page.wait_for_selector("table.grid")
        assert grid(page)[2] == [["1"]]
        page.click("#sign-out")  # to the hosted UI's logout, which sends the browser back to the console
        page.wait_for_selector("#sign-in:not([hidden])")
        assert seen["logout"] == {"client_id": ["console-client"], "logout_uri": [page_url]}
        assert page.evaluate("sessionStorage.length") == 0  # tokens and credentials are gone
        assert context.blocked == []
    finally:
        context.close()
