"""Metrics and traces of real requests: the EMF lines rdsgate.api.handler and rdsgate.invoke.handler write
(names, dimensions, units) for a success, an SQL error, denials and a login failure, and what never
reaches a metric or an annotation (tokens, passwords, parameter values, SQL text)."""

from __future__ import annotations

import json

import pytest

from rdsgate import api, invoke, telemetry, tracing
from rdsgate.telemetry import EmfRecorder
from tests.conftest import STATIC_PASSWORD, iam_definition, load_event

MALLORY = "arn:aws:iam::123456789012:user/mallory"
COUNTS = {"Requests", "Errors", "Rows", "ConnectionsOpened", "ConnectionsReused", "TokensSigned", "LoginFailures", "Denied", "AuditWriteFailures"}
UNITS = {**{name: "Count" for name in COUNTS}, "Duration": "Milliseconds", "DatabaseTime": "Milliseconds", "ResponseBytes": "Bytes"}


@pytest.fixture
def emf(runtime, monkeypatch):
    """A fresh recorder for the handlers' service (service dimension "test-gate")."""
    recorder = EmfRecorder("test-gate")
    monkeypatch.setattr(runtime, "metrics", recorder)
    runtime.reset()
    return recorder


def emf_lines(capsys) -> list[dict]:
    """The EMF documents written to stdout since the last call (the log lines are left out)."""
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in out if "_aws" in line]


def directive(document: dict) -> dict:
    (only,) = document["_aws"]["CloudWatchMetrics"]
    assert only["Namespace"] == "rdsgate"
    for metric in only["Metrics"]:  # every metric with its documented unit
        assert metric["Unit"] == UNITS[metric["Name"]], metric
    return only


def values(document: dict) -> dict[str, list[float]]:
    return {m["Name"]: document[m["Name"]] for m in directive(document)["Metrics"]}


def by_dimensions(documents: list[dict]) -> dict[tuple, dict]:
    """Each document keyed by its dimension values: (connection, errorCode)."""
    keyed = {}
    for document in documents:
        key = (document.get("connection"), document.get("errorCode"))
        assert key not in keyed, "one document per connection and error code per invocation"
        keyed[key] = document
    return keyed


def query_event(connection="pg", body=None, caller=None):
    event = load_event("api_query.json")
    event["path"], event["pathParameters"] = f"/connections/{connection}/query", {"name": connection}
    event["body"] = json.dumps(body or {"sql": "select 1 as one"})
    if caller is not None:
        event["requestContext"]["identity"]["userArn"] = caller
    return event


def test_a_success_writes_counts_timings_and_sizes_per_connection(emf, capsys):
    capsys.readouterr()
    first = api.handler(query_event(), None)
    assert first["statusCode"] == 200
    (document,) = emf_lines(capsys)
    assert directive(document)["Dimensions"] == [["service"], ["service", "connection"]]
    assert (document["service"], document["connection"]) == ("test-gate", "pg")
    got = values(document)
    assert set(got) == {"Requests", "Duration", "DatabaseTime", "Rows", "ResponseBytes", "ConnectionsOpened", "TokensSigned"}
    assert got["Requests"] == [1.0] and got["Rows"] == [1.0]
    assert got["ConnectionsOpened"] == [1.0] and got["TokensSigned"] == [1.0]
    assert got["ResponseBytes"] == [float(len(first["body"].encode()))]
    (duration,), (database,) = got["Duration"], got["DatabaseTime"]
    assert 0 < database <= duration

    second = api.handler(query_event(body={"sql": "select 'é' as accent from generate_series(1, 3)"}), None)
    (document,) = emf_lines(capsys)  # flushed once per invocation: only the second invocation's values
    got = values(document)
    assert got["ConnectionsReused"] == [1.0] and "ConnectionsOpened" not in got and "TokensSigned" not in got
    assert got["Rows"] == [3.0] and got["ResponseBytes"] == [float(len(second["body"].encode("utf-8")))]


def test_an_sql_error_is_counted_by_code_beside_the_request(emf, capsys):
    capsys.readouterr()
    response = api.handler(query_event(body={"sql": "select * from missing_table"}), None)
    assert response["statusCode"] == 422
    documents = by_dimensions(emf_lines(capsys))
    assert set(documents) == {("pg", None), ("pg", "SqlError")}
    request, error = documents[("pg", None)], documents[("pg", "SqlError")]
    assert directive(error)["Dimensions"] == [["service"], ["service", "errorCode"], ["service", "connection"]]
    assert values(error) == {"Errors": [1.0]}
    got = values(request)
    assert got["Requests"] == [1.0] and got["ResponseBytes"] == [float(len(response["body"]))]
    assert "Rows" not in got and got["DatabaseTime"][0] > 0


def test_a_caller_who_may_not_use_the_connection_is_a_denial(emf, capsys):
    capsys.readouterr()
    response = api.handler(query_event(caller=MALLORY), None)
    assert response["statusCode"] == 404  # told what a missing name is told
    documents = by_dimensions(emf_lines(capsys))
    denied = documents[("pg", "Forbidden")]  # counted as the refusal it is, on the connection
    assert directive(denied)["Dimensions"] == [["service"], ["service", "errorCode"], ["service", "connection"]]
    assert values(denied) == {"Denied": [1.0]}
    # The request and its error carry the caller's answer (NotFound) and no connection, like a missing name.
    assert values(documents[(None, "NotFound")]) == {"Errors": [1.0]}
    assert values(documents[(None, None)])["Requests"] == [1.0]
    assert "ConnectionsOpened" not in json.dumps(list(documents.values()))  # refused before any connection


def test_a_missing_name_is_no_denial_and_no_series(emf, capsys):
    capsys.readouterr()
    assert api.handler(query_event("no-such-connection"), None)["statusCode"] == 404
    documents = by_dimensions(emf_lines(capsys))
    assert set(documents) == {(None, None), (None, "NotFound")}
    assert "no-such-connection" not in json.dumps(list(documents.values()))


def test_guardrail_and_read_only_refusals_are_denials_by_kind(emf, capsys, connections, postgres):
    connections.put(iam_definition("pg-guarded", postgres, "postgres", guardrails=[{"name": "no-ddl", "deny_statements": ["DROP"]}]))
    capsys.readouterr()
    assert api.handler(query_event("pg-guarded", {"sql": "DROP TABLE nothing_here"}), None)["statusCode"] == 403
    assert values(by_dimensions(emf_lines(capsys))[("pg-guarded", "GuardrailViolation")]) == {"Errors": [1.0], "Denied": [1.0]}
    response = api.handler(query_event("pg", {"sql": "CREATE TABLE metrics_probe (id int)", "readOnly": True}), None)
    assert response["statusCode"] == 403
    assert values(by_dimensions(emf_lines(capsys))[("pg", "ReadOnlyViolation")]) == {"Errors": [1.0], "Denied": [1.0]}


def test_a_refused_login_is_a_login_failure_and_no_connection(emf, capsys):
    capsys.readouterr()
    response = api.handler(query_event("pg-wrong-user"), None)
    assert response["statusCode"] == 502
    documents = by_dimensions(emf_lines(capsys))
    got = values(documents[("pg-wrong-user", None)])
    assert got["LoginFailures"] == [1.0] and got["TokensSigned"] == [1.0] and got["Requests"] == [1.0]
    assert "ConnectionsOpened" not in got and "DatabaseTime" not in got
    assert values(documents[("pg-wrong-user", "AuthenticationFailed")]) == {"Errors": [1.0]}


def test_the_invoke_handler_flushes_once_per_invocation(emf, capsys):
    capsys.readouterr()
    event = load_event("sfn_query.json")
    result = invoke.handler(event, None)
    (document,) = emf_lines(capsys)
    got = values(document)
    assert document["connection"] == event["connection"] and got["Requests"] == [1.0]
    assert got["ResponseBytes"] == [float(len(json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode()))]
    with pytest.raises(Exception) as caught:
        invoke.handler({"connection": event["connection"], "sql": "select * from missing_table"}, None)
    assert type(caught.value).__name__ == "SqlError"
    documents = by_dimensions(emf_lines(capsys))
    assert values(documents[(event["connection"], "SqlError")]) == {"Errors": [1.0]}


def test_a_failed_audit_write_is_counted(emf, capsys, monkeypatch):
    monkeypatch.setenv("RDSGATE_AUDIT_TABLE", "no-such-audit-table")
    emf_service = emf  # noqa: F841 - the recorder is in place; the service is rebuilt with the audit table
    from rdsgate import runtime

    runtime.SERVICE.reset()
    capsys.readouterr()
    assert api.handler(query_event(), None)["statusCode"] == 200  # the request's outcome stands
    documents = by_dimensions(emf_lines(capsys))
    assert values(documents[(None, None)]) == {"AuditWriteFailures": [1.0]}
    assert runtime.SERVICE.get().audit_write_failures == 1


# --- what never reaches a metric or a trace -------------------------------------------------


class Daemon:
    """A stand-in for Lambda's X-Ray daemon: the subsegment documents rdsgate sends over UDP."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.raw: list[bytes] = []

    @property
    def segments(self) -> list[dict]:
        import socket

        self.sock.settimeout(0.3)
        while True:
            try:
                self.raw.append(self.sock.recv(65536))
            except socket.timeout:
                break
        return [json.loads(data.partition(b"\n")[2]) for data in self.raw]

    def clear(self) -> None:
        _ = self.segments
        self.raw.clear()


@pytest.fixture
def traced(monkeypatch):
    """The handlers' tracing as in Lambda: active tracing, a sampled invocation, the daemon's address."""
    daemon = Daemon()
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:%d" % daemon.sock.getsockname()[1])
    for attribute, value in (("_provider", None), ("_enabled", None), ("_emitter", None)):
        monkeypatch.setattr(tracing.TRACING, attribute, value)
    yield daemon
    daemon.sock.close()


def test_spans_cover_each_step_with_the_three_annotations(emf, traced, capsys):
    assert api.handler(query_event(), None)["statusCode"] == 200
    segments = traced.segments
    spans = {segment["name"]: segment.get("annotations", {}) for segment in segments}
    assert list(spans) == ["## definition", "## sign_token", "## connect", "## execute", "## encode"]
    assert spans["## definition"] == spans["## connect"] == {"connection": "pg", "engine": "postgres"}
    assert spans["## execute"] == {"connection": "pg", "engine": "postgres", "statementType": "SELECT"}
    assert spans["## encode"] == {}
    assert {(s["trace_id"], s["parent_id"], s["type"]) for s in segments} == {
        ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8", "subsegment")}
    traced.clear()
    assert api.handler(query_event(body={"sql": "select * from missing_table"}), None)["statusCode"] == 422
    assert [s["name"] for s in traced.segments if s.get("error")] == ["## execute"]
    # The definition came from the catalog's cache: only a read of the table is traced.
    assert [s["name"] for s in traced.segments] == ["## execute", "## encode"]


def test_no_token_password_parameter_or_sql_reaches_a_metric_or_an_annotation(emf, traced, capsys, runtime):
    service = runtime.get()
    tokens: list[str] = []
    signer = service.pool._signer
    sign = signer.token_for
    signer.token_for = lambda definition: tokens.append(sign(definition)) or tokens[-1]
    secret_value = "parameter-value-7f3a9c"
    sql = "select cast(:secret as text) as echoed, 'literal-in-sql-51d2' as lit"
    capsys.readouterr()
    ok = api.handler(query_event(body={"sql": sql, "parameters": {"secret": secret_value}}), None)
    assert ok["statusCode"] == 200 and secret_value in ok["body"]
    assert api.handler(query_event("pg-static", {"sql": sql, "parameters": {"secret": secret_value}}), None)["statusCode"] == 200
    assert api.handler(query_event("pg-wrong-user", {"sql": sql, "parameters": {"secret": secret_value}}), None)["statusCode"] == 502
    written = json.dumps(emf_lines(capsys))
    annotations = b"".join(traced.raw if traced.segments else []).decode()  # every byte sent to the daemon
    assert len(tokens) == 2 and all("X-Amz-Signature=" in token for token in tokens)
    assert "pg-static" in written and "## connect" in annotations  # both were written to
    for leak in (*tokens, *(token.split("X-Amz-Signature=")[1] for token in tokens), STATIC_PASSWORD, secret_value,
                 "literal-in-sql-51d2", "app_iam", "localhost", "arn:aws"):  # fmt: skip
        assert leak not in written and leak not in annotations, leak
