"""`rdsgate runbooks` and `rdsgate run NAME -p k=v`: the runbooks you may run, and running one; `rdsgate reviews`,
`approve` and `reject`: the reviews that wait for an approver, and deciding one.

Registered by cli.py through its ``command`` helper, so all of them take ``--endpoint``, ``--profile``,
``--region`` and ``--timeout`` and sign with the usual AWS credentials, like `rdsgate query`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from rdsgate_client.api import path_for

from . import output
from .options import add_result_options, api_client, parse_parameter, print_result


def add_runbook_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    sub = command("runbooks", list_runbooks, "list the runbooks you may run, with their parameters")
    sub.add_argument("--json", action="store_true", help="print the API's documents (parameter schemas included)")

    sub = command("run", run, "run a runbook with its parameters")
    sub.add_argument("runbook")
    add_result_options(sub)

    sub = command("reviews", list_reviews, "list the reviews you may decide (or, with --mine, your own requests)")
    sub.add_argument("--status", default="PENDING", help="PENDING (default), APPROVED, REJECTED, EXPIRED, EXECUTED or FAILED")
    sub.add_argument("--mine", action="store_true", help="your own requests instead")
    sub.add_argument("--json", action="store_true")
    for name, decision in (("approve", "approve"), ("reject", "reject")):
        sub = command(name, decide, f"{decision} a review (never your own)")
        sub.add_argument("review")
        sub.add_argument("-m", "--comment", help="a comment kept with the decision")
        sub.set_defaults(decision=decision)


def list_reviews(args: argparse.Namespace) -> int:
    from urllib.parse import urlencode

    query = {"status": args.status.upper()} | ({"mine": "true"} if args.mine else {})
    listed = api_client(args).get("/reviews?" + urlencode(query)).get("reviews", [])
    if args.json:
        print(output.as_json(listed))
        return 0
    rows = [[r["reviewId"], r["status"], r.get("runbook") or r["connection"], r.get("requester"),
             ", ".join(r.get("statementKinds") or []), r.get("expiresAt")] for r in listed]
    print(output.table(["review", "status", "runbook or connection", "requester", "kinds", "expires"], rows, null=""))
    return 0


def decide(args: argparse.Namespace) -> int:
    body = {"comment": args.comment} if args.comment else {}
    review = api_client(args).post(path_for("reviews", args.review, args.decision), body)
    print(f"review {review['reviewId']} is {review['status']}"
          + (f"; statement {review['statementId']} (rdsgate result {review['statementId']})" if review.get("statementId") else ""))
    return 0


def describe_parameter(parameter: dict[str, Any]) -> str:
    """``status (string: placed|shipped)``, ``limit? (integer 1..100, default 10)``."""
    text = parameter["name"] + ("" if parameter.get("required", True) else "?") + f" ({parameter['type']}"
    if "enum" in parameter:
        text += ": " + "|".join(output.as_text(v) for v in parameter["enum"])
    if "min" in parameter or "max" in parameter:
        text += f" {output.as_text(parameter.get('min', ''))}..{output.as_text(parameter.get('max', ''))}"
    if "pattern" in parameter:
        text += f" ~ {parameter['pattern']}"
    if "default" in parameter:
        text += f", default {output.as_text(parameter['default'])}"
    return text + ")"


def runbook_notes(runbook: dict[str, Any]) -> list[str]:
    """What a runbook's listing says besides its name: read-only, needs approval."""
    return [note for note, applies in (("read-only", runbook.get("readOnly")), ("needs approval", runbook.get("approval")))
            if applies]


def list_runbooks(args: argparse.Namespace) -> int:
    listed = api_client(args).get("/runbooks").get("runbooks", [])
    if args.json:
        print(output.as_json(listed))
        return 0
    if not listed:
        print("no runbooks that you may run")
    for runbook in listed:  # a block per runbook: its parameters are too many for a table's cells
        notes = ", ".join(runbook_notes(runbook))
        print(f"{runbook.get('name')}  (on {runbook.get('connection')}{', ' + notes if notes else ''})"
              + (f"  {runbook['description']}" if runbook.get("description") else ""))
        for parameter in runbook.get("parameters", []):
            print("    -p " + describe_parameter(parameter)
                  + (f"  {parameter['description']}" if parameter.get("description") else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"parameters": dict(parse_parameter(text) for text in args.param or [])}
    if args.max_rows:
        body["maxRows"] = args.max_rows
    result = api_client(args).post(path_for("runbooks", args.runbook, "run"), body)
    if "reviewId" in result:  # 202: it waits for a review; nothing has run
        print(f"review {result['reviewId']} is {result.get('status', 'PENDING')}: the statement runs once it is approved "
              f"(GET /reviews/{result['reviewId']})", file=sys.stderr)
        if args.json:
            print(output.as_json(result))
        return 0
    print_result(args, result)
    return 0
