"""Overload: more concurrent execution environments than the database has connection slots.

Each worker process is one Lambda execution environment: it imports the handlers, waits
for the common start, answers one invocation (an API Gateway event or a Step Functions
input) and then keeps its connection open, as a warm environment does, until the test
lets it go. The database allows fewer connections than there are workers. Every worker
that gets no connection must answer a clean 503 DatabaseUnavailable with Retry-After (or
raise DatabaseUnavailable, the retryable Step Functions error) saying that the database
has too many connections; none may crash or hang, and each statement is written whole or
not at all.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import subprocess
import sys
import threading
import time

import pytest

from rdsgate_devstack.servers import MariaDBServer, PostgresServer
from tests.conftest import DATABASE, IAM_USER, REGION, iam_definition, load_event

# Connections an ordinary user can get: PostgreSQL runs with max_connections 4, one of them
# reserved for superusers; MariaDB with max_connections 10, its smallest (one more is kept for
# administrators). Five more execution environments than that try at the same time.
SLOTS = {"postgres": 3, "mysql": 10}
EXTRA_WORKERS = 5
ANSWER_WITHIN_SECONDS = 90  # far above any answer's time: only a hang reaches it
REPO = pathlib.Path(__file__).resolve().parents[2]
INSERT = "INSERT INTO overload_log (worker, part, note) VALUES (:worker, 1, :note), (:worker, 2, :note)"

WORKER = r"""
import json, sys, time
from rdsgate import api, invoke

class Context:
    aws_request_id = "overload"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:rdsgate-query"
    function_name, memory_limit_in_mb = "rdsgate-query", 512
    def __init__(self):
        self._deadline = time.monotonic() + 30
    def get_remaining_time_in_millis(self):
        return int((self._deadline - time.monotonic()) * 1000)

mode, connection, worker, event = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
print("@ready", flush=True)
sys.stdin.readline()  # the common start
if mode == "api":
    response = api.handler(event, Context())
    result = {"status": response["statusCode"], "headers": response.get("multiValueHeaders") or {},
              "body": json.loads(response["body"])}
else:
    try:
        result = {"status": "ok", "body": invoke.handler(event, Context())}
    except Exception as exc:  # a Step Functions task sees the class name and the message
        result = {"status": "raised", "error": type(exc).__name__, "message": str(exc),
                  "retry_after": getattr(exc, "details", {}).get("retry_after")}
print("@" + json.dumps(result), flush=True)  # the function's own log lines go to stdout too
sys.stdin.readline()  # hold the connection, as a warm execution environment does, until released
"""


class SmallPostgres(PostgresServer):
    """PostgreSQL with SLOTS["postgres"] connections for ordinary users (one more is reserved for superusers)."""

    def _server_command(self) -> list[str]:
        return super()._server_command() + [
            "-c", f"max_connections={SLOTS['postgres'] + 1}", "-c", "superuser_reserved_connections=1",
        ]  # fmt: skip


@pytest.fixture(scope="module")
def small_servers(aws):
    """A PostgreSQL and a MariaDB of their own, with few connection slots, and a table to write to."""
    credentials = (aws["AWS_ACCESS_KEY_ID"], aws["AWS_SECRET_ACCESS_KEY"], aws["AWS_SESSION_TOKEN"])
    servers = {}
    try:
        for engine, server in (("postgres", SmallPostgres(region=REGION)), ("mysql", MariaDBServer(region=REGION))):
            servers[engine] = server
            server.start()
            server.trust(*credentials)
            server.create_iam_user(IAM_USER)
            server.create_database(DATABASE)
            server.grant_all(IAM_USER, DATABASE)
        pg, my = servers["postgres"], servers["mysql"]
        pg.execute("CREATE TABLE overload_log (worker int, part int, note text NOT NULL, PRIMARY KEY (worker, part))", database=DATABASE)
        pg.execute(f"GRANT ALL ON overload_log TO {IAM_USER}", database=DATABASE)
        my.execute("CREATE TABLE overload_log (worker INT, part INT, note TEXT NOT NULL, PRIMARY KEY (worker, part))", database=DATABASE)
        my.execute(f"SET GLOBAL max_connections = {SLOTS['mysql']}")
        assert my.execute("SELECT @@global.max_connections")[0][0] == SLOTS["mysql"]
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def rows_written(server, engine):
    sql = "SELECT worker, part, note FROM overload_log ORDER BY worker, part"
    return [tuple(row) for row in server.execute(sql, database=DATABASE)]


def start_workers(name, count, connections_table):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("functions", "local", ".")),
           "RDSGATE_CONNECTIONS_TABLE": connections_table, "POWERTOOLS_SERVICE_NAME": "rdsgate"}  # fmt: skip
    workers = []
    for worker in range(count):
        mode = "api" if worker % 2 == 0 else "invoke"
        parameters = {"worker": worker, "note": f"worker {worker} " + "x" * 200}
        if mode == "api":
            event = load_event("api_query.json")
            event["path"] = f"/connections/{name}/query"
            event["pathParameters"] = {"name": name}
            event["body"] = json.dumps({"sql": INSERT, "parameters": parameters})
        else:
            event = {"connection": name, "sql": INSERT, "parameters": parameters}
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, mode, name, str(worker), json.dumps(event)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        ))  # fmt: skip
    return workers


class Reports:
    """The workers' reports (lines starting with @; the function's log lines go to stdout too), read by threads."""

    def __init__(self, workers):
        self.queues = [queue.Queue() for _ in workers]
        for process, reports in zip(workers, self.queues):
            threading.Thread(target=self._read, args=(process, reports), daemon=True).start()

    @staticmethod
    def _read(process, reports):
        for line in process.stdout:
            if line.startswith("@"):
                reports.put(line[1:])
        reports.put(None)  # the worker's output ended

    def next(self, worker, deadline):
        """The worker's next report; None if it died or sent none before the deadline (a hang)."""
        try:
            return self.queues[worker].get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None


def test_every_invocation_without_a_connection_gets_a_clean_retryable_503(runtime, connections, small_servers, engine):
    server = small_servers[engine]
    name = f"{'pg' if engine == 'postgres' else 'my'}-overload"
    connections.put(iam_definition(name, server, engine))
    slots, count = SLOTS[engine], SLOTS[engine] + EXTRA_WORKERS
    workers = start_workers(name, count, connections.name)
    results = {}
    try:
        reports = Reports(workers)
        deadline = time.monotonic() + ANSWER_WITHIN_SECONDS
        for worker, process in enumerate(workers):
            assert reports.next(worker, deadline) == "ready\n", process.stderr.read() if process.poll() is not None else "no answer"
        for process in workers:  # all at once
            process.stdin.write("go\n")
            process.stdin.flush()
        for worker, process in enumerate(workers):
            line = reports.next(worker, deadline)
            assert line, f"worker {worker} hung or died: {process.stderr.read() if process.poll() is not None else 'no answer'}"
            results[worker] = json.loads(line)
        written = rows_written(server, engine)
    finally:
        for process in workers:
            try:
                process.stdin.write("exit\n")
                process.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        codes = [process.wait(timeout=30) for process in workers]
    assert codes == [0] * count, [process.stderr.read() for process in workers]

    succeeded = sorted(w for w, r in results.items() if r["status"] in (200, "ok"))
    failed = sorted(set(results) - set(succeeded))
    assert 1 <= len(succeeded) <= slots and len(failed) >= count - slots, results
    for worker in failed:
        result = results[worker]
        if worker % 2 == 0:  # API Gateway
            assert result["status"] == 503, result
            error = result["body"]["error"]
            assert error["code"] == "DatabaseUnavailable"
            assert "too many connections" in error["message"], error
            assert result["headers"]["Retry-After"] == ["1"]
            assert set(error) <= {"code", "message", "sqlstate", "errno"}  # no hint, no trace
        else:  # Step Functions: the retryable error name
            assert (result["status"], result["error"], result["retry_after"]) == ("raised", "DatabaseUnavailable", 1), result
            assert "too many connections" in result["message"]
        assert "Traceback" not in json.dumps(result) and "X-Amz" not in json.dumps(result)

    # Whole statements or nothing: both rows of each worker that succeeded, none of the others.
    assert [(w, part) for w, part, _ in written] == [(w, part) for w in succeeded for part in (1, 2)]
    assert all(note.startswith(f"worker {w} ") and len(note) == len(f"worker {w} ") + 200 for w, _, note in written)

    # Once the environments are gone, the database takes new connections again.
    from tests.conftest import run_query

    runtime.reset()
    assert run_query(runtime, name, "SELECT count(*) AS n FROM overload_log")["records"] == [{"n": len(written)}]
