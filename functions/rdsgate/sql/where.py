"""WHERE clauses for the statement classifier: which UPDATE/DELETE/MERGE narrows no rows.

A condition that holds for every row (a constant, ``x = x``, ``a OR NOT a``) guards nothing.
AND, OR, NOT and parentheses are folded without recursion; each other term is judged on its
own, with sqlglot's simplifier only for terms small enough to simplify quickly. Mixed into
``classify._Analyser``, whose ``exp``, ``dialect``, ``pg`` and ``tick`` it uses.
"""

from __future__ import annotations

from typing import Any

from .lexer import TooComplex
from .syntax import FALSE, ROWS, TRUE, _Found

MAX_SIMPLIFY_NODES = 256  # the largest WHERE term handed to sqlglot's simplifier


class WhereChecks:
    def check_where(self, node: Any, kind: str, found: _Found) -> None:
        where = node.args.get("where")
        if where is None:
            found.unguarded.append(f"{kind} without a WHERE clause")
            return
        if self.truth(where.this, _targets(self.exp, node.this, node.args.get("tables"))) == TRUE:
            found.unguarded.append(f"{kind} whose WHERE clause is always true")

    def truth(self, condition: Any, targets: set[str]) -> str:
        """TRUE when the condition holds for every row (constant, or x = x …), FALSE when for none, else ROWS.

        AND, OR, NOT and parentheses are folded here, without recursion (an OR chain of
        thousands of terms is a tree that deep); each other term is judged on its own.
        """
        exp = self.exp
        values: dict[int, str] = {}
        stack: list[tuple[Any, bool]] = [(condition, False)]
        visited = 0
        while stack:
            node, expanded = stack.pop()
            visited += 1
            if visited & 63 == 0:
                self.tick()
            if not isinstance(node, (exp.And, exp.Or, exp.Not, exp.Paren)):
                values[id(node)] = self.term(node, targets)
                continue
            children = [node.this] if isinstance(node, (exp.Not, exp.Paren)) else [node.left, node.right]
            if not expanded:
                stack.append((node, True))
                stack.extend((child, False) for child in children)
                continue
            results = [values.pop(id(child)) for child in children]
            if isinstance(node, exp.Paren):
                value = results[0]
            elif isinstance(node, exp.Not):
                value = {TRUE: FALSE, FALSE: TRUE}.get(results[0], ROWS)
            elif isinstance(node, exp.And):
                value = FALSE if FALSE in results else TRUE if results == [TRUE, TRUE] else ROWS
            else:
                value = TRUE if TRUE in results else FALSE if results == [FALSE, FALSE] else ROWS
                if value == ROWS and not isinstance(node.parent, exp.Or):
                    value = self.complements(node)
            values[id(node)] = value
        return values[id(condition)]

    def term(self, node: Any, targets: set[str]) -> str:
        """One comparison or other term of a WHERE condition."""
        exp = self.exp
        size = 0
        row_dependent = False
        for inner in node.walk():
            size += 1
            if isinstance(inner, exp.Column) and (not inner.table or inner.table.lower() in targets):
                row_dependent = True
            if row_dependent and size > MAX_SIMPLIFY_NODES:
                break
        if not row_dependent:
            # No column of the rows: the same for every row, so it narrows nothing, unless it is false.
            return FALSE if size <= MAX_SIMPLIFY_NODES and self.is_false(self.simplify(node)) else TRUE
        if self.column_against_values(node, targets):
            return ROWS  # id = 1, id IN (1, 2, …), name LIKE 'a%': the common case, decided without simplifying
        if size > MAX_SIMPLIFY_NODES:
            raise TooComplex(f"a WHERE term has over {MAX_SIMPLIFY_NODES} nodes, the most a statement rule simplifies")
        simplified = self.simplify(node)
        if isinstance(simplified, exp.Boolean):
            return TRUE if simplified.this else FALSE
        if isinstance(simplified, exp.Null):
            return FALSE
        if isinstance(simplified, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) and simplified.this == simplified.expression:
            return TRUE  # x = x: every row where x is not null
        if isinstance(simplified, exp.In) and len(simplified.expressions) == 1 and simplified.this == simplified.expressions[0]:
            return TRUE
        if isinstance(simplified, exp.Like) and isinstance(simplified.expression, exp.Literal) and simplified.expression.this == "%":
            return TRUE
        return ROWS

    def column_against_values(self, node: Any, targets: set[str]) -> bool:
        """A column of the rows compared with values only (literals, parameters), never always true."""
        exp = self.exp
        values = (exp.Literal, exp.Placeholder, exp.Parameter, exp.Null, exp.Boolean)

        def row_column(side: Any) -> bool:
            return isinstance(side, exp.Column) and (not side.table or side.table.lower() in targets)

        if isinstance(node, exp.In):
            return row_column(node.this) and bool(node.expressions) and all(isinstance(e, values) for e in node.expressions)
        if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is)):
            left, right = node.this, node.expression
            return (row_column(left) and isinstance(right, values)) or (row_column(right) and isinstance(left, values))
        if isinstance(node, (exp.Like, exp.ILike)):
            pattern = node.expression
            return row_column(node.this) and isinstance(pattern, (exp.Literal, exp.Placeholder)) and str(pattern.this).strip("%") != ""
        return False

    def complements(self, node: Any) -> str:
        """x IS NULL OR x IS NOT NULL, a OR NOT a: an OR chain holding a term and its negation."""
        exp = self.exp
        terms = [term for term in node.flatten() if not isinstance(term, exp.Or)]
        if len(terms) > 64:
            return ROWS
        keys = set()
        for term in terms:
            term = term.unnest()
            if _size(term, MAX_SIMPLIFY_NODES) > MAX_SIMPLIFY_NODES:
                return ROWS
            if isinstance(term, exp.Not):
                base, negated = term.this.unnest(), True
            elif term.args.get("negate"):  # x IS NOT NULL, x NOT IN …, x NOT LIKE …
                base, negated = term.copy(), True
                base.set("negate", None)
            else:
                base, negated = term, False
            key = base.sql(dialect=self.dialect)
            if (key, not negated) in keys:
                return TRUE
            keys.add((key, negated))
        return ROWS

    def simplify(self, node: Any) -> Any:
        try:
            return self._simplify(node.copy(), dialect=self.dialect)
        except RecursionError:
            raise TooComplex("a WHERE condition nests too deeply to check") from None
        except Exception:  # noqa: BLE001 - the simplifier's failure leaves the term as written
            return node

    def is_false(self, node: Any) -> bool:
        exp = self.exp
        if isinstance(node, exp.Boolean):
            return not node.this
        if isinstance(node, exp.Null):
            return True
        if isinstance(node, exp.Literal) and not self.pg:  # MySQL: WHERE 0, WHERE '0'
            try:
                return float(_numeric_prefix(node.this)) == 0
            except ValueError:
                return True
        return False



def _numeric_prefix(text: str) -> str:
    text = text.strip()
    end = 0
    for index, char in enumerate(text):
        if char.isdigit() or char in ".eE+-":
            end = index + 1
        else:
            break
    return text[:end] or "0"


def _size(node: Any, limit: int) -> int:
    size = 0
    for _ in node.walk():
        size += 1
        if size > limit:
            break
    return size


def _targets(exp: Any, table: Any, tables: Any = None) -> set[str]:
    """Names and aliases of the tables a statement writes (its target and, on MySQL, joined ones)."""
    names: set[str] = set()
    candidates = [table] + list(tables or [])
    if table is not None:
        candidates += [join.this for join in table.args.get("joins") or []]
    for candidate in candidates:
        if isinstance(candidate, exp.Table):
            names.add(candidate.name.lower())
            if candidate.alias:
                names.add(candidate.alias.lower())
    return names

