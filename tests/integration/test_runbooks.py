"""Runbooks on both engines against the real servers: every schema rule, principals checked instead of the
connection's, runbook-only connections refusing free SQL on every route (the tunnel included), the invoke
form, and audit records naming the runbook and its version."""

from __future__ import annotations

import json
import types
from decimal import Decimal

import pytest

from rdsgate import api, invoke
from rdsgate.errors import InvalidRequest
from rdsgate.runbooks.definition import parse_runbook
from rdsgate_devstack.http_server import LocalApiServer
from rdsgate_devstack.moto_aws import DefinitionsTable
from tests.conftest import ENGINEER_ROLE, ENGINES, iam_definition, load_event, run_query
from tests.integration.test_governance import ensure_table

ALICE = "arn:aws:sts::123456789012:assumed-role/data-engineer/alice"
SUPPORT = "arn:aws:sts::123456789012:assumed-role/support/sam"
SUPPORT_ROLE = "arn:aws:iam::123456789012:role/support"
MALLORY = "arn:aws:iam::123456789012:user/mallory"
RUNBOOKS_TABLE = "rdsgate-runbooks-test"
AUDIT_TABLE = "rdsgate-audit-runbooks"

SQL = ("SELECT id, status FROM rb_orders WHERE status = :status AND qty >= :min_qty AND price <= :max_price "
       "AND urgent = :urgent AND due >= :due_after AND placed >= :placed_after AND ref = :ref AND code LIKE :code "
       "ORDER BY id")
PARAMETERS = [
    {"name": "status", "type": "string", "enum": ["open", "closed"]},
    {"name": "min_qty", "type": "integer", "required": False, "default": 1, "min": 1, "max": 100},
    {"name": "max_price", "type": "number", "min": 0, "max": 1000.5},
    {"name": "urgent", "type": "boolean"},
    {"name": "due_after", "type": "date", "min": "2020-01-01", "max": "2030-12-31"},
    {"name": "placed_after", "type": "timestamp", "min": "2020-01-01T00:00:00Z"},
    {"name": "ref", "type": "uuid"},
    {"name": "code", "type": "string", "pattern": "[A-Z]{2,4}-%", "min": 5, "max": 5},
]
REF = "c56a4180-65aa-42ec-a945-5fd21dec0538"
GOOD = {"status": "open", "max_price": 99.5, "urgent": True, "due_after": "2026-01-01",
        "placed_after": "2026-01-01T00:00:00", "ref": REF, "code": "ABC-%"}


class Runbooks(DefinitionsTable):
    """The runbooks table on moto: ``put`` writes a runbook (numbers as DynamoDB's decimals) and returns it parsed."""

    def put(self, item):
        super().put(json.loads(json.dumps(item), parse_float=Decimal))
        return parse_runbook(item)


@pytest.fixture
def runbooks(runtime, moto_aws, monkeypatch):
    monkeypatch.setenv("RDSGATE_RUNBOOKS_TABLE", ensure_table(RUNBOOKS_TABLE, "name"))
    monkeypatch.setenv("RDSGATE_AUDIT_TABLE", ensure_table(AUDIT_TABLE, "connection", "at"))
    runtime.reset()
    return Runbooks(moto_aws, RUNBOOKS_TABLE)


@pytest.fixture
def orders(runtime, connections, server, engine, runbooks):
    """Table rb_orders on a connection only the support role's runbooks reach (no principal of its own)."""
    conn = ENGINES[engine]
    ref_type = "uuid" if engine == "postgres" else "char(36)"
    run_query(runtime, conn, "DROP TABLE IF EXISTS rb_orders")
    run_query(runtime, conn, f"CREATE TABLE rb_orders (id int PRIMARY KEY, status varchar(20), qty int, price decimal(10,2), "
                             f"urgent boolean, due date, placed timestamp NULL, ref {ref_type}, code varchar(10))")
    run_query(runtime, conn, f"INSERT INTO rb_orders VALUES (1, 'open', 5, 10.00, true, '2026-02-01', '2026-02-01 10:00:00', '{REF}', 'ABC-123'), "
                             f"(2, 'open', 5, 10.00, false, '2026-02-01', '2026-02-01 10:00:00', '{REF}', 'ABC-124'), "
                             f"(3, 'closed', 5, 10.00, true, '2026-02-01', '2026-02-01 10:00:00', '{REF}', 'ABC-125')")
    name = f"{conn}-runbooks"
    connections.put(iam_definition(name, server, engine, allowed_principals=[]))
    runbook = runbooks.put({"name": f"{conn}-orders", "connection": name, "description": "open orders", "sql": SQL,
                            "parameters": PARAMETERS, "allowed_principals": [SUPPORT_ROLE], "read_only": True, "maxRows": 10})
    yield types.SimpleNamespace(connection=name, runbook=runbook, conn=conn)
    run_query(runtime, conn, "DROP TABLE IF EXISTS rb_orders")


def call(method, path, resource, *, caller=SUPPORT, body=None, path_parameters=None, request_id="req"):
    event = load_event("api_query.json")
    event.update(httpMethod=method, path=path, resource=resource, body=None if body is None else json.dumps(body),
                 isBase64Encoded=False, pathParameters=path_parameters, queryStringParameters=None)
    event["requestContext"]["identity"]["userArn"] = caller
    event["requestContext"]["requestId"] = request_id
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def run(name, parameters, **kwargs):
    body = {"parameters": parameters, **kwargs.pop("extra", {})}
    return call("POST", f"/runbooks/{name}/run", "/runbooks/{name}/run", body=body, path_parameters={"name": name}, **kwargs)


def audit(runtime, connection, request_id):
    return [r for r in runtime.get()._audit_sink.read(connection, None) if r.get("requestId") == request_id]


# --- valid and invalid parameters -------------------------------------------------------------------


def test_a_runbook_runs_with_valid_parameters_as_the_caller(runtime, orders):
    status, result = run(orders.runbook.name, GOOD, request_id=f"{orders.conn}-good")
    assert status == 200, result
    assert result["records"] == [{"id": 1, "status": "open"}]
    # The optional min_qty took its default (1); a larger one filters every row out.
    status, result = run(orders.runbook.name, {**GOOD, "min_qty": 6})
    assert (status, result["records"]) == (200, [])
    records = audit(runtime, orders.connection, f"{orders.conn}-good")
    assert len(records) == 1
    assert records[0]["runbook"] == orders.runbook.name
    assert records[0]["runbookVersion"] == orders.runbook.version and len(orders.runbook.version) == 64
    assert records[0]["caller"] == SUPPORT and records[0]["outcome"] == "ok" and records[0]["sql"] == SQL


def test_a_read_only_runbook_cannot_write(runtime, orders, runbooks):
    writer = runbooks.put({"name": f"{orders.conn}-close", "connection": orders.connection, "read_only": True,
                           "sql": "UPDATE rb_orders SET status = 'closed' WHERE id = :id",
                           "parameters": [{"name": "id", "type": "integer"}], "allowed_principals": [SUPPORT_ROLE]})
    status, body = run(writer.name, {"id": 1})
    assert (status, body["error"]["code"]) == (403, "ReadOnlyViolation")
    assert run_query(runtime, orders.conn, "SELECT status FROM rb_orders WHERE id = 1")["records"] == [{"status": "open"}]


INVALID = [
    ("status", {"status": "pending"}, "enum"),
    ("status", {"status": 7}, "type"),
    ("status", {"status": None}, "required"),
    ("min_qty", {"min_qty": 0}, "min"),
    ("min_qty", {"min_qty": 101}, "max"),
    ("min_qty", {"min_qty": 2.5}, "type"),
    ("min_qty", {"min_qty": True}, "type"),
    ("max_price", {"max_price": 1000.51}, "max"),
    ("max_price", {"max_price": -1}, "min"),
    ("max_price", {"max_price": "9"}, "type"),
    ("urgent", {"urgent": "yes"}, "type"),
    ("due_after", {"due_after": "2019-12-31"}, "min"),
    ("due_after", {"due_after": "2031-01-01"}, "max"),
    ("due_after", {"due_after": "31/01/2026"}, "type"),
    ("placed_after", {"placed_after": "2019-06-01T00:00:00Z"}, "min"),
    ("placed_after", {"placed_after": "yesterday"}, "type"),
    ("ref", {"ref": "not-a-uuid"}, "type"),
    ("code", {"code": "abc-%"}, "pattern"),
    ("code", {"code": "AB-%"}, "min"),
    ("code", {"code": "ABCD-%"}, "max"),
    ("surprise", {"surprise": 1}, "unknown"),
]


@pytest.mark.parametrize("case", range(len(INVALID)), ids=[f"{p}-{r}-{i}" for i, (p, _, r) in enumerate(INVALID)])
def test_invalid_parameters_are_refused_naming_the_parameter_and_rule(runtime, orders, case):
    parameter, change, rule = INVALID[case]
    values = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    request_id = f"{orders.conn}-bad-{case}"
    status, body = run(orders.runbook.name, values, request_id=request_id)
    assert status == 400, body
    assert body["error"]["code"] == "InvalidRequest"
    assert body["error"]["field"] == f"parameters.{parameter}" and body["error"]["rule"] == rule
    assert parameter in body["error"]["message"]
    # Nothing ran: one record, refused before any SQL, naming the runbook and its version.
    (record,) = audit(runtime, orders.connection, request_id)
    assert record["outcome"] == "InvalidRequest" and record["statementType"] == "INVALID" and record["rows"] is None
    assert record["runbook"] == orders.runbook.name and record["runbookVersion"] == orders.runbook.version


# --- who may run it ------------------------------------------------------------------------------------


def test_the_runbook_principals_are_checked_instead_of_the_connections(runtime, orders):
    # SUPPORT is not on the connection: its own SQL is refused as if the connection did not exist...
    status, body = call("POST", f"/connections/{orders.connection}/query", "/connections/{name}/query",
                        body={"sql": "SELECT 1"}, path_parameters={"name": orders.connection})
    assert (status, body["error"]["code"]) == (404, "NotFound")
    # ... and the data engineer, not in the runbook's principals, does not see the runbook at all.
    status, body = run(orders.runbook.name, GOOD, caller=ALICE, request_id=f"{orders.conn}-alice")
    assert (status, body["error"]["code"]) == (404, "NotFound")
    assert body["error"]["message"] == f"runbook {orders.runbook.name!r} does not exist"
    (record,) = audit(runtime, orders.connection, f"{orders.conn}-alice")
    assert record["reason"] == "Forbidden" and record["runbook"] == orders.runbook.name
    status, listed = call("GET", "/runbooks", "/runbooks", caller=ALICE)
    assert orders.runbook.name not in [r["name"] for r in listed["runbooks"]]
    status, listed = call("GET", "/runbooks", "/runbooks")
    (shown,) = [r for r in listed["runbooks"] if r["name"] == orders.runbook.name]
    assert shown["parameters"][0] == {"name": "status", "type": "string", "required": True, "enum": ["open", "closed"]}
    assert shown["inputSchema"]["properties"]["due_after"]["format"] == "date"
    assert shown["inputSchema"]["required"] == ["status", "max_price", "urgent", "due_after", "placed_after", "ref", "code"]
    assert "allowed_principals" not in shown and shown["version"] == orders.runbook.version
    status, one = call("GET", f"/runbooks/{orders.runbook.name}", "/runbooks/{name}", path_parameters={"name": orders.runbook.name})
    assert status == 200 and one == shown
    status, body = call("GET", f"/runbooks/{orders.runbook.name}", "/runbooks/{name}", caller=MALLORY,
                        path_parameters={"name": orders.runbook.name})
    assert (status, body["error"]["code"]) == (404, "NotFound")


def test_the_invoke_form_runs_a_runbook_and_records_the_claim(runtime, orders):
    context = types.SimpleNamespace(aws_request_id=f"{orders.conn}-invoke", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:rdsgate-invoke",
                                    get_remaining_time_in_millis=lambda: 30_000)
    result = invoke.handler({"runbook": orders.runbook.name, "parameters": GOOD, "caller": "ops-bot"}, context)
    assert result["records"] == [{"id": 1, "status": "open"}]
    (record,) = audit(runtime, orders.connection, f"{orders.conn}-invoke")
    assert record["claimedCaller"] == "ops-bot" and record["runbook"] == orders.runbook.name
    with pytest.raises(InvalidRequest, match="parameters.status"):
        invoke.handler({"runbook": orders.runbook.name, "parameters": {**GOOD, "status": "nope"}}, context)
    with pytest.raises(InvalidRequest, match="sql: unknown field"):
        invoke.handler({"runbook": orders.runbook.name, "parameters": GOOD, "sql": "DELETE FROM rb_orders"}, context)


def test_runbook_records_carry_the_trace_id_through_the_router_and_the_invoke_form(runtime, orders, monkeypatch):
    """The routers' records and the invoke form's runbook records correlate with X-Ray as /query's do."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0")
    status, result = run(orders.runbook.name, GOOD, request_id=f"{orders.conn}-traced-route")
    assert status == 200, result
    (routed,) = audit(runtime, orders.connection, f"{orders.conn}-traced-route")
    context = types.SimpleNamespace(aws_request_id=f"{orders.conn}-traced-invoke", invoked_function_arn=None,
                                    get_remaining_time_in_millis=lambda: 30_000)
    invoke.handler({"runbook": orders.runbook.name, "parameters": GOOD}, context)
    (invoked,) = audit(runtime, orders.connection, f"{orders.conn}-traced-invoke")
    assert routed["traceId"] == invoked["traceId"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert invoked["runbook"] == routed["runbook"] == orders.runbook.name


# --- runbook-only connections ----------------------------------------------------------------------------


@pytest.fixture
def runbook_only(runtime, connections, server, engine, orders, runbooks):
    name = f"{orders.conn}-runbook-only"
    connections.put(iam_definition(name, server, engine, adhoc=False, allowed_principals=[ENGINEER_ROLE]))
    runbook = runbooks.put({"name": f"{orders.conn}-count", "connection": name, "sql": "SELECT count(*) AS n FROM rb_orders WHERE status = :status",
                            "parameters": [{"name": "status", "type": "string"}], "allowed_principals": [ENGINEER_ROLE]})
    return types.SimpleNamespace(connection=name, runbook=runbook)


def free_sql_routes(name):
    one = {"sql": "SELECT count(*) AS n FROM rb_orders"}
    arn = f"arn:aws:rds:us-east-1:123456789012:cluster:{name}"
    return [
        ("query", f"/connections/{name}/query", "/connections/{name}/query", one),
        ("batch", f"/connections/{name}/batch", "/connections/{name}/batch", {"sql": "SELECT :x AS x", "parameterSets": [{"x": 1}]}),
        ("transaction", f"/connections/{name}/transaction", "/connections/{name}/transaction", {"statements": [one]}),
        ("describe", f"/connections/{name}/describe", "/connections/{name}/describe", one),
        ("statements", f"/connections/{name}/statements", "/connections/{name}/statements", one),
        ("Execute", "/Execute", "/Execute", {"resourceArn": arn, "secretArn": "x", "sql": one["sql"]}),
        ("BatchExecute", "/BatchExecute", "/BatchExecute", {"resourceArn": arn, "secretArn": "x", "sql": "SELECT :x", "parameterSets": [[{"name": "x", "value": {"longValue": 1}}]]}),
    ]


def test_a_runbook_only_connection_refuses_free_sql_on_every_route(runtime, runbook_only, monkeypatch):
    for route, path, resource, body in free_sql_routes(runbook_only.connection):
        status, answer = call("POST", path, resource, caller=ALICE, body=body, path_parameters={"name": runbook_only.connection},
                              request_id=f"adhoc-{route}-{runbook_only.connection}")
        assert status == 403, (route, answer)
        if route in ("Execute", "BatchExecute"):  # the Data API's own error shape
            assert "runs runbooks only" in answer["message"], answer
        else:
            assert answer["error"]["code"] == "Forbidden" and answer["error"]["rule"] == "adhoc", (route, answer)
            assert "runs runbooks only" in answer["error"]["message"]
    # Its runbooks run, as the same caller.
    status, result = run(runbook_only.runbook.name, {"status": "open"}, caller=ALICE)
    assert (status, result["records"]) == (200, [{"n": 2}])
    # Schema and the definition stay readable: they run no SQL of the caller's.
    status, view = call("GET", f"/connections/{runbook_only.connection}", "/connections/{name}", caller=ALICE,
                        path_parameters={"name": runbook_only.connection})
    assert status == 200


def test_a_runbook_only_connection_refuses_the_tunnel(runtime, runbook_only, engine):
    from tests.local_processes import Tunnel

    server = LocalApiServer(api.handler, port=0, identity=ALICE, access_log=False).serve_in_background()
    tunnel = Tunnel(runbook_only.connection, server.url)
    try:
        if engine == "postgres":
            import pg8000.native

            # Refused at login (the tunnel reads the session's settings through the API) or at the first query.
            with pytest.raises(pg8000.native.DatabaseError, match="runs runbooks only"):
                connection = pg8000.native.Connection("someone", host="127.0.0.1", port=tunnel.port, database="x", timeout=10)
                connection.run("SELECT count(*) FROM rb_orders")
        else:
            import pymysql

            # The tunnel reads the session's settings through the API at login: the refusal comes then.
            with pytest.raises(pymysql.MySQLError, match="runs runbooks only"):
                connection = pymysql.connect(host="127.0.0.1", port=tunnel.port, user="someone", password="", connect_timeout=10)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM rb_orders")
    finally:
        tunnel.stop()
        server.close()


# --- the command line ------------------------------------------------------------------------------------


def test_rdsgate_runbooks_and_run_on_the_command_line(runtime, orders, capsys):
    from rdsgate_cli.cli import main

    server = LocalApiServer(api.handler, port=0, identity=SUPPORT, access_log=False).serve_in_background()
    try:
        assert main(["runbooks", "--endpoint", server.url]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        at = lines.index(f"{orders.runbook.name}  (on {orders.connection}, read-only)  open orders")
        assert lines[at + 1:at + 3] == ["    -p status (string: open|closed)", "    -p min_qty? (integer 1..100, default 1)"]
        arguments = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in GOOD.items()]
        assert main(["run", orders.runbook.name, "--endpoint", server.url, "--json",
                     *[a for argument in arguments for a in ("-p", argument)]]) == 0
        out = capsys.readouterr().out  # the function's own log lines are one-line JSON; the document is indented
        assert json.loads(out[out.index("{\n"):out.index("\n}\n") + 2])["records"] == [{"id": 1, "status": "open"}]
        assert main(["run", orders.runbook.name, "--endpoint", server.url, "-p", "status=pending"]) == 1
        err = capsys.readouterr().err
        assert "InvalidRequest: parameters.status: must be one of \"open\", \"closed\"" in err and "field parameters.status" in err
    finally:
        server.close()


def test_no_session_on_a_runbook_only_or_reviewed_connection(runtime, runbook_only, connections, server, engine, monkeypatch):
    monkeypatch.setenv("RDSGATE_SESSIONS_TABLE", "rdsgate-sessions-never-reached")
    reviewed = f"{runbook_only.connection}-reviewed"
    connections.put(iam_definition(reviewed, server, engine, approval={"required_for": ["DELETE"]}, allowed_principals=[ENGINEER_ROLE]))
    for name, rule in ((runbook_only.connection, "adhoc"), (reviewed, "approval")):
        status, body = call("POST", f"/connections/{name}/sessions", "/connections/{name}/sessions", caller=ALICE, body={},
                            path_parameters={"name": name})
        assert (status, body["error"]["code"], body["error"]["rule"]) == (403, "Forbidden", rule), body
