"""Benchmark workloads, each run in a fresh child process: ``python -m bench.worker TASK ARGS_JSON RESULT_FILE``.

A child is a Lambda execution environment: its stdout (Powertools' log lines, one per
request) goes where the parent sends it (``/dev/null``), and its findings go to
RESULT_FILE as JSON. Imports stay inside the tasks, so the cold-start tasks pay
only for what they use.

Over 400 lines on purpose: the tasks are independent workloads that share only the child's entry point.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

REGION = "us-east-1"
IAM_USER = "bench_iam"
DATABASE = "bench"
CALLER_ARN = "arn:aws:sts::123456789012:assumed-role/bench-caller/bench"
COLUMNS = "id, qty, price, name, active, born, created, ratio, token, attrs"
PK_SQL = f"SELECT {COLUMNS} FROM items WHERE id = :id"
ALL_SQL = f"SELECT {COLUMNS} FROM items ORDER BY id"
MILLION_SQL = {
    "postgres": "SELECT g AS id, md5(g::text) AS label, g * 1.5 AS amount FROM generate_series(1, 1000000) AS g",
    "mysql": "SELECT seq AS id, MD5(seq) AS label, seq * 1.5 AS amount FROM seq_1_to_1000000",
}
STATEMENTS = {"select1": ("SELECT 1", False), "pk": (PK_SQL, True)}  # name -> (sql, takes :id)
CONNECTION = {"postgres": "pg", "mysql": "my"}
FUNCTION_TIMEOUT_MS = 30_000  # the deployed functions' timeout (infra/settings.py)


class LambdaContext:
    """What the Lambda runtime passes: a request id, the function ARN and the time left."""

    function_name = "rdsgate-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:rdsgate-bench"

    def __init__(self, number: int = 0) -> None:
        self.aws_request_id = f"00000000-0000-4000-8000-{number:012d}"
        self._deadline = time.monotonic() * 1000 + FUNCTION_TIMEOUT_MS

    def get_remaining_time_in_millis(self) -> int:
        return int(self._deadline - time.monotonic() * 1000)


def api_event_text(connection: str, body: dict) -> str:
    """An API Gateway REST proxy event for POST /connections/{connection}/query, as JSON text."""
    return json.dumps(
        {
            "resource": "/connections/{name}/query",
            "path": f"/connections/{connection}/query",
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"},
            "multiValueHeaders": {
                "Content-Type": ["application/json"],
                "Host": ["abc123.execute-api.us-east-1.amazonaws.com"],
            },
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": {"name": connection},
            "stageVariables": None,
            "requestContext": {
                "resourcePath": "/connections/{name}/query",
                "httpMethod": "POST",
                "path": f"/prod/connections/{connection}/query",
                "stage": "prod",
                "accountId": "123456789012",
                "apiId": "abc123",
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "requestTimeEpoch": 1764130000000,
                "protocol": "HTTP/1.1",
                "identity": {
                    "accountId": "123456789012",
                    "caller": "AROAEXAMPLE:bench",
                    "userArn": CALLER_ARN,
                    "user": "AROAEXAMPLE:bench",
                    "sourceIp": "203.0.113.10",
                    "userAgent": "bench/1.0",
                    "accessKey": "ASIAEXAMPLE",
                },
            },
            "body": json.dumps(body),
            "isBase64Encoded": False,
        }
    )


def _token(port: int) -> str:
    import boto3

    return boto3.client("rds", region_name=REGION).generate_db_auth_token(
        DBHostname="localhost", Port=port, DBUsername=IAM_USER, Region=REGION
    )


def raw_connect(engine: str, info: dict, token: str, *, unbuffered: bool = False):
    """A plain driver connection as a developer would open it: TLS verified, IAM token as password.

    ``unbuffered``: MySQL's cursors stream rows from the server (PyMySQL's SSCursor) instead of reading them all.
    """
    import ssl

    context = ssl.create_default_context(cafile=info["ca_file"])
    if engine == "postgres":
        import pg8000.native

        return pg8000.native.Connection(
            IAM_USER, host="localhost", port=info["port"], database=DATABASE, password=token, ssl_context=context
        )
    import pymysql

    streaming = {"cursorclass": pymysql.cursors.SSCursor} if unbuffered else {}
    return pymysql.connect(
        host="localhost", port=info["port"], user=IAM_USER, password=token, database=DATABASE, ssl=context, autocommit=True,
        **streaming,
    )


def raw_runner(engine: str, conn, sql: str):
    """A callable running ``sql`` (``:id`` bound when given) on the raw connection and returning all rows."""
    if engine == "postgres":
        def run(**params):
            return conn.run(sql, **params)

        return run
    my_sql = sql.replace(":id", "%(id)s")

    def run_my(**params):
        with conn.cursor() as cur:
            cur.execute(my_sql, params or None)
            return cur.fetchall()

    return run_my


def _ok(response: dict) -> None:
    if response["statusCode"] != 200:
        raise RuntimeError(f"rdsgate answered {response['statusCode']}: {response['body'][:300]}")


# --- (a) warm overhead ---------------------------------------------------------------------------

def task_warm(args: dict) -> dict:
    """Interleaved pairs: the raw driver on an open connection vs rdsgate.api.handler, per statement."""
    from rdsgate import api, runtime

    engine, info = args["engine"], args["server"]
    raw = raw_connect(engine, info, _token(info["port"]))
    connection = CONNECTION[engine]
    out: dict = {}
    counter = 0
    for name in args["statements"]:
        sql, keyed = STATEMENTS[name]
        run_raw = raw_runner(engine, raw, sql)
        raw_ns: list[int] = []
        gate_ns: list[int] = []
        rep_medians: list[tuple[float, float]] = []
        total = args["warmup"] + args["reps"] * args["pairs"]
        for i in range(total):
            key = 1 + (i * 7919) % 100_000
            body = {"sql": sql, "parameters": {"id": key}} if keyed else {"sql": sql}
            event = json.loads(api_event_text(connection, body))
            counter += 1
            context = LambdaContext(counter)
            params = {"id": key} if keyed else {}
            order = (0, 1) if i % 2 == 0 else (1, 0)
            times = [0, 0]
            for side in order:
                if side == 0:
                    started = time.perf_counter_ns()
                    run_raw(**params)
                    times[0] = time.perf_counter_ns() - started
                else:
                    started = time.perf_counter_ns()
                    response = api.handler(event, context)
                    times[1] = time.perf_counter_ns() - started
                    _ok(response)
            if i >= args["warmup"]:
                raw_ns.append(times[0])
                gate_ns.append(times[1])
                done = i - args["warmup"] + 1
                if done % args["pairs"] == 0:
                    rep_medians.append((_median(raw_ns[-args["pairs"]:]), _median(gate_ns[-args["pairs"]:])))
        out[name] = {"raw_ns": raw_ns, "gate_ns": gate_ns, "rep_medians_ns": rep_medians}
        out[name]["layers_us"] = _layers(engine, raw, sql, keyed, args.get("layer_calls", 300))
    service = runtime.SERVICE.get()
    out["pool"] = {**vars(service.pool.stats), "tokens_signed": service.pool._signer.tokens_signed}
    return out


def _layers(engine: str, raw, sql: str, keyed: bool, calls: int) -> dict[str, float]:
    """Median µs of each layer on its own (not interleaved): where rdsgate's added time goes."""
    from rdsgate import api, runtime
    from rdsgate.access import Caller
    from rdsgate.request import parse_query
    from rdsgate.service import Invocation
    from rdsgate.sql.text import prepare

    service = runtime.SERVICE.get()
    connection_name = CONNECTION[engine]
    params = {"id": 4242} if keyed else {}
    request = parse_query({"sql": sql, "parameters": params})
    caller = Caller(arn=CALLER_ARN, governed=True)
    definition = service.catalog.get(connection_name)
    connection = service.pool.acquire(definition)
    prepared = prepare(sql, engine)
    options = service._options(definition, request, Invocation(caller=caller, result_limit_bytes=6_000_000, remaining_ms=29_990))
    event_text = api_event_text(connection_name, {"sql": sql, "parameters": params} if keyed else {"sql": sql})

    def timed(work) -> float:
        for _ in range(30):
            work()
        samples = []
        for _ in range(calls):
            started = time.perf_counter_ns()
            work()
            samples.append(time.perf_counter_ns() - started)
        return _median(samples) / 1000

    layers = {"raw driver": timed(lambda: raw_runner(engine, raw, sql)(**params))}
    if engine == "postgres" and keyed:
        statement = raw.prepare(sql)
        layers["raw driver, prepared statement"] = timed(lambda: statement.run(**params))
    layers["rdsgate driver (connection.execute)"] = timed(lambda: connection.execute(prepared, params, options))
    with _without_session_reset(connection):  # what the clean-session reset costs, measured the same way
        layers["rdsgate driver without the session reset"] = timed(lambda: connection.execute(prepared, params, options))
    layers["query service (service.query)"] = timed(
        lambda: service.query(connection_name, request, Invocation(caller=caller, result_limit_bytes=6_000_000, remaining_ms=29_990))
    )
    events = iter([json.loads(event_text) for _ in range(calls + 30)])  # decoded before, as the runtime does
    layers["API handler (rdsgate.api.handler)"] = timed(lambda: api.handler(next(events), LambdaContext()))
    return layers


@contextlib.contextmanager
def _without_session_reset(connection):
    """The driver with its per-request reset switched off (DISCARD ALL / COM_RESET_CONNECTION): bench only."""
    if connection.engine == "mysql":
        connection._reset = lambda: None
        try:
            yield
        finally:
            del connection._reset
        return
    wire = connection._wire

    def commit_only(context):  # PgWire.end_request's first half, through the wire's own calls: COMMIT, Sync, read
        wire.send_many([], ["COMMIT"], 0)
        wire.sync(context)

    wire.end_request = commit_only
    try:
        yield
    finally:
        del wire.end_request


def _median(values: list) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def task_warm_telemetry(args: dict) -> dict:
    """What metrics and traces add to a warm request: per round, the raw driver and ``rdsgate.api.handler``
    with telemetry off, with EMF metrics on (one flush per invocation, to stdout) and with metrics and
    X-Ray subsegments on (sent over UDP to the daemon's address, as in Lambda), in rotating order."""
    from rdsgate import api, runtime, telemetry, tracing

    engine, info = args["engine"], args["server"]
    raw = raw_connect(engine, info, _token(info["port"]))
    sql, keyed = STATEMENTS[args["statement"]]
    run_raw = raw_runner(engine, raw, sql)
    service = runtime.SERVICE.get()
    emf = telemetry.recorder({}, service="rdsgate-bench")
    off = telemetry.NoopRecorder()

    def configure(name: str) -> None:
        recorder = off if name == "off" else emf
        runtime.SERVICE.metrics = service._metrics = service.pool._metrics = recorder
        tracing.TRACING._enabled = name == "metrics+tracing"

    configure("metrics+tracing")
    sides = ["raw", "off", "metrics", "metrics+tracing"]
    times: dict[str, list[int]] = {side: [] for side in sides}
    counter = 0
    for i in range(args["warmup"] + args["rounds"]):
        key = 1 + (i * 7919) % 100_000
        order = sides[i % 4:] + sides[:i % 4]
        for side in order:
            if side == "raw":
                started = time.perf_counter_ns()
                run_raw(**({"id": key} if keyed else {}))
                elapsed = time.perf_counter_ns() - started
            else:
                configure(side)
                counter += 1
                event = json.loads(api_event_text(CONNECTION[engine], {"sql": sql, "parameters": {"id": key}} if keyed else {"sql": sql}))
                context = LambdaContext(counter)
                started = time.perf_counter_ns()
                response = api.handler(event, context)
                elapsed = time.perf_counter_ns() - started
                _ok(response)
            if i >= args["warmup"]:
                times[side].append(elapsed)
    sent = tracing.TRACING._emitter.sent if tracing.TRACING._emitter is not None else 0
    if sent < args["rounds"]:  # every traced request sends its subsegments; none: the variant measured nothing
        raise RuntimeError(f"only {sent} subsegments were sent for {args['rounds']} traced requests")
    return {"times_ns": times, "subsegments_sent": sent}


# --- (b) result encoding -----------------------------------------------------------------------

def task_encode(args: dict) -> dict:
    """The raw driver fetching every row vs rdsgate's service turning the same rows into JSON text."""
    from rdsgate import runtime
    from rdsgate.access import Caller
    from rdsgate.encoding import encode_within
    from rdsgate.request import parse_query
    from rdsgate.service import Invocation

    engine, info = args["engine"], args["server"]
    rows = args["rows"]
    sql = f"{ALL_SQL} LIMIT {rows}"
    raw = raw_connect(engine, info, _token(info["port"]))
    run_raw = raw_runner(engine, raw, sql)
    service = runtime.SERVICE.get()
    caller = Caller(arn=CALLER_ARN, governed=True)
    request = parse_query({"sql": sql, "maxRows": rows, "shape": args.get("shape", "objects")})

    def gate(connection: str = CONNECTION[engine]) -> int:
        invocation = Invocation(caller=caller, result_limit_bytes=1 << 31, request_id="bench", remaining_ms=None)
        document = service.query(connection, request, invocation)
        text = encode_within(document, 1 << 31, "the benchmark")
        if document["rowCount"] != rows or document["truncated"]:
            raise RuntimeError("rdsgate did not return every row")
        return len(text)

    def floor() -> int:
        result = run_raw()
        if len(result) != rows:
            raise RuntimeError("the raw driver did not return every row")
        return len(result)

    detecting = f"{CONNECTION[engine]}-detect"  # every content detector on (mask_detectors)
    gate()  # warm up: connection, type lookups (MariaDB JSON), caches
    gate(detecting)
    floor()
    raw_s, gate_s, detect_s = [], [], []
    json_bytes = 0
    for rep in range(args["reps"]):
        for side in ((0, 1, 2) if rep % 2 == 0 else (2, 1, 0)):
            started = time.perf_counter()
            if side == 0:
                floor()
                raw_s.append(time.perf_counter() - started)
            elif side == 1:
                json_bytes = gate()
                gate_s.append(time.perf_counter() - started)
            else:
                gate(detecting)
                detect_s.append(time.perf_counter() - started)
    return {"raw_s": raw_s, "gate_s": gate_s, "detect_s": detect_s, "json_bytes": json_bytes}


# --- (c) cold start ---------------------------------------------------------------------------

def task_cold_gate(args: dict) -> dict:
    """A fresh process: import rdsgate.api and answer one API Gateway request."""
    started = time.perf_counter()
    from rdsgate import api

    imported = time.perf_counter()
    modules_after_import = sorted(m for m in ("pg8000", "pymysql", "sqlglot", "boto3", "botocore") if m in sys.modules)
    event = json.loads(api_event_text(CONNECTION[args["engine"]], {"sql": "SELECT 1"}))
    response = api.handler(event, LambdaContext())
    _ok(response)
    answered = time.perf_counter()
    return {
        "import_s": imported - started,
        "first_request_s": answered - imported,
        "origins": _origins("rdsgate", "aws_lambda_powertools", "botocore", "pg8000", "pymysql"),
        "modules_after_import": modules_after_import,
        "other_driver_loaded": ("pymysql" if args["engine"] == "postgres" else "pg8000") in sys.modules,
        "sqlglot_loaded": "sqlglot" in sys.modules,
    }


def task_cold_floor(args: dict) -> dict:
    """A fresh process: import boto3, sign a token, open one raw driver connection and run SELECT 1."""
    started = time.perf_counter()
    import boto3

    imported = time.perf_counter()
    info = args["server"]
    token = boto3.client("rds", region_name=REGION).generate_db_auth_token(
        DBHostname="localhost", Port=info["port"], DBUsername=IAM_USER, Region=REGION
    )
    conn = raw_connect(args["engine"], info, token)
    rows = raw_runner(args["engine"], conn, "SELECT 1")()
    assert list(rows[0]) == [1]
    answered = time.perf_counter()
    return {"import_s": imported - started, "first_request_s": answered - imported,
            "origins": _origins("boto3", "botocore", "pg8000", "pymysql")}  # fmt: skip


def _origins(*modules: str) -> dict[str, str]:
    """Where each loaded module came from (the asset benchmark checks it is the asset)."""
    return {m: sys.modules[m].__file__ for m in modules if m in sys.modules}


# --- (d) reuse --------------------------------------------------------------------------------

def task_reuse(args: dict) -> dict:
    """N warm invocations in one execution environment; count connections opened and tokens signed."""
    from rdsgate import api, runtime

    statuses: dict[str, int] = {}
    for i in range(args["invocations"]):
        body = {"sql": PK_SQL, "parameters": {"id": 1 + i}}
        response = api.handler(json.loads(api_event_text(CONNECTION[args["engine"]], body)), LambdaContext(i))
        statuses[str(response["statusCode"])] = statuses.get(str(response["statusCode"]), 0) + 1
    service = runtime.SERVICE.get()
    return {"statuses": statuses, **vars(service.pool.stats), "tokens_signed": service.pool._signer.tokens_signed}


# --- (e) memory -------------------------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the peak (VmHWM) to the current RSS, so the peak measured next is the work's; False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def task_memory(args: dict) -> dict:
    """Peak RSS while rdsgate answers a 1,000,000-row SELECT with maxRows 1000, over the baseline before it."""
    import gc
    import resource

    from rdsgate import api

    connection = CONNECTION[args["engine"]]
    _ok(api.handler(json.loads(api_event_text(connection, {"sql": "SELECT 1"})), LambdaContext(1)))
    event = json.loads(api_event_text(connection, {"sql": MILLION_SQL[args["engine"]], "maxRows": 1000}))
    gc.collect()
    baseline_kb = _status_kb("VmRSS")
    reset = _reset_peak()  # the peak measured is this request's
    started = time.perf_counter()
    response = api.handler(event, LambdaContext(2))
    elapsed = time.perf_counter() - started
    _ok(response)
    body = json.loads(response["body"])
    peak_kb = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "baseline_kb": baseline_kb,
        "peak_kb": peak_kb,
        "peak_reset": reset,
        "rows": body["rowCount"],
        "truncated": body["truncated"],
        "seconds": elapsed,
    }


# --- (f) concurrency --------------------------------------------------------------------------

def task_concurrent(args: dict) -> dict:
    """One of several execution environments: wait for the common start, then N invocations."""
    from rdsgate import api, runtime

    connection = CONNECTION[args["engine"]]
    events = [
        json.loads(api_event_text(connection, {"sql": PK_SQL, "parameters": {"id": 1 + (i * 31 + args["index"]) % 100_000}}))
        for i in range(args["invocations"])
    ]
    while time.time() < args["start_at"]:
        time.sleep(0.001)
    statuses: dict[str, int] = {}
    errors: list[str] = []
    started = time.perf_counter()
    for i, event in enumerate(events):
        response = api.handler(event, LambdaContext(i))
        code = str(response["statusCode"])
        statuses[code] = statuses.get(code, 0) + 1
        if code != "200" and len(errors) < 5:
            errors.append(response["body"][:200])
    elapsed = time.perf_counter() - started
    service = runtime.SERVICE.get()
    return {
        "statuses": statuses,
        "errors": errors,
        "seconds": elapsed,
        "opened": service.pool.stats.opened,
        "tokens_signed": service.pool._signer.tokens_signed,
    }


# --- (h) a large SELECT to S3 (bench.statements) --------------------------------------------

def task_export_raw(args: dict) -> dict:
    """The raw driver reads every row of ``sql``, streaming (a server-side cursor, batches of 10,000), keeping nothing."""
    engine, info, sql = args["engine"], args["info"], args["sql"]
    conn = raw_connect(engine, info, _token(info["port"]), unbuffered=True)
    rows = 0
    if engine == "postgres":
        started = time.perf_counter()
        conn.run("BEGIN READ ONLY")
        conn.run(f"DECLARE export NO SCROLL CURSOR FOR {sql}")
        while True:
            batch = conn.run("FETCH 10000 FROM export")
            if not batch:
                break
            rows += len(batch)
        conn.run("COMMIT")
    else:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.execute(sql)
            while True:
                batch = cursor.fetchmany(10000)
                if not batch:
                    break
                rows += len(batch)
    seconds = time.perf_counter() - started
    conn.close()
    return {"rows": rows, "seconds": seconds}


def task_export_gate(args: dict) -> dict:
    """``sql`` as an asynchronous statement, through ``rdsgate.worker.run_submitted``: rows, time, peak RSS growth,
    when the first byte reached S3."""
    import gc

    from rdsgate import statements as st
    from rdsgate.result_writer import ResultWriter
    from rdsgate.runtime import LOGGER, ServiceHolder
    from rdsgate.worker import run_submitted, store_for

    settings = st.StatementSettings.resolve()
    store = store_for(settings)
    holder = ServiceHolder(LOGGER)
    output = st.Output("jsonl", args.get("compression", "gzip"))

    def submit(sql: str) -> str:
        statement_id = st.new_statement_id()
        store.create(connection=CONNECTION[args["engine"]], caller="bench", request={"sql": sql}, output=output,
                     key=settings.key_for(statement_id, output), statement_id=statement_id)
        store._update(statement_id, {"governed": False}, expect=("SUBMITTED",))
        return statement_id

    writers: list = []
    original = ResultWriter.__init__

    def keep(self, *a, **k) -> None:  # to read when the first byte reached S3
        original(self, *a, **k)
        writers.append(self)

    ResultWriter.__init__ = keep  # type: ignore[method-assign]
    warm = run_submitted(submit("SELECT 1 AS one"), holder, remaining=lambda: 900_000, settings=settings)
    assert warm is not None and warm["rowCount"] == 1
    statement_id = submit(args["sql"])
    gc.collect()
    baseline_kb = _status_kb("VmRSS")
    reset = _reset_peak()
    started = time.monotonic()
    summary = run_submitted(statement_id, holder, remaining=lambda: 900_000, settings=settings)
    seconds = time.monotonic() - started
    peak_kb = _status_kb("VmHWM")
    if summary is None:
        raise RuntimeError(f"the statement did not finish: {store.get(statement_id)}")
    return {
        "rows": summary["rowCount"], "seconds": seconds, "bytes": summary["bytes"], "stored_bytes": summary["storedBytes"],
        "first_byte_seconds": writers[-1].first_byte_at - started,
        "baseline_kb": baseline_kb, "peak_kb": peak_kb, "peak_reset": reset,
    }


# --- profiles, for targets that are missed ------------------------------------------------------

def task_profile_warm(args: dict) -> dict:
    """cProfile of rdsgate.api.handler on warm requests: where the added time goes."""
    import cProfile
    import io
    import pstats

    from rdsgate import api

    sql, keyed = STATEMENTS[args["statement"]]
    connection = CONNECTION[args["engine"]]
    events = []
    for i in range(args["calls"] + 50):
        body = {"sql": sql, "parameters": {"id": 1 + i}} if keyed else {"sql": sql}
        events.append(json.loads(api_event_text(connection, body)))
    for event in events[:50]:
        _ok(api.handler(event, LambdaContext()))
    profiler = cProfile.Profile()
    profiler.enable()
    for event in events[50:]:
        api.handler(event, LambdaContext())
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(args.get("top", 25))
    return {"profile": text.getvalue()}


def task_profile_encode(args: dict) -> dict:
    """cProfile of the service turning the rows into JSON text."""
    import cProfile
    import io
    import pstats

    from rdsgate import runtime
    from rdsgate.access import Caller
    from rdsgate.encoding import encode_within
    from rdsgate.request import parse_query
    from rdsgate.service import Invocation

    service = runtime.SERVICE.get()
    request = parse_query({"sql": f"{ALL_SQL} LIMIT {args['rows']}", "maxRows": args["rows"]})
    invocation = Invocation(caller=Caller(arn=CALLER_ARN, governed=True), result_limit_bytes=1 << 31)
    encode_within(service.query(CONNECTION[args["engine"]], request, invocation), 1 << 31, "bench")
    profiler = cProfile.Profile()
    profiler.enable()
    encode_within(service.query(CONNECTION[args["engine"]], request, invocation), 1 << 31, "bench")
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(args.get("top", 20))
    return {"profile": text.getvalue()}


def task_profile_cold(args: dict) -> dict:
    """Where a cold start goes: the slowest imports (-X importtime) and a profile of the first request."""
    import cProfile
    import io
    import pstats
    import subprocess

    lines = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "from rdsgate import api"], capture_output=True, text=True, check=True
    ).stderr.splitlines()
    imports = []
    for line in lines:
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            imports.append((int(parts[1]), parts[2].rstrip()))
    imports.sort(reverse=True)
    text = io.StringIO()
    text.write("slowest imports of `from rdsgate import api` (cumulative µs):\n")
    for micros, name in imports[:15]:
        text.write(f"{micros:>10}  {name}\n")
    from rdsgate import api

    event = json.loads(api_event_text(CONNECTION[args["engine"]], {"sql": "SELECT 1"}))
    profiler = cProfile.Profile()
    profiler.enable()
    api.handler(event, LambdaContext())
    profiler.disable()
    text.write("\nthe first request, by cumulative time:\n")
    pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("cumtime").print_stats(25)
    return {"profile": text.getvalue()}


def main() -> None:
    task, raw_args, result_file = sys.argv[1], sys.argv[2], sys.argv[3]
    result = globals()[f"task_{task}"](json.loads(raw_args))
    with open(result_file, "w") as f:
        json.dump(result, f)
    sys.stdout.flush()
    os._exit(0)  # like a frozen Lambda environment: no teardown work is measured or awaited


if __name__ == "__main__":
    main()
