"""Sessions on moto: the session table, and session runners as local worker processes.

What ``rdsgate serve`` and the tests use in place of the deployed runner function and its
table (``infra/sessions.py``); the code under test is the same: the API side writes the
session table on moto and "invokes" the runner, and the runner (``rdsgate.sessions.runner.handler``)
runs in a worker process that, like a Lambda execution environment, serves one invocation at
a time, keeps its connection pool between invocations, and is killed when an invocation
outlives its time limit. Killing a worker (``LocalRunners.kill``) is a crashed runner.

A worker reads one JSON line per invocation on its stdin: the event, the function's
environment at the time of the call (``RDSGATE_*``, ``AWS_*``, ``POWERTOOLS_*``) and its
time limit; it answers one line when the invocation returns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

TABLE = "rdsgate-local-sessions"
ENVIRONMENT_PREFIXES = ("RDSGATE_", "AWS_", "POWERTOOLS_")


def create_table(client: Callable[[str], Any], *, table: str = TABLE) -> dict[str, str]:
    """Create the session table (key ``id``, TTL ``expires_at``); the functions' environment for it."""
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return {"RDSGATE_SESSIONS_TABLE": table}


def serve_runners(*, timeout_seconds: float = 900.0) -> LocalRunners:
    """Runners for ``rdsgate serve`` and the tests: a pool, registered as the launcher of this process's API."""
    from rdsgate.sessions.launcher import use_local_launcher

    pool = LocalRunners(timeout_seconds=timeout_seconds)
    use_local_launcher(pool)
    return pool


def stop_runners(pool: LocalRunners) -> None:
    from rdsgate.sessions.launcher import use_local_launcher

    use_local_launcher(None)
    pool.close()


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    busy_until: float | None = None  # monotonic deadline of the invocation it runs
    outcomes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pid(self) -> int:
        return self.process.pid


class LocalRunners:
    """A pool of worker processes standing in for the runner function's execution environments."""

    def __init__(self, *, timeout_seconds: float = 900.0, python: str | None = None) -> None:
        self.timeout_seconds = timeout_seconds
        self.python = python or sys.executable
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._watchdog = threading.Thread(target=self._watch, name="rdsgate-runners-watchdog", daemon=True)
        self._watchdog.start()

    # -- the launcher interface ---------------------------------------------------------------

    def launch(self, event: dict[str, Any]) -> None:
        """Run ``runner.handler(event)`` in an idle worker (or a new one), without waiting for it."""
        worker = self._idle_worker()
        line = json.dumps({
            "event": event,
            "environ": {k: v for k, v in os.environ.items() if k.startswith(ENVIRONMENT_PREFIXES)},
            "timeoutMs": int(self.timeout_seconds * 1000),
            "requestId": str(uuid.uuid4()),
        })
        worker.process.stdin.write(line.encode() + b"\n")
        worker.process.stdin.flush()

    # -- for tests and `rdsgate serve` --------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers if w.process.poll() is None]

    def kill(self, pid: int) -> None:
        """Kill one of this pool's workers at once (SIGKILL): a crashed runner."""
        with self._lock:
            worker = next((w for w in self._workers if w.pid == pid), None)
        if worker is None:
            raise ValueError(f"process {pid} is not one of this pool's runners")
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no worker runs an invocation (every session has ended)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(w.busy_until is None for w in self._workers if w.process.poll() is None):
                    return
            time.sleep(0.02)
        raise TimeoutError("session runners are still busy")

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.poll() is None:
                try:
                    worker.process.stdin.close()
                    worker.process.wait(timeout=5)
                except Exception:  # noqa: BLE001 - then it is killed
                    worker.process.kill()
                    worker.process.wait(timeout=5)

    # -- internals ----------------------------------------------------------------------------

    def _idle_worker(self) -> _Worker:
        with self._lock:
            self._workers = [w for w in self._workers if w.process.poll() is None]
            for worker in self._workers:
                if worker.busy_until is None:
                    worker.busy_until = time.monotonic() + self.timeout_seconds
                    return worker
            process = subprocess.Popen(
                [self.python, "-m", "rdsgate_devstack.sessions_local"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ),
            )
            worker = _Worker(process, busy_until=time.monotonic() + self.timeout_seconds + 10)  # the first one imports
            self._workers.append(worker)
        threading.Thread(target=self._read, args=(worker,), name=f"rdsgate-runner-{worker.pid}", daemon=True).start()
        return worker

    def _read(self, worker: _Worker) -> None:
        for line in worker.process.stdout:
            try:
                worker.outcomes.append(json.loads(line)["outcome"])
            except (ValueError, KeyError):
                continue
            with self._lock:
                worker.busy_until = None
        with self._lock:
            worker.busy_until = None

    def _watch(self) -> None:
        """Lambda ends an invocation at its time limit, whatever it is doing: so does this."""
        while not self._closed:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:
                late = [w for w in self._workers if w.busy_until is not None and now > w.busy_until + 2 and w.process.poll() is None]
            for worker in late:
                worker.process.kill()


class _Context:
    """What a Lambda context gives the runner: its remaining time and a request id."""

    def __init__(self, timeout_ms: int, request_id: str) -> None:
        self._deadline = time.monotonic() + timeout_ms / 1000
        self.aws_request_id = request_id
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:rdsgate-local-session-runner"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _worker_main() -> None:
    """One execution environment: invocations from stdin, one at a time, sharing this process's pool."""
    # Answers go to the original stdout; everything else written to stdout (the function's log lines) to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from rdsgate import runtime
    from rdsgate.sessions import runner

    applied: dict[str, str] = {}
    for line in sys.stdin:
        message = json.loads(line)
        environ = message["environ"]
        if environ != applied:
            for name in [n for n in os.environ if n.startswith(ENVIRONMENT_PREFIXES) and n not in environ]:
                del os.environ[name]
            os.environ.update(environ)
            applied = environ
            runtime.SERVICE.reset()
            import boto3

            boto3.DEFAULT_SESSION = None
        context = _Context(message["timeoutMs"], f"pid:{os.getpid()}:{message['requestId']}")
        try:
            outcome = runner.handler(message["event"], context).get("outcome")
        except Exception as exc:  # noqa: BLE001 - as Lambda reports a failed invocation
            outcome = f"error:{type(exc).__name__}"
        out.write(json.dumps({"outcome": outcome}) + "\n")
        out.flush()


if __name__ == "__main__":
    _worker_main()
