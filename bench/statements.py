"""Benchmark (h): a large SELECT to S3 as an asynchronous statement, against the raw driver's streaming fetch.

``python3 -m bench.statements [--rows 10000000] [--engines postgres,mysql]`` starts the benchmark world
(``bench.env``: moto in its own process, now with S3, and the IAM-verifying servers), then, per engine and
in child processes (a Lambda execution environment each; bench/worker.py's ``export_raw`` and ``export_gate``):

- raw: the driver alone reads every row of the 10-column SELECT, streaming (pg8000 ``DECLARE … CURSOR`` and
  ``FETCH 10000``; PyMySQL's unbuffered cursor, ``fetchmany(10000)``), converting values as the driver does,
  keeping nothing;
- gate: the same SELECT as an asynchronous statement, through ``rdsgate.worker.run_submitted`` (status item,
  governance, audit, masking check, ``execute_stream``, JSON Lines, gzip, S3 multipart upload to moto).

Reported: rows per second of each, their ratio (target ≥ 0.8), the gate's peak RSS growth over its baseline
(target ≤ 50 MB), the time to the first byte in S3 (the first part stored) and the object's size. Writes
``bench/RESULTS-statements.md``. moto runs on the same two cores and stores what it receives.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .env import REPO, BenchEnv
from .run import Runner

TARGET_RATIO = 0.8
TARGET_GROWTH_MB = 50
TABLE, BUCKET = "rdsgate-bench-statements", "rdsgate-bench-results"
# items holds 100,000 rows of 10 columns (bench.env); a cross join with a counter multiplies them.
SQL = {
    "postgres": "SELECT i.id + g * 100000 AS id, qty, price, name, active, born, created, ratio, token, attrs "
                "FROM generate_series(0, {copies}) AS g CROSS JOIN items AS i",
    "mysql": "SELECT i.id + g.seq * 100000 AS id, qty, price, name, active, born, created, ratio, token, attrs "
             "FROM seq_0_to_{copies} AS g CROSS JOIN items AS i",
}


def sql_for(engine: str, rows: int) -> str:
    if rows % 100_000:
        raise ValueError("rows must be a multiple of 100,000")
    return SQL[engine].format(copies=rows // 100_000 - 1)


# -- the parent ------------------------------------------------------------------------------------


def measure(runner: Runner, engine: str, rows: int, log: Any, reps: int = 1) -> dict[str, Any]:
    """Raw and gate interleaved (raw gate, gate raw, …), each in its own worker process (bench/worker.py's
    export tasks); each side's best run counts (others share this machine)."""
    sql = sql_for(engine, rows)
    info = runner.info[engine]
    timeout = max(900.0, rows / 4_000)  # a loaded two-core machine reads ~10,000 rows/s per side
    extra = {"AWS_ENDPOINT_URL_S3": runner.env.endpoint, "RDSGATE_STATEMENTS_TABLE": TABLE, "RDSGATE_RESULTS_BUCKET": BUCKET}
    raws, gates = [], []
    for rep in range(reps):
        for side in (("raw", "gate") if rep % 2 == 0 else ("gate", "raw")):
            if side == "raw":
                raws.append(runner.run("export_raw", {"engine": engine, "info": info, "sql": sql}, timeout, **extra))
                log(f"{engine}: raw driver {raws[-1]['rows']:,} rows in {raws[-1]['seconds']:.1f} s")
            else:
                gates.append(runner.run("export_gate", {"engine": engine, "sql": sql}, timeout, **extra))
                log(f"{engine}: rdsgate {gates[-1]['rows']:,} rows in {gates[-1]['seconds']:.1f} s")
    raw = min(raws, key=lambda r: r["seconds"])
    gate = min(gates, key=lambda r: r["seconds"])
    gate["peak_kb"] = max(g["peak_kb"] - g["baseline_kb"] for g in gates) + gate["baseline_kb"]  # the worst growth
    growth_mb = (gate["peak_kb"] - gate["baseline_kb"]) / 1024
    raw_rate, gate_rate = raw["rows"] / raw["seconds"], gate["rows"] / gate["seconds"]
    result = {
        "rows": rows,
        "raw_rows_per_s": raw_rate, "raw_seconds": raw["seconds"],
        "gate_rows_per_s": gate_rate, "gate_seconds": gate["seconds"],
        "ratio": gate_rate / raw_rate,
        "growth_mb": growth_mb, "peak_reset": gate["peak_reset"],
        "first_byte_s": gate["first_byte_seconds"],
        "bytes": gate["bytes"], "stored_bytes": gate["stored_bytes"],
        "rows_match": raw["rows"] == gate["rows"] == rows,
    }
    result["met"] = result["rows_match"] and result["ratio"] >= TARGET_RATIO and growth_mb <= TARGET_GROWTH_MB
    log(f"{engine}: gate {gate['rows']:,} rows in {gate['seconds']:.1f} s, ratio {result['ratio']:.2f}, "
        f"peak RSS +{growth_mb:.1f} MB, first byte in S3 after {gate['first_byte_seconds'] or 0:.2f} s")
    return result


def _machine(facts: dict[str, str]) -> str:
    return ", ".join(f"{facts[k]}" for k in ("cpu", "memory", "python", "commit", "load") if facts.get(k))


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmark (h): a large SELECT to S3",
        "",
        f"`python3 -m bench.statements --rows {results['rows']} --reps {results['reps']}` (best of the interleaved runs) on "
        f"{_machine(results['machine'])}. 10 columns "
        "(bigint, integer, numeric, text, boolean, date, timestamptz/datetime, double, uuid/char(36), jsonb/json); "
        "JSON Lines, gzip, S3 multipart upload to moto (same machine). Targets: throughput ≥ "
        f"{TARGET_RATIO}x the raw driver's streaming fetch, peak RSS growth ≤ {TARGET_GROWTH_MB} MB.",
        "",
        "| engine | rows | raw driver rows/s | rdsgate to S3 rows/s | ratio | peak RSS growth | first byte in S3 | JSON Lines | stored (gzip) | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for engine, r in results["engines"].items():
        if "error" in r:
            lines.append(f"| {engine} | error: {r['error'][:200]} |")
            continue
        lines.append(
            f"| {engine} | {r['rows']:,} | {r['raw_rows_per_s']:,.0f} | {r['gate_rows_per_s']:,.0f} | {r['ratio']:.2f} | "
            f"{r['growth_mb']:.1f} MB | {r['first_byte_s'] or 0:.2f} s | {r['bytes'] / 1e6:,.0f} MB | "
            f"{r['stored_bytes'] / 1e6:,.0f} MB | {'yes' if r['met'] else 'NO'} |"
        )
    lines += [
        "",
        "- **raw driver**: pg8000's `DECLARE … CURSOR` + `FETCH 10000` (its own conversion of every value to a Python "
        "object), PyMySQL's unbuffered cursor with `fetchmany(10000)`; rows counted and dropped.",
        "- **rdsgate to S3**: `rdsgate.worker.run_submitted` as the worker function runs it: the status item, the "
        "governance and audit of `/query`, `execute_stream` (PostgreSQL portal batches of 2,000 rows, MySQL's unbuffered "
        "result), each value converted once to its JSON form, JSON Lines, gzip level 1 in a second thread, 5 MiB parts "
        "to moto's S3 on the same machine.",
        "- **peak RSS growth**: `VmHWM` after `clear_refs` minus `VmRSS` before the statement, in the worker's process "
        "(moto, which keeps the object, runs in its own).",
        "- **first byte in S3**: when the first part was stored. Gzip shrinks these rows about 50 times, so the first "
        "5 MiB part holds about 250 MB of JSON Lines; without compression it comes after the first 5 MiB.",
        "- Other work shared the two cores during these runs; each side ran in its own process, one after the other.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.statements", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to export (a multiple of 100,000)")
    parser.add_argument("--engines", default="postgres,mysql")
    parser.add_argument("--reps", type=int, default=1, help="interleaved runs of each side; the best counts")
    parser.add_argument("--output", default=str(REPO / "bench" / "RESULTS-statements.md"))
    options = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    from .stats import machine

    results: dict[str, Any] = {"rows": options.rows, "reps": options.reps, "machine": machine(), "engines": {}}
    with BenchEnv(log=log) as env:
        from rdsgate_devstack.statements_local import create_resources

        create_resources(env.aws.client, table=TABLE, bucket=BUCKET)
        runner = Runner(env, quick=False, log=log)
        for engine in options.engines.split(","):
            try:
                results["engines"][engine] = measure(runner, engine, options.rows, log, options.reps)
            except Exception as exc:  # noqa: BLE001 - report it and measure the rest
                results["engines"][engine] = {"error": f"{type(exc).__name__}: {exc}"}
                log(f"{engine}: failed: {exc}")
    text = render(results)
    with open(options.output, "w") as f:
        f.write(text)
    print(text)
    return 0 if all(r.get("met") for r in results["engines"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
