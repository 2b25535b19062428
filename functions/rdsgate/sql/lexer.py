"""A SQL lexer that reads text the way the database server does, for the guardrail classifier.

The classifier parses statements with sqlglot, but decides where statements, strings,
comments and bodies begin and end with this lexer, whose rules follow the servers':
PostgreSQL (standard-conforming strings, ``E''`` escapes, nested block comments, dollar
quotes) and MySQL/MariaDB (backslash escapes, ``#`` and ``-- `` comments, block comments
that do not nest, and *executable* comments ``/*! … */`` and ``/*M! … */``, whose body the
server runs). It also measures what the parser would have to chew on: tokens and nesting
depth, so that pathological SQL is refused before any parsing.

Comments, and where executable comments open, follow ``lexrules``, the rules every reader
of SQL in rdsgate shares. No third-party imports: this module is loaded only when a
statement rule applies.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .lexrules import DOLLAR_TAG, LexError, Unterminated, block_end, is_dash_comment, is_executable_comment, line_end

WORD = "word"  # identifier or keyword; ``text`` is upper-cased
QUOTED = "quoted"  # quoted identifier
STRING = "string"  # any string constant, dollar-quoted ones included
NUMBER = "number"
PARAM = "param"  # :name, $1, ?, @var, @@var
OP = "op"  # operators and punctuation, one token per run of operator characters
SEMI = "semi"


class Token(NamedTuple):
    kind: str
    text: str  # upper-cased for words, the source text otherwise
    start: int
    end: int


class Executable(LexError):
    """A MySQL executable comment: the server runs its body, a parser would skip it."""


class TooComplex(Exception):
    """The text is over one of the checking limits; the message names the limit."""


_SPACE = re.compile(r"[ \t\n\r\f\v]+")  # the servers' whitespace: ASCII only (U+00A0 is an identifier character)
_CONTINUATION = re.compile(r"(?:[ \t\f]|--[^\n\r]*)*[\n\r](?:[ \t\n\r\f\v]+|--[^\n\r]*[\n\r])*'")  # PostgreSQL's scan.l
_WORD_PG = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*")
_WORD_MY = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]+")
_NUMBER = re.compile(r"(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?[\w$]*")
_ALL_DIGITS = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_PARAM_NAME = re.compile(r":[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_PARAM = re.compile(r"\$\d+")
_AT_VAR = re.compile(r"@@?[\w$.]*")
_PG_STRING = re.compile(r"'(?:[^']|'')*'")
_PG_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_ESCAPED = {"'": re.compile(r"'(?:[^'\\]|\\.|'')*'", re.S), '"': re.compile(r'"(?:[^"\\]|\\.|"")*"', re.S)}
_BACKTICK = re.compile(r"`(?:[^`]|``)*`")
_OPS_PG = re.compile(r"[+\-*/<>=~!@#%^&|`?]+")
_OPS_MY = re.compile(r"[+\-*/<>=~!%^&|]+")
_PUNCT = "()[],.;:{}"
_UNDOUBLED_QUOTE = re.compile(r"(?<!')'(?:'')*(?!')")


def lex(sql: str, dialect: str, max_tokens: int | None = None) -> list[Token]:
    """The tokens of ``sql``, comments left out; raises LexError, Executable or TooComplex."""
    pg = dialect == "postgres"
    if "\x00" in sql:
        raise LexError("the sql contains a NUL byte")
    word_re = _WORD_PG if pg else _WORD_MY
    ops_re = _OPS_PG if pg else _OPS_MY
    tokens: list[Token] = []
    append = tokens.append
    n = len(sql)
    i = 0
    limit = max_tokens if max_tokens is not None else n + 1
    while i < n:
        if len(tokens) > limit:
            raise TooComplex(f"more than {max_tokens:,} tokens")
        c = sql[i]
        if c in " \t\n\r\f\v":
            i = _SPACE.match(sql, i).end()
            continue
        if c == "-" and is_dash_comment(sql, i, pg):
            i = line_end(sql, i, pg)
            continue
        if c == "#" and not pg:
            i = line_end(sql, i, False)
            continue
        if c == "/" and sql.startswith("/*", i):
            if not pg and is_executable_comment(sql, i):
                raise Executable("the sql contains a MySQL executable comment (/*! … */ or /*M! … */), whose body runs")
            i = block_end(sql, i, pg)
            continue
        if c == "'":
            end = _string_end(sql, i, pg, escapes=not pg)
            if pg:
                end = _continued(sql, end, escapes=False)
            append(Token(STRING, sql[i:end], i, end))
            i = end
            continue
        if c == '"':
            if pg:
                match = _PG_QUOTED.match(sql, i)
                if match is None:
                    raise Unterminated("quoted identifier")
                append(Token(QUOTED, match.group(), i, match.end()))
            else:
                match = _ESCAPED['"'].match(sql, i)
                if match is None:
                    raise Unterminated("string literal")
                append(Token(STRING, match.group(), i, match.end()))
            i = match.end()
            continue
        if c == "`" and not pg:
            match = _BACKTICK.match(sql, i)
            if match is None:
                raise Unterminated("quoted identifier")
            append(Token(QUOTED, match.group(), i, match.end()))
            i = match.end()
            continue
        if c == "$" and pg:
            match = _DOLLAR_PARAM.match(sql, i)
            if match is not None:
                append(Token(PARAM, match.group(), i, match.end()))
                i = match.end()
                continue
            match = DOLLAR_TAG.match(sql, i)
            if match is not None:
                close = sql.find(match.group(), match.end())
                if close < 0:
                    raise Unterminated("dollar-quoted string")
                end = close + len(match.group())
                append(Token(STRING, sql[i:end], i, end))
                i = end
                continue
            append(Token(OP, "$", i, i + 1))
            i += 1
            continue
        if c in _DIGITS or (c == "." and sql[i + 1 : i + 2] in _DIGITS and i + 1 < n):
            if pg:
                match = _NUMBER.match(sql, i)
                append(Token(NUMBER, match.group(), i, match.end()))
            else:  # MySQL identifiers may start with digits (1abc); numbers are words of digits
                match = _WORD_MY.match(sql, i) if c != "." else _NUMBER.match(sql, i)
                text = match.group()
                kind = NUMBER if _ALL_DIGITS.fullmatch(text) or c == "." else WORD
                append(Token(kind, text.upper() if kind == WORD else text, i, match.end()))
            i = match.end()
            continue
        match = word_re.match(sql, i)
        if match is not None:
            end = match.end()
            word = match.group().upper()
            nxt = sql[end : end + 1]
            if nxt == "'" and (word in ("E", "B", "X", "N") or (not pg and word.startswith("_"))):
                # A prefixed string: E'' takes backslash escapes on PostgreSQL; MySQL's always do.
                close = _string_end(sql, end, pg, escapes=(word == "E") or not pg)
                if pg:
                    close = _continued(sql, close, escapes=word == "E")
                append(Token(STRING, sql[i:close], i, close))
                i = close
                continue
            if pg and word == "U" and sql.startswith(("&'", '&"'), end):
                quote = sql[end + 1]
                pattern = _PG_STRING if quote == "'" else _PG_QUOTED
                found = pattern.match(sql, end + 1)
                if found is None:
                    raise Unterminated("unicode literal")
                close = _continued(sql, found.end(), escapes=False) if quote == "'" else found.end()
                append(Token(STRING if quote == "'" else QUOTED, sql[i:close], i, close))
                i = close
                continue
            append(Token(WORD, word, i, end))
            i = end
            continue
        if c == ":":
            if sql.startswith(("::", ":="), i):
                append(Token(OP, sql[i : i + 2], i, i + 2))
                i += 2
                continue
            match = _PARAM_NAME.match(sql, i)
            if match is not None:
                append(Token(PARAM, match.group(), i, match.end()))
                i = match.end()
                continue
            append(Token(OP, ":", i, i + 1))
            i += 1
            continue
        if c == "@" and not pg:
            match = _AT_VAR.match(sql, i)
            append(Token(PARAM, match.group(), i, match.end()))
            i = match.end()
            continue
        if c == "?" and not pg:
            append(Token(PARAM, "?", i, i + 1))
            i += 1
            continue
        if c == ";":
            append(Token(SEMI, ";", i, i + 1))
            i += 1
            continue
        if c in _PUNCT:
            append(Token(OP, c, i, i + 1))
            i += 1
            continue
        match = ops_re.match(sql, i)
        if match is not None:
            end = match.end()
            run = match.group()
            # A comment may start inside a run of operator characters: 1+/* x */2, 1<--x.
            cut = _comment_inside(sql, i, run, pg)
            if cut > 0:
                end = i + cut
            elif cut == 0:
                end = i + 1
            append(Token(OP, sql[i:end], i, end))
            i = end
            continue
        append(Token(OP, c, i, i + 1))
        i += 1
    if len(tokens) > limit:
        raise TooComplex(f"more than {max_tokens:,} tokens")
    return tokens


_DIGITS = frozenset("0123456789")


def _continued(sql: str, end: int, escapes: bool) -> int:
    """PostgreSQL joins string constants separated by whitespace holding a newline: 'a'<newline>'b' is 'ab'."""
    while True:
        match = _CONTINUATION.match(sql, end)
        if match is None:
            return end
        end = _string_end(sql, match.end() - 1, True, escapes)


def _comment_inside(sql: str, i: int, run: str, pg: bool) -> int:
    """Where a comment starts inside the operator run ``run`` at ``i`` (-1 if none)."""
    best = run.find("/*")
    # MySQL's -- needs whitespace or a control character after it, which never sits inside a run: only a -- that
    # ends the run can open a comment (1 *-- x is 1 * and a comment).
    at = run.find("--") if pg else (len(run) - 2 if run.endswith("--") and is_dash_comment(sql, i + len(run) - 2, False) else -1)
    if at >= 0 and (best < 0 or at < best):
        best = at
    return best


def _string_end(sql: str, i: int, pg: bool, escapes: bool) -> int:
    pattern = _ESCAPED["'"] if escapes else _PG_STRING
    match = pattern.match(sql, i)
    if match is None:
        raise Unterminated("string literal")
    return match.end()


def string_value(token: Token, dialect: str) -> str | None:
    """The value of a plain or dollar-quoted string token; None for escaped or prefixed forms."""
    text = token.text
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        return text[tag_end : len(text) - tag_end]
    if text.startswith("'") and (dialect == "postgres" or "\\" not in text):
        inner = text[1:-1]
        if _UNDOUBLED_QUOTE.search(inner):
            return None  # constants joined across a newline ('a'\n'b'): not decoded, callers refuse
        return inner.replace("''", "'")
    return None  # E'', U&'', B'', X'' and MySQL strings with backslash escapes: not decoded, callers refuse


def max_depth(tokens: list[Token]) -> int:
    """The deepest nesting of parentheses, brackets and CASE … END in the tokens."""
    depth = deepest = 0
    cases: list[int] = []
    for token in tokens:
        kind, text = token.kind, token.text
        if kind == OP:
            if text == "(" or text == "[":
                depth += 1
                if depth > deepest:
                    deepest = depth
            elif text == ")" or text == "]":
                depth -= 1
        elif kind == WORD:
            if text == "CASE":
                depth += 1
                cases.append(depth)
                if depth > deepest:
                    deepest = depth
            elif text == "END" and cases and cases[-1] == depth:
                cases.pop()
                depth -= 1
    return deepest


def longest_run(tokens: list[Token]) -> int:
    """The longest run of prefix operators (NOT NOT …, - - …) or of chained subscripts (x[1][2]…)."""
    longest = run = chain = 0
    after_bracket = False
    for token in tokens:
        kind, text = token.kind, token.text
        if (kind == WORD and text == "NOT") or (kind == OP and text in ("-", "+", "~", "!")):
            run += 1
            if run > longest:
                longest = run
        else:
            run = 0
        if after_bracket:
            if kind == OP and text == "[":
                chain += 1
                if chain > longest:
                    longest = chain
            else:
                chain = 0
        after_bracket = kind == OP and text == "]"
    return longest
