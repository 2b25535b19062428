"""Statement classification for guardrails: what kinds of statement a request would run.

``classify(sql, dialect)`` answers the statement kinds the SQL runs, now or later (the
statements inside wrappers and bodies count: DO blocks, EXPLAIN ANALYZE, MERGE actions,
data-modifying CTEs, and the code that CREATE FUNCTION/PROCEDURE/RULE/TRIGGER/EVENT
installs), and the UPDATE/DELETEs whose WHERE clause does not narrow the rows. Whatever
it cannot see into raises ``Unclassifiable`` (dynamic SQL, executable comments, code in
other languages, triggers that call existing functions, SQL the parser cannot read): a
statement rule refuses what it cannot check. SQL over the checking limits raises
``TooComplex`` naming the limit, before any parsing; parsing itself runs under a step and
time budget, so a check always ends quickly.

Statement boundaries, strings, comments and bodies are read by ``sql.lexer`` with the
server's lexical rules; sqlglot (imported here, and only when a statement rule applies)
parses one statement at a time. This module holds the limits and the statement-level
reading; the analyser's other jobs are mixed in from ``wrappers`` (EXPLAIN, COPY, DO,
MERGE …), ``routines`` (installed and procedural code) and ``where`` (WHERE clauses). Calls of existing functions (``SELECT f()``, ``CALL p()``)
cannot be seen into: that is a matter of the database user's privileges.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from . import lexer
from .lexer import OP, SEMI, WORD, Token, TooComplex
from .routines import Routines
from .syntax import (  # noqa: F401 - _IMPLIED, _NET_WORDS, _SIMPLE: the kinds a statement rule may name (tests)
    _CODE_OBJECTS,
    _CROSS_CHECKED,
    _DDL_WORDS,
    _IMPLIED,
    _KIND_BY_CLASS,
    _NET_WORDS,
    _QUERY_WORDS,
    _ROOT_CLASSES,
    _SIMPLE,
    _SIMPLE_BY_DIALECT,
    _SYNONYMS,
    DYNAMIC_SQL_FUNCTIONS,
    PARSE_FAILED,
    Unclassifiable,
    _Found,
    _is_compound_start,
    _object_type,
    _span,
    _without_plpgsql_into,
)
from .where import MAX_SIMPLIFY_NODES, WhereChecks  # noqa: F401 - a checking limit, named with the others
from .wrappers import Wrappers

__all__ = ["Classification", "TooComplex", "Unclassifiable", "classify", "LIMITS"]

# Checking limits. The API accepts 1 MiB requests; statement rules check at most this much.
MAX_SQL_CHARS = 65_536
MAX_TOKENS = 8_192  # in the statement, bodies included
MAX_DEPTH = 24  # parentheses, brackets and CASE … END nested in one another
MAX_RUN = 32  # NOT NOT …, - - …, x[1][2]…
MAX_BODY_NESTING = 4  # a DO block inside a function body inside …
CHECK_SECONDS = 0.5  # wall-clock budget of one check, parsing included
PARSE_STEPS_PER_TOKEN = 32  # parser steps (token advances, backtracking included) per token
LIMITS = {
    "max_sql_chars": MAX_SQL_CHARS,
    "max_tokens": MAX_TOKENS,
    "max_depth": MAX_DEPTH,
    "max_run": MAX_RUN,
    "max_body_nesting": MAX_BODY_NESTING,
    "check_seconds": CHECK_SECONDS,
}


class _OverBudget(Exception):
    pass


@dataclass(frozen=True)
class Classification:
    """The statement kinds the SQL runs (now or, for installed code, later) and its unguarded writes."""

    kinds: frozenset[str]
    unguarded: tuple[str, ...]  # e.g. "DELETE without a WHERE clause"


def classify(sql: str, dialect: str) -> Classification:
    """Classify ``sql`` for ``dialect`` ("postgres" or "mysql"); raises Unclassifiable or TooComplex."""
    if len(sql) > MAX_SQL_CHARS:
        raise TooComplex(f"the sql is {len(sql):,} characters, over the {MAX_SQL_CHARS:,} a statement rule checks")
    analyser = _Analyser(dialect)
    found = _Found()
    analyser.script(sql, analyser.lex(sql), found, in_body=False)
    if not found.kinds:
        raise Unclassifiable("the sql holds no statement")
    return Classification(frozenset(found.kinds), tuple(found.unguarded))


class _Analyser(Wrappers, Routines, WhereChecks):
    """One check: the lexing and parsing budget, and the statement-level reading (the mixins read the rest)."""

    def __init__(self, dialect: str) -> None:
        import sqlglot
        from sqlglot import exp
        from sqlglot.dialects.dialect import Dialect
        from sqlglot.optimizer.simplify import simplify

        self.sqlglot = sqlglot
        self.exp = exp
        self._simplify = simplify
        self.dialect = dialect
        self.pg = dialect == "postgres"
        self.glot = Dialect.get_or_raise(dialect)
        self.deadline = time.perf_counter() + CHECK_SECONDS
        self.tokens_seen = 0
        self.steps_left = 4096
        self.level = 0

    # -- reading text --------------------------------------------------------------------

    def lex(self, text: str) -> list[Token]:
        try:
            tokens = lexer.lex(text, self.dialect, MAX_TOKENS - self.tokens_seen)
        except lexer.TooComplex:
            raise TooComplex(f"the sql has more than {MAX_TOKENS:,} tokens, the most a statement rule checks") from None
        except lexer.LexError as exc:
            raise Unclassifiable(str(exc) if isinstance(exc, lexer.Executable) or "NUL" in str(exc) else PARSE_FAILED) from None
        self.tokens_seen += len(tokens)
        self.steps_left += PARSE_STEPS_PER_TOKEN * len(tokens)
        depth = lexer.max_depth(tokens)
        if depth > MAX_DEPTH:
            raise TooComplex(f"the sql nests parentheses, brackets or CASE {depth} deep, over the {MAX_DEPTH} a statement rule checks")
        run = lexer.longest_run(tokens)
        if run > MAX_RUN:
            raise TooComplex(f"the sql chains {run} prefix operators or subscripts, over the {MAX_RUN} a statement rule checks")
        return tokens

    def tick(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TooComplex(f"the sql took over {CHECK_SECONDS} s to check, the most a statement rule allows")

    @contextmanager
    def deeper(self) -> Iterator[None]:
        """Around the analysis of a body: bodies nest at most MAX_BODY_NESTING deep."""
        self.level += 1
        if self.level > MAX_BODY_NESTING:
            raise TooComplex(f"the sql nests bodies more than {MAX_BODY_NESTING} deep, the most a statement rule checks")
        try:
            yield
        finally:
            self.level -= 1

    # -- statements ----------------------------------------------------------------------

    def script(self, text: str, tokens: list[Token], found: _Found, in_body: bool) -> None:
        """Every statement of a text (split at semicolons)."""
        if not self.pg and tokens and _is_compound_start(tokens):
            found.add("DO")  # an anonymous block, as PostgreSQL's DO
            self.procedural(text, tokens, found)
            return
        for statement in self.split(tokens):
            self.statement(text, statement, found, in_body)

    def split(self, tokens: list[Token]) -> list[list[Token]]:
        """Statements at semicolons, except that a routine, trigger or event whose body holds
        semicolons (MySQL's BEGIN … END, PostgreSQL's BEGIN ATOMIC … END) runs to the end."""
        statements = []
        start = 0
        for index, token in enumerate(tokens):
            if token.kind != SEMI:
                continue
            if index > start and self.has_block_body(tokens, start, index):
                break
            if index > start:
                statements.append(tokens[start:index])
            start = index + 1
        if start < len(tokens):
            statements.append(tokens[start:])
        return statements

    def has_block_body(self, tokens: list[Token], start: int, stop: int) -> bool:
        first = tokens[start]
        if first.kind != WORD or first.text not in ("CREATE", "ALTER"):
            return False
        kind, at = _object_type(tokens, start + 1)
        if at >= stop:
            return False
        if self.pg:
            return kind in ("FUNCTION", "PROCEDURE") and any(
                tokens[i].text == "BEGIN" and tokens[i + 1].text == "ATOMIC" for i in range(at, stop - 1)
            )
        return kind in ("FUNCTION", "PROCEDURE", "TRIGGER", "EVENT")

    def statement(self, text: str, toks: list[Token], found: _Found, in_body: bool) -> None:
        self.tick()
        first = toks[0]
        if first.kind == OP and first.text == "(":
            self.parsed(text, toks, found, in_body)
            return
        if first.kind != WORD:
            raise Unclassifiable(PARSE_FAILED)
        word = first.text
        if word in _QUERY_WORDS:
            self.parsed(text, toks, found, in_body)
        elif word == "CREATE":
            self.create(text, toks, found)
        elif word == "ALTER":
            self.alter(text, toks, found)
        elif word in _DDL_WORDS:
            self.parsed(text, toks, found, in_body)
        elif word in ("EXPLAIN", "DESCRIBE", "DESC"):
            self.explain(text, toks, found, in_body)
        elif word in ("ANALYZE", "ANALYSE"):
            self.analyze(text, toks, found, in_body)
        elif word == "DO":
            self.do(text, toks, found)
        elif word == "COPY" and self.pg:
            self.copy(text, toks, found)
        elif word == "REPLACE" and not self.pg:
            found.add("REPLACE")
            self.parsed_text("INSERT " + _span(text, toks[1:]), found, in_body)
        elif word == "LOAD" and not self.pg:
            found.add("LOAD")
            if len(toks) > 1 and toks[1].kind == WORD and toks[1].text in ("DATA", "XML"):
                found.add("INSERT")
                if any(t.kind == WORD and t.text == "REPLACE" for t in toks):
                    found.add("DELETE")
        elif word == "CALL":
            found.add("CALL")
            self.dynamic_calls(toks)
        elif word in ("EXECUTE", "PREPARE"):
            raise Unclassifiable(f"{word} runs a prepared or dynamic statement, which cannot be checked")
        elif word == "SET" and not self.pg and len(toks) > 1 and toks[1].kind == WORD and toks[1].text == "STATEMENT":
            self.set_statement(text, toks, found, in_body)  # MariaDB: SET STATEMENT … FOR <statement>
        elif word == "BEGIN" and not self.pg and len(toks) > 2 and toks[1].text == "NOT" and toks[2].text == "ATOMIC":
            found.add("DO")
            self.procedural(text, toks, found)
        elif word in _SIMPLE_BY_DIALECT[self.dialect]:
            found.add(_SYNONYMS.get(word, word))
            self.dynamic_calls(toks)
        else:
            raise Unclassifiable(f"the sql could not be parsed ({word} is not a statement it classifies), so the rule cannot be checked")

    def parsed_text(self, text: str, found: _Found, in_body: bool) -> None:
        """A statement built here (REPLACE as INSERT, PERFORM as SELECT …), lexed afresh."""
        toks = self.lex(text)
        if not toks:
            raise Unclassifiable(PARSE_FAILED)
        self.parsed(text, toks, found, in_body)

    def parsed(self, text: str, toks: list[Token], found: _Found, in_body: bool) -> None:
        """One statement parsed by sqlglot, classified by its tree."""
        stripped = _without_plpgsql_into(toks) if in_body and self.pg else toks
        if stripped is not toks:
            text = " ".join(text[t.start : t.end] for t in stripped)
            toks = self.lex(text)
        else:
            text = text[toks[0].start : toks[-1].end]
            if toks[0].start:
                toks = [Token(t.kind, t.text, t.start - toks[0].start, t.end - toks[0].start) for t in toks]
        self.dynamic_calls(toks)
        trees = self.parse(text, toks)
        for tree in trees:
            self.tree(tree, toks, found, in_body)

    def parse(self, text: str, toks: list[Token]) -> list[Any]:
        glot = self.glot
        try:
            raw = glot.tokenize(text)
        except Exception:  # noqa: BLE001 - whatever sqlglot's tokenizer cannot read is unparseable
            raise Unclassifiable(PARSE_FAILED) from None
        self.cross_check(toks, raw)
        parser = glot.parser()
        advance = parser._advance
        state = {"steps": self.steps_left}
        deadline = self.deadline

        def budgeted_advance(times: int = 1) -> None:
            steps = state["steps"] - 1
            state["steps"] = steps
            if steps < 0 or (steps & 15 == 0 and time.perf_counter() > deadline):
                raise _OverBudget
            advance(times)

        parser._advance = budgeted_advance
        try:
            trees = parser.parse(raw, text)
        except _OverBudget:
            self.tick()
            raise TooComplex("the sql needs more parsing steps than a statement rule allows") from None
        except RecursionError:
            raise TooComplex("the sql nests too deeply to check") from None
        except Exception:  # noqa: BLE001 - ParseError, TokenError and whatever else sqlglot raises
            raise Unclassifiable(PARSE_FAILED) from None
        finally:
            self.steps_left = max(state["steps"], 0)
        trees = [tree for tree in trees if tree is not None]
        if not trees:
            raise Unclassifiable(PARSE_FAILED)
        return trees

    def cross_check(self, toks: list[Token], raw: list[Any]) -> None:
        """The parser must see each statement keyword as code as often as the server does."""
        ours = Counter(t.text for t in toks if t.kind == WORD and t.text in _CROSS_CHECKED)
        if not ours:
            return
        theirs: Counter[str] = Counter()
        for token in raw:
            name = token.token_type.name
            if name.endswith("STRING") or name == "IDENTIFIER":
                continue
            for word in token.text.upper().split():  # sqlglot has multi-word tokens (WITH TIME ZONE, ORDER BY)
                if word in ours:
                    theirs[word] += 1
        for word, count in ours.items():
            if theirs[word] < count:
                raise Unclassifiable("the parser would read the sql differently from the server, so the rule cannot be checked")

    def tree(self, root: Any, toks: list[Token], found: _Found, in_body: bool) -> None:
        exp = self.exp
        name = type(root).__name__
        if isinstance(root, exp.Command):
            self.command(root, toks, found)
            return
        if name not in _ROOT_CLASSES:
            raise Unclassifiable(f"the sql could not be parsed ({toks[0].text} is not a statement it classifies), so the rule cannot be checked")
        if name == "Describe":
            raise Unclassifiable(PARSE_FAILED)  # EXPLAIN is read before parsing; a nested one is not expected
        if name == "Values":
            found.add("SELECT")
        merge_actions: set[int] = set()
        for index, node in enumerate(root.walk()):
            if index & 255 == 0:
                self.tick()
            cls = type(node).__name__
            kind = _KIND_BY_CLASS.get(cls)
            if kind is not None:
                found.add(kind)
                if cls == "Select" and node.args.get("into") is not None and self.pg and not in_body:
                    found.add("CREATE")  # SELECT … INTO creates a table
                elif cls in ("Update", "Delete") and id(node) not in merge_actions:
                    self.check_where(node, kind, found)
                elif cls == "Insert":
                    conflict = node.args.get("conflict")
                    if conflict is not None and (conflict.args.get("expressions") or "UPDATE" in str(conflict.args.get("action") or "").upper()):
                        found.add("UPDATE")  # ON CONFLICT DO UPDATE / ON DUPLICATE KEY UPDATE
                elif cls == "Merge":
                    self.merge(node, found, merge_actions)
                elif cls == "TruncateTable":
                    found.unguarded.append("TRUNCATE (it removes every row)")
                elif cls == "Create" and str(node.args.get("kind") or "").upper() in _CODE_OBJECTS:
                    raise Unclassifiable(f"CREATE {node.args['kind']} installs code that cannot be checked here")
                elif cls == "Describe":
                    raise Unclassifiable(PARSE_FAILED)
            elif cls == "Command":
                raise Unclassifiable(f"{node.this} inside a statement cannot be classified, so the rule cannot be checked")
            elif cls == "Anonymous":
                function = str(node.this or "").lower()
                if function in DYNAMIC_SQL_FUNCTIONS:
                    raise Unclassifiable(f"{function}() runs SQL text, which cannot be checked")

    def command(self, root: Any, toks: list[Token], found: _Found) -> None:
        """A statement sqlglot kept as raw text: DDL is classified by its words, anything else refused."""
        word = toks[0].text
        if word not in _DDL_WORDS or str(root.this).upper() != word:
            raise Unclassifiable(f"the sql could not be parsed ({word} is not a statement it classifies), so the rule cannot be checked")
        found.add(word)
        for index, token in enumerate(toks[1:], start=1):
            if token.kind != WORD:
                continue
            if token.text in ("EXECUTE", "PREPARE", "DO", "CALL", "INSERT", "MERGE", "REPLACE", "TRUNCATE", "COPY", "LOAD"):
                raise Unclassifiable(f"{word} … {token.text} cannot be classified, so the rule cannot be checked")
            if token.text in ("UPDATE", "DELETE"):
                if toks[index - 1].kind == WORD and toks[index - 1].text == "ON":
                    continue  # a foreign key's ON DELETE / ON UPDATE action
                raise Unclassifiable(f"{word} … {token.text} cannot be classified, so the rule cannot be checked")
            if token.text in ("SELECT", "GRANT", "REVOKE", "CREATE", "DROP", "ALTER"):
                found.add(token.text)
        self.dynamic_calls(toks)

    def dynamic_calls(self, toks: list[Token]) -> None:
        for index, token in enumerate(toks[:-1]):
            if token.kind == WORD and token.text.lower() in DYNAMIC_SQL_FUNCTIONS and toks[index + 1].text == "(":
                raise Unclassifiable(f"{token.text.lower()}() runs SQL text, which cannot be checked")

