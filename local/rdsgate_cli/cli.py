"""The `rdsgate` command: run SQL through a deployed or local API, list connections, print policies,
diagnose IAM logins, and serve the whole stack locally.

Configuration is resolved here: an option, then its environment variable
(``RDSGATE_ENDPOINT``, ``RDSGATE_CONNECTIONS_TABLE``), then the default. Exit codes:
0 success, 1 failure (the message says why), 2 usage. Errors are messages, never
tracebacks, and nothing printed holds a token or a parameter value beyond the result.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any, Callable

from rdsgate_client.api import LOOPBACK_HOSTS, CliError, path_for

from . import output
from .options import add_result_options, api_client, aws_session, parse_pair, parse_parameter, print_result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except CliError as exc:
        print(f"rdsgate: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a message, not a traceback
        print(f"rdsgate: failed unexpectedly ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1


# -- commands ----------------------------------------------------------------------------------


def query(args: argparse.Namespace) -> int:
    sql = sys.stdin.read() if args.sql == "-" else args.sql
    body: dict[str, Any] = {"sql": sql}
    if args.param:
        body["parameters"] = dict(parse_parameter(text) for text in args.param)
    if args.type:
        body["typeHints"] = dict(parse_pair(text, "-t/--type") for text in args.type)
    if args.max_rows:
        body["maxRows"] = args.max_rows
    if args.async_:  # run it as an asynchronous statement: print its id (rdsgate result ID downloads it)
        from .statements_cli import submit

        print(submit(api_client(args), args.connection, body, "csv" if args.csv else "jsonl", args.compression))
        return 0
    print_result(args, api_client(args).post(path_for("connections", args.connection, "query"), body))
    return 0


def connections(args: argparse.Namespace) -> int:
    listed = api_client(args).get("/connections").get("connections", [])
    if args.json:
        print(output.as_json(listed))
    else:
        rows = [[c.get("name"), c.get("engine"), c.get("description")] for c in listed]
        print(output.table(["name", "engine", "description"], rows, null=""))
    return 0


def policy(args: argparse.Namespace) -> int:
    from . import policy as policies

    session = aws_session(args)
    if args.endpoint:
        view = api_client(args, session).get(path_for("connections", args.connection))
    else:
        view = _catalog(args, session).get(args.connection).public_view()
    if view.get("auth") != "iam":
        raise CliError(f"connection {args.connection!r} logs in with a password: no rds-db:connect policy applies")
    described = policies.describe(view, account=args.account or _account(session), region=_region(args, session))
    print(output.as_json(described) if args.json else policies.render(described, view["engine"]))
    return 0


def doctor(args: argparse.Namespace) -> int:
    from . import doctor as doctors

    session = aws_session(args)
    if args.endpoint:
        report = doctors.through_api(api_client(args, session), args.connection)
    else:
        table = _table(args)
        report = doctors.here(args.connection, table=table, session=session, region=_region(args, session))
    print(output.as_json(report) if args.json else doctors.render(report))
    return 0 if report.get("ok") else 1


def serve(args: argparse.Namespace) -> int:
    from rdsgate_devstack.server_host import ServerError
    from rdsgate_devstack.stack import CALLER_PROFILE, LocalStack, StackOptions

    if os.geteuid() != 0:
        raise CliError("rdsgate serve needs root: the IAM verifier is a PAM service in /etc/pam.d (use sudo)")
    identity = {} if args.identity is None else {"identity": args.identity}  # else StackOptions' LOCAL_IDENTITY
    options = StackOptions(host=args.host, port=args.port, auth=args.auth, region=args.region or "us-east-1",
                           mysql=not args.no_mysql, runbooks=args.runbooks, **identity)
    if args.host not in LOOPBACK_HOSTS and args.auth == "none":
        print(f"rdsgate: warning: {args.host} is not loopback and --auth is none: anyone who reaches this port "
              "can run SQL on the demo databases", file=sys.stderr)
    stop = threading.Event()
    starting = [True]

    def on_signal(signum: int, _frame: Any) -> None:
        if starting[0] and stop.is_set():
            raise KeyboardInterrupt  # a second signal during start-up: give up and clean up now
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    stack = LocalStack(options)
    try:
        print("rdsgate: starting the local stack…", flush=True)
        try:
            stack.start()
        except ServerError as exc:
            raise CliError(str(exc)) from None
        except ValueError as exc:  # runbooks_local.RunbooksError: the --runbooks file, named
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
        starting[0] = False
        if not stop.is_set():
            print("\n".join(["rdsgate local stack:", *stack.describe(), "", "Try:", *_examples(stack, CALLER_PROFILE),
                             "", "Ctrl-C stops everything and removes it."]), flush=True)
            stop.wait()
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # clean-up is not interrupted
        print("rdsgate: stopping…", flush=True)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("rdsgate: stopped; no server, work folder or PAM service is left.", flush=True)
    return 0


def openapi(args: argparse.Namespace) -> int:
    from rdsgate import __version__, api
    from rdsgate.openapi import describe_api

    text = json.dumps(describe_api(api.app, version=__version__), indent=2) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


# -- helpers -------------------------------------------------------------------------------------


def _examples(stack: Any, profile: str) -> list[str]:
    url = stack.api.url
    sql = "select name, country, vip from customers"
    if stack.options.auth == "sigv4":
        return [f"  export AWS_SHARED_CREDENTIALS_FILE={stack.caller_credentials_file}",
                f'  rdsgate query demo "{sql}" --endpoint {url} --profile {profile} --region {stack.options.region}']
    return [f"  curl -X POST {url}/connections/demo/query -d '{{\"sql\":\"{sql}\"}}'",
            f'  rdsgate query demo "select * from orders where status = :status" -p status=shipped --endpoint {url}',
            f"  rdsgate doctor demo --endpoint {url}"]


def _table(args: argparse.Namespace) -> str:
    if not args.table:
        raise CliError("pass --endpoint (RDSGATE_ENDPOINT) to ask the API, or --table (RDSGATE_CONNECTIONS_TABLE) "
                       "to read the definition from DynamoDB here", exit_code=2)
    return args.table


def _catalog(args: argparse.Namespace, session: Any) -> Any:
    from rdsgate.catalog import DefinitionCatalog

    region = _region(args, session)
    return DefinitionCatalog(_table(args), ttl_seconds=0,
                             client_factory=lambda: session.client("dynamodb", region_name=region))


def _region(args: argparse.Namespace, session: Any) -> str | None:
    from rdsgate_client.api import endpoint_region

    return args.region or (endpoint_region(args.endpoint) if args.endpoint else None) or session.region_name


def _account(session: Any) -> str | None:
    """The caller's account, to fill in the policy's ARN; None when STS cannot say."""
    from botocore.config import Config

    try:
        config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1})
        return session.client("sts", config=config).get_caller_identity()["Account"]
    except Exception:  # noqa: BLE001 - a placeholder is printed instead
        return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdsgate", description="SQL over HTTPS for Amazon RDS with IAM authentication.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str, *, api: bool = True):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(command=run)
        if api:
            sub.add_argument("--endpoint", default=os.environ.get("RDSGATE_ENDPOINT"),
                             help="the API's URL (default: $RDSGATE_ENDPOINT)")
            sub.add_argument("--profile", help="AWS profile to sign with (default: the usual credentials chain)")
            sub.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the API (default 60)")
        sub.add_argument("--region", help="AWS region (default: from the endpoint, then your AWS configuration)")
        return sub

    sub = command("query", query, "run one SQL statement on a connection")
    sub.add_argument("connection")
    sub.add_argument("sql", help="the statement, with named parameters :name ('-' reads it from standard input)")
    add_result_options(sub, type_hints=True)
    sub.add_argument("--async", dest="async_", action="store_true",
                     help="run it asynchronously, the result in S3 (JSON Lines, or CSV with --csv): print its id")
    sub.add_argument("--compression", choices=("gzip", "none"), default="gzip", help="with --async (default gzip)")

    sub = command("connections", connections, "list the connections")
    sub.add_argument("--json", action="store_true")

    for name, run, text in (
        ("policy", policy, "print the IAM policy and the SQL that let a connection's db user log in"),
        ("doctor", doctor, "diagnose a connection's IAM login step by step"),
    ):
        sub = command(name, run, text)
        sub.add_argument("connection")
        sub.add_argument("--table", default=os.environ.get("RDSGATE_CONNECTIONS_TABLE"),
                         help="without an endpoint: the DynamoDB table of definitions ($RDSGATE_CONNECTIONS_TABLE)")
        sub.add_argument("--json", action="store_true")
        if name == "policy":
            sub.add_argument("--account", help="the database's AWS account (default: your credentials' account)")

    sub = command("serve", serve, "run rdsgate locally: databases, DynamoDB and the HTTP API", api=False)
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    sub.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    sub.add_argument("--auth", choices=("none", "sigv4"), default="none",
                     help="sigv4: require SigV4-signed requests, as API Gateway's AWS_IAM authorization does")
    sub.add_argument("--identity", help="the caller identity of unsigned requests (with --auth none)")
    sub.add_argument("--no-mysql", action="store_true", help="do not start MariaDB")
    sub.add_argument("--runbooks", metavar="FILE", help="a runbooks file ({\"runbooks\": [...]}) to serve beside the demo's")

    sub = command("openapi", openapi, "print the API's OpenAPI document", api=False)
    sub.add_argument("--output", metavar="FILE", help="write it to FILE")

    from .readonly_user import add_readonly_user_command
    from .statements_cli import add_statements_commands
    from .connect import add_connect_command  # `rdsgate connect`: psql and mysql clients on a local port

    add_readonly_user_command(command)
    add_statements_commands(command)  # `rdsgate statements`, `result`, `cancel`
    add_connect_command(command)
    from .runbooks_cli import add_runbook_commands  # `rdsgate runbooks`, `rdsgate run NAME -p k=v`
    from .mcp_server import add_mcp_command  # `rdsgate mcp`: a Model Context Protocol server over the API

    add_runbook_commands(command)
    add_mcp_command(command)
    return parser


if __name__ == "__main__":
    sys.exit(main())
