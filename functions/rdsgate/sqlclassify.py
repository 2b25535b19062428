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

Statement boundaries, strings, comments and bodies are read by ``sqllex`` with the
server's lexical rules; sqlglot (imported here, and only when a statement rule applies)
parses one statement at a time. Calls of existing functions (``SELECT f()``, ``CALL p()``)
cannot be seen into: that is a matter of the database user's privileges.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from . import sqllex
from .sqllex import OP, PARAM, QUOTED, SEMI, STRING, WORD, Token, TooComplex

__all__ = ["Classification", "TooComplex", "Unclassifiable", "classify", "LIMITS"]

# Checking limits. The API accepts 1 MiB requests; statement rules check at most this much.
MAX_SQL_CHARS = 65_536
MAX_TOKENS = 8_192  # in the statement, bodies included
MAX_DEPTH = 24  # parentheses, brackets and CASE … END nested in one another
MAX_RUN = 32  # NOT NOT …, - - …, x[1][2]…
MAX_BODY_NESTING = 4  # a DO block inside a function body inside …
CHECK_SECONDS = 0.5  # wall-clock budget of one check, parsing included
PARSE_STEPS_PER_TOKEN = 32  # parser steps (token advances, backtracking included) per token
MAX_SIMPLIFY_NODES = 256  # the largest WHERE term handed to sqlglot's simplifier
LIMITS = {
    "max_sql_chars": MAX_SQL_CHARS,
    "max_tokens": MAX_TOKENS,
    "max_depth": MAX_DEPTH,
    "max_run": MAX_RUN,
    "max_body_nesting": MAX_BODY_NESTING,
    "check_seconds": CHECK_SECONDS,
}

PARSE_FAILED = "the sql could not be parsed, so the rule cannot be checked"

# Words that begin a statement sqlglot parses; statement kinds by sqlglot node class.
_QUERY_WORDS = frozenset({"SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"})
_DDL_WORDS = frozenset({"DROP", "TRUNCATE", "GRANT", "REVOKE", "COMMENT", "CREATE", "ALTER", "RENAME"})
_KIND_BY_CLASS = {
    "Select": "SELECT", "Insert": "INSERT", "Update": "UPDATE", "Delete": "DELETE", "Merge": "MERGE",
    "Create": "CREATE", "Drop": "DROP", "Alter": "ALTER", "TruncateTable": "TRUNCATE", "Grant": "GRANT",
    "Revoke": "REVOKE", "Copy": "COPY", "Comment": "COMMENT", "Analyze": "ANALYZE", "Set": "SET", "Show": "SHOW",
    "Use": "USE", "Transaction": "BEGIN", "Commit": "COMMIT", "Rollback": "ROLLBACK", "Describe": "EXPLAIN",
}  # fmt: skip
_ROOT_CLASSES = frozenset(_KIND_BY_CLASS) | {"Union", "Intersect", "Except", "Values", "Subquery"}
# Statements that take no SQL inside them: their kind is their first word.
_SIMPLE_BOTH = {"SHOW", "SET", "RESET", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "LOCK", "DEALLOCATE", "BEGIN"}
_SIMPLE_BY_DIALECT = {
    "postgres": frozenset(
        _SIMPLE_BOTH
        | {"VACUUM", "REINDEX", "REFRESH", "CLUSTER", "CHECKPOINT", "DISCARD", "LISTEN", "UNLISTEN", "NOTIFY", "ABORT", "END",
           "CLOSE", "FETCH", "MOVE", "SECURITY", "IMPORT", "REASSIGN"}
    ),
    "mysql": frozenset(
        _SIMPLE_BOTH
        | {"UNLOCK", "USE", "FLUSH", "OPTIMIZE", "REPAIR", "CHECK", "CHECKSUM", "KILL", "HANDLER", "PURGE", "HELP", "XA",
           "SIGNAL", "RESIGNAL", "GET", "CACHE", "SHUTDOWN"}
    ),
}  # fmt: skip
_SIMPLE = _SIMPLE_BY_DIALECT["postgres"] | _SIMPLE_BY_DIALECT["mysql"]
_SYNONYMS = {"ANALYSE": "ANALYZE", "DESC": "EXPLAIN", "DESCRIBE": "EXPLAIN", "ABORT": "ROLLBACK", "START": "BEGIN"}
# Words that, inside a body or an unparsed statement, are (or may be) a statement of that kind.
_NET_WORDS = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "TRUNCATE", "DROP", "CREATE", "ALTER", "GRANT", "REVOKE", "COPY", "CALL", "RENAME", "LOAD"}
)  # fmt: skip
_IMPLIED = {"TRUNCATE": ("DELETE",), "REPLACE": ("INSERT", "DELETE")}
# Words the parser must read as code exactly as often as the server does.
_CROSS_CHECKED = _NET_WORDS | {"SELECT", "WITH", "EXECUTE", "PREPARE", "DO", "INTO"}
# Objects whose creation installs code that runs later.
_CODE_OBJECTS = frozenset({"FUNCTION", "PROCEDURE", "TRIGGER", "EVENT", "RULE"})
_CODE_INSTALLERS = frozenset({"LANGUAGE", "EXTENSION", "TRANSFORM", "PACKAGE"})
_ALTER_CODE = _CODE_OBJECTS | _CODE_INSTALLERS | {"ROUTINE", "AGGREGATE"}
_OBJECT_WORDS = _CODE_OBJECTS | _CODE_INSTALLERS | frozenset(
    {
        "TABLE", "VIEW", "INDEX", "SEQUENCE", "SCHEMA", "DATABASE", "TYPE", "DOMAIN", "ROLE", "USER", "GROUP", "SERVER",
        "TABLESPACE", "POLICY", "PUBLICATION", "SUBSCRIPTION", "COLLATION", "CONVERSION", "OPERATOR", "CAST",
        "AGGREGATE", "STATISTICS", "ACCESS", "FOREIGN", "TEXT", "MATERIALIZED", "LOGFILE", "RESOURCE", "SPATIAL",
        "ROUTINE", "DEFAULT", "SYSTEM", "INSTANCE", "EXTERNAL",
    }
)  # fmt: skip
# Built-in and common extension functions that run the SQL text they are given.
DYNAMIC_SQL_FUNCTIONS = frozenset(
    {
        "dblink", "dblink_exec", "dblink_open", "dblink_send_query", "query_to_xml", "query_to_xmlschema",
        "query_to_xml_and_xmlschema", "ts_stat", "ts_rewrite", "pg_background_launch", "sys_exec", "sys_eval",
    }
)  # fmt: skip
_STATEMENT_STARTERS = _QUERY_WORDS | _DDL_WORDS | {"REPLACE", "EXECUTE", "DECLARE", "DO", "CALL", "COPY", "EXPLAIN", "ANALYZE"}
_MY_COMPOUND = frozenset({"IF", "WHILE", "LOOP", "REPEAT", "CASE", "FOR", "DECLARE"})
_TYPE_WORDS = frozenset({"UNSIGNED", "SIGNED", "ZEROFILL", "BINARY", "ASCII", "UNICODE", "BYTE", "CHARSET", "CHARACTER", "COLLATE"})
_SESSION_SET = frozenset({"GLOBAL", "SESSION", "PERSIST", "PERSIST_ONLY", "LOCAL", "TRANSACTION", "NAMES", "CHARACTER", "ROLE", "PASSWORD", "DEFAULT"})

TRUE, FALSE, ROWS = "true", "false", "rows"


class Unclassifiable(Exception):
    """The SQL holds something the analyser cannot see into; the message says what."""


class _OverBudget(Exception):
    pass


@dataclass(frozen=True)
class Classification:
    """The statement kinds the SQL runs (now or, for installed code, later) and its unguarded writes."""

    kinds: frozenset[str]
    unguarded: tuple[str, ...]  # e.g. "DELETE without a WHERE clause"


@dataclass
class _Found:
    kinds: set[str] = field(default_factory=set)
    unguarded: list[str] = field(default_factory=list)

    def add(self, kind: str) -> None:
        self.kinds.add(kind)
        for implied in _IMPLIED.get(kind, ()):
            self.kinds.add(implied)


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


class _Analyser:
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
            tokens = sqllex.lex(text, self.dialect, MAX_TOKENS - self.tokens_seen)
        except sqllex.TooComplex:
            raise TooComplex(f"the sql has more than {MAX_TOKENS:,} tokens, the most a statement rule checks") from None
        except sqllex.LexError as exc:
            raise Unclassifiable(str(exc) if isinstance(exc, sqllex.Executable) or "NUL" in str(exc) else PARSE_FAILED) from None
        self.tokens_seen += len(tokens)
        self.steps_left += PARSE_STEPS_PER_TOKEN * len(tokens)
        depth = sqllex.max_depth(tokens)
        if depth > MAX_DEPTH:
            raise TooComplex(f"the sql nests parentheses, brackets or CASE {depth} deep, over the {MAX_DEPTH} a statement rule checks")
        run = sqllex.longest_run(tokens)
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

    # -- wrappers ------------------------------------------------------------------------

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

    # -- code: functions, procedures, triggers, events, rules ----------------------------

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
        source = sqllex.string_value(token, self.dialect)
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

    # -- WHERE clauses -------------------------------------------------------------------

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


def _split(tokens: list[Token]) -> list[list[Token]]:
    statements, current = [], []
    for token in tokens:
        if token.kind == SEMI:
            if current:
                statements.append(current)
            current = []
        else:
            current.append(token)
    if current:
        statements.append(current)
    return statements


def _split_commas(tokens: list[Token]) -> list[list[Token]]:
    parts, current, depth = [], [], 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        if token.text == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    return parts


def _matching(tokens: list[Token], at: int) -> int:
    """Index of the parenthesis closing the one at ``at``."""
    depth = 0
    for index in range(at, len(tokens)):
        text = tokens[index].text
        if tokens[index].kind != OP:
            continue
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
            if depth == 0:
                return index
    raise Unclassifiable(PARSE_FAILED)


def _find_word(tokens: list[Token], word: str, start: int) -> int:
    """Index of ``word`` outside parentheses at or after ``start``; -1 if absent."""
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind == OP and token.text == "(":
            depth += 1
        elif token.kind == OP and token.text == ")":
            depth -= 1
        elif depth == 0 and token.kind == WORD and token.text == word:
            return index
    return -1


def _find_text(tokens: list[Token], text: str, start: int) -> int:
    for index in range(start, len(tokens)):
        if tokens[index].kind == OP and tokens[index].text == text:
            return index
    return -1


def _through(seg: list[Token], i: int, word: str) -> int:
    """Index just past the ``word`` that ends a condition starting at ``i`` (CASE … END inside skipped)."""
    depth = cases = 0
    for index in range(i, len(seg)):
        token = seg[index]
        if token.kind == OP and token.text in ("(", "["):
            depth += 1
        elif token.kind == OP and token.text in (")", "]"):
            depth -= 1
        elif token.kind == WORD and depth == 0:
            if token.text == "CASE":
                cases += 1
            elif token.text == "END" and cases:
                cases -= 1
            elif token.text == word and not cases:
                return index + 1
    raise Unclassifiable(PARSE_FAILED)


def _object_type(tokens: list[Token], start: int) -> tuple[str | None, int]:
    """The kind of object a CREATE or ALTER names, skipping OR REPLACE, DEFINER = …, TEMP and the like."""
    for index in range(start, min(len(tokens), start + 16)):
        token = tokens[index]
        if token.kind == WORD and token.text in _OBJECT_WORDS:
            return token.text, index
    return None, start


def _name(token: Token, dialect: str) -> str:
    if token.kind == STRING:
        value = sqllex.string_value(token, dialect)
        return (value or "").lower()
    if token.kind == QUOTED:
        return token.text[1:-1].lower()
    return token.text.lower()


def _span(text: str, tokens: list[Token]) -> str:
    if not tokens:
        raise Unclassifiable(PARSE_FAILED)
    return text[tokens[0].start : tokens[-1].end]


def _is_compound_start(tokens: list[Token]) -> bool:
    """MySQL/MariaDB compound statements outside stored programs: BEGIN NOT ATOMIC, IF, WHILE, label: …"""
    first = tokens[0]
    if first.kind == WORD and first.text in _MY_COMPOUND:
        return True
    if first.kind == WORD and first.text == "BEGIN":
        return len(tokens) > 2 and tokens[1].text == "NOT" and tokens[2].text == "ATOMIC"
    return first.kind in (WORD, QUOTED) and len(tokens) > 1 and (
        tokens[1].text == ":" or (tokens[1].kind == PARAM and tokens[1].text.startswith(":"))
    )


def _handler_statement(seg: list[Token], i: int) -> int | None:
    """MySQL's DECLARE {CONTINUE|EXIT|UNDO} HANDLER FOR <conditions> <statement>: the statement's index."""
    n = len(seg)
    if not (i + 3 < n and seg[i + 1].text in ("CONTINUE", "EXIT", "UNDO") and seg[i + 2].text == "HANDLER" and seg[i + 3].text == "FOR"):
        return None
    j = i + 4
    while j < n:
        if seg[j].text == "SQLSTATE":
            j += 3 if j + 1 < n and seg[j + 1].text == "VALUE" else 2
        elif seg[j].text == "NOT":  # NOT FOUND
            j += 2
        else:
            j += 1
        if j < n and seg[j].text == ",":
            j += 1
            continue
        break
    return j


def _mysql_labels(tokens: list[Token]) -> list[Token]:
    """``label:BEGIN`` lexes as a word and a :name parameter; make it a label and a keyword."""
    out: list[Token] = []
    for index, token in enumerate(tokens):
        if token.kind == PARAM and token.text.startswith(":") and index and tokens[index - 1].kind == WORD:
            out.append(Token(OP, ":", token.start, token.start + 1))
            out.append(Token(WORD, token.text[1:].upper(), token.start + 1, token.end))
        else:
            out.append(token)
    return out


def _is_assignment(tokens: list[Token]) -> bool:
    """``target := expr`` or ``target = expr`` (PL/pgSQL), target a name, a.b or a[i]."""
    i, n = 0, len(tokens)
    if n < 2 or tokens[0].kind not in (WORD, QUOTED):
        return False
    i = 1
    while i < n:
        text = tokens[i].text
        if tokens[i].kind == OP and text in (":=", "="):
            return True
        if tokens[i].kind == OP and text == "." and i + 1 < n and tokens[i + 1].kind in (WORD, QUOTED):
            i += 2
        elif tokens[i].kind == OP and text == "[":
            depth = 0
            while i < n:
                if tokens[i].text == "[":
                    depth += 1
                elif tokens[i].text == "]":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            i += 1
        else:
            return False
    return False


def _without_plpgsql_into(tokens: list[Token]) -> list[Token]:
    """PL/pgSQL's INTO [STRICT] targets: dropped after RETURNING, STRICT dropped after SELECT … INTO."""
    out: list[Token] = []
    returning = False
    skip_rest = False
    for index, token in enumerate(tokens):
        if skip_rest:
            break
        if token.kind == WORD and token.text == "RETURNING":
            returning = True
        if token.kind == WORD and token.text == "INTO" and returning:
            skip_rest = True
            continue
        if token.kind == WORD and token.text == "STRICT" and index and tokens[index - 1].text == "INTO":
            continue
        out.append(token)
    return tokens if len(out) == len(tokens) else out
