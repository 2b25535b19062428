"""Column lineage: which table columns each output of a statement is computed from.

Masking follows the data, not the result column's name, so it needs to know, for every
output of a query, the set of ``(schema, table, column)`` it derives from, through
aliases, expressions, aggregates, subqueries, CTEs, set operations and whole-row
references (``row_to_json(t)``, ``SELECT t``). sqlglot qualifies the statement against
the tables the connection can see, then each scope's outputs are traced down to tables.

What cannot be traced (unparseable SQL, a statement that is not a query, RETURNING, an
unresolved name) raises ``Untraceable``: the caller refuses rather than guesses.

Before any of that, ``read_names`` reads the names a statement holds as the server reads them
(``sql.lexer``'s tokens: quoted names unquoted, comments left out), so that a name cannot
hide from the question "does this statement name a masked column?" behind quoting. What
sqlglot would read differently from the server (PostgreSQL's Unicode-escaped names
``U&"…"``, names PostgreSQL truncates) is reported as untraceable rather than decoded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

Source = tuple[str, str, str]  # (schema, table, column), lower case
Schema = Mapping[str, Mapping[str, Iterable[str]]]  # schema -> table -> column names

_DIALECTS = {"postgres": "postgres", "mysql": "mysql"}
# Deeper nesting than this is refused before sqlglot recurses into it.
MAX_DEPTH = 200


class Untraceable(Exception):
    """The outputs of the statement cannot be traced to their source columns."""


# PostgreSQL keeps the first NAMEDATALEN - 1 bytes of a longer name (with a notice).
PG_NAME_BYTES = 63


@dataclass(frozen=True)
class Names:
    """The names in one statement as the server reads them, lower case."""

    identifiers: frozenset[str]  # every word and quoted name, keywords included
    calls: frozenset[str]  # the names followed by "(": functions called (and a few keywords)
    strings: tuple[str, ...]  # the text of each string constant, as written
    head: tuple[str, ...]  # the words before the first "(", upper case, at most eight
    label: bool  # the statement opens with "word:" (a MariaDB label of a compound statement)


@lru_cache(maxsize=256)
def read_names(sql: str, engine: str) -> Names:
    """The names ``sql`` holds, as the server reads them; raises Untraceable where sqlglot would read otherwise."""
    from .sql.lexer import OP, QUOTED, STRING, WORD, LexError, lex  # loaded on a masked connection's first plan

    pg = engine == "postgres"
    try:
        tokens = lex(sql, engine)
    except LexError as exc:
        raise Untraceable(f"it could not be read as the server reads it ({exc})") from None
    identifiers: set[str] = set()
    calls: set[str] = set()
    strings: list[str] = []
    for index, token in enumerate(tokens):
        if token.kind == STRING:
            strings.append(token.text)
            continue
        if token.kind == WORD:
            name = token.text.lower()
        elif token.kind == QUOTED:
            if pg and token.text[:2].upper() == "U&":
                raise Untraceable(f"it holds a Unicode-escaped name ({token.text[:40]}), which is not traced")
            quote = token.text[0]
            name = token.text[1:-1].replace(quote * 2, quote).lower()
        else:
            continue
        if pg and len(name.encode("utf-8")) > PG_NAME_BYTES:
            raise Untraceable(f"it holds a name longer than PostgreSQL's {PG_NAME_BYTES} bytes, which the server truncates")
        identifiers.add(name)
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if following is not None and following.kind == OP and following.text == "(":
            calls.add(name)
    head: list[str] = []
    for token in tokens[:8]:
        if token.kind == OP and token.text == "(":
            break
        if token.kind == WORD:
            head.append(token.text)
    label = len(tokens) > 1 and tokens[0].kind in (WORD, QUOTED) and tokens[1].text == ":"
    return Names(frozenset(identifiers), frozenset(calls), tuple(strings), tuple(head), label)


@lru_cache(maxsize=256)
def referenced_tables(sql: str, engine: str) -> tuple[Any, frozenset[tuple[str | None, str]]]:
    """The parsed statement and the ``(schema or None, table)`` names it reads or writes."""
    import sqlglot
    from sqlglot import exp

    if sql.count("(") > MAX_DEPTH:
        raise Untraceable(f"the statement nests more than {MAX_DEPTH} parentheses")
    try:
        trees = [t for t in sqlglot.parse(sql, read=_DIALECTS[engine]) if t is not None]
    except (sqlglot.errors.SqlglotError, RecursionError) as exc:
        raise Untraceable(f"the statement could not be parsed ({type(exc).__name__})") from None
    if len(trees) != 1:
        raise Untraceable("the statement could not be parsed as one statement")
    tree = trees[0]
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables = {
        ((t.db or None) and t.db.lower(), t.name.lower())
        for t in tree.find_all(exp.Table)
        if isinstance(t.this, exp.Identifier) and not (t.name.lower() in ctes and not t.db)
    }
    return tree, frozenset(tables)


def output_sources(tree: Any, engine: str, schema: Schema, default_schema: str) -> list[frozenset[Source]]:
    """For each output column of the statement, the table columns its values derive from."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    if not isinstance(tree, exp.Query):
        if tree.args.get("returning") is not None:
            raise Untraceable("RETURNING cannot be traced")
        return []  # INSERT/UPDATE/DELETE/DDL without RETURNING return no values
    mapping = {s: {t: {c: "text" for c in cols} for t, cols in tables.items()} for s, tables in schema.items()}
    try:
        qualified = qualify(
            tree.copy(), schema=mapping, dialect=_DIALECTS[engine], db=default_schema,
            validate_qualify_columns=False, identify=False, quote_identifiers=False,
        )
        root = build_scope(qualified)
    except (SqlglotError, RecursionError, KeyError, ValueError) as exc:
        raise Untraceable(f"the statement could not be qualified ({type(exc).__name__})") from None
    if root is None:
        raise Untraceable("the statement has no query scope")
    return _Tracer(schema, default_schema).outputs(root)


class _Tracer:
    def __init__(self, schema: Schema, default_schema: str) -> None:
        self.schema = schema
        self.default_schema = default_schema
        self._memo: dict[int, list[frozenset[Source]]] = {}

    def outputs(self, scope: Any) -> list[frozenset[Source]]:
        key = id(scope)
        if key not in self._memo:
            self._memo[key] = self._outputs(scope)
        return self._memo[key]

    def _outputs(self, scope: Any) -> list[frozenset[Source]]:
        from sqlglot import exp

        if scope.set_operation_scopes:  # a set operation: output i is every branch's output i
            branches = [self.outputs(branch) for branch in scope.set_operation_scopes]
            width = len(branches[0])
            if any(len(b) != width for b in branches):
                raise Untraceable("the branches of a set operation differ in width")
            return [frozenset().union(*(b[i] for b in branches)) for i in range(width)]
        expression = scope.expression
        if not isinstance(expression, exp.Select):
            raise Untraceable(f"cannot trace a {type(expression).__name__}")
        results = []
        for projection in expression.selects:
            if isinstance(projection, exp.Star) or any(isinstance(n, exp.Star) and not _in_function(n) for n in projection.walk()):
                raise Untraceable("a * could not be expanded")
            results.append(self._expression(scope, projection))
        return results

    def _expression(self, scope: Any, node: Any) -> frozenset[Source]:
        """The sources of one expression in ``scope``: its columns, and its subqueries' outputs."""
        from sqlglot import exp

        found: set[Source] = set()
        nested = {id(child.expression): child for child in scope.subquery_scopes}
        stack = [node]
        while stack:
            current = stack.pop()
            child = nested.get(id(current)) or (nested.get(id(current.this)) if isinstance(current, exp.Subquery) else None)
            if child is not None:
                for sources in self.outputs(child):
                    found |= sources
                continue
            if isinstance(current, exp.Column):
                found |= self._column(scope, current)
                continue
            if isinstance(current, exp.TableColumn):  # a whole-row reference (row_to_json(t), SELECT t)
                found |= self._whole_row(scope, current.name)
                continue
            stack.extend(current.iter_expressions())
        return frozenset(found)

    def _column(self, scope: Any, column: Any) -> frozenset[Source]:
        from sqlglot import exp

        name = column.name.lower()
        table = column.table.lower() if column.table else None
        for current in _scope_chain(scope):
            if table is None:
                source = current.sources.get(column.name)
                if source is not None:  # a whole-row reference: every column of that source
                    return self._whole(source)
                continue
            source = current.sources.get(column.table)
            if source is None:
                continue
            if isinstance(source, exp.Table):
                return frozenset({(self._schema_of(source), source.name.lower(), name)})
            outputs = self.outputs(source)
            names = [_output_name(p) for p in source.expression.selects] if not source.set_operation_scopes else _union_names(source)
            if names.count(name) != 1:
                raise Untraceable(f"column {name!r} of a derived table is ambiguous")
            return outputs[names.index(name)]
        raise Untraceable(f"column {column.sql()!r} could not be resolved")

    def _whole_row(self, scope: Any, name: str) -> frozenset[Source]:
        for current in _scope_chain(scope):
            source = current.sources.get(name)
            if source is not None:
                return self._whole(source)
        raise Untraceable(f"{name!r} could not be resolved")

    def _whole(self, source: Any) -> frozenset[Source]:
        from sqlglot import exp

        if isinstance(source, exp.Table):
            schema, table = self._schema_of(source), source.name.lower()
            columns = self.schema.get(schema, {}).get(table)
            if columns is None:
                raise Untraceable(f"table {table!r} is not in the catalog")
            return frozenset((schema, table, c) for c in columns)
        return frozenset().union(*self.outputs(source))

    def _schema_of(self, table: Any) -> str:
        return (table.db or self.default_schema).lower()


def _scope_chain(scope: Any) -> Iterable[Any]:
    while scope is not None:
        yield scope
        scope = scope.parent


def _in_function(node: Any) -> bool:
    from sqlglot import exp

    return isinstance(node.parent, exp.Func)  # count(*) reads no column's value


def _output_name(projection: Any) -> str:
    return projection.alias_or_name.lower()


def _union_names(scope: Any) -> list[str]:
    first = scope.set_operation_scopes[0]
    while first.set_operation_scopes:
        first = first.set_operation_scopes[0]
    return [_output_name(p) for p in first.expression.selects]
