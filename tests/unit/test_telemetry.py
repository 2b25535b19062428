"""rdsgate.telemetry: the EMF documents it writes (names, units, dimensions), what it refuses to write, and
the X-Ray subsegments' annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rdsgate import errors, telemetry
from rdsgate.telemetry import EmfRecorder, NoopRecorder, recorder
from rdsgate.tracing import Tracing, tracing_available

ROOT = Path(__file__).resolve().parents[2]
DIMENSIONS = {"service", "connection", "errorCode"}


def documents(capsys) -> list[dict]:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def directive(document: dict) -> dict:
    (only,) = document["_aws"]["CloudWatchMetrics"]
    return only


def metrics_of(document: dict) -> dict[str, str]:
    """metric name -> unit, as the document declares them."""
    return {m["Name"]: m["Unit"] for m in directive(document)["Metrics"]}


def by_metric(docs: list[dict], name: str) -> dict:
    (found,) = [d for d in docs if name in metrics_of(d)]
    return found


def test_a_successful_request_is_one_document_with_service_and_connection_dimensions(capsys):
    rec = EmfRecorder("prod-gate")
    rec.connection_opened("orders")
    rec.token_signed("orders")
    rec.request("orders", None, duration_ms=12.5, database_ms=3.25, rows=10, response_bytes=2048)
    assert capsys.readouterr().out == ""  # nothing before the flush
    rec.flush()
    (doc,) = documents(capsys)
    assert directive(doc)["Namespace"] == "rdsgate"
    assert directive(doc)["Dimensions"] == [["service"], ["service", "connection"]]
    assert metrics_of(doc) == {
        "Requests": "Count", "Duration": "Milliseconds", "DatabaseTime": "Milliseconds", "Rows": "Count",
        "ResponseBytes": "Bytes", "ConnectionsOpened": "Count", "TokensSigned": "Count",
    }  # fmt: skip
    assert (doc["service"], doc["connection"]) == ("prod-gate", "orders")
    assert doc["Duration"] == [12.5] and doc["DatabaseTime"] == [3.25] and doc["Rows"] == [10.0]
    assert doc["ResponseBytes"] == [2048.0] and doc["Requests"] == [1.0]
    assert "Errors" not in doc and "errorCode" not in doc


def test_an_error_is_counted_by_code_in_its_own_document(capsys):
    rec = EmfRecorder("rdsgate")
    rec.login_failed("orders")
    rec.request("orders", "AuthenticationFailed", duration_ms=80.0)
    rec.flush()
    docs = documents(capsys)
    assert len(docs) == 2
    errors_doc = by_metric(docs, "Errors")
    assert metrics_of(errors_doc) == {"Errors": "Count"}
    assert directive(errors_doc)["Dimensions"] == [["service"], ["service", "errorCode"], ["service", "connection"]]
    assert (errors_doc["errorCode"], errors_doc["connection"], errors_doc["Errors"]) == ("AuthenticationFailed", "orders", [1.0])
    requests_doc = by_metric(docs, "Requests")
    assert metrics_of(requests_doc) == {"Requests": "Count", "Duration": "Milliseconds", "LoginFailures": "Count"}
    assert "errorCode" not in requests_doc  # Duration and Requests are never split by error code


def test_denials_are_counted_by_kind_under_the_error_code_dimension(capsys):
    rec = EmfRecorder("rdsgate")
    rec.denied("orders", "GuardrailViolation")
    rec.denied("orders", "drop table users")  # not a kind: never a dimension value
    rec.flush()
    docs = documents(capsys)
    assert sorted(d["errorCode"] for d in docs) == ["GuardrailViolation", "Other"]
    for doc in docs:
        assert metrics_of(doc) == {"Denied": "Count"} and doc["Denied"] == [1.0]


def test_values_a_caller_can_choose_never_become_dimensions(capsys):
    rec = EmfRecorder("rdsgate")
    rec.request("no-such-connection", "NotFound", duration_ms=1.0)  # unknown names stay out
    rec.request("select * from users where id = 1", "SqlError", duration_ms=1.0)  # not a name
    rec.request("orders", "SomethingNew", duration_ms=1.0)  # not one of rdsgate's codes
    rec.flush()
    docs = documents(capsys)
    connections = {d.get("connection") for d in docs}
    codes = {d.get("errorCode") for d in docs}
    assert connections == {None, "orders"}
    assert codes == {None, "NotFound", "SqlError", "Other"}
    text = "\n".join(json.dumps(d) for d in docs)
    assert "no-such-connection" not in text and "select" not in text and "SomethingNew" not in text


def test_nothing_but_the_metrics_and_the_allowed_dimensions_is_written(capsys):
    rec = EmfRecorder("rdsgate")
    for code in (None, "QueryTimeout", "DatabaseUnavailable"):
        rec.request("orders", code, duration_ms=5.0, database_ms=4.0, rows=1, response_bytes=100)
    for method in (rec.connection_opened, rec.connection_reused, rec.token_signed, rec.login_failed):
        method("reports")
    rec.denied("reports", "Forbidden")
    rec.audit_write_failed()
    rec.flush()
    docs = documents(capsys)
    emitted = set()
    for doc in docs:
        declared = set(metrics_of(doc))
        emitted |= declared
        dimension_keys = {key for dimension_set in directive(doc)["Dimensions"] for key in dimension_set}
        assert dimension_keys <= DIMENSIONS
        assert set(doc) == {"_aws"} | declared | dimension_keys, set(doc) - ({"_aws"} | declared | dimension_keys)
        for name in declared:
            assert all(isinstance(v, float) for v in doc[name])
            assert directive(doc)["Metrics"] == [{"Name": m, "Unit": telemetry.UNITS[m]} for m in metrics_of(doc)]
    assert emitted == set(telemetry.UNITS)  # every metric of the list, each with its declared unit
    audit = by_metric(docs, "AuditWriteFailures")
    assert directive(audit)["Dimensions"] == [["service"]] and "connection" not in audit


def test_per_connection_off_keeps_the_connection_out_of_every_document(capsys):
    rec = EmfRecorder("rdsgate", per_connection=False)
    rec.request("orders", None, duration_ms=1.0)
    rec.request("reports", "QueryTimeout", duration_ms=2.0)
    rec.connection_reused("orders")
    rec.flush()
    docs = documents(capsys)
    assert len(docs) == 2  # the two connections share the [service] document
    for doc in docs:
        assert "connection" not in doc
        assert all("connection" not in s for s in directive(doc)["Dimensions"])
    assert by_metric(docs, "Requests")["Requests"] == [1.0, 1.0]


def test_each_flush_writes_one_invocation_and_an_empty_one_writes_nothing(capsys):
    rec = EmfRecorder("rdsgate")
    rec.request("orders", None, duration_ms=1.0)
    rec.flush()
    rec.flush()
    rec.request("orders", None, duration_ms=2.0)
    rec.flush()
    docs = documents(capsys)
    assert [d["Duration"] for d in docs] == [[1.0], [2.0]]


def test_a_bad_value_is_dropped_not_raised(capsys):
    rec = EmfRecorder("rdsgate")
    rec.request("orders", None, duration_ms="slow", rows=3)  # type: ignore[arg-type]
    rec.flush()
    (doc,) = documents(capsys)
    assert "Duration" not in doc and doc["Rows"] == [3.0]


def test_the_environment_chooses_the_recorder():
    assert isinstance(recorder({"RDSGATE_METRICS": "false"}), NoopRecorder)
    default = recorder({"POWERTOOLS_SERVICE_NAME": "staging-gate"})
    assert isinstance(default, EmfRecorder) and default.service == "staging-gate" and default.per_connection
    assert recorder({}).service == "rdsgate"
    assert recorder({"RDSGATE_METRICS_PER_CONNECTION": "false"}).per_connection is False
    with pytest.raises(ValueError, match="RDSGATE_METRICS_PER_CONNECTION"):
        recorder({"RDSGATE_METRICS_PER_CONNECTION": "sometimes"})


def test_the_error_codes_are_rdsgates():
    def codes(cls):
        found = {cls.code}
        for sub in cls.__subclasses__():
            found |= codes(sub)
        return found

    assert all(telemetry.error_code_dimension(code) == code for code in codes(errors.RdsgateError))
    assert set(telemetry.SERVER_ERROR_CODES) <= telemetry.ERROR_CODES
    assert telemetry.DENIAL_KINDS <= telemetry.ERROR_CODES
    assert telemetry.error_code_dimension("'; DROP TABLE x") == telemetry.error_code_dimension("KeyError") == "Other"


def test_an_error_class_loaded_later_is_a_known_code():
    class LateError(errors.RdsgateError):  # as a module imported after telemetry would declare one
        code = "LateArrival"

    assert telemetry.error_code_dimension("LateArrival") == "LateArrival"


def test_with_metrics_and_tracing_off_nothing_is_imported_or_written():
    script = (
        "import sys\n"
        "from rdsgate import telemetry, tracing\n"
        "r = telemetry.recorder({'RDSGATE_METRICS': 'false'})\n"
        "r.request('orders', 'SqlError', 1.0, 1.0, 1, 1); r.connection_opened('orders'); r.flush()\n"
        "with tracing.TRACING.subsegment('execute', connection='orders') as s:\n"
        "    s.annotate(statement_type='SELECT')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('aws_lambda_powertools', 'aws_xray_sdk', 'botocore')))\n"
        "print('LOADED', loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAMBDA_", "RDSGATE_", "POWERTOOLS_"))}
    env["PYTHONPATH"] = str(ROOT / "functions")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert result.stdout == "LOADED []\n"


# --- traces --------------------------------------------------------------------------------------


class FakeSegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, object] = {}
        self.error = False

    def put_annotation(self, key, value):
        self.annotations[key] = value

    def add_error_flag(self):
        self.error = True


class FakeProvider:
    """The shape of aws_xray_sdk's recorder that Powertools' Tracer uses: in_subsegment(name)."""

    def __init__(self) -> None:
        self.segments: list[FakeSegment] = []
        self.exits: list[object] = []

    def in_subsegment(self, name):
        provider = self

        class Manager:
            def __enter__(self):
                provider.segments.append(FakeSegment(name))
                return provider.segments[-1]

            def __exit__(self, exc_type, exc, tb):
                provider.exits.append(exc)
                return False

        return Manager()


@pytest.fixture
def traced():
    from aws_lambda_powertools.tracing import Tracer

    provider = FakeProvider()
    yield Tracing(environ={}, provider=provider), provider
    Tracer._reset_config()


def test_a_subsegment_carries_only_the_three_checked_annotations(traced):
    tracing, provider = traced
    with tracing.subsegment("execute", connection="orders", engine="postgres", statement_type="select") as span:
        span.annotate(statement_type="xyzzy secret")
    (segment,) = provider.segments
    assert segment.name == "## execute"
    assert segment.annotations == {"connection": "orders", "engine": "postgres", "statementType": "OTHER"}


def test_names_that_are_not_definitions_are_not_annotated(traced):
    tracing, provider = traced
    with tracing.subsegment("connect", connection="select 1; --", engine="oracle"):
        pass
    assert provider.segments[0].annotations == {}
    with pytest.raises(ValueError, match="unknown span"):
        with tracing.subsegment("SELECT * FROM users"):
            pass


def test_a_failure_flags_the_subsegment_but_its_message_never_reaches_the_sdk(traced):
    tracing, provider = traced
    with pytest.raises(errors.SqlError, match="near 'hunter2'"):
        with tracing.subsegment("execute", connection="orders"):
            raise errors.SqlError("syntax error at or near 'hunter2'")
    assert provider.segments[0].error is True
    assert provider.exits == [None]  # the SDK saw a clean exit: no message, no stack


def test_the_real_xray_recorder_gets_the_annotations_and_no_exception():
    pytest.importorskip("aws_xray_sdk", reason="the X-Ray SDK is not a dependency; installed, it is checked here")
    from aws_lambda_powertools.tracing import Tracer
    from aws_xray_sdk.core.recorder import AWSXRayRecorder

    class Emitter:
        def send_entity(self, entity):
            pass

        def set_daemon_address(self, address):
            pass

    xray = AWSXRayRecorder()
    xray.configure(sampling=False, context_missing="LOG_ERROR", emitter=Emitter(), streaming_threshold=1000)
    segment = xray.begin_segment("rdsgate-test")
    try:
        tracing = Tracing(environ={}, provider=xray)
        with pytest.raises(errors.SqlError):
            with tracing.subsegment("execute", connection="orders", engine="mysql", statement_type="INSERT"):
                raise errors.SqlError("Duplicate entry 'alice@example.com' for key 'email'")
        (sub,) = segment.subsegments
        assert sub.name == "## execute" and sub.annotations == {"connection": "orders", "engine": "mysql", "statementType": "INSERT"}
        document = sub.to_dict()
        assert sub.error is True and "cause" not in document
        assert "alice" not in json.dumps(document, default=str)
    finally:
        xray.end_segment()
        Tracer._reset_config()


def test_tracing_is_on_only_in_lambda_and_not_turned_off():
    lambda_env = {"LAMBDA_TASK_ROOT": "/var/task"}
    assert tracing_available(lambda_env)  # no X-Ray SDK needed: rdsgate sends its own subsegments
    assert not tracing_available({})
    assert not tracing_available({**lambda_env, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_available({**lambda_env, "RDSGATE_TRACING": "false"})
    assert Tracing(environ={}).enabled is False


# --- the daemon emitter: what Lambda's X-Ray daemon receives ----------------------------------------

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def daemon():
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def received(sock) -> list[dict]:
    import socket

    documents = []
    sock.settimeout(0.5)
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return documents
        header, _, body = data.partition(b"\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def test_subsegments_go_to_the_daemon_under_the_invocations_segment(daemon):
    env = {"LAMBDA_TASK_ROOT": "/var/task", "_X_AMZN_TRACE_ID": TRACE_HEADER,
           "AWS_XRAY_DAEMON_ADDRESS": "tcp:127.0.0.1:1 udp:127.0.0.1:%d" % daemon.getsockname()[1]}  # fmt: skip
    tracing = Tracing(environ=env)
    with tracing.subsegment("execute", connection="orders", engine="postgres", statement_type="select") as span:
        span.annotate(statement_type="drop table users")
    with pytest.raises(errors.SqlError):
        with tracing.subsegment("connect", connection="select 1; --"):
            raise errors.SqlError("duplicate key 'alice@example.com'")
    first, second = received(daemon)
    assert first["name"] == "## execute" and first["type"] == "subsegment"
    assert (first["trace_id"], first["parent_id"]) == ("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")
    assert first["annotations"] == {"connection": "orders", "engine": "postgres", "statementType": "OTHER"}
    assert len(first["id"]) == 16 and first["id"] != second["id"] and first["start_time"] <= first["end_time"]
    assert "error" not in first and second["error"] is True and "annotations" not in second
    assert "alice" not in json.dumps(second) and "cause" not in second


def test_an_unsampled_invocation_sends_nothing(daemon):
    env = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:%d" % daemon.getsockname()[1],
           "_X_AMZN_TRACE_ID": TRACE_HEADER.replace("Sampled=1", "Sampled=0")}  # fmt: skip
    tracing = Tracing(environ=env)
    with tracing.subsegment("execute", connection="orders"):
        pass
    env["_X_AMZN_TRACE_ID"] = TRACE_HEADER  # the next invocation is sampled: the header is read again
    with tracing.subsegment("encode"):
        pass
    assert [d["name"] for d in received(daemon)] == ["## encode"]


def test_a_metric_with_a_hundred_values_is_written_at_once(capsys):
    rec = EmfRecorder("rdsgate")
    for _ in range(150):
        rec.connection_reused("orders")
    (early,) = documents(capsys)  # EMF takes at most 100 values of a metric per document
    assert len(early["ConnectionsReused"]) == 100
    rec.flush()
    (rest,) = documents(capsys)
    assert len(rest["ConnectionsReused"]) == 50
