"""Where code is in SQL text: each engine's rules for comments, strings, quoted names and dollar quotes.

Every reader of SQL in rdsgate (the request scanner ``text``, the guardrail ``lexer``, the
tunnel's ``wiresql``) must agree on what is code and what is a literal or a comment, or a
``:name``, a ``;`` or a keyword could hide from one of them. These are the rules, once:

- PostgreSQL: ``--`` comments (ending at ``\n`` or ``\r``), block comments that nest, ``'…'`` with doubled quotes only
  (``E'…'`` also takes backslashes), ``"…"`` names, ``$tag$ … $tag$`` quotes;
- MySQL/MariaDB: ``#`` comments (ending at ``\n`` only), ``--`` only when followed by whitespace or a control
  character, DEL included (``1--1`` is arithmetic), block comments that do not nest, ``'…'`` and ``"…"``
  with backslash escapes, backtick names, and *executable* comments ``/*! … */`` and
  ``/*M! … */``, whose body the server runs as code.

Each function takes the text and the index where the construct opens, and returns the index
just past it; an unterminated one raises ``Unterminated`` (a reader that lets the server
report it takes the end of the text instead).
"""

from __future__ import annotations

import re

__all__ = [
    "DOLLAR_TAG",
    "LexError",
    "Unterminated",
    "block_end",
    "is_dash_comment",
    "is_escape_string",
    "is_executable_comment",
    "is_ident_char",
    "line_end",
    "skip_dollar",
    "skip_doubled",
    "skip_escaped",
]

# A dollar-quote delimiter: $$ or $tag$, the tag as PostgreSQL's scanner reads it (dolq_start
# [A-Za-z\200-\377_], dolq_cont [A-Za-z\200-\377_0-9]): a letter, '_' or any non-ASCII character first
# (never a digit: $1 is a parameter), then those or digits. Every byte of a non-ASCII character is in \200-\377.
DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
# Next backslash or closing quote inside a string with backslash escapes.
_ESCAPED_END = {"'": re.compile(r"[\\']"), '"': re.compile(r'[\\"]')}


class LexError(Exception):
    """The text cannot be read as SQL (an unterminated literal or comment, a NUL byte)."""


class Unterminated(LexError):
    """A literal, quoted name or comment that the text does not close; ``what`` names it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"the sql has an unterminated {what}")
        self.what = what


def is_executable_comment(sql: str, i: int) -> bool:
    """True when the block comment opening at ``i`` is one MySQL/MariaDB runs: ``/*!…*/``, ``/*M!…*/``."""
    return sql.startswith("/*!", i) or sql[i : i + 4].upper() == "/*M!"


def is_dash_comment(sql: str, i: int, pg: bool) -> bool:
    """True when ``--`` at ``i`` opens a comment: always on PostgreSQL; on MySQL only before whitespace or a
    control character (the server's test: ASCII whitespace or control, DEL included; never a non-ASCII one)."""
    if not sql.startswith("--", i):
        return False
    return pg or i + 2 >= len(sql) or sql[i + 2] <= " " or sql[i + 2] == "\x7f"


def line_end(sql: str, i: int, pg: bool) -> int:
    """Index just past the line comment at ``i`` (its newline included).

    PostgreSQL's comment ends at ``\n`` or ``\r`` (its scanner's newline is ``[\n\r]``); MySQL's and
    MariaDB's at ``\n`` only. Reading on past a ``\r`` on PostgreSQL would hide code the server runs.
    """
    newline = sql.find("\n", i)
    if pg:
        ret = sql.find("\r", i, len(sql) if newline < 0 else newline)
        if ret >= 0:
            return ret + 1
    return len(sql) if newline < 0 else newline + 1


def block_end(sql: str, i: int, pg: bool) -> int:
    """Index just past the block comment opening at ``i``; PostgreSQL's nest, MySQL's do not."""
    depth = 1
    j = i + 2
    while True:
        close = sql.find("*/", j)
        if close < 0:
            raise Unterminated("block comment")
        # PostgreSQL's scanner reads "/*" before "*/": in "/*/" the slash-star opens a nested comment.
        nested = sql.find("/*", j, close + 1) if pg else -1
        if nested >= 0:
            depth += 1
            j = nested + 2
        else:
            depth -= 1
            j = close + 2
            if depth == 0:
                return j


def skip_doubled(sql: str, i: int, quote: str, what: str) -> int:
    """Index just past a quoted run whose only escape is a doubled quote."""
    n = len(sql)
    j = i + 1
    while True:
        close = sql.find(quote, j)
        if close < 0:
            raise Unterminated(what)
        if close + 1 < n and sql[close + 1] == quote:
            j = close + 2
        else:
            return close + 1


def skip_escaped(sql: str, i: int, quote: str) -> int:
    """Index just past a string literal that takes backslash escapes and doubled quotes."""
    n = len(sql)
    search = _ESCAPED_END[quote].search
    j = i + 1
    while True:
        match = search(sql, j)
        if match is None:
            raise Unterminated("string literal")
        k = match.start()
        if sql[k] == "\\" or (k + 1 < n and sql[k + 1] == quote):
            j = k + 2
        else:
            return k + 1


def is_ident_char(c: str) -> bool:
    """True for a character that continues a PostgreSQL identifier (ident_cont [A-Za-z\\200-\\377_0-9\\$]):
    any non-ASCII character is one, so a '$' after it (€$a$) is part of the name, not a dollar quote."""
    return c.isalnum() or c == "_" or c == "$" or c >= "\x80"


def is_escape_string(sql: str, i: int) -> bool:
    """True when the quote at ``i`` opens a PostgreSQL E'...' string (E not ending a longer word)."""
    return i > 0 and sql[i - 1] in "Ee" and (i == 1 or not is_ident_char(sql[i - 2]))


def skip_dollar(sql: str, i: int) -> int:
    """Index past a PostgreSQL dollar quote at ``i``, or past the '$' if it does not open one."""
    if i > 0 and is_ident_char(sql[i - 1]):  # "$" inside an identifier such as a$b
        return i + 1
    tag = DOLLAR_TAG.match(sql, i)
    if tag is None:  # $1 and other non-quotes
        return i + 1
    delimiter = tag.group()
    close = sql.find(delimiter, tag.end())
    if close < 0:
        raise Unterminated("dollar-quoted string")
    return close + len(delimiter)
