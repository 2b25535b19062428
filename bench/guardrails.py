"""(g) Guardrail check: how long one check takes, typical and worst case. No database needed.

``python3 -m bench.guardrails`` measures in a fresh child process and writes section (g) into
bench/RESULTS.md (``--output`` elsewhere); ``python3 -m bench --only g`` runs the same as part
of the suite. The child imports rdsgate, answers one check (which imports sqlglot: counted
apart as the first check), then times ``check_guardrails`` with statement rules on each case,
the outcome cache cleared before every call, so each is a full classification.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
TARGET_MS = 1000  # every check answers within this, allowed or refused
RULES = (("no-writes", "deny_statements", ("DELETE", "DROP", "UPDATE")), ("safe-writes", "require_where", True))


def cases() -> list[tuple[str, str, str]]:
    """(label, engine, sql): typical statements, pathological ones, and the slowest within the limits."""
    or_chain = " OR ".join(f"id = {i}" for i in range(60_000))
    return [
        ("typical SELECT (primary key)", "postgres", "SELECT id, qty, price, name FROM items WHERE id = :id"),
        ("typical UPDATE with WHERE", "mysql", "UPDATE items SET qty = qty - :n WHERE id = :id AND qty >= :n"),
        ("typical join, 20 columns", "postgres",
         "SELECT " + ", ".join(f"o.c{i}" for i in range(20)) + " FROM orders o JOIN customers c ON c.id = o.customer_id "
         "WHERE o.placed_at > :since AND c.region = :region ORDER BY o.placed_at DESC LIMIT 100"),
        ("DO block, 20 statements", "postgres",
         "DO $$ BEGIN " + " ".join(f"INSERT INTO audit VALUES ({i});" for i in range(20)) + " END $$"),
        ("700 KB OR chain", "postgres", "DELETE FROM t WHERE " + or_chain),
        ("700 KB OR chain", "mysql", "DELETE FROM t WHERE " + or_chain),
        ("3,000 nested parentheses", "postgres", "SELECT " + "(" * 3000 + "1" + ")" * 3000),
        ("3,000 nested parentheses", "mysql", "SELECT " + "(" * 3000 + "1" + ")" * 3000),
        ("10,000 tokens", "postgres", "SELECT " + ", ".join("1" for _ in range(5000))),
        ("nested ARRAY[…] (parser backtracks exponentially)", "postgres", "SELECT " + "ARRAY[" * 14 + "1" + "]" * 14),
        ("24 nested subqueries (deepest allowed)", "mysql", "SELECT " + "(SELECT " * 24 + "1" + ")" * 24),
        ("4,000 columns (8,000 tokens)", "postgres", "SELECT " + ",".join(f"c{i}" for i in range(4000)) + " FROM t"),
        ("900 CTEs (7,200 tokens)", "postgres", "WITH " + ", ".join(f"c{i} AS (SELECT 1)" for i in range(900)) + " SELECT 1"),
        ("4,000 terms joined by \\|\\| (OR on MySQL)", "mysql", "SELECT " + " || ".join(["'a'"] * 4000)),
        ("DELETE … WHERE 2,000-term OR chain", "mysql", "DELETE FROM t WHERE " + " OR ".join(f"id = {i}" for i in range(2000))),
        ("UNION of 1,300 SELECTs", "postgres", " UNION ".join(["SELECT 1"] * 1300)),
        ("60 KB string literal", "postgres", "SELECT '" + "x" * 60_000 + "'"),
    ]  # fmt: skip


def measure(reps: int) -> dict[str, Any]:
    """In the child: every case's check times (ms) and outcome."""
    from rdsgate.definitions import Guardrail
    from rdsgate.errors import GuardrailViolation
    from rdsgate.guardrails import check_guardrails, clear_cache
    from rdsgate.sql.classify import LIMITS

    rules = tuple(Guardrail(name, **{kind: value}) for name, kind, value in RULES)

    def check(sql: str, engine: str) -> str:
        try:
            check_guardrails(rules, sql, engine)
            return "allowed"
        except GuardrailViolation as exc:
            return "403: " + exc.message.split(": ", 1)[1].split(";")[0]

    started = time.perf_counter()
    check("SELECT 1", "postgres")  # imports sqlglot and the classifier
    first_ms = (time.perf_counter() - started) * 1000
    out: dict[str, Any] = {
        "first_check_ms": first_ms,
        "limits": LIMITS,
        "cases": [],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    for label, engine, sql in cases():
        times, outcome = [], ""
        for _ in range(reps):
            clear_cache()
            started = time.perf_counter()
            outcome = check(sql, engine)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        out["cases"].append(
            {"label": label, "engine": engine, "chars": len(sql), "outcome": outcome,
             "median_ms": times[len(times) // 2], "max_ms": times[-1]}
        )  # fmt: skip
    hot_sql = cases()[0][2]
    check(hot_sql, "postgres")
    calls = 20_000
    started = time.perf_counter()
    for _ in range(calls):
        check_guardrails(rules, hot_sql, "postgres")
    out["cached_us"] = (time.perf_counter() - started) / calls * 1e6
    worst = max(out["cases"], key=lambda c: c["max_ms"])
    out["worst"] = {"label": worst["label"], "engine": worst["engine"], "max_ms": worst["max_ms"]}
    out["met"] = worst["max_ms"] <= TARGET_MS and all(
        c["outcome"].startswith("403") for c in out["cases"] if c["label"].startswith(("700 KB", "3,000", "10,000", "nested ARRAY"))
    )
    out["target"] = {"met": out["met"], "max_ms": TARGET_MS}  # where report.missed_targets looks
    return out


def run(quick: bool, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Measure in a fresh child process (as a Lambda execution environment would)."""
    handle, result_file = tempfile.mkstemp(prefix="rdsgate-bench-guardrails-", suffix=".json")
    os.close(handle)
    try:
        child_env = env or {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("functions", "."))}
        subprocess.run(
            [sys.executable, "-m", "bench.guardrails", "--measure", result_file, "--reps", "3" if quick else "7"],
            cwd=REPO, env=child_env, check=True, timeout=600,
        )  # fmt: skip
        return json.loads(pathlib.Path(result_file).read_text())
    finally:
        os.unlink(result_file)


ENGINE_NAMES = {"postgres": "PostgreSQL", "mysql": "MariaDB"}


def summary_row(data: dict[str, Any]) -> str:
    worst = data["worst"]
    mark = "✅ met" if data["met"] else "❌ missed"
    return (
        f"| (g) guardrail check, worst case ({worst['label']}) | — | {worst['max_ms']:.0f} ms | pathological SQL: 403 naming "
        f"the limit | ≤ {TARGET_MS:,} ms, never a 5xx | {mark} |"
    )


def render(data: dict[str, Any]) -> list[str]:
    limits = data["limits"]
    out = [
        "## (g) Guardrail check",
        "",
        f"Measured by `python3 -m bench.guardrails` on {data.get('date', '?')} (load average {data.get('load', '?')}). "
        "One fresh process imports rdsgate and answers one check (importing sqlglot and the classifier: "
        f"{data['first_check_ms']:.0f} ms, once per execution environment), then times `check_guardrails` with "
        "`deny_statements: [DELETE, DROP, UPDATE]` and `require_where`, the outcome cache cleared before every call, so "
        "each call classifies from scratch. Medians and maxima over the repetitions. Limits a statement rule checks within: "
        f"{limits['max_sql_chars']:,} characters, {limits['max_tokens']:,} tokens, nesting {limits['max_depth']} deep, runs of "
        f"{limits['max_run']} prefix operators or subscripts, bodies {limits['max_body_nesting']} deep, "
        f"{limits['check_seconds']} s of checking (parser steps bounded too). The API accepts 1 MiB requests.",
        "",
        "| case | engine | characters | outcome | median | max |",
        "|---|---|---|---|---|---|",
    ]
    for case in data["cases"]:
        out.append(
            f"| {case['label']} | {ENGINE_NAMES[case['engine']]} | {case['chars']:,} | {case['outcome']} "
            f"| {case['median_ms']:.2f} ms | {case['max_ms']:.2f} ms |"
        )
    out += [
        "",
        f"A repeated statement is answered from the cache: {data['cached_us']:.1f} µs a check. Worst case: "
        f"{data['worst']['label']} ({ENGINE_NAMES[data['worst']['engine']]}), {data['worst']['max_ms']:.0f} ms.",
        "",
    ]
    return out


def splice(results_md: pathlib.Path, data: dict[str, Any]) -> None:
    """Write section (g) and its summary row into an existing RESULTS.md, replacing earlier ones."""
    lines = results_md.read_text().splitlines() if results_md.exists() else ["# rdsgate benchmark results", ""]
    lines = [line for line in lines if not line.startswith("| (g) guardrail check")]
    if "## (g) Guardrail check" in lines:
        start = lines.index("## (g) Guardrail check")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        del lines[start:end]
    if "## Summary" in lines:
        first = lines.index("## Summary") + 4  # title, blank, header, rule
        at = next((i for i in range(first, len(lines)) if not lines[i].startswith("|") or lines[i].startswith("| deployment asset")), len(lines))
        lines.insert(at, summary_row(data))
    later = ("## Deployment asset", "## Profiles of missed targets", "## Changes and what they bought")
    anchor = next((i for i, line in enumerate(lines) if line in later), len(lines))
    lines[anchor:anchor] = render(data)
    changes = REPO / "bench" / "CHANGES.md"
    if "## Changes and what they bought" in lines and changes.exists():  # the copy report.render makes
        del lines[lines.index("## Changes and what they bought") :]
        lines += changes.read_text().strip().splitlines()
    results_md.write_text("\n".join(lines).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.guardrails", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--output", default=str(REPO / "bench" / "RESULTS.md"), help="the RESULTS.md to write section (g) into")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child: write measurements to this file
    parser.add_argument("--reps", type=int, default=7, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.measure:
        pathlib.Path(options.measure).write_text(json.dumps(measure(options.reps)))
        return 0
    data = run(options.quick)
    splice(pathlib.Path(options.output), data)
    print("\n".join(render(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
