"""bench/RESULTS.md from the runner's results (and bench/CHANGES.md, the hand-kept history).

Over 400 lines on purpose: mostly the prose of each section of RESULTS.md, one renderer per section.
"""

from __future__ import annotations

import pathlib
from typing import Any

from .guardrails import render as render_guardrails
from .guardrails import summary_row as guardrail_summary_row

CHANGES = pathlib.Path(__file__).resolve().parent / "CHANGES.md"
ENGINE_NAMES = {"postgres": "PostgreSQL", "mysql": "MariaDB"}


def _mark(met: Any) -> str:
    return "✅ met" if met else "❌ missed"


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def missed_targets(results: dict[str, Any]) -> list[str]:
    missed = []
    for section in ("warm", "encode", "cold", "reuse", "memory", "concurrency", "guardrails"):
        data = results.get(section)
        if not isinstance(data, dict):
            continue
        if "error" in data:
            missed.append(f"{section} (failed to run)")
            continue
        for key, value in data.items():
            if isinstance(value, dict) and value.get("met") is False:
                missed.append(f"{section} {key}")
    asset = results.get("asset")
    if isinstance(asset, dict) and (asset.get("met") is False or "error" in asset):
        missed.append("asset size")
    return missed


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    out: list[str] = [
        "# rdsgate benchmark results",
        "",
        f"Written by `python3 -m bench` ({'quick run, fewer repetitions' if results.get('quick') else 'full run'}) "
        f"on {machine['date']} in {results.get('seconds', 0):.0f} s. How to run it and what each number means: "
        "[docs/PERFORMANCE.md](../docs/PERFORMANCE.md). Targets are ratios to a floor measured in the same run, "
        "because absolute times depend on the machine.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| date | {machine['date']} |",
        f"| CPU | {machine['cpu']} |",
        f"| memory | {machine['memory']} |",
        f"| system | {machine['system']} |",
        f"| Python | {machine['python']} |",
        f"| packages | {machine['packages']} |",
        "| databases | " + ", ".join(f"{ENGINE_NAMES[e]} {v}" for e, v in results.get("servers", {}).items())
        + " (loopback, TLS, IAM tokens verified through PAM) |",
        f"| code | commit {machine['commit']} |",
        f"| load average at start | {machine['load']} |",
        "",
        "## Summary",
        "",
        "| what | floor | rdsgate | result | target | |",
        "|---|---|---|---|---|---|",
    ]
    out += _summary_rows(results)
    out += [""]
    out += _warm(results.get("warm"))
    out += _encode(results.get("encode"))
    out += _cold(results.get("cold"))
    out += _reuse(results.get("reuse"))
    out += _memory(results.get("memory"))
    out += _concurrency(results.get("concurrency"))
    out += _guardrails(results.get("guardrails"))
    out += _asset(results.get("asset"))
    out += _profiles(results)
    if CHANGES.exists():
        out += ["", CHANGES.read_text().strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def _failed(data: Any) -> bool:
    return not isinstance(data, dict) or "error" in data


def _summary_rows(results: dict[str, Any]) -> list[str]:
    rows = []
    for section, engine_rows in _ENGINE_ROWS.items():
        data = results.get(section)
        if not _failed(data):
            rows += [row for engine in ENGINE_NAMES for row in engine_rows(ENGINE_NAMES[engine], engine, data)]
        if section == "cold" and not _failed(data):
            for engine, c in ((data.get("asset") or {}).get("engines") or {}).items():
                rows.append(
                    f"| (c) cold start from the deployed asset (read-only, CPython 3.13 bytecode), {ENGINE_NAMES[engine]} "
                    f"| {c['floor_ms']:.0f} ms | {c['gate_ms']:.0f} ms | ×{c['ratio']:.2f} | ≤ ×0.9 | {_mark(c['met'])} |"
                )
    guard = results.get("guardrails")
    if not _failed(guard):
        rows.append(guardrail_summary_row(guard))
    asset = results.get("asset")
    if not _failed(asset):
        rows.append(
            f"| deployment asset | — | {_mb(asset['unzipped'])} unzipped, {_mb(asset['zipped'])} zipped "
            f"| boto3 bundled (see below) | < 30 MB unzipped | {_mark(asset['met'])} |"
        )
    for section in ("warm", "encode", "cold", "reuse", "memory", "concurrency", "guardrails", "asset"):
        if section in results and _failed(results[section]):
            rows.append(f"| {section} | — | — | the measurement failed (see below) | — | ❌ |")
    return rows


# The summary's rows of one engine, per section: (engine's name, engine, the section's results) -> rows.


def _warm_rows(name: str, engine: str, warm: dict[str, Any]) -> list[str]:
    rows = []
    for statement, label in (("select1", "SELECT 1"), ("pk", "primary-key lookup")):
        w = warm[f"{engine}/{statement}"]
        rows.append(
            f"| (a) warm, {name}, {label} | {w['raw_ms'] * 1000:.0f} µs | {w['gate_ms'] * 1000:.0f} µs "
            f"| {w['added_ms'] * 1000:+.0f} µs (×{w['ratio']:.2f}) | ≤ +500 µs | {_mark(w['met'])} |"
        )
    return rows


def _encode_rows(name: str, engine: str, encode: dict[str, Any]) -> list[str]:
    e = encode[engine]
    rows = [
        f"| (b) encoding 100,000 rows × 10 columns, {name} | {e['raw_s']:.2f} s "
        f"({e['raw_rows_per_s']:,.0f} rows/s) | {e['gate_s']:.2f} s ({e['gate_rows_per_s']:,.0f} rows/s) "
        f"| ×{e['ratio']:.2f} | ≤ ×1.3 | {_mark(e['met'])} |"
    ]
    if "detect_ratio" in e:
        rows.append(
            f"| (b) the same with every content detector on, {name} | {e['gate_s']:.2f} s "
            f"| {e['detect_s']:.2f} s | ×{e['detect_ratio']:.2f} | ≤ ×1.5 | {_mark(e['detect_met'])} |"
        )
    return rows


def _cold_rows(name: str, engine: str, cold: dict[str, Any]) -> list[str]:
    c = cold[engine]
    return [
        f"| (c) cold start, {name} | {c['floor_ms']:.0f} ms | {c['gate_ms']:.0f} ms "
        f"| ×{c['ratio']:.2f}; drivers lazy: {'yes' if c['drivers_lazy'] else 'no'} | ≤ ×1.3, lazy drivers | {_mark(c['met'])} |"
    ]


def _reuse_rows(name: str, engine: str, reuse: dict[str, Any]) -> list[str]:
    r = reuse[engine]
    return [
        f"| (d) reuse, 1,000 warm invocations, {name} | — | {r['opened']} connection opened, "
        f"{r['tokens_signed']} token signed | {r['statuses'].get('200', 0)} × 200 OK | exactly 1 and 1 | {_mark(r['met'])} |"
    ]


def _memory_rows(name: str, engine: str, memory: dict[str, Any]) -> list[str]:
    m = memory[engine]
    return [
        f"| (e) memory, 1,000,000-row SELECT, maxRows 1000, {name} | {m['baseline_mb']:.0f} MB RSS "
        f"| {m['baseline_mb'] + m['growth_mb']:.0f} MB peak | +{m['growth_mb']:.1f} MB | ≤ +20 MB | {_mark(m['met'])} |"
    ]


def _concurrency_rows(name: str, engine: str, conc: dict[str, Any]) -> list[str]:
    c = conc[engine]
    return [
        f"| (f) concurrency, {c['processes']} processes × {c['invocations'] // c['processes']}, {name} "
        f"| — | {c['errors']} errors, ≤ {c['max_connections_seen']} connections | {c['throughput_per_s']:.0f} requests/s "
        f"| 0 errors, ≤ {c['processes']} connections | {_mark(c['met'])} |"
    ]


_ENGINE_ROWS = {
    "warm": _warm_rows,
    "encode": _encode_rows,
    "cold": _cold_rows,
    "reuse": _reuse_rows,
    "memory": _memory_rows,
    "concurrency": _concurrency_rows,
}


def _error(title: str, data: Any) -> list[str]:
    return [f"## {title}", "", "The measurement failed:", "", "```", str(data.get("error", data))[-3000:], "```", ""]


def _warm(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(a) Warm overhead", data)
    out = [
        "## (a) Warm overhead",
        "",
        "One process per engine holds a raw driver connection (pg8000.native / PyMySQL, TLS, logged in with an IAM "
        "token) and rdsgate's warm execution environment. Each pair runs the raw driver and `rdsgate.api.handler` on "
        "an API Gateway event for the same statement, alternating which goes first; the event is decoded from JSON "
        "text outside the timed window (as the Lambda runtime does), the context reports 30 s left (the function's "
        "timeout), the audit record goes to the log only, the EMF metrics are on (the default; one line per "
        "invocation) and tracing is off (the process is not in Lambda; see *(a) with metrics and traces*). "
        "Times are medians.",
        "",
        "| engine, statement | samples | raw driver | rdsgate | added (median difference) | added, paired | added per repetition | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        for statement, label in (("select1", "SELECT 1"), ("pk", "primary-key lookup, 10 columns")):
            w = data[f"{engine}/{statement}"]
            reps = ", ".join(f"{x * 1000:.0f}" for x in w["rep_added_ms"])
            out.append(
                f"| {ENGINE_NAMES[engine]}, {label} | {w['samples']} | {w['raw_ms'] * 1000:.0f} µs | {w['gate_ms'] * 1000:.0f} µs "
                f"| {w['added_ms'] * 1000:.0f} µs | {w['paired_added_ms'] * 1000:.0f} µs | {reps} µs | ×{w['ratio']:.2f} |"
            )
    out += [
        "",
        "Where the time goes: each layer timed on its own in the same process (medians, µs; the API handler "
        "row is the whole request as measured above, the layers below it are what it calls).",
        "",
    ]
    keys = [f"{e}/{s}" for e in ("postgres", "mysql") for s in ("select1", "pk")]
    layer_names: list[str] = []
    for key in keys:
        for name in data[key].get("layers_us", {}):
            if name not in layer_names:
                layer_names.append(name)
    if layer_names:
        out.append("| layer | " + " | ".join(f"{ENGINE_NAMES[k.split('/')[0]]}, {'SELECT 1' if k.endswith('select1') else 'PK lookup'}" for k in keys) + " |")
        out.append("|---" * (len(keys) + 1) + "|")
        for name in layer_names:
            cells = [f"{data[k]['layers_us'][name]:.0f}" if name in data[k].get("layers_us", {}) else "—" for k in keys]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    pools = [f"{ENGINE_NAMES[e]}: {data[f'{e}/pool']}" for e in ("postgres", "mysql") if f"{e}/pool" in data]
    out += ["Pool counters after each run: " + "; ".join(pools) + ".", ""]
    return out + _warm_telemetry(data.get("telemetry"))


def _warm_telemetry(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(a) with metrics and traces", data)
    out = [
        "### (a) with metrics and traces",
        "",
        "One process per engine and statement, as Lambda runs it (`LAMBDA_TASK_ROOT`, a sampled `_X_AMZN_TRACE_ID`): "
        "each round runs the raw driver and `rdsgate.api.handler` three times, with telemetry off, with EMF metrics "
        "(`rdsgate.telemetry`, flushed to stdout once per invocation) and with metrics and X-Ray subsegments "
        "(`rdsgate.tracing.DaemonEmitter`, UDP to the daemon's address, as in Lambda), in rotating order. Added: median of the paired differences to the raw "
        "driver; cost: median of the paired differences between neighbouring configurations. Target: metrics and "
        "tracing on stay within +500 µs.",
        "",
        "| engine, statement | samples | raw driver | added, off | added, metrics | added, metrics + tracing | metrics cost | tracing cost | |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        for statement, label in (("select1", "SELECT 1"), ("pk", "primary-key lookup")):
            t = data.get(f"{engine}/{statement}")
            if t is None:
                continue
            added = t["added_ms"]
            out.append(
                f"| {ENGINE_NAMES[engine]}, {label} | {t['samples']} | {t['raw_ms'] * 1000:.0f} µs "
                f"| {added['off'] * 1000:+.0f} µs | {added['metrics'] * 1000:+.0f} µs | {added['metrics+tracing'] * 1000:+.0f} µs "
                f"| {t['metrics_cost_ms'] * 1000:+.0f} µs | {t['tracing_cost_ms'] * 1000:+.0f} µs | {_mark(t['met'])} |"
            )
    return out + [""]


def _encode(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(b) Result encoding", data)
    out = [
        "## (b) Result encoding",
        "",
        "`SELECT id, qty, price, name, active, born, created, ratio, token, attrs FROM items ORDER BY id LIMIT 100000`: "
        "bigint, int, numeric/decimal, text, boolean, date, timestamptz/datetime(6), double, uuid/char(36), jsonb/JSON. "
        "Floor: the raw driver fetching every row into its Python values (pg8000.native `run`, PyMySQL `fetchall`). "
        "rdsgate: the query service (`maxRows` 100000, object records, byte budget on) and the result document "
        "encoded to JSON text, i.e. everything the API handler does but the 6 MB response cap. Alternating order, medians.",
        "",
        "| engine | raw driver | rdsgate to JSON text | ratio | ratio per repetition | JSON |",
        "|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        e = data[engine]
        out.append(
            f"| {ENGINE_NAMES[engine]} | {e['raw_s']:.3f} s, {e['raw_rows_per_s']:,.0f} rows/s | {e['gate_s']:.3f} s, "
            f"{e['gate_rows_per_s']:,.0f} rows/s | ×{e['ratio']:.2f} | {', '.join(f'{r:.2f}' for r in e['rep_ratios'])} "
            f"| {e['json_mb']:.1f} MB |"
        )
    return out + [""]


def _cold(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(c) Cold start", data)
    out = [
        "## (c) Cold start",
        "",
        "Wall time of a fresh `python3` process, from spawn to exit, on a warm database. rdsgate: import `rdsgate.api`, "
        "answer one API Gateway event (`SELECT 1`): read the definition from DynamoDB (moto), sign an IAM token, "
        "connect over TLS, run the statement. Floor: `import boto3`, sign the token with "
        "`boto3.client('rds').generate_db_auth_token`, connect with the raw driver over TLS, `SELECT 1`. "
        "Processes alternate; one warm-up process of each kind is not counted.",
        "",
        "| engine | floor | rdsgate | ratio | per repetition | floor: import / rest | rdsgate: import / first request | loaded after `import rdsgate.api` | other engine's driver loaded | sqlglot loaded |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        c = data[engine]
        out.append(
            f"| {ENGINE_NAMES[engine]} | {c['floor_ms']:.0f} ms | {c['gate_ms']:.0f} ms | ×{c['ratio']:.2f} "
            f"| {', '.join(f'{r:.2f}' for r in c['rep_ratios'])} | {c['floor_import_ms']:.0f} / {c['floor_first_ms']:.0f} ms "
            f"| {c['gate_import_ms']:.0f} / {c['gate_first_ms']:.0f} ms | {', '.join(c['modules_after_import']) or 'none of boto3, botocore, pg8000, pymysql, sqlglot'} "
            f"| {'yes' if c['other_driver_loaded'] else 'no'} | {'yes' if c['sqlglot_loaded'] else 'no'} |"
        )
    if all("nobytecode_gate_ms" in data[e] for e in ("postgres", "mysql")):
        out += [
            "",
            "Both sides above import modules whose bytecode is cached (`__pycache__`). In Lambda `/var/task` is read-only, "
            "so a module the asset ships without bytecode is compiled at every cold start (the asset has bytecode only when "
            "it was built where a CPython 3.13 is found; see below). The same measurement with every module, the standard "
            "library's too, compiled from source (`PYTHONPYCACHEPREFIX` an empty folder; no target, for information):",
            "",
            "| engine | floor | rdsgate | ratio |",
            "|---|---|---|---|",
        ]
        for engine in ("postgres", "mysql"):
            c = data[engine]
            out.append(
                f"| {ENGINE_NAMES[engine]} | {c['nobytecode_floor_ms']:.0f} ms | {c['nobytecode_gate_ms']:.0f} ms "
                f"| ×{c['nobytecode_gate_ms'] / c['nobytecode_floor_ms']:.2f} |"
            )
    return out + [""] + _cold_from_asset(data.get("asset"))


def _cold_from_asset(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    out = ["### From the deployed asset", ""]
    if "skipped" in data:
        return out + [f"Not measured: {data['skipped']}.", ""]
    out += [
        f"The asset built by `infra/bundling.py` (`python3 -m bench.size --build`), with its CPython 3.13 bytecode "
        "(`compileall --invalidation-mode unchecked-hash`), made read-only and run by the runtime's Python "
        f"({data['python'].split()[0]}) with `PYTHONDONTWRITEBYTECODE`, so that nothing is cached between processes, "
        "as in `/var/task`. rdsgate: the same task as above (import `rdsgate.api`, one API Gateway event). Floor: the same "
        "interpreter importing boto3 and the driver from the same asset, with their bytecode (as the runtime's own boto3 "
        "has), signing with `generate_db_auth_token` and running `SELECT 1`. Sources only: the same two from an asset "
        "built without bytecode (what a build machine without CPython 3.13 ships), the standard library compiled.",
        "",
        "| engine | floor | rdsgate | ratio | per repetition | floor: import / rest | rdsgate: import / first request "
        "| sources only: floor | sources only: rdsgate | bytecode saves rdsgate |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for engine, c in data["engines"].items():
        out.append(
            f"| {ENGINE_NAMES[engine]} | {c['floor_ms']:.0f} ms | {c['gate_ms']:.0f} ms | ×{c['ratio']:.2f} "
            f"| {', '.join(f'{r:.2f}' for r in c['rep_ratios'])} | {c['floor_import_ms']:.0f} / {c['floor_first_ms']:.0f} ms "
            f"| {c['gate_import_ms']:.0f} / {c['gate_first_ms']:.0f} ms | {c['sources_floor_ms']:.0f} ms "
            f"| {c['sources_gate_ms']:.0f} ms | {c['sources_gate_ms'] - c['gate_ms']:.0f} ms |"
        )
    imports = data.get("imports")
    if imports:
        out += [
            "",
            f"What a cold start from the asset imports (PostgreSQL; `-X importtime` over the import and the first "
            f"request: {imports['modules']} modules, {imports['total_ms']:.0f} ms of import time, which the tracing "
            "itself inflates). By top-level package (self time), and the costliest imports (cumulative; indented by how deep they were imported):",
            "",
            "| package | ms | | import | cumulative ms | self ms |",
            "|---|---|---|---|---|---|",
        ]
        packages = list(imports["by_package_ms"].items())
        costliest = imports["costliest"]
        for i in range(max(len(packages), len(costliest))):
            left = f"| {packages[i][0]} | {packages[i][1]:.1f} |" if i < len(packages) else "| | |"
            if i < len(costliest):
                c = costliest[i]
                right = f" | {'&nbsp;&nbsp;' * c['depth']}`{c['module']}` | {c['cumulative_ms']:.1f} | {c['self_ms']:.1f} |"
            else:
                right = " | | | |"
            out.append(left + right)
    return out + [""]


def _reuse(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(d) Reuse", data)
    out = [
        "## (d) Reuse",
        "",
        "One execution environment answers 1,000 API Gateway events (primary-key lookups, a new key each time). "
        "Counted, not timed: `service.pool.stats` and `service.pool._signer.tokens_signed`.",
        "",
        "| engine | responses | connections opened | reused | replaced | tokens signed |",
        "|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        r = data[engine]
        out.append(
            f"| {ENGINE_NAMES[engine]} | {r['statuses']} | {r['opened']} | {r['reused']} | {r['replaced']} | {r['tokens_signed']} |"
        )
    return out + [""]


def _memory(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(e) Memory", data)
    out = [
        "## (e) Memory",
        "",
        "A fresh process answers `SELECT 1` (imports done, connection open), then measures its RSS (the baseline), "
        "resets the kernel's peak counter (`/proc/self/clear_refs`) and answers a 1,000,000-row SELECT with "
        "`maxRows` 1000 through `rdsgate.api.handler`; the peak is `VmHWM` afterwards. The worst of the runs is reported.",
        "",
        "| engine | baseline RSS | peak RSS | growth | rows returned | truncated | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        m = data[engine]
        out.append(
            f"| {ENGINE_NAMES[engine]} | {m['baseline_mb']:.1f} MB | {m['peak_mb']:.1f} MB | +{m['growth_mb']:.1f} MB "
            f"| {m['rows']} | {m['truncated']} | {m['seconds'] * 1000:.0f} ms |"
        )
    return out + [""]


def _concurrency(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(f) Concurrency", data)
    out = [
        "## (f) Concurrency",
        "",
        "Eight processes (eight execution environments) import rdsgate, then start together and each answer 200 "
        "primary-key lookups against the same database. A sampler counts the benchmark user's sessions on the "
        "server (`pg_stat_activity`, `information_schema.PROCESSLIST`) every 5 ms.",
        "",
        "| engine | invocations | responses | most sessions seen | connections opened | tokens signed | throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    for engine in ("postgres", "mysql"):
        c = data[engine]
        out.append(
            f"| {ENGINE_NAMES[engine]} | {c['invocations']} | {c['statuses']} | {c['max_connections_seen']} "
            f"| {c['connections_opened']} | {c['tokens_signed']} | {c['throughput_per_s']:.0f} requests/s |"
        )
        if c["error_samples"]:
            out.append(f"| | errors: {c['error_samples']} | | | | | |")
    return out + [""]


def _guardrails(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("(g) Guardrail check", data)
    return render_guardrails(data)


def _asset(data: Any) -> list[str]:
    if data is None:
        return []
    if _failed(data):
        return _error("Deployment asset", data)
    provided = data["runtime_provided"]
    out = [
        "## Deployment asset",
        "",
        f"Built by `infra/bundling.py` as `cdk synth` builds it ({data['platform']}; {data['files']} files), "
        "zipped with deflate level 9. boto3 is bundled (pinned with the other wheels, and the asset runs on its own); "
        "botocore keeps only the service models the functions call (see docs/PERFORMANCE.md).",
        "",
        "| | size |",
        "|---|---|",
        f"| unzipped | {_mb(data['unzipped'])} ({data['unzipped']:,} bytes) |",
        f"| zipped | {_mb(data['zipped'])} ({data['zipped']:,} bytes) |",
        f"| of which boto3 and its dependencies (botocore, s3transfer, jmespath, urllib3, dateutil, six) | {_mb(provided)} |",
        f"| unzipped without them (if the runtime's boto3 were used) | {_mb(data['unzipped'] - provided)} |",
        "",
        "Largest parts, unzipped:",
        "",
        "| package | size |",
        "|---|---|",
    ]
    for name, size in list(data["by_package"].items())[:12]:
        out.append(f"| {name} | {_mb(size)} |")
    return out + [""]


def _profiles(results: dict[str, Any]) -> list[str]:
    out = []
    warm = results.get("warm") or {}
    for key, value in warm.items():
        if key.endswith("/profile"):
            out += [f"### Profile: (a) {key.removesuffix('/profile')}", "", "```", value.rstrip(), "```", ""]
    for section, title in (("encode", "(b)"), ("cold", "(c)")):
        data = results.get(section) or {}
        for engine, value in data.items():
            if isinstance(value, dict) and value.get("profile"):
                out += [f"### Profile: {title} {ENGINE_NAMES.get(engine, engine)}", "", "```", value["profile"].rstrip(), "```", ""]
    if out:
        out = ["## Profiles of missed targets", ""] + out
    return out
