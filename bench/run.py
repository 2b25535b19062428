"""The benchmark runner: ``python3 -m bench`` (see docs/PERFORMANCE.md).

Starts moto and the local IAM-verifying PostgreSQL and MariaDB, then measures, each pair
side by side in the same run and interleaved (A B, B A, ...), over several repetitions:

(a) warm overhead   rdsgate.api.handler vs the raw driver on an open connection
(b) result encoding  100,000 rows x 10 columns to JSON text vs the raw driver's fetch
(c) cold start       fresh process importing rdsgate.api and answering once vs boto3 + driver, here and
                     from the deployed asset (read-only, its CPython 3.13 bytecode) under CPython 3.13
(d) reuse            1,000 warm invocations: connections opened and tokens signed (counted)
(e) memory           peak RSS growth for a 1,000,000-row SELECT with maxRows 1000
(f) concurrency      8 processes x 200 invocations: errors and database connections
and the deployment asset's size. Writes bench/RESULTS.md; a missed target brings its profile.

Over 400 lines on purpose: one method per section above, each reading best beside the others it mirrors.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any

from . import report
from .env import REPO, BenchEnv
from .stats import machine, median

ENGINES = ("postgres", "mysql")
TARGET_ADDED_MS = 0.5
TARGET_ENCODE_RATIO = 1.3
TARGET_DETECT_RATIO = 1.5  # the encoding run with every content detector on, against it without
TARGET_COLD_RATIO = 1.3
TARGET_ASSET_COLD_RATIO = 0.9  # the deployed asset's cold start against boto3 + driver, both with bytecode
TARGET_MEMORY_MB = 20
TARGET_ASSET_MB = 30


class Runner:
    def __init__(self, env: BenchEnv, quick: bool, log: Any) -> None:
        self.env = env
        self.quick = quick
        self.log = log
        self.info = env.server_info()

    # -- child processes ------------------------------------------------------------------

    def spawn(self, task: str, args: dict[str, Any], python: str | None = None, **extra_env: str) -> tuple[subprocess.Popen, str]:
        handle, result_file = tempfile.mkstemp(prefix=f"rdsgate-bench-{task}-", suffix=".json")
        os.close(handle)
        process = subprocess.Popen(
            [python or sys.executable, "-m", "bench.worker", task, json.dumps(args), result_file],
            cwd=REPO,
            env=self.env.child_environment(**extra_env),
            stdout=subprocess.DEVNULL,  # the function's log lines
            stderr=subprocess.PIPE,
            text=True,
        )
        return process, result_file

    def collect(self, process: subprocess.Popen, result_file: str, timeout: float = 300) -> dict[str, Any]:
        try:
            _, stderr = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"worker failed ({process.returncode}):\n{stderr[-3000:]}")
            with open(result_file) as f:
                return json.load(f)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.unlink(result_file)

    def run(self, task: str, args: dict[str, Any], timeout: float = 300, **extra_env: str) -> dict[str, Any]:
        return self.collect(*self.spawn(task, args, None, **extra_env), timeout=timeout)

    def timed_run(self, task: str, args: dict[str, Any], python: str | None = None, **extra_env: str) -> tuple[float, dict[str, Any]]:
        """A whole child process's wall time, from spawn to exit, and what it reported."""
        started = time.perf_counter()
        process, result_file = self.spawn(task, args, python, **extra_env)
        # A blocking wait returns when the process exits; wait(timeout=...) polls with sleeps of up to
        # 50 ms, which would round every cold start. A timer guards against a hang instead.
        guard = threading.Timer(120, process.kill)
        guard.start()
        process.wait()
        elapsed = time.perf_counter() - started
        guard.cancel()
        return elapsed, self.collect(process, result_file)

    # -- (a) warm overhead --------------------------------------------------------------------

    def warm(self) -> dict[str, Any]:
        reps, pairs = (3, 150) if self.quick else (5, 400)
        out = {}
        for engine in ENGINES:
            result = self.run(
                "warm",
                {"engine": engine, "server": self.info[engine], "statements": ["select1", "pk"], "warmup": 100,
                 "reps": reps, "pairs": pairs},
            )  # fmt: skip
            for statement in ("select1", "pk"):
                data = result[statement]
                raw_ms = median(data["raw_ns"]) / 1e6
                gate_ms = median(data["gate_ns"]) / 1e6
                paired = median([g - r for r, g in zip(data["raw_ns"], data["gate_ns"])]) / 1e6
                rep_added = [(g - r) / 1e6 for r, g in data["rep_medians_ns"]]
                out[f"{engine}/{statement}"] = {
                    "raw_ms": raw_ms,
                    "gate_ms": gate_ms,
                    "added_ms": gate_ms - raw_ms,
                    "paired_added_ms": paired,
                    "rep_added_ms": rep_added,
                    "ratio": gate_ms / raw_ms,
                    "samples": len(data["raw_ns"]),
                    "layers_us": data.get("layers_us", {}),
                    "met": gate_ms - raw_ms <= TARGET_ADDED_MS,
                }
            out[f"{engine}/pool"] = result["pool"]
            self.log(f"(a) {engine}: " + ", ".join(
                f"{s} {out[f'{engine}/{s}']['added_ms'] * 1000:+.0f} µs" for s in ("select1", "pk")))  # fmt: skip
        out["telemetry"] = self.warm_telemetry()
        missed = [key for key, value in out.items() if "/" in key and isinstance(value, dict) and value.get("met") is False]
        for key in missed[:2]:
            engine, statement = key.split("/")
            out[f"{key}/profile"] = self.run("profile_warm", {"engine": engine, "statement": statement, "calls": 2000})["profile"]
        return out

    def warm_telemetry(self) -> dict[str, Any]:
        """(a) with telemetry: the raw driver, and rdsgate with it off, with EMF metrics, with metrics and X-Ray
        subsegments (as in Lambda), interleaved in one process per engine and statement."""
        rounds = 600 if self.quick else 2000
        # As in Lambda: tracing on (LAMBDA_TASK_ROOT, a sampled trace header), subsegments sent over UDP to the daemon's
        # address (nothing listens here: the send costs the same).
        lambda_env = {
            "LAMBDA_TASK_ROOT": str(REPO / "functions"),
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        }
        out: dict[str, Any] = {}
        for engine in ENGINES:
            for statement in ("select1", "pk"):
                args = {"engine": engine, "server": self.info[engine], "statement": statement, "warmup": 200, "rounds": rounds}
                times = self.collect(*self.spawn("warm_telemetry", args, None, **lambda_env))["times_ns"]
                raw = times["raw"]
                added = {side: median([g - r for r, g in zip(raw, times[side])]) / 1e6 for side in ("off", "metrics", "metrics+tracing")}
                out[f"{engine}/{statement}"] = {
                    "samples": len(raw),
                    "raw_ms": median(raw) / 1e6,
                    "added_ms": added,
                    "metrics_cost_ms": median([m - o for o, m in zip(times["off"], times["metrics"])]) / 1e6,
                    "tracing_cost_ms": median([t - m for m, t in zip(times["metrics"], times["metrics+tracing"])]) / 1e6,
                    "met": added["metrics+tracing"] <= TARGET_ADDED_MS,
                }
                row = out[f"{engine}/{statement}"]
                self.log(
                    f"(a) {engine} {statement} telemetry: added {added['off'] * 1000:+.0f} µs off, "
                    f"{added['metrics'] * 1000:+.0f} µs metrics, {added['metrics+tracing'] * 1000:+.0f} µs metrics+tracing "
                    f"(metrics {row['metrics_cost_ms'] * 1000:+.0f} µs, tracing {row['tracing_cost_ms'] * 1000:+.0f} µs)"
                )
        out["met"] = all(v["met"] for v in out.values() if isinstance(v, dict))
        return out

    # -- (b) result encoding --------------------------------------------------------------------

    def encode(self) -> dict[str, Any]:
        reps = 3 if self.quick else 5
        out = {}
        for engine in ENGINES:
            result = self.run("encode", {"engine": engine, "server": self.info[engine], "rows": 100_000, "reps": reps})
            raw_s, gate_s = median(result["raw_s"]), median(result["gate_s"])
            out[engine] = {
                "raw_s": raw_s,
                "gate_s": gate_s,
                "raw_rows_per_s": 100_000 / raw_s,
                "gate_rows_per_s": 100_000 / gate_s,
                "ratio": gate_s / raw_s,
                "rep_ratios": [g / r for r, g in zip(result["raw_s"], result["gate_s"])],
                "json_mb": result["json_bytes"] / 1e6,
                "met": gate_s / raw_s <= TARGET_ENCODE_RATIO,
                "detect_s": median(result["detect_s"]),
                "detect_ratio": median(result["detect_s"]) / gate_s,
                "detect_met": median(result["detect_s"]) / gate_s <= TARGET_DETECT_RATIO,
            }
            self.log(f"(b) {engine}: ratio {gate_s / raw_s:.2f} ({100_000 / gate_s:,.0f} rows/s), "
                     f"with every content detector ×{out[engine]['detect_ratio']:.2f}")
            if not out[engine]["met"]:
                out[engine]["profile"] = self.run("profile_encode", {"engine": engine, "rows": 100_000})["profile"]
        return out

    # -- (c) cold start ------------------------------------------------------------------------

    def cold(self) -> dict[str, Any]:
        reps = 4 if self.quick else 8
        out = {}
        for engine in ENGINES:
            args = {"engine": engine, "server": self.info[engine]}
            summary, _, gate_inside = self._alternate(args, reps)
            floor_ms, gate_ms = summary["floor_ms"], summary["gate_ms"]
            out[engine] = {
                **summary,
                "modules_after_import": gate_inside[-1]["modules_after_import"],
                "other_driver_loaded": any(r["other_driver_loaded"] for r in gate_inside),
                "sqlglot_loaded": any(r["sqlglot_loaded"] for r in gate_inside),
            }
            lazy = not out[engine]["other_driver_loaded"] and not {"pg8000", "pymysql"} & set(out[engine]["modules_after_import"])
            out[engine]["drivers_lazy"] = lazy
            out[engine]["met"] = out[engine]["ratio"] <= TARGET_COLD_RATIO and lazy
            self.log(f"(c) {engine}: {gate_ms:.0f} ms vs {floor_ms:.0f} ms, ratio {gate_ms / floor_ms:.2f}")
            out[engine].update(self._cold_without_bytecode(args, 2 if self.quick else 4))
            if not out[engine]["met"]:
                out[engine]["profile"] = self.run("profile_cold", {"engine": engine})["profile"]
        out["asset"] = self._cold_from_asset(reps)
        return out

    # The deployed asset: built by infra/bundling.py (bench.size --build), run by the runtime's Python
    # from a read-only copy, the way Lambda runs /var/task.

    def _cold_from_asset(self, reps: int) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="rdsgate-bench-asset-") as parent:
            folder, sources = pathlib.Path(parent) / "task", pathlib.Path(parent) / "task-sources-only"
            build = _build_asset(folder)
            _build_asset(sources, "--sources-only")  # as built where no CPython 3.13 is found
            python = build["python"]
            if python is None:
                self.log("(c) asset: no CPython 3.13 here, so no bytecode and no runtime to run it with: skipped")
                return {"skipped": "no CPython 3.13 on this machine: the asset carries no bytecode"}
            files_before = _read_only(folder), _read_only(sources)
            out: dict[str, Any] = {"python": build["python_version"], "engines": {}}
            # Lambda's /var/task is read-only: nothing may be written, so nothing is cached between processes.
            read_only = {"PYTHONPATH": f"{folder}{os.pathsep}{REPO}", "PYTHONDONTWRITEBYTECODE": "1"}
            sources_only = {**read_only, "PYTHONPATH": f"{sources}{os.pathsep}{REPO}"}
            for engine in ENGINES:
                args = {"engine": engine, "server": self.info[engine]}
                result = self._pairs(args, python, read_only, reps)
                result.update({f"sources_{k}": v for k, v in self._pairs(args, python, sources_only, max(2, reps // 2)).items()
                               if k in ("floor_ms", "gate_ms", "ratio")})  # fmt: skip
                result["met"] = result["ratio"] <= TARGET_ASSET_COLD_RATIO
                out["engines"][engine] = result
                self.log(
                    f"(c) {engine} from the asset (CPython {build['python_version'].split()[0]}): "
                    f"{result['gate_ms']:.0f} ms vs {result['floor_ms']:.0f} ms, ratio {result['ratio']:.2f}; "
                    f"sources only {result['sources_gate_ms']:.0f} ms vs {result['sources_floor_ms']:.0f} ms"
                )
            out["imports"] = self._first_request_imports(python, read_only, {"engine": "postgres", "server": self.info["postgres"]})
            if (_read_only(folder, restore=True), _read_only(sources, restore=True)) != files_before:
                raise RuntimeError("the asset changed while it ran: the measurement was not of a read-only /var/task")
        out["met"] = all(e["met"] for e in out["engines"].values())
        return out

    def _pairs(self, args: dict[str, Any], python: str, env: dict[str, str], reps: int) -> dict[str, Any]:
        """`_alternate` from the asset, checking that every module came from it."""
        summary, floor_inside, gate_inside = self._alternate(args, reps, python, env)
        origins = {**floor_inside[-1].get("origins", {}), **gate_inside[-1].get("origins", {})}
        folder = env["PYTHONPATH"].split(os.pathsep)[0]
        strays = {m: path for m, path in origins.items() if not path.startswith(folder)}
        if strays:
            raise RuntimeError(f"modules loaded from outside the asset: {strays}")
        return summary

    def _alternate(
        self, args: dict[str, Any], reps: int, python: str | None = None, env: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """Alternating fresh processes of floor and rdsgate, after one warm-up each (the first process of a kind
        warms the page cache): medians and splits, and what each floor and rdsgate process reported."""
        env = env or {}
        self.timed_run("cold_floor", args, python, **env)
        self.timed_run("cold_gate", args, python, **env)
        floor_s, gate_s, floor_inside, gate_inside = [], [], [], []
        for rep in range(reps):
            for side in (("floor", "gate") if rep % 2 == 0 else ("gate", "floor")):
                elapsed, inside = self.timed_run(f"cold_{side}", args, python, **env)
                (floor_s if side == "floor" else gate_s).append(elapsed)
                (floor_inside if side == "floor" else gate_inside).append(inside)
        floor_ms, gate_ms = median(floor_s) * 1000, median(gate_s) * 1000
        summary = {
            "floor_ms": floor_ms,
            "gate_ms": gate_ms,
            "ratio": gate_ms / floor_ms,
            "rep_ratios": [g / f for f, g in zip(floor_s, gate_s)],
            "floor_import_ms": median(r["import_s"] for r in floor_inside) * 1000,
            "floor_first_ms": median(r["first_request_s"] for r in floor_inside) * 1000,
            "gate_import_ms": median(r["import_s"] for r in gate_inside) * 1000,
            "gate_first_ms": median(r["first_request_s"] for r in gate_inside) * 1000,
        }
        return summary, floor_inside, gate_inside

    def _first_request_imports(self, python: str, env: dict[str, str], args: dict[str, Any]) -> dict[str, Any]:
        """`python -X importtime` over a cold start from the asset (import and first request)."""
        handle, result_file = tempfile.mkstemp(prefix="rdsgate-bench-importtime-", suffix=".json")
        os.close(handle)
        try:
            result = subprocess.run(
                [python, "-X", "importtime", "-m", "bench.worker", "cold_gate", json.dumps(args), result_file],
                cwd=REPO, env=self.env.child_environment(**env), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        finally:
            os.unlink(result_file)
        if result.returncode != 0:
            raise RuntimeError(f"importtime run failed:\n{result.stderr[-3000:]}")
        return import_costs(result.stderr)

    def _cold_without_bytecode(self, args: dict[str, Any], reps: int) -> dict[str, Any]:
        """The same, with every module compiled from source, as in Lambda from an asset without .pyc files."""
        with tempfile.TemporaryDirectory(prefix="rdsgate-bench-nobytecode-") as empty:
            env = {"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
            floor_s, gate_s = [], []
            for rep in range(reps):
                for side in (("floor", "gate") if rep % 2 == 0 else ("gate", "floor")):
                    elapsed, _ = self.timed_run(f"cold_{side}", args, **env)
                    (floor_s if side == "floor" else gate_s).append(elapsed)
        return {"nobytecode_floor_ms": median(floor_s) * 1000, "nobytecode_gate_ms": median(gate_s) * 1000}

    # -- (d) reuse -----------------------------------------------------------------------------

    def reuse(self) -> dict[str, Any]:
        out = {}
        for engine in ENGINES:
            result = self.run("reuse", {"engine": engine, "invocations": 1000})
            result["met"] = (result["opened"], result["tokens_signed"], result["statuses"]) == (1, 1, {"200": 1000})
            out[engine] = result
            self.log(f"(d) {engine}: {result['opened']} connection, {result['tokens_signed']} token, {result['statuses']}")
        return out

    # -- (e) memory ----------------------------------------------------------------------------

    def memory(self) -> dict[str, Any]:
        out = {}
        for engine in ENGINES:
            runs = [self.run("memory", {"engine": engine}) for _ in range(1 if self.quick else 3)]
            growth = [(r["peak_kb"] - r["baseline_kb"]) / 1024 for r in runs]
            worst = max(growth)
            out[engine] = {
                "baseline_mb": median(r["baseline_kb"] for r in runs) / 1024,
                "peak_mb": median(r["peak_kb"] for r in runs) / 1024,
                "growth_mb": worst,
                "rows": runs[0]["rows"],
                "truncated": runs[0]["truncated"],
                "seconds": median(r["seconds"] for r in runs),
                "peak_reset": all(r["peak_reset"] for r in runs),
                "met": worst <= TARGET_MEMORY_MB and runs[0]["rows"] == 1000 and runs[0]["truncated"],
            }
            self.log(f"(e) {engine}: peak RSS +{worst:.1f} MB over {out[engine]['baseline_mb']:.0f} MB")
        return out

    # -- (f) concurrency -------------------------------------------------------------------------

    def concurrency(self, processes: int = 8, invocations: int = 200) -> dict[str, Any]:
        out = {}
        for engine in ENGINES:
            count = self.env.connection_count(engine)
            samples: list[int] = []
            stop = threading.Event()

            def sample(count: Any = count, samples: list[int] = samples, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    samples.append(count())
                    time.sleep(0.005)

            start_at = time.time() + 2.0  # every process imports first, then all start together
            spawned = [
                self.spawn("concurrent", {"engine": engine, "invocations": invocations, "index": i, "start_at": start_at})
                for i in range(processes)
            ]
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                results = [self.collect(process, result_file, timeout=120) for process, result_file in spawned]
            finally:
                stop.set()
                sampler.join()
                count.close()
            statuses: dict[str, int] = {}
            for result in results:
                for code, n in result["statuses"].items():
                    statuses[code] = statuses.get(code, 0) + n
            errors = sum(n for code, n in statuses.items() if code != "200")
            wall = max(r["seconds"] for r in results)
            out[engine] = {
                "processes": processes,
                "invocations": processes * invocations,
                "statuses": statuses,
                "errors": errors,
                "error_samples": [e for r in results for e in r["errors"]][:3],
                "max_connections_seen": max(samples) if samples else None,
                "connections_opened": sum(r["opened"] for r in results),
                "tokens_signed": sum(r["tokens_signed"] for r in results),
                "throughput_per_s": processes * invocations / wall,
                "met": errors == 0 and (max(samples) if samples else 99) <= processes
                and sum(r["opened"] for r in results) <= processes,
            }
            self.log(
                f"(f) {engine}: {errors} errors, at most {out[engine]['max_connections_seen']} connections, "
                f"{out[engine]['throughput_per_s']:.0f} requests/s"
            )
        return out

    # -- (g) guardrail check (bench/guardrails.py) ----------------------------------------------

    def guardrails(self) -> dict[str, Any]:
        from . import guardrails

        out = guardrails.run(self.quick, self.env.child_environment())
        self.log(f"(g) worst guardrail check {out['worst']['max_ms']:.0f} ms ({out['worst']['label']})")
        return out

    # -- the asset -----------------------------------------------------------------------------

    def asset(self) -> dict[str, Any]:
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
        result = subprocess.run(
            [sys.executable, "-m", "bench.size"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"bundling the asset failed:\n{result.stderr[-3000:]}")
        out = json.loads(result.stdout)
        out["met"] = out["unzipped"] < TARGET_ASSET_MB * 1_000_000
        self.log(f"asset: {out['unzipped'] / 1e6:.1f} MB unzipped, {out['zipped'] / 1e6:.1f} MB zipped")
        return out


def import_costs(stderr: str, top: int = 15) -> dict[str, Any]:
    """What `-X importtime` reports, summed by top-level package (self time) and the costliest imports
    (cumulative time, with their nesting), in milliseconds."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip())) // 2
        entries.append((int(parts[0]), int(parts[1]), depth, name.strip()))
    by_package: dict[str, float] = {}
    for self_us, _, _, name in entries:
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0) + self_us / 1000
    costliest = sorted(entries, key=lambda e: -e[1])[:top]
    return {
        "total_ms": sum(e[0] for e in entries) / 1000,
        "modules": len(entries),
        "by_package_ms": dict(sorted(by_package.items(), key=lambda item: -item[1])[:top]),
        "costliest": [{"module": name, "depth": depth, "cumulative_ms": cum / 1000, "self_ms": own / 1000}
                      for own, cum, depth, name in costliest],  # fmt: skip
    }


def _build_asset(folder: pathlib.Path, *flags: str) -> dict[str, Any]:
    """infra/bundling.py's asset in `folder`, built in a child process (it loads the CDK)."""
    folder.mkdir()
    built = subprocess.run(
        [sys.executable, "-m", "bench.size", "--build", str(folder), *flags], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}, timeout=600,
    )  # fmt: skip
    if built.returncode != 0:
        raise RuntimeError(f"building the asset failed:\n{built.stderr[-3000:]}")
    return json.loads(built.stdout)


def _read_only(folder: pathlib.Path, restore: bool = False) -> list[str]:
    """Make the tree read-only (or writable again, to delete it) and return its file list."""
    paths = sorted(folder.rglob("*"))
    for path in [folder, *paths]:
        if restore:
            path.chmod(0o755 if path.is_dir() else 0o644)
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
    return [str(p.relative_to(folder)) for p in paths]


SECTIONS = {
    "a": ("warm", "(a) warm overhead"),
    "b": ("encode", "(b) result encoding"),
    "c": ("cold", "(c) cold start"),
    "d": ("reuse", "(d) reuse"),
    "e": ("memory", "(e) memory"),
    "f": ("concurrency", "(f) concurrency"),
    "g": ("guardrails", "(g) guardrail check"),
    "size": ("asset", "deployment asset"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for the record)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: a,b,c,d,e,f,size")
    parser.add_argument("--output", default=str(REPO / "bench" / "RESULTS.md"), help="where the report goes")
    parser.add_argument("--json", help="also write the raw results as JSON to this file")
    options = parser.parse_args(argv)
    chosen = [s.strip() for s in options.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "quick": options.quick}
    log("starting moto, PostgreSQL and MariaDB")
    with BenchEnv(log=log) as env:
        results["servers"] = {engine: info["version"] for engine, info in env.server_info().items()}
        runner = Runner(env, options.quick, log)
        for key in chosen:
            method, title = SECTIONS[key]
            log(f"{title} ...")
            try:
                results[method] = getattr(runner, method)()
            except Exception:  # noqa: BLE001 - report it and measure the rest
                results[method] = {"error": traceback.format_exc()}
                log(f"{title} failed:\n{results[method]['error']}")
    results["seconds"] = time.monotonic() - started
    pathlib.Path(options.output).write_text(report.render(results))
    if options.json:
        pathlib.Path(options.json).write_text(json.dumps(results, indent=2))
    log(f"wrote {options.output} in {results['seconds']:.0f} s")
    missed = report.missed_targets(results)
    if missed:
        log("targets missed: " + ", ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
