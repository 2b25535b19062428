"""The query service, the pool and the runtime's settings through their injectable seams.

No database here: a DynamoDB client, a driver connection and an audit sink are stand-ins
passed through the constructors, which is how the core is meant to be composed.
"""

from __future__ import annotations

import pytest

from rdsgate import errors
from rdsgate.access import Caller
from rdsgate.catalog import DefinitionCatalog
from rdsgate.drivers import StatementResult
from rdsgate.pool import ConnectionPool
from rdsgate.request import parse_query
from rdsgate.runtime import Settings
from rdsgate.service import Invocation, Limits, QueryService

ALICE = "arn:aws:iam::123456789012:user/alice"


def item(name, **fields):
    base = {"name": name, "engine": "postgres", "host": "db.example", "database": "app",
            "user": "app", "password": "literal-password", "allowed_principals": [ALICE]}
    base.update(fields)
    return {k: _attr(v) for k, v in base.items()}


def _attr(value):
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, list):
        return {"L": [_attr(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _attr(v) for k, v in value.items()}}
    return {"S": str(value)}


class FakeDynamoDB:
    def __init__(self, items):
        self.items = {i["name"]["S"]: i for i in items}
        self.reads = 0

    def get_item(self, TableName, Key, **_):
        self.reads += 1
        found = self.items.get(Key["name"]["S"])
        return {"Item": found} if found else {}

    def scan(self, TableName, **_):
        return {"Items": list(self.items.values())}


class FakeConnection:
    engine = "postgres"

    def __init__(self, params):
        self.params, self.usable, self.closed, self.statements = params, True, False, []

    def execute(self, prepared, values, options):
        self.statements.append(prepared.text)
        if "boom" in prepared.text:
            raise errors.DatabaseUnavailable("the database could not be reached")
        return StatementResult(columns=[{"name": "one", "type": "int4"}], rows=[[1]], truncated=False, updated_rows=None)

    def is_usable(self):
        return self.usable and not self.closed

    def close(self):
        self.closed = True


class Recorder:
    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(dict(record))


class ListLogger:
    def __init__(self):
        self.lines = []

    def info(self, msg, *args, **kwargs):
        self.lines.append(("info", msg, kwargs.get("extra")))

    def error(self, msg, *args, **kwargs):
        self.lines.append(("error", msg, kwargs.get("extra")))


@pytest.fixture
def world():
    dynamodb = FakeDynamoDB([item("app"), item("guarded", guardrails=[{"name": "ro", "deny_statements": ["DELETE"]}])])
    opened = []

    def opener(engine, params):
        connection = FakeConnection(params)
        opened.append(connection)
        return connection

    catalog = DefinitionCatalog("t", ttl_seconds=60, client_factory=lambda: dynamodb)
    pool = ConnectionPool(signer=None, opener=opener)
    sink = Recorder()
    service = QueryService(catalog, pool, ListLogger(), limits=Limits(masking_key=b"k"), audit_sink=sink)
    return service, opened, sink, dynamodb


def invocation(caller=ALICE, request_id="r1"):
    return Invocation(caller=Caller(caller, governed=True), result_limit_bytes=10**6, request_id=request_id)


def test_a_query_runs_on_one_pooled_connection_and_leaves_one_record(world):
    service, opened, sink, dynamodb = world
    for n in range(3):
        assert service.query("app", parse_query({"sql": "SELECT 1 AS one"}), invocation(request_id=f"r{n}"))["records"] == [{"one": 1}]
    assert len(opened) == 1 and opened[0].statements == ["SELECT 1 AS one"] * 3
    assert [r["outcome"] for r in sink.records] == ["ok"] * 3 and dynamodb.reads == 1  # the definition is cached


def test_a_refusal_opens_no_connection_and_is_recorded(world):
    service, opened, sink, _ = world
    with pytest.raises(errors.GuardrailViolation):
        service.query("guarded", parse_query({"sql": "DELETE FROM t WHERE id = 1"}), invocation())
    with pytest.raises(errors.InvalidRequest):
        service.query("app", parse_query({"sql": "SET role x"}), invocation())
    assert opened == []
    assert [r["outcome"] for r in sink.records] == ["GuardrailViolation", "InvalidRequest"]


def test_a_caller_who_may_not_use_it_gets_not_found_and_the_record_says_why(world):
    service, opened, sink, _ = world
    with pytest.raises(errors.ConnectionNotFound) as caught:
        service.query("app", parse_query({"sql": "SELECT 1"}), invocation(caller="arn:aws:iam::123456789012:user/mallory"))
    with pytest.raises(errors.ConnectionNotFound) as missing:
        service.query("nope", parse_query({"sql": "SELECT 1"}), invocation())
    assert caught.value.message.replace("'app'", "'nope'") == missing.value.message
    assert sink.records[0]["reason"] == "Forbidden" and "reason" not in sink.records[1] and opened == []


def test_a_connection_level_failure_discards_the_connection(world):
    service, opened, _, _ = world
    with pytest.raises(errors.DatabaseUnavailable):
        service.query("app", parse_query({"sql": "SELECT 'boom'"}), invocation())
    service.query("app", parse_query({"sql": "SELECT 1"}), invocation())
    assert len(opened) == 2 and opened[0].closed


def test_the_pool_replaces_dead_and_changed_connections(world):
    service, opened, _, dynamodb = world
    definition = service.catalog.get("app")
    first = service.pool.acquire(definition)
    assert service.pool.acquire(definition) is first
    first.usable = False
    second = service.pool.acquire(definition)
    assert second is not first and first.closed
    changed = service.catalog.get("app").__class__(**{**vars(definition), "statement_timeout_ms": 9})
    assert service.pool.acquire(changed) is not second and second.closed
    assert service.pool.stats.replaced == 2


def test_audit_write_failures_are_counted_not_raised(world):
    service, _, _, _ = world

    class Broken:
        def write(self, record):
            raise RuntimeError("gone")

    service._audit_sink = Broken()
    assert service.query("app", parse_query({"sql": "SELECT 1"}), invocation())["rowCount"] == 1
    assert service.audit_write_failures == 1


def test_settings_come_from_arguments_then_the_environment_then_defaults():
    env = {"RDSGATE_CONNECTIONS_TABLE": "from-env", "RDSGATE_DEFAULT_MAX_ROWS": "50", "AWS_REGION": "eu-west-1"}
    settings = Settings.resolve(env, default_max_rows=7)
    assert (settings.connections_table, settings.default_max_rows, settings.region) == ("from-env", 7, "eu-west-1")
    assert Settings.resolve(env).default_max_rows == 50 and Settings.resolve(env).definition_ttl_seconds == 30.0
    with pytest.raises(ValueError, match="RDSGATE_DEFAULT_MAX_ROWS"):
        Settings.resolve({**env, "RDSGATE_DEFAULT_MAX_ROWS": "many"})
    with pytest.raises(ValueError, match="RDSGATE_CONNECTIONS_TABLE"):
        Settings.resolve({})


def test_each_invocation_carries_its_trace_id_into_the_audit_record():
    from rdsgate.runtime import begin_invocation, trace_facts

    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert trace_facts({"_X_AMZN_TRACE_ID": header}) == {"traceId": "1-5759e988-bd862e3fe1be46a994272793"}
    assert trace_facts({}) == {} and trace_facts({"_X_AMZN_TRACE_ID": "Parent=1"}) == {}
    assert begin_invocation({"_X_AMZN_TRACE_ID": header, "POWERTOOLS_LOGGER_SAMPLE_RATE": "0.5"})["traceId"].startswith("1-")


# -- the runtime: the composition root, and the service's explicit steps -------------------------


class FakeAws:
    """What build_service asks of AWS: one DynamoDB client, credentials, other clients."""

    def __init__(self, dynamodb):
        self._dynamodb, self.clients = dynamodb, []

    def dynamodb(self):
        return self._dynamodb

    def credentials(self):
        return None

    def client(self, service, region=None):
        self.clients.append(service)
        raise AssertionError("no other client is made while the service is built")


def test_build_service_composes_the_core_from_settings_and_the_aws_calls_it_is_given():
    from rdsgate.idempotency import IdempotentRunner
    from rdsgate.runtime import build_service

    dynamodb = FakeDynamoDB([item("app")])
    settings = Settings(connections_table="t", audit_table="audit", idempotency_table="keys", idempotency_expiry_seconds=60,
                        max_batch_sets=3, max_transaction_statements=4, max_request_bytes=99, default_max_rows=5)
    service = build_service(settings, ListLogger(), aws=FakeAws(dynamodb))
    assert service.catalog.get("app").name == "app" and dynamodb.reads == 1
    limits = service.limits
    assert (limits.max_batch_sets, limits.max_transaction_statements, limits.max_request_bytes, limits.default_max_rows) == (3, 4, 99, 5)
    assert isinstance(service._idempotency, IdempotentRunner) and service._idempotency.table_name == "keys"
    assert service._audit_sink is not None
    bare = build_service(Settings(connections_table="t"), ListLogger(), aws=FakeAws(dynamodb))
    assert bare._idempotency is None and bare._audit_sink is None
    with pytest.raises(errors.InvalidRequest, match="parameterSets"):
        service.batch_request({"sql": "SELECT :a", "parameterSets": [{"a": 1}] * 4})
    with pytest.raises(errors.InvalidRequest, match="statements"):
        service.transaction_request({"statements": [{"sql": "SELECT 1"}] * 5})


def test_the_holder_builds_once_and_a_reset_closes_the_connections(monkeypatch):
    from rdsgate.runtime import ServiceHolder

    monkeypatch.setenv("RDSGATE_CONNECTIONS_TABLE", "from-env")
    built, closed = [], []

    class Pool:
        def close_all(self):
            closed.append(True)

    def build(settings, logger, metrics):
        service = type("Service", (), {"pool": Pool(), "settings": settings})()
        built.append(service)
        return service

    holder = ServiceHolder(ListLogger(), build=build)
    assert holder.get() is holder.get() and len(built) == 1 and built[0].settings.connections_table == "from-env"
    holder.reset()
    assert closed == [True]
    monkeypatch.setenv("RDSGATE_CONNECTIONS_TABLE", "changed")
    assert holder.get() is not built[0] and built[1].settings.connections_table == "changed"


class FakeIdempotency:
    def __init__(self):
        self.calls, self.results = [], {}

    def run(self, scope, payload, work, remaining_ms=None):
        self.calls.append((scope, payload, remaining_ms))
        key = tuple(sorted(scope.items()))
        if key not in self.results:
            self.results[key] = work()
        return self.results[key]


def test_the_idempotency_step_runs_a_keyed_request_once(world):
    service, opened, sink, _ = world
    request = parse_query({"sql": "SELECT 1 AS one", "idempotencyKey": "k1"})
    with pytest.raises(errors.InvalidRequest, match="idempotencyKey"):  # no runner: refused before anything runs
        service.query("app", request, invocation())
    assert opened == [] and sink.records == []
    service._idempotency = runner = FakeIdempotency()
    timed = Invocation(caller=Caller(ALICE, governed=True), result_limit_bytes=10**6, remaining_ms=60_000)
    first = service.query("app", request, timed)
    assert service.query("app", request, timed) is first and len(opened[0].statements) == 1
    scope, payload, remaining = runner.calls[0]
    assert scope == {"caller": ALICE, "connection": "app", "idempotencyKey": "k1"} and payload["sql"] == "SELECT 1 AS one"
    assert remaining == 60_000  # a plain number: no Lambda context in the core
    service.query("app", parse_query({"sql": "SELECT 1 AS one"}), invocation())
    assert len(runner.calls) == 2  # no key: the step is skipped


def test_the_deadline_step_bounds_the_statement_by_the_time_left(world):
    service, opened, sink, _ = world
    seen = []
    original = FakeConnection.execute

    def execute(self, prepared, values, options):
        seen.append(options.session.statement_timeout_ms)
        return original(self, prepared, values, options)

    FakeConnection.execute = execute
    try:
        for remaining in (4_700, 1_900, None):
            late = Invocation(caller=Caller(ALICE, governed=True), result_limit_bytes=10**6, remaining_ms=remaining)
            service.query("app", parse_query({"sql": "SELECT 1"}), late)
        with pytest.raises(errors.QueryTimeout):
            service.query("app", parse_query({"sql": "SELECT 1"}), Invocation(caller=Caller(ALICE, governed=True), result_limit_bytes=10**6, remaining_ms=1_000))
    finally:
        FakeConnection.execute = original
    assert seen == [3_000, 400, None]  # whole seconds when over one; the margin kept
    assert sink.records[-1]["outcome"] == "QueryTimeout"


def test_the_data_api_database_check_is_the_service_s(world):
    service, _, _, _ = world
    assert service.authorize("app", Caller(ALICE, governed=True), database="app").name == "app"
    with pytest.raises(errors.InvalidRequest, match="serves database 'app', not 'other'"):
        service.authorize("app", Caller(ALICE, governed=True), database="other")


def test_the_schema_query_takes_the_definitions_timeout_and_the_deadline():
    """/schema's catalog query has the session policy of any request: the definition's timeout before the service's
    default, bounded by the function's time left (a clean 504 rather than the function dying mid-query)."""
    sessions = []

    class CatalogConnection(FakeConnection):
        def execute(self, prepared, values, options):
            sessions.append(options.session)
            return StatementResult(columns=[], rows=[["public", "t", "BASE TABLE", "id", "int4", "NO"]], truncated=False, updated_rows=None)

    dynamodb = FakeDynamoDB([item("app", statement_timeout_ms=5000)])
    catalog = DefinitionCatalog("t", ttl_seconds=60, client_factory=lambda: dynamodb)
    service = QueryService(catalog, ConnectionPool(signer=None, opener=lambda engine, params: CatalogConnection(params)), ListLogger(),
                           limits=Limits(masking_key=b"k", statement_timeout_ms=30000))
    caller = Caller(ALICE, governed=True)
    assert service.schema("app", invocation())["schemas"][0]["tables"][0]["name"] == "t"
    service.schema("app", Invocation(caller=caller, result_limit_bytes=10**6, remaining_ms=4000.0))
    assert [s.statement_timeout_ms for s in sessions] == [5000, 2000]
    with pytest.raises(errors.QueryTimeout):
        service.schema("app", Invocation(caller=caller, result_limit_bytes=10**6, remaining_ms=1000.0))
    assert len(sessions) == 2


def test_every_error_the_api_knows_has_a_data_api_shape():
    """A code the Data API does not model would answer 500, which boto3 retries (and a retry of a request that
    needs a review opens another review)."""
    from rdsgate import edge
    from rdsgate.dataapi.exceptions import ERROR_SHAPES, error_response
    from rdsgate.reviews.item import ReviewExpired, ReviewPending, ReviewRejected

    assert set(edge.HTTP_STATUS) <= set(ERROR_SHAPES)
    status, headers, body = error_response(ReviewPending("review r-1 is PENDING", review_id="r-1", expires_at="x"))
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException") and "r-1" in body["message"]
    assert error_response(ReviewRejected("x"))[:2] == (403, {"x-amzn-ErrorType": "ForbiddenException"})
    assert error_response(ReviewExpired("x"))[:2] == (400, {"x-amzn-ErrorType": "BadRequestException"})
    assert all(status < 500 for code, (_, status) in ERROR_SHAPES.items() if code in edge.HTTP_STATUS and edge.HTTP_STATUS[code] < 500)


def test_the_edges_tables_map_every_error():
    from rdsgate import edge
    from rdsgate.reviews.item import ReviewExpired, ReviewNotFound, ReviewPending, ReviewRejected
    from rdsgate.statements import StatementCancelled, StatementNotFound

    expected = {
        errors.InvalidRequest: 400, errors.ConnectionNotFound: 404, errors.RequestTooLarge: 413, errors.SqlError: 422,
        errors.AuthenticationFailed: 502, errors.DatabaseUnavailable: 503, errors.QueryTimeout: 504, errors.ResultTooLarge: 413,
        errors.Forbidden: 403, errors.ReadOnlyViolation: 403, errors.GuardrailViolation: 403, errors.InvalidDefinition: 500,
        errors.InternalError: 500, errors.TransactionNotFound: 404, errors.TransactionExpired: 410, errors.TooManySessions: 503,
        ReviewPending: 202, ReviewRejected: 409, ReviewExpired: 410, ReviewNotFound: 404, StatementCancelled: 409, StatementNotFound: 404,
    }
    assert set(errors.ERROR_TABLE) <= set(expected)
    for cls, status in expected.items():
        assert cls.code in edge.HTTP_STATUS and edge.http_status(cls("x")) == status, cls
        assert not hasattr(cls, "status") and not hasattr(cls, "step_functions_name")  # the classes carry code, message and fields
    names = {cls: edge.step_functions_name(cls) for cls in errors.ERROR_TABLE}
    assert names[errors.RequestTooLarge] == "InvalidRequest" and edge.step_functions_name(errors.RequestTooLarge("x")) == "InvalidRequest"
    assert all(name == cls.__name__ for cls, name in names.items() if cls is not errors.RequestTooLarge)


def test_the_data_api_counts_only_plain_queries_as_reads():
    """A result over the limit names whether the statement may have written: the read kinds are the tunnel's."""
    from rdsgate.dataapi import may_write

    for sql in ("SELECT 1", "show tables", "DESC t", "EXPLAIN SELECT 1", "HELP 'contents'"):
        assert may_write(sql, "mysql") is False, sql
    for sql in ("UPDATE t SET a = 1", "CALL p()", "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x"):
        assert may_write(sql, "postgres") is True, sql
