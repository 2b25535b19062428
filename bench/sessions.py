"""Benchmark (i): what a statement costs inside a session, beside the same statement outside one, and what a
session costs to begin and end.

``python3 -m bench.sessions [--statements 200] [--sessions 20] [--engines postgres,mysql]`` starts the benchmark
world (``bench.env``: moto in its own process, the IAM-verifying servers), a session table on moto and session
runners as local worker processes (``rdsgate_devstack.sessions_local``, the same ``rdsgate.sessions.runner.handler``
the runner function runs), then per engine:

- stateless: ``QueryService.query`` of a primary-key SELECT, warm (what ``/query`` runs);
- in a session: the same request through ``SessionGateway.run`` (post on the channel, the runner runs it with the
  same service, answer read back), in one open session;
- the parts of the added time, measured: the DynamoDB calls the API side makes per statement (counted and timed
  by botocore's event hooks), the runner's time in the database (``durationMs``) and the channel's own CPU time
  (encoding, packing);
- per session: begin (warm runner: an idle worker takes it) and commit, and one begin that must start a new
  worker (a cold runner).

Writes ``bench/RESULTS-sessions.md`` with the AWS estimate built from these parts (README "Transactions across
calls"). moto answers on loopback and runs on the same two cores as everything else, so its call times are not
DynamoDB's: the estimate takes DynamoDB's from the call counts measured here and DynamoDB's published latency.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from .env import CALLER_ARN, REPO, BenchEnv, REGION
from .stats import machine, median, percentile

POLL_MS = 10.0  # the deployed default (RDSGATE_SESSION_POLL_MS)
SQL = "SELECT id, name, price FROM items WHERE id = :id"
# DynamoDB from Lambda in the same region, over the VPC gateway endpoint: AWS documents single-digit milliseconds;
# these are the typical medians used for the estimate (a strongly consistent GetItem of an item under 4 KB, and a
# conditional UpdateItem). The pessimistic column doubles them.
AWS_READ_MS, AWS_WRITE_MS = 3.0, 5.0


class _Calls:
    """Counts and times the DynamoDB calls of one botocore client, per operation."""

    def __init__(self, client: Any) -> None:
        self.times: dict[str, list[float]] = {}
        self._started: dict[int, float] = {}
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self._started[id(model)] = time.perf_counter()

    def _after(self, model: Any, **_: Any) -> None:
        started = self._started.pop(id(model), None)
        if started is not None:
            self.times.setdefault(model.name, []).append((time.perf_counter() - started) * 1000)

    def reset(self) -> None:
        self.times = {}


def _time(work: Any, repeat: int) -> list[float]:
    samples = []
    for index in range(repeat):
        started = time.perf_counter()
        work(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(engine: str, name: str, statements: int, sessions: int, runners: Any) -> dict[str, Any]:
    from rdsgate.access import Caller
    from rdsgate.request import parse_query
    from rdsgate.runtime import SERVICE
    from rdsgate.service import Invocation
    from rdsgate.sessions import codec
    from rdsgate.sessions.routes import SESSIONS

    invocation = Invocation(caller=Caller(arn=CALLER_ARN, governed=False), result_limit_bytes=6_000_000, request_id="bench")
    requests = [parse_query({"sql": SQL, "parameters": {"id": 1 + (i * 7919) % 100_000}}) for i in range(statements)]
    service = SERVICE.get()
    for request in requests[:20]:
        service.query(name, request, invocation)  # warm: connection, definition, types
    stateless = _time(lambda i: service.query(name, requests[i], invocation), statements)

    gateway = SESSIONS.get()
    calls = _Calls(gateway.store.client)
    session = gateway.begin(name, invocation)["sessionId"]
    for request in requests[:20]:
        gateway.run(session, name, request, invocation)
    calls.reset()
    durations: list[float] = []

    def in_session(i: int) -> None:
        durations.append(gateway.run(session, name, requests[i], invocation)["durationMs"])

    session_times = _time(in_session, statements)
    api_calls = {op: (len(times) / statements, median(times)) for op, times in calls.times.items()}
    gateway.end(session, invocation, commit=True)

    # The channel's own CPU: a request encoded and packed, an answer packed and decoded (no I/O).
    document = {"kind": "query", "request": {"sql": SQL, "parameters": {"id": 42}}, "caller": CALLER_ARN, "until": 0}
    answer = service.query(name, requests[0], invocation)
    started = time.perf_counter()
    for _ in range(1000):
        codec.decode_request(codec.encode_request(document))
        codec.decode_result(codec.encode_result(answer))
    codec_ms = (time.perf_counter() - started)  # per 1000 → ms each

    runners.wait_idle()
    begins, commits = [], []
    for _ in range(sessions):
        started = time.perf_counter()
        session = gateway.begin(name, invocation)["sessionId"]
        begins.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        gateway.end(session, invocation, commit=True)
        commits.append((time.perf_counter() - started) * 1000)
        runners.wait_idle()
    return {
        "engine": engine,
        "stateless": (median(stateless), percentile(stateless, 0.9)),
        "session": (median(session_times), percentile(session_times, 0.9)),
        "runner_db_ms": median(durations),
        "api_calls": api_calls,
        "codec_ms": codec_ms,
        "begin": (median(begins), percentile(begins, 0.9)),
        "commit": (median(commits), percentile(commits, 0.9)),
    }


def cold_begin(name: str) -> float:
    """A begin whose runner is a new worker process: its imports and first connection (a cold start)."""
    from rdsgate.access import Caller
    from rdsgate.service import Invocation
    from rdsgate.sessions.routes import SESSIONS
    from rdsgate_devstack.sessions_local import serve_runners, stop_runners

    pool = serve_runners()
    try:
        invocation = Invocation(caller=Caller(arn=CALLER_ARN, governed=False), result_limit_bytes=6_000_000)
        started = time.perf_counter()
        session = SESSIONS.get().begin(name, invocation)["sessionId"]
        elapsed = (time.perf_counter() - started) * 1000
        SESSIONS.get().end(session, invocation, commit=False)
        return elapsed
    finally:
        stop_runners(pool)


def estimate(poll_ms: float, codec_ms: float, read_ms: float, write_ms: float) -> float:
    """Added median per statement on AWS: the API side's UpdateItem, the runner's wait for its next poll (half an
    interval on average) and GetItem, the runner's UpdateItem with the answer, the API side's wait and GetItem."""
    return write_ms + (poll_ms / 2 + read_ms) + write_ms + (poll_ms / 2 + read_ms) + codec_ms


def report(results: list[dict[str, Any]], cold: dict[str, float], statements: int) -> str:
    lines = [
        "# Sessions: a statement in a transaction across calls",
        "",
        "`python3 -m bench.sessions` (bench/sessions.py). " + ", ".join(f"{k}: {v}" for k, v in machine().items()),
        "",
        f"Medians (p90) in ms over {statements} primary-key SELECTs per engine; polling every {POLL_MS:g} ms "
        "(the deployed default). Local: moto on loopback sharing two cores with the databases, the API side and the runner.",
        "",
        "| engine | stateless `/query` | in a session | added (local, moto) | the model below with moto's call times | runner in the database | API-side DynamoDB calls per statement (local median ms) | channel CPU per statement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        added = r["session"][0] - r["stateless"][0]
        calls = ", ".join(f"{op} ×{count:.1f} ({ms:.1f})" for op, (count, ms) in sorted(r["api_calls"].items()))
        local_read, local_write = r["api_calls"].get("GetItem", (0, 0))[1], r["api_calls"].get("UpdateItem", (0, 0))[1]
        model = estimate(POLL_MS, r["codec_ms"], local_read, local_write)
        lines.append(
            f"| {r['engine']} | {r['stateless'][0]:.2f} ({r['stateless'][1]:.2f}) | {r['session'][0]:.2f} ({r['session'][1]:.2f}) "
            f"| {added:.1f} | {model:.1f} | {r['runner_db_ms']:.2f} | {calls} | {r['codec_ms']:.3f} |"
        )
    codec = max(r["codec_ms"] for r in results)
    typical = estimate(POLL_MS, codec, AWS_READ_MS, AWS_WRITE_MS)
    slow = estimate(POLL_MS, codec, 2 * AWS_READ_MS, 2 * AWS_WRITE_MS)
    lines += [
        "",
        "## Per session",
        "",
        "| engine | begin, warm runner | commit | begin, cold runner (new process: imports, first connection) |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['engine']} | {r['begin'][0]:.1f} ({r['begin'][1]:.1f}) | {r['commit'][0]:.1f} ({r['commit'][1]:.1f}) "
                     f"| {cold.get(r['engine'], float('nan')):.0f} |")
    lines += [
        "",
        "## On AWS (estimate from the parts above)",
        "",
        "Per statement the API side makes one conditional UpdateItem (the request) and reads the session item until the",
        "answer is there; the runner reads it every poll interval and writes the answer with one UpdateItem. So the time",
        "added to a statement is, in medians: `W + (p/2 + R) + W + (p/2 + R) + c`, with `W` a DynamoDB UpdateItem and `R` a",
        "strongly consistent GetItem from Lambda in the region, `p` the poll interval and `c` the channel's CPU (measured",
        "above). moto's call times here are loopback HTTP to a Python server, not DynamoDB's.",
        "",
        f"| | W | R | p | c | added per statement |",
        "|---|---|---|---|---|---|",
        f"| typical DynamoDB (single-digit ms) | {AWS_WRITE_MS:g} | {AWS_READ_MS:g} | {POLL_MS:g} | {codec:.2f} | **{typical:.0f} ms** |",
        f"| DynamoDB twice as slow | {2 * AWS_WRITE_MS:g} | {2 * AWS_READ_MS:g} | {POLL_MS:g} | {codec:.2f} | **{slow:.0f} ms** |",
        f"| after 10 s without a call (runner polls every {4 * POLL_MS:g} ms) | {AWS_WRITE_MS:g} | {AWS_READ_MS:g} | "
        f"{POLL_MS:g}/{4 * POLL_MS:g} | {codec:.2f} | **{estimate(POLL_MS, codec, AWS_READ_MS, AWS_WRITE_MS) + 1.5 * POLL_MS:.0f} ms** |",
        "",
        "Target: ≤ 50 ms median added per statement. Not measured on AWS here (no account in this environment): run",
        "this module's path against a deployed stack to replace the estimate with a measurement.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.sessions", description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--engines", default="postgres,mysql")
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    from rdsgate_devstack.sessions_local import create_table, serve_runners, stop_runners

    with BenchEnv() as env:
        import boto3

        os.environ.update(env.child_environment())  # this process is the API function: the table, the region
        os.environ.update(create_table(lambda service: boto3.session.Session(region_name=REGION).client(service)))
        os.environ["RDSGATE_SESSION_POLL_MS"] = str(POLL_MS)
        from rdsgate.runtime import SERVICE

        SERVICE.reset()
        runners = serve_runners()
        results, cold = [], {}
        try:
            for engine in engines:
                name = {"postgres": "pg", "mysql": "my"}[engine]
                results.append(measure(engine, name, args.statements, args.sessions, runners))
        finally:
            stop_runners(runners)
        for engine in engines:
            cold[engine] = cold_begin({"postgres": "pg", "mysql": "my"}[engine])
        SERVICE.reset()
    text = report(results, cold, args.statements)
    (REPO / "bench" / "RESULTS-sessions.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
