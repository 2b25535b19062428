"""Runbooks: named, reviewed SQL with typed parameters, run by callers who may not write SQL themselves.

A runbook is one statement on one connection, with ``:name`` parameters described by a schema:

```json
{"name": "orders-by-status", "connection": "orders", "description": "Orders in one status",
 "sql": "SELECT id, total FROM orders WHERE status = :status AND placed_at >= :since",
 "parameters": [
   {"name": "status", "type": "string", "enum": ["placed", "shipped"]},
   {"name": "since", "type": "date", "required": false, "default": "2026-01-01"}],
 "allowed_principals": ["arn:aws:iam::123456789012:role/support"],
 "read_only": true, "maxRows": 500}
```

Parameter types: ``string``, ``integer``, ``number``, ``boolean``, ``date``, ``timestamp``, ``uuid``;
rules: ``required`` (default true), ``enum``, ``pattern`` (strings: the whole value must match),
``min``/``max`` (numbers: the value; strings: the length; dates and timestamps: the moment),
``default`` (for an optional parameter left out; else NULL). Values are checked against the schema
before anything runs; a failure is a 400 naming the parameter and the rule (``rule``).

A runbook's ``allowed_principals`` is checked instead of its connection's, and a connection with
``"adhoc": false`` takes no free SQL at all (403 on every route that would run it): only its
runbooks run there. Every audit record of a runbook request names the runbook and its
``runbookVersion``, the SHA-256 of its definition. This module is pure but for the DynamoDB catalog.

Over ~400 lines: one definition format (schema, parameter rules, binding, catalog) kept with its validation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping

from .approval import ApprovalRule, ApprovalRuleError, parse_approval
from .caching import TtlCache
from .catalog import KeyedTable, _from_dynamodb
from .errors import ConnectionNotFound, Forbidden, InvalidDefinition, InvalidRequest
from .request import QueryRequest

TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "uuid")
HINTS = {"number": "DECIMAL", "date": "DATE", "timestamp": "TIMESTAMP", "uuid": "UUID"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
RUNBOOK_FIELDS = frozenset(
    {"name", "connection", "description", "sql", "parameters", "allowed_principals", "read_only", "maxRows", "approval"}
)
PARAMETER_FIELDS = frozenset({"name", "type", "required", "enum", "pattern", "min", "max", "default", "description"})
RUN_FIELDS = frozenset({"parameters", "shape", "maxRows"})
MAX_PARAMETERS = 64
MAX_STRING_CHARS = 65_536


class RunbookNotFound(ConnectionNotFound):
    """No runbook of that name, or one the caller may not run (the same 404)."""


# -- definitions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One parameter of a runbook and the rules its value must meet."""

    name: str
    type: str
    required: bool = True
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    minimum: Any = None
    maximum: Any = None
    default: Any = None
    description: str | None = None

    def as_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        for key, value in (("enum", list(self.enum) if self.enum is not None else None), ("pattern", self.pattern),
                           ("min", self.minimum), ("max", self.maximum), ("default", self.default),
                           ("description", self.description)):
            if value is not None:
                view[key] = value
        return view

    def json_schema(self) -> dict[str, Any]:
        """This parameter as a JSON Schema property (for forms and tool descriptions)."""
        kind = {"integer": "integer", "number": "number", "boolean": "boolean"}.get(self.type, "string")
        schema: dict[str, Any] = {"type": kind}
        if self.type in ("date", "timestamp", "uuid"):
            schema["format"] = {"date": "date", "timestamp": "date-time", "uuid": "uuid"}[self.type]
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.pattern is not None:
            schema["pattern"] = self.pattern
        if self.type in ("integer", "number"):
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        elif self.type == "string":
            if self.minimum is not None:
                schema["minLength"] = self.minimum
            if self.maximum is not None:
                schema["maxLength"] = self.maximum
        elif self.minimum is not None or self.maximum is not None:
            schema["x-range"] = {"min": self.minimum, "max": self.maximum}
        if self.default is not None:
            schema["default"] = self.default
        if self.description:
            schema["description"] = self.description
        return schema

    def check(self, value: Any) -> Any:
        """The value as the driver takes it; InvalidRequest naming the parameter and the rule."""
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise self._refused("type", "must be true or false")
            return value
        if self.type == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._refused("type", "must be a whole number")
        elif self.type == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
                raise self._refused("type", "must be a finite number")
        else:
            if not isinstance(value, str):
                raise self._refused("type", f"must be a string ({self._format()})")
            if len(value) > MAX_STRING_CHARS:
                raise self._refused("max", f"must be at most {MAX_STRING_CHARS} characters")
        moment = _moment(self.type, value)
        if moment is _INVALID:
            raise self._refused("type", f"must be {self._format()} (got {_shown(value)})")
        if self.enum is not None and value not in self.enum:
            raise self._refused("enum", f"must be one of {', '.join(json.dumps(v) for v in self.enum)} (got {_shown(value)})")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise self._refused("pattern", f"must match the pattern {self.pattern}")
        measure, unit = (len(value), " characters") if self.type == "string" else (moment if moment is not None else value, "")
        if self.minimum is not None and measure < _bound(self.type, self.minimum):
            raise self._refused("min", f"must be at least {self.minimum}{unit}")
        if self.maximum is not None and measure > _bound(self.type, self.maximum):
            raise self._refused("max", f"must be at most {self.maximum}{unit}")
        return value

    def _format(self) -> str:
        return {"date": "an ISO 8601 date such as 2026-01-31", "timestamp": "an ISO 8601 time such as 2026-01-31T12:00:00Z",
                "uuid": "a UUID"}.get(self.type, "text")

    def _refused(self, rule: str, problem: str) -> InvalidRequest:
        return InvalidRequest(f"parameters.{self.name}: {problem}", field=f"parameters.{self.name}", rule=rule)


_INVALID = object()


def _moment(kind: str, value: Any) -> Any:
    """The date, time or UUID a value stands for; None for other types; _INVALID when it does not parse."""
    try:
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind == "timestamp":
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
        if kind == "uuid":
            uuid.UUID(value)
    except (ValueError, TypeError):
        return _INVALID
    return None


def _bound(kind: str, bound: Any) -> Any:
    moment = _moment(kind, bound) if kind in ("date", "timestamp") else None
    return bound if moment is None else moment


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "…"


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
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise InvalidRequest("parameters: must be an object of parameter name to value", field="parameters")
        declared = {p.name for p in self.parameters}
        unknown = sorted(set(values) - declared)
        if unknown:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidRequest(f"parameters.{unknown[0]}: runbook {self.name!r} has no such parameter (it takes: {known})",
                                 field=f"parameters.{unknown[0]}", rule="unknown")
        bound: dict[str, Any] = {}
        hints: dict[str, str] = {}
        for parameter in self.parameters:
            value = values.get(parameter.name)
            if value is None:
                if parameter.required:
                    raise parameter._refused("required", "is required")
                value = parameter.default
            else:
                value = parameter.check(value)
            bound[parameter.name] = value
            if parameter.type in HINTS and value is not None:
                hints[parameter.name] = HINTS[parameter.type]
        return bound, hints

    def may_run(self, caller: Any) -> bool:
        """Governed (API) callers must match ``allowed_principals``; none listed: no API caller may."""
        if not getattr(caller, "governed", True):
            return True
        from .access import _pattern

        arn = getattr(caller, "arn", None)
        return bool(arn and self.allowed_principals and any(_pattern(p).match(arn) for p in self.allowed_principals))

    def check_sql(self, engine: str) -> None:
        """The SQL is one statement whose ``:name`` parameters are exactly the declared ones (InvalidDefinition)."""
        from .sql.text import check_statement_kind, prepare

        try:
            prepared = prepare(self.sql, engine)
            check_statement_kind(prepared, engine)
        except InvalidRequest as exc:
            raise _error(self.name, "sql", exc.message) from None
        declared = [p.name for p in self.parameters]
        missing = [n for n in prepared.names if n not in declared]
        if missing:
            raise _error(self.name, "sql", f"uses :{missing[0]}, which 'parameters' does not declare")
        unused = [n for n in declared if n not in prepared.names]
        if unused:
            raise _error(self.name, "parameters", f"declares {unused[0]!r}, which the sql does not use")


def _error(runbook: str, field_name: str, problem: str) -> InvalidDefinition:
    return InvalidDefinition(f"runbook {runbook!r}: '{field_name}' {problem}", field=field_name)


def parse_runbook(item: Mapping[str, Any]) -> Runbook:
    """Validate one runbook definition (as written in the runbooks file or stored in DynamoDB)."""
    if not isinstance(item, Mapping):
        raise InvalidDefinition("runbook: a definition must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidDefinition(f"runbook: 'name' must be 1 to 128 letters, digits, '_', '.' or '-' (got {name!r})", field="name")
    unknown = sorted(set(item) - RUNBOOK_FIELDS)
    if unknown:
        raise _error(name, unknown[0], f"is not a runbook field (known: {', '.join(sorted(RUNBOOK_FIELDS))})")
    connection = item.get("connection")
    if not isinstance(connection, str) or not connection:
        raise _error(name, "connection", "is required: the name of the connection it runs on")
    sql = item.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise _error(name, "sql", "is required: one statement with :name parameters")
    description = item.get("description")
    if description is not None and not isinstance(description, str):
        raise _error(name, "description", "must be a string")
    principals = item.get("allowed_principals")
    if isinstance(principals, (set, frozenset)):
        principals = sorted(principals)
    if principals is not None and (not isinstance(principals, (list, tuple)) or not all(isinstance(p, str) and p for p in principals)):
        raise _error(name, "allowed_principals", "must be a list of ARN patterns")
    read_only = item.get("read_only")
    if read_only is not None and not isinstance(read_only, bool):
        raise _error(name, "read_only", "must be true or false")
    max_rows = _whole(item.get("maxRows"))
    if item.get("maxRows") is not None and (max_rows is None or max_rows < 1):
        raise _error(name, "maxRows", "must be a whole number of at least 1")
    try:
        approval = parse_approval(item.get("approval"))
    except ApprovalRuleError as exc:
        raise _error(name, "approval", str(exc)) from None
    raw_parameters = item.get("parameters") or []
    if not isinstance(raw_parameters, (list, tuple)):
        raise _error(name, "parameters", "must be a list of parameter definitions")
    if len(raw_parameters) > MAX_PARAMETERS:
        raise _error(name, "parameters", f"has more than {MAX_PARAMETERS} parameters")
    parameters: list[Parameter] = []
    for index, raw in enumerate(raw_parameters):
        parameter = _parse_parameter(name, index, raw)
        if any(p.name == parameter.name for p in parameters):
            raise _error(name, f"parameters[{index}]", f"declares {parameter.name!r} twice")
        parameters.append(parameter)
    runbook = Runbook(
        name=name, connection=connection, sql=sql, parameters=tuple(parameters), description=description,
        allowed_principals=tuple(principals) if principals is not None else None, read_only=read_only,
        max_rows=max_rows, approval=approval,
    )
    canonical = json.dumps(runbook.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return dataclasses.replace(runbook, version=hashlib.sha256(canonical.encode("utf-8")).hexdigest())


def _parse_parameter(runbook: str, index: int, raw: Any) -> Parameter:
    where = f"parameters[{index}]"
    if not isinstance(raw, Mapping):
        raise _error(runbook, where, "must be an object with a name and a type")
    unknown = sorted(set(raw) - PARAMETER_FIELDS)
    if unknown:
        raise _error(runbook, f"{where}.{unknown[0]}", f"is not a parameter field (known: {', '.join(sorted(PARAMETER_FIELDS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not PARAMETER_NAME.match(name):
        raise _error(runbook, f"{where}.name", f"must be a SQL parameter name (letters, digits, '_'; got {name!r})")
    where = f"parameters.{name}"
    kind = raw.get("type")
    if kind not in TYPES:
        raise _error(runbook, f"{where}.type", f"must be one of {', '.join(TYPES)} (got {kind!r})")
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise _error(runbook, f"{where}.required", "must be true or false")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise _error(runbook, f"{where}.description", "must be a string")
    pattern = raw.get("pattern")
    if pattern is not None:
        if kind != "string":
            raise _error(runbook, f"{where}.pattern", "applies to string parameters only")
        if not isinstance(pattern, str):
            raise _error(runbook, f"{where}.pattern", "must be a regular expression string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _error(runbook, f"{where}.pattern", f"is not a valid regular expression ({exc})") from None
    bounds = {}
    for key in ("min", "max"):
        value = _plain_number(raw.get(key))
        if value is None:
            bounds[key] = None
            continue
        if kind in ("boolean", "uuid"):
            raise _error(runbook, f"{where}.{key}", f"does not apply to {kind} parameters")
        if kind in ("date", "timestamp"):
            if not isinstance(value, str) or _moment(kind, value) in (None, _INVALID):
                raise _error(runbook, f"{where}.{key}", f"must be {'an ISO 8601 date' if kind == 'date' else 'an ISO 8601 time'}")
        elif kind == "string":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _error(runbook, f"{where}.{key}", "must be a whole number of characters")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "integer" and not isinstance(value, int)):
            raise _error(runbook, f"{where}.{key}", f"must be {'a whole number' if kind == 'integer' else 'a number'}")
        bounds[key] = value
    if bounds["min"] is not None and bounds["max"] is not None and _bound(kind, bounds["min"]) > _bound(kind, bounds["max"]):
        raise _error(runbook, f"{where}.min", "is greater than max")
    enum = raw.get("enum")
    if enum is not None:
        if isinstance(enum, (set, frozenset)):
            enum = sorted(enum)
        if kind == "boolean" or not isinstance(enum, (list, tuple)) or not enum:
            raise _error(runbook, f"{where}.enum", "must be a non-empty list of allowed values (not for booleans)")
        enum = tuple(_plain_number(v) for v in enum)
    parameter = Parameter(name=name, type=kind, required=required, enum=enum, pattern=pattern,
                          minimum=bounds["min"], maximum=bounds["max"], description=description)
    if enum is not None:
        for value in enum:
            try:
                dataclasses.replace(parameter, enum=None).check(value)
            except InvalidRequest as exc:
                raise _error(runbook, f"{where}.enum", f"holds {_shown(value)}, which breaks the parameter's own rules ({exc.message})") from None
    default = _plain_number(raw.get("default"))
    if default is not None:
        if required:
            raise _error(runbook, f"{where}.default", "needs \"required\": false (a required parameter takes no default)")
        try:
            parameter.check(default)
        except InvalidRequest as exc:
            raise _error(runbook, f"{where}.default", f"breaks the parameter's own rules ({exc.message})") from None
        parameter = dataclasses.replace(parameter, default=default)
    return parameter


def _plain_number(value: Any) -> Any:
    """DynamoDB gives numbers as Decimal: whole ones become int, others float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_number(v) for v in value]
    return value


def _whole(value: Any) -> int | None:
    value = _plain_number(value)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def parse_runbooks_document(document: Any, source: str = "runbooks file") -> list[Runbook]:
    """``{"runbooks": [...]}``: every runbook validated, names unique."""
    items = document.get("runbooks") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise InvalidDefinition(f"{source}: expected an object with a 'runbooks' list")
    runbooks: list[Runbook] = []
    for index, item in enumerate(items):
        try:
            runbook = parse_runbook(item)
        except InvalidDefinition as exc:
            raise InvalidDefinition(f"{source}: runbooks[{index}]: {exc.message}", **exc.details) from None
        if any(r.name == runbook.name for r in runbooks):
            raise InvalidDefinition(f"{source}: runbook {runbook.name!r} is defined twice", field="name")
        runbooks.append(runbook)
    return runbooks


def load_runbooks_file(path: Any) -> tuple[list[dict[str, Any]], list[Runbook]]:
    """The items (as written, to store) and the parsed runbooks of a runbooks file."""
    from pathlib import Path

    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidDefinition(f"runbooks file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise InvalidDefinition(f"{path}: not valid JSON: {exc}") from None
    runbooks = parse_runbooks_document(document, str(path))
    return list(document["runbooks"]), runbooks


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


# -- connections: runbook-only (adhoc: false) ------------------------------------------------


def connection_adhoc(definition: Any) -> bool:
    """A connection's ``adhoc`` field: true (the default) lets callers send their own SQL."""
    value = dict(definition.extras).get("adhoc", True)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidDefinition(f"connection {definition.name!r}: 'adhoc' must be true or false", field="adhoc")
    return value


def connection_approval(definition: Any) -> ApprovalRule | None:
    """A connection's ``approval`` rule (``rdsgate.approval``), if it has one."""
    extras = dict(definition.extras)
    raw = extras.get("approval")
    if raw is None:
        return None
    try:
        return parse_approval(_thawed(raw))
    except ApprovalRuleError as exc:
        raise InvalidDefinition(f"connection {definition.name!r}: {exc}", field="approval") from None


def check_connection_fields(item: Mapping[str, Any]) -> None:
    """Deploy-time check of a connection's runbook and review fields (``adhoc``, ``approval``)."""
    name = item.get("name")
    adhoc = item.get("adhoc", True)
    if not isinstance(adhoc, bool):
        raise InvalidDefinition(f"connection {name!r}: 'adhoc' must be true or false", field="adhoc")
    try:
        parse_approval(item.get("approval"))
    except ApprovalRuleError as exc:
        raise InvalidDefinition(f"connection {name!r}: {exc}", field="approval") from None


def _thawed(value: Any) -> Any:
    """Undo ``definitions._freeze`` (extras are stored as sorted tuples of pairs)."""
    if isinstance(value, tuple) and value and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return {k: _thawed(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


RUNBOOK_CONTEXT = "runbook"  # the key of an invocation's audit context that names the runbook it runs


@dataclass(frozen=True)
class RunbookQuery(QueryRequest):
    """The statement of a runbook run: only the runbook path builds one, never a request body."""

    runbook: str = ""
    runbook_version: str = ""
    approval: Any = None  # the runbook's own approval rule (rdsgate.reviews), if it has one


def check_free_sql(definition: Any, statement: Any) -> None:
    """403 for SQL of the caller's own (anything but a runbook's statement) on a runbook-only connection."""
    if not isinstance(statement, RunbookQuery) and not connection_adhoc(definition):
        raise Forbidden(
            f"connection {definition.name!r} runs runbooks only (adhoc: false): free SQL is refused; "
            "see GET /runbooks for what you may run", rule="adhoc",
        )


def check_session(definition: Any) -> None:
    """A session (a transaction held across calls) runs SQL of the caller's own, and cannot wait for a review:
    refused at its start on runbook-only connections and on connections with an approval rule."""
    check_free_sql(definition, None)
    if connection_approval(definition) is not None:
        raise Forbidden(
            f"connection {definition.name!r} has an approval rule: a statement of an open session cannot wait for a "
            "review; send it with /query, /batch or /transaction", rule="approval",
        )


def runbook_context(runbook: Runbook | None, name: str | None) -> dict[str, Any]:
    """What every audit record of a runbook request carries."""
    context: dict[str, Any] = {RUNBOOK_CONTEXT: runbook.name if runbook else name}
    if runbook is not None:
        context["runbookVersion"] = runbook.version
    return context


# -- the catalog ------------------------------------------------------------------------------


class RunbookCatalog(KeyedTable):
    """Runbooks from the DynamoDB table ``RDSGATE_RUNBOOKS_TABLE`` (key ``name``), cached with a TTL."""

    what = "runbooks"

    def __init__(self, table_name: str | None, *, ttl_seconds: float = 30.0, client_factory: Callable[[], Any] | None = None) -> None:
        super().__init__(table_name, client_factory)
        self._items: TtlCache[Any] = TtlCache(ttl_seconds)

    def get(self, name: str) -> Runbook:
        """The runbook called ``name``; RunbookNotFound when there is none."""
        item = self._items.get(name, lambda: self._get_item(name)) if self.table_name and NAME.match(name) else None
        if item is None:
            raise RunbookNotFound(f"runbook {name!r} does not exist")
        return parse_runbook(item)

    def list(self) -> list[Runbook]:
        """Every valid runbook, by name (a malformed item is left out; get() names its problem)."""
        if not self.table_name:
            return []
        runbooks = []
        for item in self._items.get("\0all", self._scan_items):
            try:
                runbooks.append(parse_runbook(item))
            except InvalidDefinition:
                continue
        return sorted(runbooks, key=lambda r: r.name)

    def _get_item(self, name: str) -> Any:
        item = self._call("get_item", TableName=self.table_name, Key={"name": {"S": name}}).get("Item")
        return None if item is None else _from_dynamodb(item)
