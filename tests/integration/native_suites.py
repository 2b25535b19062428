"""Run a driver's own test suite against `rdsgate connect` and sort its failures by reason (docs/NATIVE.md).

Not collected by pytest (no ``test_`` prefix): a person runs it, with the suite's checkout and an
interpreter that has the suite's test dependencies::

    python -m tests.integration.native_suites pg8000 --checkout ~/src/pg8000 --python ~/suite-venv/bin/python
    python -m tests.integration.native_suites pymysql --checkout ~/src/PyMySQL --python ~/suite-venv/bin/python

It starts the local stack (`rdsgate serve`) and a tunnel, points the suite at the tunnel the
way the suite reads its settings (pg8000: ``PGHOST``/``PGPORT``; PyMySQL:
``pymysql/tests/databases.json``, written into the checkout, whose two databases are both the
demo's), runs it with a JUnit report, and prints, as a Markdown table, how many tests passed and
why each other one failed. A failure is put in a category when its test id or message matches
that category's rule; whatever matches none is listed by name, as an unexplained failure.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter

from tests.local_processes import Serve, Tunnel

# (category, excluded from the rate, rule on the test id, rule on the failure message)
SESSION = "needs one server session across statements: a transaction that reads its own writes, temporary tables, " \
          "session prepared statements, its own backend (pg_backend_pid, processlist, KILL)"
RULES: list[tuple[str, bool, str | None, str | None]] = [
    ("authentication methods (MD5, SCRAM, GSS) and TLS on the local port: clear text on loopback only, by design",
     True, r"(^|\.)auth\.|[Mm]d5|[Pp]assword|[Ss]sl|test_plugin", None),
    ("the connection decides the database (PostgreSQL's dbname is ignored; MySQL's must be the connection's)", True,
     r"[Dd]atabase_?[Mm]issing|[Dd]atabase_?[Nn]ame|test_issue_6$", r"Unknown database"),
    ("COPY and LOAD DATA LOCAL INFILE: refused by design", True, r"test_copy|test_load_local", r"COPY is not supported"),
    ("LISTEN / NOTIFY: refused by design", True, None, r"LISTEN needs"),
    ("two-phase commit (PREPARE TRANSACTION): refused by design", True, r"test_tpc", r"PREPARE TRANSACTION"),
    ("several statements in one MySQL query (CLIENT_MULTI_STATEMENTS): not offered, by design", True, None,
     r"multiple statements are not enabled"),
    ("MySQL executable comments: refused by the gateway (docs/SECURITY.md)", True, None, r"executable comments"),
    ("session settings no pooled session keeps (TimeZone other than UTC, SESSION AUTHORIZATION, sql_mode other "
     "than the server's, character sets other than UTF-8): refused by design", True, None,
     r"sessions run in UTC|SET \w+ is not supported through rdsgate|speaks utf8mb4 only"),
    (SESSION, True,
     r"test_failed_transaction_sql\[BEGIN\]|test_no_data_error_recovery|test_database_error|test_callproc"
     r"|test_close_prepared_statement|test_broken_pipe|test_issue_36$|test_connection_gone_away|test_issue_321$"
     r"|test_readme|test_issue_66$",
     r"this read cannot see|RETURNING in a transaction block|COMMIT failed, nothing was written|"
     r"relation \"(t\d|test_int|book)\" does not exist|table \"testenum\" does not exist|type \"lepton\"|rowcount|"
     r"affected_rows"),
]


def classify(test_id: str, message: str) -> tuple[str, bool] | None:
    for category, excluded, id_rule, message_rule in RULES:
        if (id_rule and re.search(id_rule, test_id)) or (message_rule and re.search(message_rule, message)):
            return category, excluded
    return None


def outcomes(report: pathlib.Path) -> list[tuple[str, str, str]]:
    """(test id, pass/fail/skip, message) for each test of a JUnit report; a teardown error after a pass is a fail."""
    results: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        state, message = "pass", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                state = "skip" if tag == "skipped" else "fail"
                message = (element.get("message") or element.text or "").replace("\n", " ")
                break
        if test_id not in results or state == "fail":
            results[test_id] = (state, message)
    return [(test_id, state, message) for test_id, (state, message) in results.items()]


def summary(name: str, results: list[tuple[str, str, str]]) -> str:
    ran = [r for r in results if r[1] != "skip"]
    passed = sum(1 for r in ran if r[1] == "pass")
    categories: Counter[tuple[str, bool]] = Counter()
    unexplained = []
    for test_id, state, message in ran:
        if state == "fail":
            found = classify(test_id, message)
            if found is None:
                unexplained.append(f"- `{test_id}`: {message[:200]}")
            else:
                categories[found] += 1
    excluded = sum(count for (_, out), count in categories.items() if out)
    considered = len(ran) - excluded
    lines = [f"### {name}", "", f"{len(ran)} tests ran ({len(results) - len(ran)} skipped by the suite itself); "
             f"{passed} passed ({passed / len(ran):.0%}).", "",
             "| failures | count | counted in the rate |", "|---|---|---|"]
    lines += [f"| {category} | {count} | {'no' if out else 'yes'} |" for (category, out), count in categories.most_common()]
    lines += [f"| not explained by a rule (below) | {len(unexplained)} | yes |", "",
              f"**Pass rate without the excluded categories: {passed}/{considered} = {passed / considered:.1%}.**", ""]
    return "\n".join(lines + unexplained)


def run_pg8000(serve: Serve, checkout: pathlib.Path, python: str, report: pathlib.Path, tunnel_args: list[str]) -> None:
    import pg8000.native

    # The README's examples (test_readme) connect to localhost:5432: use that port when it is free.
    with socket.socket() as probe:
        free = probe.connect_ex(("127.0.0.1", 5432)) != 0
    tunnel = Tunnel("demo", serve.url, *(["--port", "5432"] if free else []), *tunnel_args)
    try:
        con = pg8000.native.Connection("postgres", host="127.0.0.1", port=tunnel.port, database="demo")
        con.run("CREATE EXTENSION IF NOT EXISTS hstore")  # the suite expects it; trusted, the demo user may create it
        con.close()
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(tunnel.port), "PGPASSWORD": "pw"}
        subprocess.run([python, "-m", "pytest", "test", "-q", "-p", "no:cacheprovider", "--benchmark-disable",
                        f"--junitxml={report}"], cwd=checkout, env=env, check=False)
    finally:
        tunnel.kill()


def run_pymysql(serve: Serve, checkout: pathlib.Path, python: str, report: pathlib.Path, tunnel_args: list[str]) -> None:
    tunnel = Tunnel("demo-mysql", serve.url, *tunnel_args)
    try:
        settings = {"host": "127.0.0.1", "port": tunnel.port, "user": "root", "passwd": "", "database": "demo"}
        (checkout / "pymysql" / "tests" / "databases.json").write_text(
            json.dumps([{**settings, "use_unicode": True, "local_infile": True}, settings]))
        subprocess.run([python, "-m", "pytest", "pymysql/tests", "-q", "-p", "no:cacheprovider",
                        f"--junitxml={report}"], cwd=checkout, check=False)
    finally:
        tunnel.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suite", choices=("pg8000", "pymysql"))
    parser.add_argument("--checkout", type=pathlib.Path, required=True, help="the driver's repository")
    parser.add_argument("--python", default=sys.executable, help="an interpreter with the suite's test dependencies")
    parser.add_argument("--tunnel-arg", action="append", default=[], metavar="ARG",
                        help="an option for rdsgate connect (repeat it: --tunnel-arg=--max-rows --tunnel-arg=500)")
    args = parser.parse_args()
    serve = Serve() if args.suite == "pymysql" else Serve("--no-mysql")
    try:
        with tempfile.TemporaryDirectory() as folder:
            report = pathlib.Path(folder) / "report.xml"
            (run_pg8000 if args.suite == "pg8000" else run_pymysql)(serve, args.checkout.resolve(), args.python, report,
                                                                     args.tunnel_arg)
            print(summary(args.suite, outcomes(report)))
    finally:
        serve.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
