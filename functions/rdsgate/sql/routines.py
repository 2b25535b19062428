"""Installed and procedural code, for the statement classifier: what CREATE/ALTER FUNCTION,
PROCEDURE, TRIGGER, EVENT and RULE install, and the statements inside PL/pgSQL and MySQL
stored-program bodies.

A body is read through its control statements (IF, LOOP, WHILE, FOR, CASE, DECLARE,
handlers, labels) down to the SQL statements it runs, which are classified as any other;
every statement keyword anywhere in a body counts too, as a safety net. Code in other
languages, dynamic SQL and object files are refused. Mixed into ``classify._Analyser``.
"""

from __future__ import annotations

from . import lexer
from .lexer import OP, QUOTED, STRING, WORD, Token
from .syntax import (
    _ALTER_CODE,
    _CODE_INSTALLERS,
    _CODE_OBJECTS,
    _NET_WORDS,
    _QUERY_WORDS,
    _SESSION_SET,
    _TYPE_WORDS,
    DYNAMIC_SQL_FUNCTIONS,
    PARSE_FAILED,
    Unclassifiable,
    _find_text,
    _find_word,
    _Found,
    _handler_statement,
    _is_assignment,
    _matching,
    _mysql_labels,
    _name,
    _object_type,
    _span,
    _split,
    _through,
)


class Routines:
    def create(self, text: str, toks: list[Token], found: _Found) -> None:
        found.add("CREATE")
        kind, at = _object_type(toks, 1)
        if kind == "AGGREGATE" and at + 1 < len(toks) and toks[at + 1].text == "FUNCTION":
            kind, at = "FUNCTION", at + 1  # MariaDB's CREATE AGGREGATE FUNCTION
        if kind == "EVENT" and at + 1 < len(toks) and toks[at + 1].text == "TRIGGER":
            raise Unclassifiable("CREATE EVENT TRIGGER runs an existing function on later DDL; it cannot be checked")
        for index, token in enumerate(toks[1:], start=1):  # CREATE SCHEMA … CREATE TRIGGER …
            if token.kind == WORD and token.text == "CREATE" and _object_type(toks, index + 1)[0] in _CODE_OBJECTS | _CODE_INSTALLERS:
                raise Unclassifiable("a schema element that installs code cannot be checked")
        if kind in _CODE_INSTALLERS:
            raise Unclassifiable(f"CREATE {kind} installs code that cannot be checked")
        if not self.pg and kind in ("TABLE", "DATABASE", "SCHEMA", "SEQUENCE") and _find_word(toks[:at], "REPLACE", 1) > 0:
            found.add("DROP")  # MariaDB's CREATE OR REPLACE TABLE drops the table that exists, rows and all
        if kind in ("FUNCTION", "PROCEDURE"):
            (self.pg_routine if self.pg else self.my_routine)(text, toks, at, found)
        elif kind == "TRIGGER":
            if self.pg:
                raise Unclassifiable("CREATE TRIGGER makes an existing function run on later writes; it cannot be checked")
            self.my_trigger(text, toks, at, found)
        elif kind == "EVENT":
            if self.pg:
                raise Unclassifiable(PARSE_FAILED)
            self.my_event(text, toks, at, found)
        elif kind == "RULE":
            if not self.pg:
                raise Unclassifiable(PARSE_FAILED)
            self.pg_rule(text, toks, at, found)
        else:
            self.parsed(text, toks, found, in_body=False)

    def alter(self, text: str, toks: list[Token], found: _Found) -> None:
        found.add("ALTER")
        kind, at = _object_type(toks, 1)
        if kind == "EVENT" and not self.pg:
            do = _find_word(toks, "DO", at)
            if do < 0:
                raise Unclassifiable("ALTER EVENT without a body can enable code that cannot be checked")
            with self.deeper():
                self.procedural(text, toks[do + 1 :], found)
            return
        if kind in _ALTER_CODE or kind == "EVENT":
            raise Unclassifiable(f"ALTER {kind} changes code that cannot be checked")
        for index, token in enumerate(toks):
            if token.kind == WORD and token.text == "ENABLE":
                following = [t.text for t in toks[index + 1 : index + 3]]
                if "TRIGGER" in following or "RULE" in following:
                    raise Unclassifiable("enabling a trigger or rule runs code that cannot be checked")
        self.parsed(text, toks, found, in_body=False)

    def pg_routine(self, text: str, toks: list[Token], at: int, found: _Found) -> None:
        open_paren = _find_text(toks, "(", at)
        if open_paren < 0:
            raise Unclassifiable(PARSE_FAILED)
        i = _matching(toks, open_paren) + 1
        language, body, atomic, expression = None, None, None, None
        while i < len(toks):
            token = toks[i]
            if token.text == "(" and token.kind == OP:
                i = _matching(toks, i) + 1
                continue
            if token.kind == WORD and token.text == "LANGUAGE" and i + 1 < len(toks):
                language = _name(toks[i + 1], self.dialect)
                i += 2
                continue
            if token.kind == WORD and token.text == "AS" and i + 1 < len(toks) and toks[i + 1].kind == STRING:
                if body is not None or (i + 2 < len(toks) and toks[i + 2].text == ","):
                    raise Unclassifiable("a function defined by an object file cannot be checked")
                body = toks[i + 1]
                i += 2
                continue
            if token.kind == WORD and token.text == "BEGIN" and i + 1 < len(toks) and toks[i + 1].text == "ATOMIC":
                atomic = toks[i + 2 :]
                break
            if token.kind == WORD and token.text == "RETURN":
                expression = toks[i + 1 :]
                break
            i += 1
        with self.deeper():
            if atomic is not None:  # SQL-standard body: BEGIN ATOMIC statements; … END
                if not atomic or atomic[-1].text != "END":
                    raise Unclassifiable(PARSE_FAILED)
                for statement in _split(atomic[:-1]):
                    self.statement(text, statement, found, in_body=False)
            elif expression is not None:  # SQL-standard body: RETURN expression
                self.parsed_text("SELECT " + _span(text, expression), found, in_body=False)
            elif body is None:
                raise Unclassifiable(PARSE_FAILED)
            elif (language or "sql") == "sql":
                source = self.string(body)
                self.script(source, self.lex(source), found, in_body=False)
            elif language == "plpgsql":
                source = self.string(body)
                self.procedural(source, self.lex(source), found)
            else:
                raise Unclassifiable(f"a function in language {language} cannot be checked")

    def my_routine(self, text: str, toks: list[Token], at: int, found: _Found) -> None:
        if _find_word(toks, "SONAME", at) >= 0:
            raise Unclassifiable("a loadable function (SONAME) cannot be checked")
        open_paren = _find_text(toks, "(", at)
        if open_paren < 0:
            raise Unclassifiable(PARSE_FAILED)
        i = _matching(toks, open_paren) + 1
        n = len(toks)
        while i < n:
            word = toks[i].text if toks[i].kind == WORD else None
            if word == "RETURNS":
                i += 2  # the type's name
                if i < n and toks[i].text == "(":
                    i = _matching(toks, i) + 1
                while i < n and toks[i].kind == WORD and toks[i].text in _TYPE_WORDS:
                    i += {"CHARSET": 2, "COLLATE": 2, "CHARACTER": 3}.get(toks[i].text, 1)
            elif word in ("COMMENT", "LANGUAGE"):
                i += 2
            elif word == "NOT" and i + 1 < n and toks[i + 1].text == "DETERMINISTIC":
                i += 2
            elif word == "DETERMINISTIC":
                i += 1
            elif word in ("CONTAINS", "NO") and i + 1 < n and toks[i + 1].text == "SQL":
                i += 2
            elif word in ("READS", "MODIFIES") and i + 1 < n and toks[i + 1].text == "SQL":
                i += 3
            elif word == "SQL" and i + 1 < n and toks[i + 1].text == "SECURITY":
                i += 3
            else:
                break
        if i >= n:
            raise Unclassifiable(PARSE_FAILED)
        with self.deeper():
            self.procedural(text, toks[i:], found)

    def my_trigger(self, text: str, toks: list[Token], at: int, found: _Found) -> None:
        row = -1
        for index in range(at, len(toks) - 1):
            if toks[index].text == "EACH" and toks[index + 1].text == "ROW":
                row = index + 2
                break
        if row < 0:
            raise Unclassifiable(PARSE_FAILED)
        if row < len(toks) and toks[row].text in ("FOLLOWS", "PRECEDES"):
            row += 2
        if row >= len(toks):
            raise Unclassifiable(PARSE_FAILED)
        with self.deeper():
            self.procedural(text, toks[row:], found)

    def my_event(self, text: str, toks: list[Token], at: int, found: _Found) -> None:
        do = _find_word(toks, "DO", at)
        if do < 0 or do + 1 >= len(toks):
            raise Unclassifiable(PARSE_FAILED)
        with self.deeper():
            self.procedural(text, toks[do + 1 :], found)

    def pg_rule(self, text: str, toks: list[Token], at: int, found: _Found) -> None:
        do = _find_word(toks, "DO", at)
        if do < 0 or do + 1 >= len(toks):
            raise Unclassifiable(PARSE_FAILED)
        i = do + 1
        if toks[i].kind == WORD and toks[i].text in ("ALSO", "INSTEAD"):
            i += 1
        rest = toks[i:]
        if not rest:
            raise Unclassifiable(PARSE_FAILED)
        if len(rest) == 1 and rest[0].kind == WORD and rest[0].text == "NOTHING":
            return
        if rest[0].text == "(":
            close = _matching(rest, 0)
            if close != len(rest) - 1:
                raise Unclassifiable(PARSE_FAILED)
            rest = rest[1:close]
        with self.deeper():
            for statement in _split(rest):
                self.statement(text, statement, found, in_body=False)

    def string(self, token: Token) -> str:
        source = lexer.string_value(token, self.dialect)
        if source is None:
            raise Unclassifiable("a body in an escaped or prefixed string cannot be checked")
        return source

    # -- procedural bodies (PL/pgSQL, MySQL stored programs) -----------------------------

    def body(self, token: Token, found: _Found, language: str) -> None:
        """A PL/pgSQL body held in a string constant (DO)."""
        source = self.string(token)
        with self.deeper():
            self.procedural(source, self.lex(source), found)

    def procedural(self, text: str, tokens: list[Token], found: _Found) -> None:
        """Every SQL statement inside a block of procedural code, found through its control statements.

        Every statement keyword anywhere in the body counts as a kind too (a safety net for
        whatever the control-statement reading below might miss), and dynamic SQL refuses it.
        """
        pg = self.pg
        dynamic = ("EXECUTE",) if pg else ("EXECUTE", "PREPARE", "DEALLOCATE")
        for index, token in enumerate(tokens):
            if token.kind != WORD:
                continue
            word = token.text
            if word in dynamic:
                raise Unclassifiable(f"the body runs dynamic SQL ({word}), which cannot be checked")
            following = tokens[index + 1].text if index + 1 < len(tokens) else ""
            if word.lower() in DYNAMIC_SQL_FUNCTIONS and following == "(":
                raise Unclassifiable(f"{word.lower()}() runs SQL text, which cannot be checked")
            if word in _NET_WORDS and not (following == "(" and word in ("REPLACE", "INSERT")):
                found.add(word)
        if not pg:
            tokens = _mysql_labels(tokens)
        declaring = False
        for segment in _split(tokens):
            self.tick()
            action, rest, declaring = self.strip(text, segment, declaring, found)
            if action == "statement":
                self.simple(text, rest, found)
            elif action == "query":
                self.statement(text, rest, found, in_body=True)
            elif action == "declare":  # PL/pgSQL: name [NO SCROLL] CURSOR [(args)] FOR|IS query
                cursor = _find_word(rest, "CURSOR", 0)
                if cursor >= 0:
                    query_at = max(_find_word(rest, "FOR", cursor), _find_word(rest, "IS", cursor))
                    if query_at < 0 or query_at + 1 >= len(rest):
                        raise Unclassifiable(PARSE_FAILED)
                    self.statement(text, rest[query_at + 1 :], found, in_body=True)

    def strip(self, text: str, seg: list[Token], declaring: bool, found: _Found) -> tuple[str, list[Token], bool]:
        """Peel control syntax off a segment: what is left is one statement, a declaration, or nothing."""
        pg = self.pg
        i, n = 0, len(seg)
        while i < n:
            token = seg[i]
            word = token.text if token.kind == WORD else None
            if pg and token.kind == OP and token.text == "<<":  # <<label>>
                if i + 2 < n and seg[i + 2].text == ">>":
                    i += 3
                    continue
                raise Unclassifiable(PARSE_FAILED)
            if not pg and token.kind in (WORD, QUOTED) and i + 1 < n and seg[i + 1].kind == OP and seg[i + 1].text == ":":
                i += 2  # label:
                continue
            if pg and token.kind == OP and token.text == "#" and i == 0:  # #variable_conflict use_column
                i += 3
                continue
            if word == "BEGIN":
                declaring = False
                i += 1
                if pg and i < n and seg[i].text == "ATOMIC":
                    i += 1
                elif not pg and i + 1 < n and seg[i].text == "NOT" and seg[i + 1].text == "ATOMIC":
                    i += 2
                continue
            if word == "DECLARE":
                if pg:
                    declaring = True
                    i += 1
                    continue
                handler = _handler_statement(seg, i)
                if handler is None:
                    cursor = _find_word(seg, "CURSOR", i)
                    if cursor < 0:
                        return "skip", [], declaring  # a variable or a condition
                    query_at = _find_word(seg, "FOR", cursor)
                    if query_at < 0 or query_at + 1 >= n:
                        raise Unclassifiable(PARSE_FAILED)
                    return "query", seg[query_at + 1 :], declaring
                i = handler
                continue
            if pg and declaring:
                return "declare", seg[i:], declaring
            if word in ("IF", "ELSIF", "ELSEIF", "WHEN"):
                i = _through(seg, i + 1, "THEN")
            elif word in ("ELSE", "LOOP") or (word == "EXCEPTION" and pg) or (word == "REPEAT" and not pg):
                i += 1
            elif word == "CASE":
                i = _through(seg, i + 1, "WHEN") - 1  # the WHEN is peeled next
            elif word == "WHILE":
                i = _through(seg, i + 1, "LOOP" if pg else "DO")
            elif word == "FOREACH" and pg:
                i = _through(seg, i + 1, "LOOP")
            elif word == "FOR":
                i = self.for_loop(text, seg, i, found)
            elif word == "UNTIL" and not pg:
                return "skip", [], declaring  # UNTIL <condition> END REPEAT
            elif word == "END":
                tail = seg[i + 1 :]
                if len(tail) > 2 or any(t.kind not in (WORD, QUOTED) for t in tail):
                    raise Unclassifiable(PARSE_FAILED)
                return "skip", [], declaring
            else:
                break
        return ("statement" if i < n else "skip"), seg[i:], declaring

    def for_loop(self, text: str, seg: list[Token], i: int, found: _Found) -> int:
        """FOR … IN <query | range | cursor> LOOP/DO: a query is classified; the index after LOOP/DO."""
        pg = self.pg
        in_at = _find_word(seg, "IN", i)
        if in_at < 0:
            raise Unclassifiable(PARSE_FAILED)
        end = _through(seg, in_at + 1, "LOOP" if pg else "DO")
        source = seg[in_at + 1 : end - 1]
        if source and source[0].text == "REVERSE":
            source = source[1:]
        if not pg and source and source[0].text == "(" and _matching(source, 0) == len(source) - 1:
            source = source[1:-1]
        if source and (source[0].text == "(" or (source[0].kind == WORD and source[0].text in _QUERY_WORDS)):
            self.statement(text, source, found, in_body=True)
        return end

    def simple(self, text: str, rest: list[Token], found: _Found) -> None:
        """One statement of a body, after its control syntax."""
        first = rest[0]
        word = first.text if first.kind == WORD else ""
        if self.pg:
            if word in ("NULL", "RAISE", "ASSERT", "EXIT", "CONTINUE", "GET", "FETCH", "MOVE", "CLOSE"):
                return
            if word == "RETURN":
                if len(rest) > 1 and rest[1].text == "QUERY":
                    if len(rest) < 3:
                        raise Unclassifiable(PARSE_FAILED)
                    self.statement(text, rest[2:], found, in_body=True)
                return
            if word == "PERFORM":
                self.parsed_text("SELECT " + _span(text, rest[1:]), found, in_body=True)
                return
            if word == "OPEN":
                at = _find_word(rest, "FOR", 1)
                if at >= 0:
                    if at + 1 >= len(rest):
                        raise Unclassifiable(PARSE_FAILED)
                    self.statement(text, rest[at + 1 :], found, in_body=True)
                return
            if word in ("COMMIT", "ROLLBACK"):
                found.add(word)
                return
        else:
            if word in ("LEAVE", "ITERATE", "RETURN", "OPEN", "FETCH", "CLOSE", "SIGNAL", "RESIGNAL", "GET"):
                return
            if word == "SET":
                second = rest[1].text if len(rest) > 1 else ""
                if second == "STATEMENT":
                    self.set_statement(text, rest, found, in_body=True)
                elif second in _SESSION_SET or second.startswith("@"):
                    found.add("SET")  # session state, not a local variable
                return
        if _is_assignment(rest):
            return
        self.statement(text, rest, found, in_body=True)
