"""SQL text as `rdsgate connect` needs to see it: statements, keywords, and placeholders rewritten for the API.

The tunnel does not parse SQL. It needs to know where code is (as opposed to
string literals, quoted identifiers, comments and dollar quotes), so that it can
split a client's query string at top-level ``;``, find the statement's keywords,
and rewrite what the API would misread:

- ``:word`` in code becomes ``: word``. The API takes ``:word`` as one of its named
  parameters; with the space it is plain SQL again (a PostgreSQL slice ``a[1:n]``
  means the same with a space). Casts ``::`` and ``:=`` are left alone.
- PostgreSQL's ``$n`` (extended protocol, PREPARE) becomes a named parameter ``:pn``.
- MySQL's ``?`` (PREPARE … FROM) and known user variables ``@name`` become named parameters.

Where literals and comments end is ``rdsgate.sql.lexrules``, the rules the API's own
scanner applies, so both agree on what is code; this module keeps only what the wire
needs on top (an unterminated literal runs to the end, for the server to report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from rdsgate.sql.lexrules import (
    DOLLAR_TAG,
    Unterminated,
    block_end,
    is_dash_comment,
    is_escape_string,
    is_ident_char,
    line_end,
    skip_doubled,
    skip_dollar,
    skip_escaped,
)
from rdsgate.sql.text import CompoundBody, compound_head

# Where a literal, quoted name or comment may start (a $ only where a dollar quote could: $1 is a parameter).
_SPECIAL = {"postgres": re.compile(r"""['"]|--|/\*|""" + DOLLAR_TAG.pattern), "mysql": re.compile(r"""['"`#]|--|/\*""")}
_TOKEN = re.compile(r"(?<![\w$])[A-Za-z_][\w$]*|[()]")
# What a rewrite looks at inside code: a named-parameter look-alike, $n, ?, @variable.
_PLACES = re.compile(
    r"(?P<colon>(?<!:):(?=[A-Za-z_]))|(?P<dollar>(?<![\w$])\$(?P<n>\d+))|(?P<question>\?)"
    r"|(?P<var>(?<![@\w])@(?P<v>[A-Za-z_][\w$.]*)(?!\s*:=))"
)
_READS = frozenset({"SELECT", "VALUES", "TABLE", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "HELP"})
_WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE"})
_MAIN = _READS | _WRITES


@lru_cache(maxsize=32)
def chunks(sql: str, dialect: str) -> tuple[tuple[bool, str], ...]:
    """``(is_code, text)`` pieces covering ``sql`` in order; the others are literals, quoted names or comments.

    An unterminated literal or comment runs to the end (the server reports it). Cached: a statement is
    split, analysed and rewritten in turn.
    """
    pg = dialect == "postgres"
    search = _SPECIAL[dialect].search
    out: list[tuple[bool, str]] = []
    n, i, start = len(sql), 0, 0
    while True:
        match = search(sql, i)
        if match is None:
            break
        j, token = match.start(), match.group()
        if (token[0] == "$" and j and is_ident_char(sql[j - 1])) or (token == "--" and not is_dash_comment(sql, j, pg)):
            i = j + 1  # a $ inside a name; MySQL's 1--1, which is arithmetic
            continue
        end = _end(sql, j, token, pg)
        if j > start:
            out.append((True, sql[start:j]))
        out.append((False, sql[j:end]))
        i = start = end
    if start < n:
        out.append((True, sql[start:]))
    return tuple(out)


def split(sql: str, dialect: str) -> list[str]:
    """The statements of a query string, split at top-level ``;``, without the ``;``; blank ones dropped.

    In MySQL, a compound statement (CREATE PROCEDURE, FUNCTION, TRIGGER or EVENT with a
    ``BEGIN … END`` body, MariaDB's ``BEGIN NOT ATOMIC … END``) is one statement: its
    body's semicolons do not split it.
    """
    statements: list[str] = []
    current: list[str] = []
    has_code = False
    body = _Body() if dialect == "mysql" else None
    for code, text in chunks(sql, dialect):
        if not code:
            current.append(text)
            continue
        at = 0
        for semicolon in _semicolons(text, body):
            current.append(text[at:semicolon])
            has_code = has_code or bool(text[at:semicolon].strip())
            if has_code:
                statements.append("".join(current).strip())
            current, has_code, at = [], False, semicolon + 1
        current.append(text[at:])
        has_code = has_code or bool(text[at:].strip())
    if has_code:
        statements.append("".join(current).strip())
    return statements


_SEMICOLON = re.compile(";")
_BODY_TOKEN = re.compile(r"(?<![\w$@])[A-Za-z_][\w$]*|;")  # not a variable's name (@end)


class _Body:
    """Where a MySQL statement is: at its start, in its head, or inside a compound body's BEGIN … END.

    The head is read from the words, chunk by chunk, and decided as the API's scanner decides it
    (``compound_head``); then the body's blocks are counted as it counts them (``CompoundBody``).
    """

    def __init__(self) -> None:
        self.head: list[str] = []
        self.compound: str | None = None  # the compound statement's kind, "" for none; None while undecided
        self.block = CompoundBody()

    def word(self, word: str) -> None:
        if self.compound is None:
            self.head.append(word)
            self.compound = compound_head(self.head)
            if self.compound:  # the head's words count as the API's scanner counts them (BEGIN NOT ATOMIC's BEGIN)
                self.block = CompoundBody.opening(self.compound)
                for head_word in self.head:
                    self.block.word(head_word)
        elif self.compound:
            self.block.word(word)

    def ends_at_semicolon(self) -> bool:
        if self.compound and not self.block.semicolon():
            return False
        self.head, self.compound, self.block = [], None, CompoundBody()
        return True


def _semicolons(text: str, body: _Body | None) -> list[int]:
    """Where the statement-ending semicolons of a code chunk are."""
    if body is None:
        return [match.start() for match in _SEMICOLON.finditer(text)]
    ends = []
    for match in _BODY_TOKEN.finditer(text):
        token = match.group()
        if token != ";":
            body.word(token.upper())
        elif body.ends_at_semicolon():
            ends.append(match.start())
    return ends


@dataclass(frozen=True)
class Analysis:
    """What the tunnel needs to know about one statement."""

    keyword: str  # the first word, upper case ("" when there is none)
    main: str  # the statement's kind: WITH … SELECT is SELECT, WITH … INSERT is INSERT
    words: tuple[str, ...] = field(repr=False)  # every word of the code, upper case

    @property
    def reads(self) -> bool:
        """Only reads: a SELECT (without INTO or a data-modifying CTE), VALUES, TABLE, SHOW, EXPLAIN without ANALYZE."""
        if self.main not in _READS:
            return False
        words = self.words
        if self.keyword == "WITH" and any(  # a data-modifying CTE (UPDATE not as in FOR [NO KEY] UPDATE)
                word in ("INSERT", "DELETE", "MERGE") or (word == "UPDATE" and words[i - 1] not in ("FOR", "KEY"))
                for i, word in enumerate(words)):
            return False
        if self.main == "SELECT" and "INTO" in words:
            return False
        return not (self.main == "EXPLAIN" and "ANALYZE" in words)

    @property
    def locks(self) -> bool:
        """SELECT … FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE: locks held until the transaction ends."""
        words = self.words
        return any(words[i] == "FOR" and words[i + 1] in ("UPDATE", "SHARE", "NO", "KEY")
                   for i in range(len(words) - 1)) or ("LOCK" in words and "SHARE" in words)

    @property
    def returning(self) -> bool:
        return "RETURNING" in self.words

    def after(self, count: int) -> tuple[str, ...]:
        """The words after the first ``count`` ones."""
        return self.words[count:]


def analyse(sql: str, dialect: str) -> Analysis:
    words: list[str] = []
    top: list[str] = []
    depth = 0
    for code, text in chunks(sql, dialect):
        if not code:
            continue
        for match in _TOKEN.finditer(text):
            token = match.group()
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
            else:
                word = token.upper()
                words.append(word)
                if depth <= 0:
                    top.append(word)
    keyword = words[0] if words else ""
    main = keyword
    if keyword == "WITH":
        main = next((word for word in top if word in _MAIN), "SELECT")
    return Analysis(keyword, main, tuple(words))


def rewrite(
    sql: str,
    dialect: str,
    *,
    dollar: Callable[[int], str] | None = None,
    question: Callable[[int], str] | None = None,
    variable: Callable[[str], str | None] | None = None,
) -> str:
    """``sql`` with ``:word`` spaced out of the API's way, and placeholders replaced by what the callbacks return.

    ``dollar(n)`` replaces ``$n``; ``question(k)`` the k-th ``?`` (from 1); ``variable(name)`` a
    ``@name`` (None leaves it as it is). A callback that is not given leaves those alone.
    """
    count = 0

    def place(match: re.Match[str]) -> str:
        nonlocal count
        if match.group("colon"):
            return ": "
        if match.group("dollar"):
            return dollar(int(match.group("n"))) if dollar else match.group()
        if match.group("question"):
            if question is None:
                return "?"
            count += 1
            return question(count)
        replaced = variable(match.group("v")) if variable else None
        return match.group() if replaced is None else replaced

    pieces = [_PLACES.sub(place, text) if code else text for code, text in chunks(sql, dialect)]
    if variable is not None and dialect == "mysql":  # @`name`, @'name', @"name": a user variable with a quoted name
        for i in range(1, len(pieces)):
            before, quoted = pieces[i - 1], pieces[i]
            if before.endswith("@") and not before.endswith("@@") and quoted[:1] in ("`", "'", '"') \
                    and len(quoted) > 1 and quoted.endswith(quoted[0]):
                replaced = variable(quoted[1:-1].replace(quoted[0] * 2, quoted[0]))
                if replaced is not None:
                    pieces[i - 1], pieces[i] = before[:-1], replaced
    return "".join(pieces)


def dollar_numbers(sql: str, dialect: str = "postgres") -> list[int]:
    """The ``$n`` placeholders (PostgreSQL's extended protocol) in the code of a statement."""
    found: list[int] = []

    def note(n: int) -> str:
        found.append(n)
        return ""

    rewrite(sql, dialect, dollar=note)
    return found


def split_arguments(text: str, dialect: str) -> list[str]:
    """``a, f(b, c), 'd,e'`` → ``['a', 'f(b, c)', "'d,e'"]``: commas at the top level only."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for code, piece in chunks(text, dialect):
        if not code:
            current.append(piece)
            continue
        start = 0
        for index, char in enumerate(piece):
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            elif char == "," and depth == 0:
                current.append(piece[start:index])
                items.append("".join(current).strip())
                current, start = [], index + 1
        current.append(piece[start:])
    last = "".join(current).strip()
    if last or items:
        items.append(last)
    return items


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def literal_value(text: str, dialect: str) -> tuple[bool, object]:
    """``(True, value)`` when ``text`` is a plain literal (number, string, NULL, TRUE/FALSE), else ``(False, None)``.

    Integers become ints; other numbers stay text, so no digit is lost.
    """
    text = text.strip()
    upper = text.upper()
    if upper == "NULL":
        return True, None
    if upper in ("TRUE", "FALSE"):
        return True, upper == "TRUE"
    if _NUMBER.fullmatch(text):
        return True, int(text) if re.fullmatch(r"[-+]?\d+", text) else text
    quote = text[:1]
    if quote == "'" or (quote == '"' and dialect == "mysql"):
        pieces = chunks(text, dialect)
        if len(pieces) == 1 and not pieces[0][0] and len(text) >= 2 and text.endswith(quote):
            body = text[1:-1]
            if dialect == "mysql":
                body = re.sub(r"\\(.)", lambda m: _MYSQL_ESCAPES.get(m.group(1), m.group(1)), body)
            return True, body.replace(quote * 2, quote)
    return False, None


_MYSQL_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "Z": "\x1a"}
_MYSQL_BYTE_ESCAPES = {ord(k): v.encode() for k, v in _MYSQL_ESCAPES.items()} | {ord("%"): b"\\%", ord("_"): b"\\_"}


def hex_literals(data: bytes) -> str:
    """A MySQL query whose string literals hold bytes that are not UTF-8 (mysql-connector sends a bytes
    parameter as such a literal), as text: each of those literals becomes the hex literal of its bytes
    (``_binary X'ff00'`` reads the same as ``_binary '\\xff\\0'``). Raises UnicodeDecodeError when such
    bytes are anywhere else."""
    out = []
    for code, text in chunks(data.decode("utf-8", "surrogateescape"), "mysql"):
        if not _has_surrogate(text):
            out.append(text)
        elif not code and text[:1] in ("'", '"') and len(text) > 1 and text.endswith(text[0]):
            out.append(" X'" + _unescaped(text.encode("utf-8", "surrogateescape")).hex() + "'")
        else:
            raise UnicodeDecodeError("utf-8", text.encode("utf-8", "surrogateescape"), 0, 1, "invalid UTF-8")
    return "".join(out)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= char <= "\udcff" for char in text)


def _unescaped(literal: bytes) -> bytes:
    """The bytes a MySQL string literal stands for: backslash escapes and doubled quotes undone."""
    quote, body, out, i = literal[0], literal[1:-1], bytearray(), 0
    while i < len(body):
        byte = body[i]
        if byte == 92 and i + 1 < len(body):  # backslash
            out += _MYSQL_BYTE_ESCAPES.get(body[i + 1], bytes([body[i + 1]]))
            i += 2
            continue
        if byte == quote and body[i + 1:i + 2] == bytes([quote]):
            i += 1
        out.append(byte)
        i += 1
    return bytes(out)


def _end(sql: str, i: int, token: str, pg: bool) -> int:
    """Index just past the literal, quoted name or comment that ``token`` opens at ``i``; the end if unterminated."""
    try:
        if token == "'":
            return skip_escaped(sql, i, "'") if not pg or is_escape_string(sql, i) else skip_doubled(sql, i, "'", "")
        if token == '"':
            return skip_doubled(sql, i, '"', "") if pg else skip_escaped(sql, i, '"')
        if token == "`":
            return skip_doubled(sql, i, "`", "")
        if token[0] == "$":
            return skip_dollar(sql, i)
        if token in ("--", "#"):
            return line_end(sql, i, pg)
        return block_end(sql, i, pg)
    except Unterminated:
        return len(sql)
