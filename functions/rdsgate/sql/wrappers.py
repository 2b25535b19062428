"""Statements that hold other statements, for the statement classifier: EXPLAIN, ANALYZE,
MariaDB's SET STATEMENT … FOR, COPY (query), DO blocks and MERGE's actions.

Each one is classified by what it runs: EXPLAIN ANALYZE runs its statement, a plain EXPLAIN
does not (but must still be classifiable); a MERGE's WHEN actions are INSERT, UPDATE or
DELETE, judged on the ON condition. Mixed into ``classify._Analyser``.
"""

from __future__ import annotations

from typing import Any

from .lexer import STRING, WORD, Token
from .syntax import (
    _NET_WORDS,
    _STATEMENT_STARTERS,
    PARSE_FAILED,
    TRUE,
    Unclassifiable,
    _Found,
    _matching,
    _name,
    _span,
    _split_commas,
)
from .where import _targets


class Wrappers:
    def explain(self, text: str, toks: list[Token], found: _Found, in_body: bool) -> None:
        """EXPLAIN runs nothing; EXPLAIN ANALYZE runs its statement, which is classified as such."""
        found.add("EXPLAIN")
        i, analyze = 1, False
        if self.pg and len(toks) > 1 and toks[1].text == "(":
            close = _matching(toks, 1)
            for option in _split_commas(toks[2:close]):
                if option and option[0].text in ("ANALYZE", "ANALYSE"):
                    value = option[1].text.upper().strip("'") if len(option) > 1 else "TRUE"
                    analyze = analyze or value not in ("FALSE", "OFF", "0", "NO")
            i = close + 1
        while i < len(toks) and toks[i].kind == WORD:
            word = toks[i].text
            if word in ("ANALYZE", "ANALYSE"):
                analyze = True
                i += 1
            elif word in ("VERBOSE", "EXTENDED", "PARTITIONS"):
                i += 1
            elif word == "FORMAT" and not self.pg and i + 2 < len(toks) and toks[i + 1].text == "=":
                i += 3
            else:
                break
        rest = toks[i:]
        if not rest:
            raise Unclassifiable(PARSE_FAILED)
        starts_statement = rest[0].text == "(" or (rest[0].kind == WORD and rest[0].text in _STATEMENT_STARTERS)
        if not starts_statement:
            if self.pg or (rest[0].kind == WORD and rest[0].text == "FOR"):
                if self.pg:
                    raise Unclassifiable(PARSE_FAILED)
                return  # EXPLAIN FOR CONNECTION n
            if any(t.kind == WORD and t.text in _NET_WORDS for t in rest):
                raise Unclassifiable(PARSE_FAILED)
            return  # MySQL's EXPLAIN/DESCRIBE of a table: its columns
        if analyze:
            self.statement(text, rest, found, in_body)
        else:
            self.statement(text, rest, _Found(), in_body)  # must be classifiable, but does not run

    def analyze(self, text: str, toks: list[Token], found: _Found, in_body: bool) -> None:
        """ANALYZE of tables; MariaDB's ANALYZE <statement> runs the statement."""
        found.add("ANALYZE")
        if self.pg:
            if any(t.kind == WORD and t.text in _NET_WORDS | {"SELECT", "WITH"} for t in toks[1:]):
                raise Unclassifiable(PARSE_FAILED)
            return
        i = 1
        if i + 2 < len(toks) and toks[i].text == "FORMAT" and toks[i + 1].text == "=":
            i += 3
        rest = toks[i:]
        if rest and rest[0].kind == WORD and rest[0].text in ("TABLE", "NO_WRITE_TO_BINLOG", "LOCAL"):
            return
        if not rest:
            raise Unclassifiable(PARSE_FAILED)
        self.statement(text, rest, found, in_body)

    def set_statement(self, text: str, toks: list[Token], found: _Found, in_body: bool) -> None:
        found.add("SET")
        depth = 0
        for index, token in enumerate(toks):
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
            elif depth == 0 and token.kind == WORD and token.text == "FOR" and index + 1 < len(toks):
                self.statement(text, toks[index + 1 :], found, in_body)
                return
        raise Unclassifiable(PARSE_FAILED)

    def copy(self, text: str, toks: list[Token], found: _Found) -> None:
        found.add("COPY")
        words = {t.text for t in toks if t.kind == WORD}
        if "PROGRAM" in words:
            raise Unclassifiable("COPY … PROGRAM runs a shell command, which cannot be checked")
        if len(toks) > 1 and toks[1].text == "(":
            close = _matching(toks, 1)
            inner = toks[2:close]
            if not inner:
                raise Unclassifiable(PARSE_FAILED)
            self.statement(text, inner, found, in_body=False)
            return
        depth = 0
        for token in toks[1:]:
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
            elif depth == 0 and token.kind == WORD and token.text in ("FROM", "TO"):
                found.add("INSERT" if token.text == "FROM" else "SELECT")
                return
        raise Unclassifiable(PARSE_FAILED)

    def do(self, text: str, toks: list[Token], found: _Found) -> None:
        found.add("DO")
        if not self.pg:  # MySQL's DO evaluates expressions
            self.parsed_text("SELECT " + _span(text, toks[1:]), found, in_body=False)
            return
        language, body = "plpgsql", None
        i = 1
        while i < len(toks):
            token = toks[i]
            if token.kind == WORD and token.text == "LANGUAGE" and i + 1 < len(toks):
                language = _name(toks[i + 1], self.dialect)
                i += 2
            elif token.kind == STRING and body is None:
                body = token
                i += 1
            else:
                raise Unclassifiable(PARSE_FAILED)
        if body is None:
            raise Unclassifiable(PARSE_FAILED)
        if language != "plpgsql":
            raise Unclassifiable(f"a DO block in language {language} cannot be checked")
        self.body(body, found, language)

    def merge(self, node: Any, found: _Found, actions: set[int]) -> None:
        exp = self.exp
        whens = node.args.get("whens")
        target = _targets(exp, node.this)
        for when in whens.expressions if whens is not None else ():
            then = when.args.get("then")
            if isinstance(then, exp.Insert):
                found.add("INSERT")
                actions.add(id(then))
                continue
            if isinstance(then, exp.Update):
                kind = "UPDATE"
                actions.add(id(then))
            elif isinstance(then, exp.Var) and str(then.this).upper() == "DELETE":
                kind = "DELETE"
            elif isinstance(then, exp.Var) and "NOTHING" in str(then.this).upper():
                continue
            else:
                raise Unclassifiable("a MERGE action cannot be classified, so the rule cannot be checked")
            found.add(kind)
            if when.args.get("source"):  # WHEN NOT MATCHED BY SOURCE: rows the ON condition did not match
                found.unguarded.append(f"MERGE … {kind} of rows not matched by the source")
                continue
            conditions = [c for c in (node.args.get("on"), when.args.get("condition")) if c is not None]
            if all(self.truth(condition, target) == TRUE for condition in conditions):
                found.unguarded.append(f"MERGE … {kind} whose ON condition is always true")
