"""What the commands share: the AWS session, the API client built from ``--endpoint``/``--profile``/``--region``,
``name=value`` options, and the options of a command that runs SQL and prints its result.

Every command module (cli, connect, runbooks_cli, statements_cli, mcp_server) builds its client here, so a
missing endpoint or broken AWS configuration is one message everywhere.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rdsgate_client.api import ApiClient, CliError

from . import output


def aws_session(args: argparse.Namespace) -> Any:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.session.Session(profile_name=args.profile, region_name=args.region)
    except BotoCoreError as exc:
        raise CliError(f"AWS configuration: {exc}") from None


def api_client(args: argparse.Namespace, session: Any = None) -> ApiClient:
    if not args.endpoint:
        raise CliError("no endpoint: pass --endpoint or set RDSGATE_ENDPOINT to the API's URL "
                       "(https://<id>.execute-api.<region>.amazonaws.com/<stage>, or http://127.0.0.1:8080 "
                       "for rdsgate serve)", exit_code=2)
    return ApiClient(args.endpoint, session=session or aws_session(args), region=args.region, timeout=args.timeout)


def parse_pair(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CliError(f"{option} expects name=value, got {text!r}", exit_code=2)
    return name, value


def parse_parameter(text: str) -> tuple[str, Any]:
    """``name=value``: the value is JSON when it parses as JSON (42, true, null, "007", {...}), else a string."""
    name, value = parse_pair(text, "-p/--param")

    def no_constants(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return name, json.loads(value, parse_constant=no_constants)
    except ValueError:
        return name, value


def add_result_options(sub: argparse.ArgumentParser, *, type_hints: bool = False) -> None:
    """``-p NAME=VALUE`` (and ``-t NAME=HINT``), ``--max-rows`` and ``--json``/``--csv``: `rdsgate query` and `rdsgate run`."""
    sub.add_argument("-p", "--param", action="append", metavar="NAME=VALUE",
                     help="a parameter; VALUE is JSON when it parses as JSON, else a string")
    if type_hints:
        sub.add_argument("-t", "--type", action="append", metavar="NAME=HINT",
                         help="a type hint: DATE, TIME, TIMESTAMP, DECIMAL, UUID or JSON")
    sub.add_argument("--max-rows", type=int, metavar="N")
    formats = sub.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print the result document")
    formats.add_argument("--csv", action="store_true", help="print CSV with a header row")


def print_result(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """A result as the options of ``add_result_options`` ask: the JSON document, CSV, or a table."""
    print(output.as_json(result) if args.json else output.query_csv(result) if args.csv else output.query_table(result))
