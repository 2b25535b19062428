"""Connection definitions: parsing and validating one stored item.

An item is a plain mapping, as stored in DynamoDB or written in the deploy
configuration file. It uses rdsgate's own fields or Hoop's env-style keys
(``HOST``, ``PORT``, ``USER``, ``PASS``, ``DB``, ``SSLMODE``). Unknown fields
are kept in ``extras`` and otherwise ignored, so later features can add fields
without breaking older definitions. Validation errors name the connection and
the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

from .detectors import DETECTORS
from .errors import InvalidDefinition
from .masking import parse_pattern
from .sql.constants import DEFAULT_PORTS, STATEMENT_KINDS, STATEMENT_SYNONYMS

__all__ = ["ConnectionDefinition", "Guardrail", "IamAuth", "PasswordAuth", "STATEMENT_KINDS", "parse_definition"]

IAM_USER_PREFIX = "_aws_iam_rds:"
IAM_PASSWORD_MARKER = "_aws_iam_rds:authtoken"

ENGINES = {"postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
TLS_MODES = ("verify-full", "require")

# DbiResourceId of an instance, resource id of an Aurora cluster, or id of an RDS Proxy.
RESOURCE_ID_PATTERN = re.compile(r"^(db|cluster|prx)-[A-Za-z0-9]+$")

# Hoop's env-style keys and the fields they stand for.
HOOP_KEYS = {"HOST": "host", "PORT": "port", "USER": "user", "PASS": "password", "DB": "database", "SSLMODE": "tls"}

KNOWN_FIELDS = frozenset(
    {
        "name", "engine", "host", "port", "database", "user", "password", "description", "region",
        "iam_host", "tls", "ca_bundle", "resource_id", "read_only", "statement_timeout_ms", "max_rows",
        "max_bytes", "allowed_principals", "guardrails", "masked_columns", "mask", "audit_parameters",
        "mask_detectors",
    }
)
MASK_MODES = ("fixed", "hash")


@dataclass(frozen=True)
class IamAuth:
    """Connect as ``db_user`` with a freshly signed RDS IAM auth token."""

    db_user: str


@dataclass(frozen=True)
class PasswordAuth:
    """Connect as ``db_user`` with a literal password (development databases)."""

    db_user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ConnectionDefinition:
    """One validated connection definition; equal definitions share a cached connection."""

    name: str
    engine: str
    host: str
    port: int
    database: str | None
    auth: IamAuth | PasswordAuth
    region: str | None = None
    iam_host: str | None = None
    tls: str = "verify-full"
    ca_bundle: str | None = None
    resource_id: str | None = None
    description: str | None = None
    read_only: bool = False
    statement_timeout_ms: int | None = None
    max_rows: int | None = None
    max_bytes: int | None = None
    # Governance: who may use it, which SQL is refused, which result columns are masked.
    allowed_principals: tuple[str, ...] | None = None
    guardrails: tuple[Guardrail, ...] = ()
    masked_columns: tuple[str, ...] = ()
    mask: str = "fixed"
    mask_detectors: tuple[str, ...] = ()
    audit_parameters: bool = False
    extras: tuple[tuple[str, Any], ...] = ()

    @property
    def db_user(self) -> str:
        return self.auth.db_user

    @property
    def uses_iam(self) -> bool:
        return isinstance(self.auth, IamAuth)

    @property
    def token_host(self) -> str:
        """The endpoint the IAM token is signed for."""
        return self.iam_host or self.host

    def public_view(self) -> dict[str, Any]:
        """The definition as shown to callers: every field but the secret."""
        view: dict[str, Any] = {
            "name": self.name,
            "engine": self.engine,
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "user": self.db_user,
            "auth": "iam" if self.uses_iam else "password",
            "region": self.region,
            "iam_host": self.iam_host,
            "tls": self.tls,
            "resource_id": self.resource_id,
            "description": self.description,
            "read_only": self.read_only,
            "statement_timeout_ms": self.statement_timeout_ms,
            "max_rows": self.max_rows,
            "max_bytes": self.max_bytes,
            "guardrails": [rule.as_dict() for rule in self.guardrails] or None,
            "masked_columns": list(self.masked_columns) or None,
        }
        return {key: value for key, value in view.items() if value is not None}

    def summary(self) -> dict[str, Any]:
        """The short form used when listing connections."""
        return {"name": self.name, "engine": self.engine, "description": self.description, "read_only": self.read_only}


def parse_definition(item: Mapping[str, Any], *, name: str | None = None) -> ConnectionDefinition:
    """Validate one stored item and return its definition.

    ``name`` overrides the item's own ``name`` (useful when the item is keyed
    elsewhere). Raises ``InvalidDefinition`` naming the first bad field.
    """
    fields = _merge_hoop_keys(item)
    conn_name = name if name is not None else fields.get("name")
    if not isinstance(conn_name, str) or not conn_name:
        raise InvalidDefinition("connection definition: 'name' is required", field="name")
    check = _FieldReader(conn_name, fields)

    engine_raw = check.text("engine", required=True)
    engine = ENGINES.get(engine_raw.lower())
    if engine is None:
        raise check.error("engine", f"must be one of postgres, mysql (got {engine_raw!r})")

    tls = check.text("tls") or "verify-full"
    if tls not in TLS_MODES:
        raise check.error("tls", f"{tls!r} is not accepted; use verify-full or require")

    resource_id = check.text("resource_id")
    if resource_id is not None and not RESOURCE_ID_PATTERN.match(resource_id):
        raise check.error("resource_id", "must look like db-…, cluster-… or prx-…")

    return ConnectionDefinition(
        name=conn_name,
        engine=engine,
        host=check.text("host", required=True),
        port=check.integer("port", minimum=1, maximum=65535) or DEFAULT_PORTS[engine],
        database=check.text("database"),
        auth=_parse_auth(check),
        region=check.text("region"),
        iam_host=check.text("iam_host"),
        tls=tls,
        ca_bundle=check.text("ca_bundle"),
        resource_id=resource_id,
        description=check.text("description"),
        read_only=check.boolean("read_only"),
        statement_timeout_ms=check.integer("statement_timeout_ms", minimum=1),
        max_rows=check.integer("max_rows", minimum=1),
        max_bytes=check.integer("max_bytes", minimum=1),
        allowed_principals=check.string_list("allowed_principals"),
        guardrails=_parse_guardrails(check),
        masked_columns=_parse_masked_columns(check),
        mask=_parse_mask(check),
        mask_detectors=_parse_detectors(check),
        audit_parameters=check.boolean("audit_parameters"),
        extras=tuple(sorted((k, _freeze(v)) for k, v in fields.items() if k not in KNOWN_FIELDS)),
    )


def _parse_auth(check: _FieldReader) -> IamAuth | PasswordAuth:
    user = check.text("user", required=True)
    password = check.text("password")
    if user.startswith(IAM_USER_PREFIX):
        db_user = user[len(IAM_USER_PREFIX):]  # a db user may itself contain ':'
        if not db_user:
            raise check.error("user", f"names no database user after {IAM_USER_PREFIX!r}")
        if password != IAM_PASSWORD_MARKER:
            raise check.error("password", f"must be {IAM_PASSWORD_MARKER!r} for an IAM user")
        return IamAuth(db_user)
    if password == IAM_PASSWORD_MARKER:
        raise check.error("user", f"must be '{IAM_USER_PREFIX}<db_user>' when the password is the IAM marker")
    if not password:
        raise check.error("password", "is required for a non-IAM user")
    return PasswordAuth(user, password)


@dataclass(frozen=True)
class Guardrail:
    """One named rule checked on the SQL before it runs; exactly one kind is set."""

    name: str
    deny_statements: tuple[str, ...] = ()
    require_where: bool = False
    deny_pattern: str | None = None
    allow_statements: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"name": self.name}
        if self.deny_statements:
            rule["deny_statements"] = list(self.deny_statements)
        if self.allow_statements:
            rule["allow_statements"] = list(self.allow_statements)
        if self.require_where:
            rule["require_where"] = True
        if self.deny_pattern is not None:
            rule["deny_pattern"] = self.deny_pattern
        return rule


_GUARDRAIL_KINDS = ("deny_statements", "allow_statements", "require_where", "deny_pattern")


def _parse_guardrails(check: _FieldReader) -> tuple[Guardrail, ...]:
    rules = check.fields.get("guardrails")
    if rules is None:
        return ()
    if not isinstance(rules, (list, tuple)):
        raise check.error("guardrails", "must be a list of rules")
    parsed = []
    for index, rule in enumerate(rules):
        where = f"guardrails[{index}]"
        if not isinstance(rule, Mapping) or not isinstance(rule.get("name"), str) or not rule["name"]:
            raise check.error(where, "must be an object with a 'name'")
        kinds = [kind for kind in _GUARDRAIL_KINDS if kind in rule]
        unknown = set(rule) - {"name", *_GUARDRAIL_KINDS}
        if len(kinds) != 1 or unknown:
            raise check.error(where, f"must have exactly one of {', '.join(_GUARDRAIL_KINDS)}")
        kind, value = kinds[0], rule[kinds[0]]
        if kind in ("deny_statements", "allow_statements"):
            statements = _statement_kinds(check, where, kind, value)
            parsed.append(Guardrail(rule["name"], **{kind: statements}))
        elif kind == "require_where":
            if value is not True:
                raise check.error(where, "require_where must be true")
            parsed.append(Guardrail(rule["name"], require_where=True))
        else:
            if not isinstance(value, str):
                raise check.error(where, "deny_pattern must be a regular expression string")
            try:
                re.compile(value)
            except re.error as exc:
                raise check.error(where, f"deny_pattern is not a valid regular expression ({exc})") from None
            parsed.append(Guardrail(rule["name"], deny_pattern=value))
    return tuple(parsed)


def _statement_kinds(check: _FieldReader, where: str, kind: str, value: Any) -> tuple[str, ...]:
    """A deny or allow list: known statement keywords, upper-cased, synonyms folded (DESCRIBE is EXPLAIN)."""
    if isinstance(value, (set, frozenset)):  # DynamoDB string sets
        value = sorted(value)
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise check.error(where, f"{kind} must be a non-empty list of statement keywords")
    statements = []
    for keyword in value:
        upper = keyword.strip().upper()
        upper = STATEMENT_SYNONYMS.get(upper, upper)
        if upper not in STATEMENT_KINDS:
            raise check.error(where, f"{kind} names {keyword!r}, which is not a statement kind (known: {', '.join(sorted(STATEMENT_KINDS))})")
        if upper not in statements:
            statements.append(upper)
    return tuple(statements)


def _parse_masked_columns(check: _FieldReader) -> tuple[str, ...]:
    patterns = check.string_list("masked_columns") or ()
    for pattern in patterns:
        try:
            parse_pattern(pattern)
        except ValueError as exc:
            raise check.error("masked_columns", f"{pattern!r} {exc}") from None
    return patterns


def _parse_detectors(check: _FieldReader) -> tuple[str, ...]:
    names = check.string_list("mask_detectors") or ()
    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise check.error("mask_detectors", f"unknown detector {unknown[0]!r} (use {', '.join(DETECTORS)})")
    return names


def _parse_mask(check: _FieldReader) -> str:
    mask = check.text("mask") or "fixed"
    if mask not in MASK_MODES:
        raise check.error("mask", "must be 'fixed' or 'hash'")
    return mask


def _merge_hoop_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    fields = dict(item)
    for hoop_key, own_key in HOOP_KEYS.items():
        if hoop_key in fields:
            value = fields.pop(hoop_key)
            fields.setdefault(own_key, value)
    return fields


def _freeze(value: Any) -> Any:
    """Make an extra field hashable so that definitions compare by value."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set)):
        return tuple(_freeze(v) for v in value)
    return value


class _FieldReader:
    """Reads typed fields of one item, raising errors that name the connection and field."""

    def __init__(self, conn_name: str, fields: Mapping[str, Any]) -> None:
        self.conn_name = conn_name
        self.fields = fields

    def error(self, field_name: str, problem: str) -> InvalidDefinition:
        return InvalidDefinition(f"connection {self.conn_name!r}: '{field_name}' {problem}", field=field_name)

    def text(self, field_name: str, *, required: bool = False) -> Any:
        value = self.fields.get(field_name)
        if value is None or value == "":
            if required:
                raise self.error(field_name, "is required")
            return None
        if not isinstance(value, str):
            raise self.error(field_name, "must be a string")
        return value

    def integer(self, field_name: str, *, minimum: int, maximum: int | None = None) -> int | None:
        value = self.fields.get(field_name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise self.error(field_name, "must be a whole number")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, Decimal) and value == value.to_integral_value():
            value = int(value)
        if not isinstance(value, int):
            raise self.error(field_name, "must be a whole number")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise self.error(field_name, f"must be {bound} (got {value})")
        return value

    def string_list(self, field_name: str) -> tuple[str, ...] | None:
        value = self.fields.get(field_name)
        if value is None:
            return None
        if isinstance(value, (set, frozenset)):  # DynamoDB string sets
            value = sorted(value)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise self.error(field_name, "must be a list of non-empty strings")
        return tuple(value)

    def boolean(self, field_name: str) -> bool:
        value = self.fields.get(field_name, False)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(field_name, "must be true or false")
        return value
