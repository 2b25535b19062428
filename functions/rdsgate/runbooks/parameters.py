"""A runbook parameter: its rules, its JSON Schema, and binding a run's values to the statement.

Separate from the runbook's definition (``rdsgate.runbooks.definition``) because the rules of one value
are what both ends use: a definition's ``enum`` and ``default`` are checked by them when it is parsed,
and every run's values are checked by them before anything runs (a 400 naming the parameter and the rule).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from ..errors import InvalidDefinition, InvalidRequest

__all__ = [
    "HINTS", "MAX_STRING_CHARS", "TYPES", "Parameter", "bind_parameters", "definition_error", "parse_parameter",
    "plain_number",
]

TYPES = ("string", "integer", "number", "boolean", "date", "timestamp", "uuid")
HINTS = {"number": "DECIMAL", "date": "DATE", "timestamp": "TIMESTAMP", "uuid": "UUID"}
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
PARAMETER_FIELDS = frozenset({"name", "type", "required", "enum", "pattern", "min", "max", "default", "description"})
MAX_STRING_CHARS = 65_536


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
            raise self._refused("type", f"must be {self._format()} (got a string that is not one)")
        if self.enum is not None and value not in self.enum:
            raise self._refused("enum", f"must be one of {', '.join(json.dumps(v) for v in self.enum)} (got {_kind(value)})")
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


def _kind(value: Any) -> str:
    """What a caller's value is, never the value: refusals reach Step Functions' execution history."""
    if isinstance(value, str):
        return "a string"
    return "a number" if isinstance(value, (int, float)) and not isinstance(value, bool) else f"a {type(value).__name__}"


def _shown(value: Any) -> str:
    """A definition's own value (an enum entry), shortened: never a caller's."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "…"



def bind_parameters(runbook: str, parameters: tuple[Parameter, ...], values: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The parameters and type hints of the statement, once every value meets the schema (400 otherwise)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise InvalidRequest("parameters: must be an object of parameter name to value", field="parameters")
    declared = {p.name for p in parameters}
    unknown = sorted(set(values) - declared)
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise InvalidRequest(f"parameters.{unknown[0]}: runbook {runbook!r} has no such parameter (it takes: {known})",
                             field=f"parameters.{unknown[0]}", rule="unknown")
    bound: dict[str, Any] = {}
    hints: dict[str, str] = {}
    for parameter in parameters:
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


def definition_error(runbook: str, field_name: str, problem: str) -> InvalidDefinition:
    """The error of a runbook definition: names the runbook and the field."""
    return InvalidDefinition(f"runbook {runbook!r}: '{field_name}' {problem}", field=field_name)


def parse_parameter(runbook: str, index: int, raw: Any) -> Parameter:
    """Validate one parameter definition of a runbook (``parameters[index]``)."""
    where = f"parameters[{index}]"
    if not isinstance(raw, Mapping):
        raise definition_error(runbook, where, "must be an object with a name and a type")
    unknown = sorted(set(raw) - PARAMETER_FIELDS)
    if unknown:
        raise definition_error(runbook, f"{where}.{unknown[0]}", f"is not a parameter field (known: {', '.join(sorted(PARAMETER_FIELDS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not PARAMETER_NAME.match(name):
        raise definition_error(runbook, f"{where}.name", f"must be a SQL parameter name (letters, digits, '_'; got {name!r})")
    where = f"parameters.{name}"
    kind = raw.get("type")
    if kind not in TYPES:
        raise definition_error(runbook, f"{where}.type", f"must be one of {', '.join(TYPES)} (got {kind!r})")
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise definition_error(runbook, f"{where}.required", "must be true or false")
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise definition_error(runbook, f"{where}.description", "must be a string")
    pattern = raw.get("pattern")
    if pattern is not None:
        if kind != "string":
            raise definition_error(runbook, f"{where}.pattern", "applies to string parameters only")
        if not isinstance(pattern, str):
            raise definition_error(runbook, f"{where}.pattern", "must be a regular expression string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise definition_error(runbook, f"{where}.pattern", f"is not a valid regular expression ({exc})") from None
    bounds = {}
    for key in ("min", "max"):
        value = plain_number(raw.get(key))
        if value is None:
            bounds[key] = None
            continue
        if kind in ("boolean", "uuid"):
            raise definition_error(runbook, f"{where}.{key}", f"does not apply to {kind} parameters")
        if kind in ("date", "timestamp"):
            if not isinstance(value, str) or _moment(kind, value) in (None, _INVALID):
                raise definition_error(runbook, f"{where}.{key}", f"must be {'an ISO 8601 date' if kind == 'date' else 'an ISO 8601 time'}")
        elif kind == "string":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise definition_error(runbook, f"{where}.{key}", "must be a whole number of characters")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "integer" and not isinstance(value, int)):
            raise definition_error(runbook, f"{where}.{key}", f"must be {'a whole number' if kind == 'integer' else 'a number'}")
        bounds[key] = value
    if bounds["min"] is not None and bounds["max"] is not None and _bound(kind, bounds["min"]) > _bound(kind, bounds["max"]):
        raise definition_error(runbook, f"{where}.min", "is greater than max")
    enum = raw.get("enum")
    if enum is not None:
        if isinstance(enum, (set, frozenset)):
            enum = sorted(enum)
        if kind == "boolean" or not isinstance(enum, (list, tuple)) or not enum:
            raise definition_error(runbook, f"{where}.enum", "must be a non-empty list of allowed values (not for booleans)")
        enum = tuple(plain_number(v) for v in enum)
    parameter = Parameter(name=name, type=kind, required=required, enum=enum, pattern=pattern,
                          minimum=bounds["min"], maximum=bounds["max"], description=description)
    if enum is not None:
        for value in enum:
            try:
                dataclasses.replace(parameter, enum=None).check(value)
            except InvalidRequest as exc:
                raise definition_error(runbook, f"{where}.enum", f"holds {_shown(value)}, which breaks the parameter's own rules ({exc.message})") from None
    default = plain_number(raw.get("default"))
    if default is not None:
        if required:
            raise definition_error(runbook, f"{where}.default", "needs \"required\": false (a required parameter takes no default)")
        try:
            parameter.check(default)
        except InvalidRequest as exc:
            raise definition_error(runbook, f"{where}.default", f"breaks the parameter's own rules ({exc.message})") from None
        parameter = dataclasses.replace(parameter, default=default)
    return parameter



def plain_number(value: Any) -> Any:
    """DynamoDB gives numbers as Decimal: whole ones become int, others float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_number(v) for v in value]
    return value
