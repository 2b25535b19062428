"""`rdsgate mcp` driven by the mcp SDK's own client over stdio, against `rdsgate serve` (PostgreSQL only):
the tools, a read-only query, a write refused by default, a runbook, a masked column, and errors a model
can act on."""

from __future__ import annotations

import tempfile

import anyio
import boto3
import pytest

from tests.local_processes import ROOT, Serve, child_environment, in_fresh_thread, rdsgate

TOOLS = {"list_connections", "describe_schema", "run_query", "list_runbooks", "run_runbook", "get_review_status"}
NO_CREDENTIALS = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                  "AWS_CONFIG_FILE": "/nonexistent"}


@pytest.fixture(scope="module")
def serve():
    pytest.importorskip("mcp")
    running = Serve("--no-mysql")
    # A connection that masks the customers' e-mail addresses (masked_columns names source columns).
    moto = running.find(r"DynamoDB\s+moto on (http://[^,\s]+),")
    table = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1").client(
        "dynamodb", endpoint_url=moto)
    item = table.get_item(TableName="rdsgate-local-connections", Key={"name": {"S": "demo"}})["Item"]
    item.update(name={"S": "demo-masked"}, masked_columns={"L": [{"S": "customers.email"}]})
    table.put_item(TableName="rdsgate-local-connections", Item=item)
    yield running
    running.kill()


def session_with(url: str, *extra: str):
    """Runs `work(session)` against a fresh `rdsgate mcp` process over stdio; returns what it returns."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    command, *args = rdsgate("mcp", "--endpoint", url, *extra)
    parameters = StdioServerParameters(command=command, args=args, env=child_environment(**NO_CREDENTIALS), cwd=str(ROOT))

    def run(work):
        async def main():
            # The server's standard error to a real file: pytest's captured stream has no file descriptor.
            with tempfile.TemporaryFile("w+") as errlog:
                async with stdio_client(parameters, errlog=errlog) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        return await work(session)

        return in_fresh_thread(lambda: anyio.run(main))

    return run


def text(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


def test_the_tools_queries_runbooks_and_masking_over_stdio(serve):
    async def work(session):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        connections = await session.call_tool("list_connections", {})
        query = await session.call_tool("run_query", {"connection": "demo", "sql": "select id, status from orders where id <= :n order by id",
                                                      "parameters": {"n": 2}})
        cut = await session.call_tool("run_query", {"connection": "demo", "sql": "select id from orders order by id", "max_rows": 2})
        write = await session.call_tool("run_query", {"connection": "demo", "sql": "update orders set note = 'x' where id = 1"})
        runbooks = await session.call_tool("list_runbooks", {})
        runbook = await session.call_tool("run_runbook", {"name": "orders-by-status", "parameters": {"status": "shipped"}})
        bad = await session.call_tool("run_runbook", {"name": "orders-by-status", "parameters": {"status": "lost"}})
        masked = await session.call_tool("run_query", {"connection": "demo-masked", "sql": "select name, email from customers order by id"})
        schema = await session.call_tool("describe_schema", {"connection": "demo", "table_filter": "orders"})
        missing = await session.call_tool("run_query", {"connection": "nowhere", "sql": "select 1"})
        return tools, connections, query, cut, write, runbooks, runbook, bad, masked, schema, missing

    tools, connections, query, cut, write, runbooks, runbook, bad, masked, schema, missing = session_with(serve.url)(work)
    assert set(tools) == TOOLS
    assert tools["run_query"].annotations.read_only_hint is True
    assert "read-only" in tools["run_query"].description
    assert set(tools["run_runbook"].input_schema["properties"]) >= {"name", "parameters"}

    assert "demo | postgres | no |" in text(connections) and "demo-masked" in text(connections)
    assert text(query).splitlines() == ["id | status", "1 | delivered", "2 | shipped", "2 rows"]
    assert text(cut).splitlines()[-1] == "2 rows shown; the result was cut at 2 rows: narrow it with WHERE or LIMIT, or aggregate"

    # A write is refused by default, and nothing is written.
    assert write.is_error
    assert "ReadOnlyViolation" in text(write) and "--allow-writes" in text(write) and "Nothing was written" in text(write)

    assert "orders-by-status (on demo, read-only)" in text(runbooks) and "status (string: placed|shipped|delivered|cancelled)" in text(runbooks)
    assert text(runbook).splitlines()[0] == "id | customer | quantity | total | status | placed_at"
    assert text(runbook).splitlines()[1].startswith("2 | Grace Hopper | 10 | 45.00 | shipped |")
    assert bad.is_error and "parameters.status: must be one of" in text(bad) and "rule enum" in text(bad)

    lines = text(masked).splitlines()
    assert lines[:2] == ["name | email", "Ada Lovelace | ****"]
    assert "masked columns (values hidden on purpose): email" in lines
    assert "@example.com" not in text(masked)

    assert text(schema).startswith("public.orders (table): id int8 not null, customer_id int4 not null")
    assert missing.is_error and "NotFound" in text(missing) and "call list_connections" in text(missing)


def test_with_allow_writes_the_query_may_write(serve):
    async def work(session):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        wrote = await session.call_tool("run_query", {"connection": "demo", "sql": "update orders set note = note where id = 3"})
        return tools, wrote

    tools, wrote = session_with(serve.url, "--allow-writes")(work)
    assert tools["run_query"].annotations.read_only_hint is False
    assert not wrote.is_error and text(wrote) == "updated rows: 1"


def test_streamable_http_on_loopback(serve):
    import socket
    import subprocess
    import time

    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = child_environment(**NO_CREDENTIALS)
    process = subprocess.Popen(rdsgate("mcp", "--endpoint", serve.url, "--transport", "http", "--port", str(port)),
                               env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
                time.sleep(0.1)

        async def main():
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    names = {tool.name for tool in (await session.list_tools()).tools}
                    result = await session.call_tool("run_query", {"connection": "demo", "sql": "select 41 + 1 as answer"})
                    return names, result

        names, result = in_fresh_thread(lambda: anyio.run(main))
        assert names == TOOLS
        assert text(result).splitlines() == ["answer", "42", "1 row"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    # Only loopback: the server acts with the user's AWS credentials.
    refused = subprocess.run(rdsgate("mcp", "--endpoint", serve.url, "--transport", "http", "--host", "0.0.0.0"),
                             env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "loopback only" in refused.stderr
