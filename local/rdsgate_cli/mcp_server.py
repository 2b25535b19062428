"""`rdsgate mcp`: a Model Context Protocol server that lets an AI agent use rdsgate as the person running it.

Every tool calls the deployed (or local) rdsgate API with the user's own AWS credentials, SigV4-signed
by the command line's ``ApiClient``, so every rule applies unchanged: ``allowed_principals``, read-only
connections, guardrails, masking, runbook-only connections, reviews and the audit trail (the records
name the user, not the agent). The server adds one rule of its own: ``run_query`` is read-only
(``readOnly: true``) unless it was started with ``--allow-writes``.

Transports: stdio (what desktop clients start), or streamable HTTP on loopback (``--transport http``).
Results are compact tables, at most ``--max-rows`` rows (default 200), saying when they were cut;
errors say what to do next, in words a model can act on.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from rdsgate_client.api import LOOPBACK_HOSTS, ApiError, CliError, path_for

from .options import api_client
from .output import rows_of
from .runbooks_cli import describe_parameter, runbook_notes

DEFAULT_MAX_ROWS = 200
MAX_CELL = 200  # characters per cell in a table shown to the model
INSTRUCTIONS = (
    "rdsgate runs SQL on Amazon RDS databases for the signed-in AWS user. Start with list_connections "
    "(and describe_schema to see tables and columns), or list_runbooks for vetted statements with typed "
    "parameters. Use :name parameters in SQL, never literal values pasted from untrusted text. Results are "
    "cut at a row limit; add WHERE, ORDER BY and LIMIT rather than asking for everything. Masked values "
    "show as **** (or a hash): they are hidden on purpose."
)


def add_mcp_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    sub = command("mcp", serve_mcp, "serve rdsgate to AI agents over the Model Context Protocol (stdio or HTTP)")
    sub.add_argument("--allow-writes", action="store_true",
                     help="let run_query write (default: every query runs with readOnly: true)")
    sub.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, metavar="N",
                     help=f"rows shown per result (default {DEFAULT_MAX_ROWS})")
    sub.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                     help="stdio (default), or streamable HTTP on loopback")
    sub.add_argument("--host", default="127.0.0.1", help="HTTP only: the loopback address to listen on")
    sub.add_argument("--port", type=int, default=8765, help="HTTP only: the port (default 8765)")


def serve_mcp(args: argparse.Namespace) -> int:
    if args.transport == "http" and args.host not in LOOPBACK_HOSTS:
        raise CliError("rdsgate mcp listens on loopback only: it acts with your AWS credentials", exit_code=2)
    if args.max_rows < 1:
        raise CliError("--max-rows must be at least 1", exit_code=2)
    server = build_server(api_client(args), allow_writes=args.allow_writes, max_rows=args.max_rows)
    if args.transport == "http":
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")
    return 0


class Tools:
    """The tools' work, apart from the MCP plumbing (tested directly too)."""

    def __init__(self, client: Any, *, allow_writes: bool = False, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.client = client
        self.allow_writes = allow_writes
        self.max_rows = max_rows

    def list_connections(self) -> str:
        listed = self._call("GET", "/connections").get("connections", [])
        if not listed:
            return "No connections: your AWS identity may use none (ask for it to be added to a connection's allowed_principals)."
        rows = [[c.get("name"), c.get("engine"), "yes" if c.get("read_only") else "no", c.get("description")] for c in listed]
        return table(["name", "engine", "read_only", "description"], rows)

    def describe_schema(self, connection: str, table_filter: str | None = None) -> str:
        document = self._call("GET", path_for("connections", connection, "schema"))
        wanted = (table_filter or "").lower()
        lines = []
        for schema in document.get("schemas", []):
            for entry in schema.get("tables", []):
                if wanted and wanted not in entry["name"].lower():
                    continue
                columns = ", ".join(f"{c['name']} {c['type']}{'' if c.get('nullable') else ' not null'}" for c in entry.get("columns", []))
                kind = "view" if "VIEW" in str(entry.get("type", "")).upper() else "table"
                lines.append(f"{schema['name']}.{entry['name']} ({kind}): {columns}")
        if not lines:
            return f"No tables{' matching ' + repr(table_filter) if table_filter else ''} that this connection's database user can see."
        return "\n".join(lines)

    def run_query(self, connection: str, sql: str, parameters: dict[str, Any] | None = None, max_rows: int | None = None) -> str:
        limit = min(max_rows or self.max_rows, self.max_rows)
        body: dict[str, Any] = {"sql": sql, "maxRows": limit + 1}
        if parameters:
            body["parameters"] = parameters
        if not self.allow_writes:
            body["readOnly"] = True
        return self._result(self._call("POST", path_for("connections", connection, "query"), body, runs=True), limit)

    def list_runbooks(self) -> str:
        listed = self._call("GET", "/runbooks").get("runbooks", [])
        if not listed:
            return "No runbooks that your AWS identity may run."
        blocks = []
        for runbook in listed:
            parameters = "; ".join(describe_parameter(p) + (f" — {p['description']}" if p.get("description") else "")
                                   for p in runbook.get("parameters", [])) or "none"
            notes = runbook_notes(runbook)
            blocks.append(f"{runbook['name']} (on {runbook['connection']}{', ' + ', '.join(notes) if notes else ''}): "
                          f"{runbook.get('description') or ''}\n  parameters: {parameters}\n  input schema: "
                          f"{json.dumps(runbook.get('inputSchema', {}), separators=(',', ':'))}")
        return "\n".join(blocks)

    def run_runbook(self, name: str, parameters: dict[str, Any] | None = None, max_rows: int | None = None) -> str:
        limit = min(max_rows or self.max_rows, self.max_rows)
        document = self._call("POST", path_for("runbooks", name, "run"), {"parameters": parameters or {}, "maxRows": limit + 1}, runs=True)
        return self._result(document, limit)

    def get_review_status(self, review_id: str) -> str:
        review = self._call("GET", path_for("reviews", review_id))
        lines = [f"review {review.get('reviewId', review_id)}: {review.get('status')}"]
        for key in ("connection", "runbook", "requester", "submittedAt", "expiresAt", "statementId", "decidedAt"):
            if review.get(key):
                lines.append(f"{key}: {review[key]}")
        for decision in review.get("decisions", []):
            lines.append(f"{decision.get('decision')} by {decision.get('by')} at {decision.get('at')}"
                         + (f": {decision['comment']}" if decision.get("comment") else ""))
        if review.get("status") == "PENDING":
            lines.append("Nothing has run yet: it runs once enough approvers approve it. Check again later.")
        result = review.get("result")
        if isinstance(result, dict) and "columns" in result:
            lines.append(self._result(result, self.max_rows))
        elif review.get("statementId"):
            lines.append(f"The result is at GET /statements/{review['statementId']}/result.")
        return "\n".join(lines)

    # -- helpers --

    def _call(self, method: str, path: str, body: Any = None, *, runs: bool = False) -> Any:
        from mcp.server.mcpserver.exceptions import ToolError

        try:
            document = self.client.call(method, path, body)
        except ApiError as exc:
            raise ToolError(advice(exc, allow_writes=self.allow_writes)) from None
        except CliError as exc:
            raise ToolError(f"rdsgate could not be reached: {exc.message}. Retry later, or ask the user to check the endpoint and their AWS credentials.") from None
        if runs and isinstance(document, dict) and "reviewId" in document:  # 202: held for a review
            raise ToolError(
                f"This statement needs a review before it runs: review {document['reviewId']} is {document.get('status', 'PENDING')}. "
                "Nothing has run. Tell the user who must approve it, then call get_review_status with this id."
            )
        return document

    def _result(self, document: dict[str, Any], limit: int) -> str:
        columns = document.get("columns") or []
        names, rows = rows_of(document)
        shown = rows[:limit]
        cut = len(rows) > limit or document.get("truncated")
        parts = []
        if names:
            parts.append(table(names, shown))
            parts.append(f"{len(shown)} row{'s' if len(shown) != 1 else ''}"
                         + (f" shown; the result was cut at {limit} rows: narrow it with WHERE or LIMIT, or aggregate" if cut else ""))
        masked = [c["name"] for c in columns if c.get("masked")]
        if masked:
            parts.append(f"masked columns (values hidden on purpose): {', '.join(masked)}")
        if document.get("updatedRows") is not None:
            parts.append(f"updated rows: {document['updatedRows']}")
        if not parts:
            parts.append("The statement ran and returned no rows.")
        return "\n".join(parts)


def advice(error: ApiError, *, allow_writes: bool) -> str:
    """The API's error, with what the model can do about it."""
    detail = error.error
    code = getattr(error, "code", "Error")
    message = detail.get("message") or error.message
    hint = {
        "ReadOnlyViolation": "Nothing was written." + ("" if allow_writes else
                             " This MCP server runs queries read-only; writes need the user to restart it with --allow-writes."),
        "NotFound": "It does not exist, or this AWS identity may not use it: call list_connections or list_runbooks to see what exists.",
        "InvalidRequest": "Fix the request as the message says and call again.",
        "GuardrailViolation": f"The connection's guardrail {detail.get('rule', '')!r} refuses this SQL; rewrite it within the rule.",
        "Forbidden": ("This connection runs runbooks only: call list_runbooks and run_runbook instead."
                      if detail.get("rule") == "adhoc" else "This AWS identity may not do this."),
        "SqlError": "The database rejected the statement: correct the SQL (describe_schema shows the tables and columns).",
        "QueryTimeout": "The statement ran too long: narrow it (WHERE, LIMIT, an index-friendly predicate).",
        "DatabaseUnavailable": "The database is not reachable right now: retry later.",
        "AuthenticationFailed": "rdsgate could not log in to the database: this is for the user or an administrator to fix (rdsgate doctor).",
    }.get(code, "")
    parts = [f"{code}: {message}"]
    if detail.get("field"):
        parts.append(f"(field {detail['field']}{', rule ' + detail['rule'] if detail.get('rule') and code == 'InvalidRequest' else ''})")
    if hint:
        parts.append(hint)
    return " ".join(parts)


def table(names: list[str], rows: list[list[Any]]) -> str:
    """A compact pipe-separated table: a header line, then one line per row; NULL as NULL, long cells cut."""
    def cell(value: Any) -> str:
        if value is None:
            return "NULL"
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        text = text.replace("\n", "\\n").replace("|", "\\|")
        return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"

    return "\n".join(" | ".join(cell(v) for v in row) for row in [names, *rows]) if names else ""


def build_server(client: Any, *, allow_writes: bool = False, max_rows: int = DEFAULT_MAX_ROWS) -> Any:
    """The MCP server with its six tools."""
    from mcp.server.mcpserver import MCPServer
    from mcp_types import ToolAnnotations

    from rdsgate import __version__

    tools = Tools(client, allow_writes=allow_writes, max_rows=max_rows)
    server = MCPServer("rdsgate", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read)
    def list_connections() -> str:
        """The database connections this AWS identity may use: name, engine, whether read-only, description."""
        return tools.list_connections()

    @server.tool(annotations=read)
    def describe_schema(connection: str, table_filter: str | None = None) -> str:
        """Tables, views and columns (with types) that a connection's database user can see.
        table_filter keeps only tables whose name contains it."""
        return tools.describe_schema(connection, table_filter)

    mode = ("It may write (this server was started with --allow-writes)." if allow_writes
            else "It runs read-only: a write is refused and nothing is written.")

    @server.tool(annotations=ToolAnnotations(read_only_hint=not allow_writes, destructive_hint=allow_writes, open_world_hint=False),
                 description=("Run one SQL statement on a connection. Pass values as :name parameters in `parameters` "
                              f"(an object of name to JSON value), never pasted into the SQL. {mode} Shows at most "
                              f"{max_rows} rows and says when the result was cut."))
    def run_query(connection: str, sql: str, parameters: dict[str, Any] | None = None, max_rows: int | None = None) -> str:
        return tools.run_query(connection, sql, parameters, max_rows)

    @server.tool(annotations=read)
    def list_runbooks() -> str:
        """Vetted, named statements this AWS identity may run, each with its typed parameters (JSON Schema)."""
        return tools.list_runbooks()

    @server.tool(annotations=ToolAnnotations(open_world_hint=False))
    def run_runbook(name: str, parameters: dict[str, Any] | None = None, max_rows: int | None = None) -> str:
        """Run a runbook by name with its parameters (an object of name to value, as its input schema says).
        A runbook that needs a review answers with a review id instead: nothing runs until it is approved."""
        return tools.run_runbook(name, parameters, max_rows)

    @server.tool(annotations=read)
    def get_review_status(review_id: str) -> str:
        """The status of a review (PENDING, APPROVED, REJECTED, EXPIRED, EXECUTED, FAILED), its decisions, and the result once it ran."""
        return tools.get_review_status(review_id)

    return server
