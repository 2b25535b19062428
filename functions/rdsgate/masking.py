"""Masking that follows the data: values derived from a masked source column never leave the function.

A definition's ``masked_columns`` name sources: ``column``, ``table.column`` or
``schema.table.column``, each part a case-insensitive glob. Before a statement runs, the
connection's catalog (every column it can see, cached) resolves them to real columns;
then every output of the statement is traced to the columns it derives from
(``lineage``), through aliases, expressions, aggregates, subqueries, CTEs, set operations
and whole-row references. An output derived from a masked column is masked; a statement
that touches a table with masked columns but cannot be traced is refused. The server's
own column origin (PostgreSQL's table OID and attribute number, MySQL's ``org_table``)
masks direct references as well, as a second opinion. Whether a statement names a masked
column or table is decided on the names as the server reads them (``lineage.read_names``), and
what returns data no name leads to (functions that run SQL text or dump whole tables, the
planner's statistics, procedural code) is refused on a connection with masked columns.

``fixed`` replaces a value with ``****``; ``hash`` with an HMAC-SHA256 under the
deployment's key, so equal values stay equal (joinable) without being readable. Only
values from masked sources are hashed, so a literal aliased as a masked name is no oracle.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable

from .detectors import scan_rows
from .drivers import ExecutionOptions
from .errors import GuardrailViolation, SqlError
from .lineage import Names, Source, Untraceable, output_sources, read_names, referenced_tables
from .sql.text import prepare

FIXED_MASK = "****"
RULE = "masked_columns"

# What the catalog query returns per column: schema, table, column, and the server's own
# identification of it in result metadata (PostgreSQL: table OID and attribute number).
CATALOG_QUERIES = {
    "postgres": (
        "SELECT n.nspname::text, c.relname::text, a.attname::text, c.oid::int8, a.attnum::int4 "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
    ),
    "mysql": (
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, 0, 0 FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
    ),
}
# What a connection with masked columns refuses whatever the statement names, because what it
# returns cannot be traced to columns: functions that run SQL text they are given (built at run
# time, so no check reads it) or read whole tables, schemas or databases named by a value;
# the planner's statistics (sampled values of every column); procedural code, which can build
# and run SQL text (PostgreSQL's DO, MariaDB's compound statements, code a definition installs).
# (With ``sql.syntax.DYNAMIC_SQL_FUNCTIONS``, imported when first needed: the guardrails' readers load lazily.)
UNTRACEABLE_FUNCTIONS = frozenset(
    {
        "query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "table_to_xml", "table_to_xmlschema",
        "table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
        "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema", "cursor_to_xml",
        "cursor_to_xmlschema", "connectby", "execute_prepared_stmt", "sys_exec", "sys_eval",
    }
)  # fmt: skip
UNTRACEABLE_PREFIXES = ("dblink", "crosstab", "pgr_")  # dblink's, tablefunc's and pgRouting's take SQL text
STATISTICS = frozenset(
    {"pg_stats", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic", "pg_statistic_ext_data", "column_statistics", "column_stats"}
)
PROCEDURAL = {"postgres": frozenset({"DO"}), "mysql": frozenset({"BEGIN", "IF", "CASE", "LOOP", "REPEAT", "WHILE", "FOR"})}
CODE_OBJECTS = frozenset({"FUNCTION", "PROCEDURE", "TRIGGER", "EVENT", "RULE"})
CATALOG_TTL_SECONDS = 60.0
# A statement naming a table the catalog lacks reloads it, at most this often.
STALE_RELOAD_SECONDS = 1.0


def parse_pattern(pattern: str) -> tuple[str, ...]:
    """A masked-column pattern as its lower-case parts; raises ValueError when malformed."""
    parts = tuple(part.strip().lower() for part in pattern.split("."))
    if not 1 <= len(parts) <= 3 or any(not part for part in parts):
        raise ValueError("must be column, table.column or schema.table.column (globs allowed)")
    return parts


def _matches(parts: tuple[str, ...], source: Source) -> bool:
    return all(fnmatch.fnmatchcase(value, pattern) for pattern, value in zip(reversed(parts), reversed(source)))


@dataclass
class MaskCatalog:
    """The columns a connection can see, and which of them its definition masks."""

    engine: str
    default_schema: str
    schema: dict[str, dict[str, list[str]]]
    masked: frozenset[Source]
    masked_tables: frozenset[tuple[str, str]]
    server_keys: frozenset[Any]  # result-metadata keys of masked columns
    patterns: tuple[tuple[str, ...], ...] = ()
    loaded_at: float = field(default_factory=time.monotonic)

    @classmethod
    def build(cls, engine: str, default_schema: str, rows: Iterable[list[Any]], patterns: tuple[str, ...]) -> MaskCatalog:
        parsed = [parse_pattern(p) for p in patterns]
        schema: dict[str, dict[str, list[str]]] = {}
        masked, keys = set(), set()
        for schema_name, table, column, table_oid, attnum in rows:
            source = (str(schema_name).lower(), str(table).lower(), str(column).lower())
            schema.setdefault(source[0], {}).setdefault(source[1], []).append(source[2])
            if any(_matches(parts, source) for parts in parsed):
                masked.add(source)
                keys.add((int(table_oid), int(attnum)) if engine == "postgres" else source)
        return cls(
            engine, default_schema.lower(), schema, frozenset(masked),
            frozenset((s, t) for s, t, _ in masked), frozenset(keys), tuple(parsed),
        )

    def fresh(self) -> bool:
        return self.age() < CATALOG_TTL_SECONDS

    def age(self) -> float:
        return time.monotonic() - self.loaded_at

    def plan(self, sql: str, *, strict: bool = True) -> MaskPlan:
        """Which outputs of ``sql`` to mask; raises GuardrailViolation when that cannot be known.

        ``strict``: raise ``StaleCatalog`` when the statement names a table the catalog does
        not hold (created since it was read); otherwise such a name is taken as missing.
        """
        untouched = MaskPlan(False, (), self.server_keys)
        try:  # the names as the server reads them: quoting hides none of them
            names = read_names(sql, self.engine)
        except Untraceable as exc:
            raise self._refusal(str(exc), masks=True) from None
        why = self._untraceable(names)
        if why:
            raise self._refusal(why, masks=True)
        if not self._names_any(names, self._names):
            return untouched  # names no masked column and no table or view that holds one
        try:
            tree, tables = referenced_tables(sql, self.engine)
        except Untraceable as exc:
            raise self._refusal(str(exc)) from None
        if writes(tree):
            # Reading a masked column into a table, a view, a routine or a variable would copy
            # it where masking cannot follow: such a statement may not name masked columns.
            if self._names_any(names, self._columns) or (any(self._holds_masked(*t) for t in tables) and _whole_rows(tree)):
                raise self._refusal("it writes or defines something, so masked values could be copied unmasked")
            return MaskPlan(False, (), self.server_keys, ddl=_defines(tree))
        unknown = [table for table in tables if not self._knows(*table)]
        if unknown and strict:
            raise StaleCatalog(unknown)
        if not any(self._holds_masked(schema, table) for schema, table in tables):
            return untouched
        try:
            outputs = output_sources(tree, self.engine, self.schema, self.default_schema)
        except Untraceable as exc:
            raise self._refusal(str(exc)) from None
        return MaskPlan(True, tuple(bool(sources & self.masked) for sources in outputs), self.server_keys)

    def _untraceable(self, names: Names) -> str | None:
        """Why a statement cannot be traced whatever it names, on a connection that masks columns; None when it can."""
        from .sql.syntax import DYNAMIC_SQL_FUNCTIONS

        for call in sorted(names.calls):
            if call in UNTRACEABLE_FUNCTIONS or call in DYNAMIC_SQL_FUNCTIONS or call.startswith(UNTRACEABLE_PREFIXES):
                return f"it calls {call}(), which runs SQL text or reads whole tables or schemas that masking cannot trace"
        statistics = sorted(names.identifiers & STATISTICS)
        if statistics:
            return f"it reads {statistics[0]}, the planner's statistics, which hold sampled values of every column"
        head = names.head
        if (head and head[0] in PROCEDURAL[self.engine]) or (names.label and self.engine == "mysql"):
            return f"it runs procedural code ({head[0] if head else 'a labelled block'}), which can run SQL text built at run time"
        if head and head[0] in ("CREATE", "ALTER") and CODE_OBJECTS.intersection(head[1:6]):
            return "it defines code (a function, procedure, trigger, event or rule), which could read masked columns later"
        return None

    @staticmethod
    def _names_any(names: Names, pattern: re.Pattern[str]) -> bool:
        """Whether any name in the statement is one of ``pattern``'s, or any string constant holds one."""
        return any(pattern.fullmatch(name) for name in names.identifiers) or any(
            pattern.search(text.lower()) for text in names.strings
        )

    @staticmethod
    def _refusal(why: str, masks: bool = False) -> GuardrailViolation:
        what = "the connection masks columns" if masks else "the statement names masked columns or the tables that hold them"
        return GuardrailViolation(
            f"guardrail {RULE!r}: {what}, and {why}; it is refused so that masked values cannot leak", rule=RULE
        )

    @cached_property
    def _columns(self) -> re.Pattern[str]:
        # From the patterns, not only the catalog: a column of a table created since counts too.
        return _words([re.escape(c) for _, _, c in self.masked] + [_glob_word(p[-1]) for p in self.patterns])

    @cached_property
    def _names(self) -> re.Pattern[str]:
        tables = [re.escape(t) for _, t in self.masked_tables] + [_glob_word(p[-2]) for p in self.patterns if len(p) > 1]
        return re.compile(self._columns.pattern + "|" + _words(tables).pattern)

    def _knows(self, schema: str | None, table: str) -> bool:
        if schema is not None:
            return table in self.schema.get(schema, {})
        return any(table in tables for tables in self.schema.values())

    def _holds_masked(self, schema: str | None, table: str) -> bool:
        if schema is not None:
            return (schema, table) in self.masked_tables
        return any(name == table for _, name in self.masked_tables)


def _words(expressions: Iterable[str]) -> re.Pattern[str]:
    """Any of the regular ``expressions`` as a whole word (identifier), in lower-case text."""
    unique = sorted(set(expressions), key=len, reverse=True)
    return re.compile(r"(?<![\w$])(?:" + "|".join(unique) + r")(?![\w$])") if unique else re.compile(r"(?!)")


def _glob_word(glob: str) -> str:
    """A glob part of a pattern as a regular expression over identifier characters."""
    return "".join(r"[\w$]*" if c == "*" else r"[\w$]" if c == "?" else re.escape(c) for c in glob)


def writes(tree: Any) -> bool:
    """True for anything but a plain query: DML, DDL, commands, SELECT INTO, data-modifying CTEs."""
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        return True
    return tree.find(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Into, exp.Command) is not None


def _defines(tree: Any) -> bool:
    from sqlglot import exp

    return isinstance(tree, (exp.Create, exp.Drop, exp.Alter, exp.Command)) or tree.find(exp.Create) is not None


def _whole_rows(tree: Any) -> bool:
    from sqlglot import exp

    return tree.find(exp.Star, exp.TableColumn) is not None


class StaleCatalog(Exception):
    """The statement names tables the cached catalog does not hold (new, or not tables at all)."""


@dataclass(frozen=True)
class MaskPlan:
    """What tracing found: whether the statement touches masked sources, and which outputs derive from them."""

    touches: bool
    outputs: tuple[bool, ...] = ()
    server_keys: frozenset[Any] = frozenset()  # result-metadata keys of masked columns
    ddl: bool = False  # the statement may change the catalog: read it again before the next plan

    def indexes(self, sources: list[Any] | None, width: int) -> list[int]:
        """The result columns to mask, from the trace and from the server's column origins."""
        chosen: set[int] = set()
        if self.touches:
            if len(self.outputs) != width:  # the trace and the server disagree: mask everything
                return list(range(width))
            chosen.update(i for i, masked in enumerate(self.outputs) if masked)
        if self.server_keys and sources:
            chosen.update(i for i, key in enumerate(sources) if key in self.server_keys)
        return sorted(chosen)


NO_MASKING = MaskPlan(False)


class Masker:
    """Plans and applies masking for the query service; keeps each connection's catalog for a while."""

    def __init__(self, key: bytes | Callable[[], bytes], catalog_rows: int = 1_000_000) -> None:
        # The key of hashed masks, or what makes it (a deployment's secret): asked for on the first hash only.
        self._key_source = key
        self._catalog_rows = catalog_rows
        self._catalogs: dict[str, tuple[Any, MaskCatalog]] = {}

    def plans(self, definition: Any, connection: Any, sqls: list[str]) -> list[MaskPlan]:
        """One plan per statement, before any of them runs (so a refusal leaves nothing done)."""
        if not definition.masked_columns:
            return [NO_MASKING] * len(sqls)
        catalog = self._catalog(definition, connection)
        try:
            plans = [catalog.plan(sql) for sql in sqls]
        except StaleCatalog:
            if catalog.age() >= STALE_RELOAD_SECONDS:  # a table created since: learn it before tracing
                catalog = self._catalog(definition, connection, reload=True)
            plans = [catalog.plan(sql, strict=False) for sql in sqls]
        if any(plan.ddl for plan in plans):
            self._catalogs.pop(definition.name, None)
        return plans

    def apply(self, definition: Any, outcome: Any, plan: MaskPlan) -> bool:
        """Mask ``outcome.rows`` in place; True when any value changed. Masked columns say so."""
        changed = False
        indexes = plan.indexes(getattr(outcome, "sources", None), len(outcome.columns))
        if indexes:
            mask_rows(outcome.rows, indexes, definition.mask, b"" if definition.mask == "fixed" else self._key)
            for index in indexes:
                outcome.columns[index]["masked"] = True
            changed = True
        if definition.mask_detectors:
            replace = (lambda text: FIXED_MASK) if definition.mask == "fixed" else (lambda text: _digest(text, self._key))
            changed = scan_rows(outcome.rows, definition.mask_detectors, replace, outcome.columns) or changed
        return changed

    @property
    def _key(self) -> bytes:
        if callable(self._key_source):
            self._key_source = self._key_source()
        return self._key_source

    @staticmethod
    def scrub(error: Exception, plans: list[MaskPlan]) -> None:
        """A database error of a statement touching masked sources keeps its codes, not its text."""
        if isinstance(error, SqlError) and any(plan.touches for plan in plans):
            error.message = (
                "the statement failed; the database's message is withheld because the statement reads masked columns"
            )
            error.args = (error.message,)
            for key in ("hint", "position"):
                error.details.pop(key, None)

    def _catalog(self, definition: Any, connection: Any, reload: bool = False) -> MaskCatalog:
        cached = self._catalogs.get(definition.name)
        if not reload and cached is not None and cached[0] == definition and cached[1].fresh():
            return cached[1]
        query = prepare(CATALOG_QUERIES[definition.engine], definition.engine)
        options = ExecutionOptions(max_rows=self._catalog_rows, records_as_objects=False)
        rows = connection.execute(query, {}, options).rows
        default = "public" if definition.engine == "postgres" else (definition.database or "")
        catalog = MaskCatalog.build(definition.engine, default, rows, definition.masked_columns)
        self._catalogs[definition.name] = (definition, catalog)
        return catalog


def masked_indexes(column_names: list[str], patterns: tuple[str, ...]) -> list[int]:
    """Positions of the columns whose names match a pattern's column part (result names only)."""
    lowered = [parse_pattern(p)[-1] for p in patterns]
    return [i for i, name in enumerate(column_names) if any(fnmatch.fnmatchcase(name.lower(), p) for p in lowered)]


def mask_rows(rows: list[list[Any]], indexes: list[int], mode: str, key: bytes) -> None:
    """Replace the values at ``indexes`` in every row, in place; NULL stays NULL."""
    for row in rows:
        for i in indexes:
            value = row[i]
            if value is None:
                continue
            row[i] = FIXED_MASK if mode == "fixed" else _digest(value, key)


def _digest(value: Any, key: bytes) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
