"""A runbook's definition: its fields validated, its SQL checked in an engine, its version hashed.

One format for the runbooks file, the DynamoDB table and the deploy-time check; parsing it is the one
place that decides what a valid runbook is (its parameters' own rules: ``rdsgate.runbooks.parameters``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..approval import ApprovalRule, ApprovalRuleError, parse_approval
from ..errors import InvalidDefinition, InvalidRequest
from .parameters import Parameter, bind_parameters, definition_error, parse_parameter, plain_number

__all__ = ["MAX_PARAMETERS", "NAME", "Runbook", "check_against_connections", "parse_runbook"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RUNBOOK_FIELDS = frozenset(
    {"name", "connection", "description", "sql", "parameters", "allowed_principals", "read_only", "maxRows", "approval"}
)
MAX_PARAMETERS = 64


@dataclass(frozen=True)
class Runbook:
    """One validated runbook; ``version`` is the SHA-256 of its canonical definition."""

    name: str
    connection: str
    sql: str
    parameters: tuple[Parameter, ...] = ()
    description: str | None = None
    allowed_principals: tuple[str, ...] | None = None
    read_only: bool | None = None
    max_rows: int | None = None
    approval: ApprovalRule | None = None
    version: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The definition in its canonical form (what ``version`` hashes)."""
        item: dict[str, Any] = {"name": self.name, "connection": self.connection, "sql": self.sql,
                                "parameters": [p.as_dict() for p in self.parameters]}
        for key, value in (("description", self.description), ("read_only", self.read_only), ("maxRows", self.max_rows),
                           ("allowed_principals", list(self.allowed_principals) if self.allowed_principals is not None else None),
                           ("approval", self.approval.as_dict() if self.approval else None)):
            if value is not None:
                item[key] = value
        return item

    def view(self) -> dict[str, Any]:
        """What GET /runbooks and GET /runbooks/{name} show: everything but the principals, and a JSON Schema."""
        return {
            "name": self.name,
            "connection": self.connection,
            "description": self.description,
            "sql": self.sql,
            "parameters": [p.as_dict() for p in self.parameters],
            "inputSchema": self.input_schema(),
            "readOnly": bool(self.read_only),
            "maxRows": self.max_rows,
            "approval": self.approval.as_dict() if self.approval else None,
            "version": self.version,
        }

    def input_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.parameters},
            "required": [p.name for p in self.parameters if p.required],
            "additionalProperties": False,
        }

    def bind(self, values: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """The parameters and type hints of the statement, once every value meets the schema (400 otherwise)."""
        return bind_parameters(self.name, self.parameters, values)

    def may_run(self, caller: Any) -> bool:
        """Governed (API) callers must match ``allowed_principals``; none listed: no API caller may."""
        if not getattr(caller, "governed", True):
            return True
        from ..access import _pattern

        arn = getattr(caller, "arn", None)
        return bool(arn and self.allowed_principals and any(_pattern(p).match(arn) for p in self.allowed_principals))

    def check_sql(self, engine: str) -> None:
        """The SQL is one statement whose ``:name`` parameters are exactly the declared ones (InvalidDefinition)."""
        from ..sql.text import check_statement_kind, prepare

        try:
            prepared = prepare(self.sql, engine)
            check_statement_kind(prepared, engine)
        except InvalidRequest as exc:
            raise definition_error(self.name, "sql", exc.message) from None
        declared = [p.name for p in self.parameters]
        missing = [n for n in prepared.names if n not in declared]
        if missing:
            raise definition_error(self.name, "sql", f"uses :{missing[0]}, which 'parameters' does not declare")
        unused = [n for n in declared if n not in prepared.names]
        if unused:
            raise definition_error(self.name, "parameters", f"declares {unused[0]!r}, which the sql does not use")


def parse_runbook(item: Mapping[str, Any]) -> Runbook:
    """Validate one runbook definition (as written in the runbooks file or stored in DynamoDB)."""
    if not isinstance(item, Mapping):
        raise InvalidDefinition("runbook: a definition must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidDefinition(f"runbook: 'name' must be 1 to 128 letters, digits, '_', '.' or '-' (got {name!r})", field="name")
    unknown = sorted(set(item) - RUNBOOK_FIELDS)
    if unknown:
        raise definition_error(name, unknown[0], f"is not a runbook field (known: {', '.join(sorted(RUNBOOK_FIELDS))})")
    connection = item.get("connection")
    if not isinstance(connection, str) or not connection:
        raise definition_error(name, "connection", "is required: the name of the connection it runs on")
    sql = item.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise definition_error(name, "sql", "is required: one statement with :name parameters")
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        raise definition_error(name, "description", "must be a string")
    principals = item.get("allowed_principals")
    if isinstance(principals, (set, frozenset)):
        principals = sorted(principals)
    if principals is not None and (not isinstance(principals, (list, tuple)) or not all(isinstance(p, str) and p for p in principals)):
        raise definition_error(name, "allowed_principals", "must be a list of ARN patterns")
    read_only = item.get("read_only")
    if read_only is not None and not isinstance(read_only, bool):
        raise definition_error(name, "read_only", "must be true or false")
    max_rows = _whole(item.get("maxRows"))
    if item.get("maxRows") is not None and (max_rows is None or max_rows < 1):
        raise definition_error(name, "maxRows", "must be a whole number of at least 1")
    try:
        approval = parse_approval(item.get("approval"))
    except ApprovalRuleError as exc:
        raise definition_error(name, "approval", str(exc)) from None
    raw_parameters = item.get("parameters") or []
    if not isinstance(raw_parameters, (list, tuple)):
        raise definition_error(name, "parameters", "must be a list of parameter definitions")
    if len(raw_parameters) > MAX_PARAMETERS:
        raise definition_error(name, "parameters", f"has more than {MAX_PARAMETERS} parameters")
    parameters: list[Parameter] = []
    for index, raw in enumerate(raw_parameters):
        parameter = parse_parameter(name, index, raw)
        if any(p.name == parameter.name for p in parameters):
            raise definition_error(name, f"parameters[{index}]", f"declares {parameter.name!r} twice")
        parameters.append(parameter)
    runbook = Runbook(
        name=name, connection=connection, sql=sql, parameters=tuple(parameters), description=description,
        allowed_principals=tuple(principals) if principals is not None else None, read_only=read_only,
        max_rows=max_rows, approval=approval,
    )
    canonical = json.dumps(runbook.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return dataclasses.replace(runbook, version=hashlib.sha256(canonical.encode("utf-8")).hexdigest())


def _whole(value: Any) -> int | None:
    value = plain_number(value)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def check_against_connections(runbooks: list[Runbook], engines: Mapping[str, str], source: str = "runbooks file") -> None:
    """Each runbook names a known connection, and its SQL and parameters agree in that connection's engine."""
    for runbook in runbooks:
        engine = engines.get(runbook.connection)
        if engine is None:
            raise InvalidDefinition(f"{source}: runbook {runbook.name!r}: 'connection' names {runbook.connection!r}, "
                                    "which is not a deployed connection", field="connection")
        try:
            runbook.check_sql(engine)
        except InvalidDefinition as exc:
            raise InvalidDefinition(f"{source}: {exc.message}", **exc.details) from None
