"""What the statement classifier's readers share: statement words, the kinds found, and token-list helpers.

The classifier (``classify``) and its readers of wrappers (``wrappers``), installed code
(``routines``) and WHERE clauses (``where``) walk the same token lists, produced by ``lexer``
with the servers' lexical rules; the words that decide what a statement is, and the small
walks over tokens (matching parentheses, finding a word at the top level, splitting at
semicolons), live here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import lexer
from .constants import STATEMENT_SYNONYMS
from .lexer import OP, PARAM, QUOTED, SEMI, STRING, WORD, Token

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
_SYNONYMS = STATEMENT_SYNONYMS
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



@dataclass
class _Found:
    kinds: set[str] = field(default_factory=set)
    unguarded: list[str] = field(default_factory=list)

    def add(self, kind: str) -> None:
        self.kinds.add(kind)
        for implied in _IMPLIED.get(kind, ()):
            self.kinds.add(implied)



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
        value = lexer.string_value(token, dialect)
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
