"""SQL text handling: named parameters, statement boundaries and statement type.

Callers write ``:name`` parameters (the RDS Data API convention) for both
engines. This module owns turning that text into what each driver expects:
``$1, $2 ...`` for PostgreSQL, ``%(name)s`` for PyMySQL (with every other ``%``
doubled, because PyMySQL applies Python ``%`` formatting to the whole query),
while leaving string literals, quoted identifiers, comments, dollar quotes,
``::`` casts, ``:=`` and ``arr[1:2]`` slices untouched. The same single pass
enforces one statement per request (a trailing ``;`` is allowed and stripped),
rejects empty SQL and unterminated literals or comments, and reports the first
keyword. The scanner jumps between significant characters with one compiled
character class and ``str.find``, so plain SQL costs a few C-level searches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..errors import InvalidRequest
from .constants import DIALECTS, SESSION_SETTINGS, SESSION_STATE, TRANSACTION_CONTROL
from .lexrules import (
    Unterminated,
    block_end,
    is_dash_comment,
    is_escape_string,
    is_executable_comment,
    is_ident_char,
    line_end,
    skip_doubled,
    skip_dollar,
    skip_escaped,
)

__all__ = [
    "DIALECTS", "PreparedSql", "check_statement_kind", "compound_head", "parameter_names", "prepare", "CompoundBody",
    "TRANSACTION_CONTROL",
]

# Characters that can start something the scanner must look at; everything else is copied.
_SPECIAL = {
    "postgres": re.compile(r"[-'\"$/:;]"),
    "mysql": re.compile(r"[-'\"`#/:;]"),
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Za-z]+")
_SPACE = re.compile(r"\s*")
# Only short statements are cached, so the cache's memory stays bounded.
_CACHE_MAX_SQL = 8192

_MULTIPLE = "sql must contain exactly one statement; found more than one"
# MySQL runs the body of /*! ... */ (and MariaDB's /*M! ... */) as code when the server's
# version is at least the one written after the '!'. Checks made on the text cannot know
# which server will read it, so such comments are refused rather than guessed at.
_EXECUTABLE_REFUSED = (
    "sql: MySQL executable comments (/*! ... */, /*M! ... */) are not accepted; "
    "write their content as plain SQL"
)
# MySQL compound statements: a routine, trigger, event or (MariaDB) package whose body is BEGIN ... END, and
# MariaDB's BEGIN NOT ATOMIC ... END. The semicolons of the body are part of the one statement.
_COMPOUND_KINDS = frozenset({"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE"})
_NOT_COMPOUND = frozenset({"TABLE", "VIEW", "INDEX", "DATABASE", "SCHEMA", "USER", "ROLE", "SERVER", "SEQUENCE"})
_HEAD_WORDS = 8  # CREATE OR REPLACE DEFINER = user@host AGGREGATE FUNCTION: the kind is among the first words
_BODY_CODE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*|['\"`#/;-]")


@dataclass(frozen=True)
class PreparedSql:
    """SQL rewritten for one driver, and what the scan learned about it."""

    text: str  # SQL for the driver, without a trailing ';'
    names: tuple[str, ...]  # distinct parameter names in driver order (postgres: index i is $i+1)
    statement_type: str  # first keyword upper-cased, e.g. "SELECT"; "" if it does not start with a word


def prepare(sql: str, dialect: str) -> PreparedSql:
    """Rewrite ``:name`` parameters for ``dialect`` and validate the statement.

    Raises InvalidRequest (field "sql") for empty SQL, more than one statement,
    or an unterminated string literal, quoted identifier, dollar quote or block
    comment. For MySQL, pass a mapping (``{}`` when there are no parameters,
    never None) to ``cursor.execute`` so PyMySQL undoes the ``%%`` doubling.
    """
    if dialect not in _SPECIAL:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    if not isinstance(sql, str):
        raise InvalidRequest("sql must be a string", field="sql")
    if "\x00" in sql:  # PostgreSQL cannot take it, and no SQL needs it
        raise InvalidRequest("sql contains a NUL character", field="sql")
    if len(sql) <= _CACHE_MAX_SQL:
        return _prepare_cached(sql, dialect)
    return _prepare(sql, dialect)


def check_statement_kind(prepared: PreparedSql, dialect: str, where: str = "sql") -> None:
    """Raise InvalidRequest, naming the statement kind, for a statement a request may not run."""
    kind = prepared.statement_type
    if kind in TRANSACTION_CONTROL:
        raise InvalidRequest(f"{where}: {kind} is not supported; each request runs in its own transaction", field="sql")
    if kind in SESSION_SETTINGS:
        raise InvalidRequest(
            f"{where}: {kind} is not supported; a session setting would outlive the request on a "
            "shared connection (use timeoutMs or readOnly in the request)",
            field="sql",
        )
    if kind in SESSION_STATE[dialect]:
        why = "dynamic SQL cannot be checked" if kind in ("PREPARE", "EXECUTE") else "it would hold session state past the request"
        raise InvalidRequest(f"{where}: {kind} is not supported; {why}", field="sql")


def parameter_names(sql: str, dialect: str) -> tuple[str, ...]:
    """The distinct ``:name`` parameters of ``sql``, in order of first appearance."""
    return prepare(sql, dialect).names


@lru_cache(maxsize=256)
def _prepare_cached(sql: str, dialect: str) -> PreparedSql:
    return _prepare(sql, dialect)


def _prepare(sql: str, dialect: str) -> PreparedSql:
    try:
        return _scan(sql, dialect)
    except Unterminated as exc:
        raise InvalidRequest(f"sql has an unterminated {exc.what}", field="sql") from None


def _scan(sql: str, dialect: str) -> PreparedSql:
    if not sql.isascii():
        try:
            sql.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest("sql contains a lone surrogate (\\ud800-\\udfff) that is not valid UTF-8", field="sql") from None
    pg = dialect == "postgres"
    n = len(sql)
    start = _skip_blank(sql, 0, pg, False)
    search = _SPECIAL[dialect].search
    double_percent = not pg and "%" in sql
    pieces: list[str] = []
    placeholders: dict[str, str] = {}
    copied = 0  # sql[:copied] is already in pieces
    end = n  # where the statement ends: the first top-level ';' or the end of the text
    positional = False  # a caller-written $n, which our $1, $2 ... would collide with
    kind = "" if pg else _compound_kind(sql, start)
    body = CompoundBody.opening(kind) if kind else None
    scanned = start  # a compound statement's code is fed to ``body`` up to here
    i = start
    while True:
        match = search(sql, i)
        if match is None:
            break
        i = match.start()
        c = sql[i]
        if c == ":":
            nxt = sql[i + 1 : i + 2]
            if nxt == ":" or nxt == "=":  # a ::type cast or := assignment
                i += 2
                continue
            name_match = _NAME.match(sql, i + 1)
            if name_match is None:  # a slice bound like [1:2], or a lone ':'
                i += 1
                continue
            name = name_match.group()
            placeholder = placeholders.get(name)
            if placeholder is None:
                placeholder = f"${len(placeholders) + 1}" if pg else f"%({name})s"
                placeholders[name] = placeholder
            chunk = sql[copied:i]
            pieces.append(chunk.replace("%", "%%") if double_percent else chunk)
            pieces.append(placeholder)
            i = copied = name_match.end()
        elif c == ";":
            if body is not None:
                _body_words(sql, scanned, i, body)
                if not body.semicolon():  # a semicolon inside the BEGIN ... END body of a compound statement
                    i = scanned = i + 1
                    continue
            end = i
            break
        elif c == "'":
            if pg and not is_escape_string(sql, i):
                i = skip_doubled(sql, i, "'", "string literal")
            else:
                i = skip_escaped(sql, i, "'")
        elif c == '"':
            i = skip_doubled(sql, i, '"', "quoted identifier") if pg else skip_escaped(sql, i, '"')
        elif c == "`":
            i = skip_doubled(sql, i, "`", "quoted identifier")
        elif c == "$":
            if sql[i + 1 : i + 2].isdigit() and not (i and is_ident_char(sql[i - 1])):
                positional = True
            i = skip_dollar(sql, i)
        elif c == "-":
            i = line_end(sql, i, pg) if is_dash_comment(sql, i, pg) else i + 1
        elif c == "#":
            i = line_end(sql, i, False)
        elif sql.startswith("/*", i):
            if not pg and is_executable_comment(sql, i):
                raise InvalidRequest(_EXECUTABLE_REFUSED, field="sql")
            i = block_end(sql, i, pg)
        else:  # a '/' that is not a comment
            i += 1

    if end < n and _skip_blank(sql, end + 1, pg, True) < n:
        raise InvalidRequest(_MULTIPLE, field="sql")
    if start >= end:
        raise InvalidRequest("sql is empty", field="sql")
    if positional and placeholders:
        raise InvalidRequest("sql mixes :name parameters with positional $n parameters", field="sql")

    tail = sql[copied:end]  # the whole text, same object, when nothing was rewritten
    if double_percent:
        tail = tail.replace("%", "%%")
    text = "".join(pieces) + tail if pieces else tail
    return PreparedSql(text, tuple(placeholders), _statement_type(sql, start, pg))


class CompoundBody:
    """Where a MySQL compound statement is in its BEGIN ... END body, fed the words of its code in order.

    BEGIN and CASE open a block that END closes; END IF, END LOOP, END WHILE and END REPEAT
    close blocks that are not counted. The tunnel's statement splitter uses it too.
    """

    __slots__ = ("depth", "ending")

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.ending = False  # an END whose next word decides what it closes

    @classmethod
    def opening(cls, kind: str) -> CompoundBody:
        """The count for a compound statement of ``kind`` (``compound_head``), fed its words from the first:
        a package (spec or body) is itself a block that its last END closes."""
        return cls(1 if kind == "PACKAGE" else 0)

    def word(self, word: str) -> None:
        """The next word of the code, upper-cased."""
        if self.ending:
            self.ending = False
            if word in ("IF", "LOOP", "WHILE", "REPEAT"):
                return
            self.depth -= 1
            if word == "CASE":  # END CASE
                return
        if word == "BEGIN" or word == "CASE":
            self.depth += 1
        elif word == "END":
            self.ending = True

    def semicolon(self) -> bool:
        """True when a semicolon here ends the statement (it is not inside the body)."""
        if self.ending:
            self.ending, self.depth = False, self.depth - 1
        return self.depth <= 0


def compound_head(words: list[str]) -> str | None:
    """Whether a MySQL statement whose code starts with ``words`` (upper-cased, literals and comments left out) is
    a compound statement: its kind (``PROCEDURE`` … ``PACKAGE``, ``ATOMIC`` for BEGIN NOT ATOMIC), ``""`` when it
    is not one, None while more words are needed.

    CREATE … PROCEDURE, FUNCTION, TRIGGER, EVENT or PACKAGE [BODY] (after OR REPLACE, DEFINER = user, AGGREGATE, in
    any spelling: the kind is the first of those words or of TABLE, VIEW, INDEX … among the first few), and BEGIN
    NOT ATOMIC. The API's scanner and the tunnel's statement splitter both decide with it, and start counting the
    body's blocks with ``CompoundBody.opening(kind)``.
    """
    if not words:
        return None
    if words[0] == "BEGIN":
        if words[:3] != ["BEGIN", "NOT", "ATOMIC"][: len(words)]:
            return ""
        return "ATOMIC" if len(words) >= 3 else None
    if words[0] != "CREATE":
        return ""
    for word in words[1:_HEAD_WORDS]:
        if word in _COMPOUND_KINDS:
            return word
        if word in _NOT_COMPOUND:
            return ""
    return None if len(words) < _HEAD_WORDS else ""


def _compound_kind(sql: str, start: int) -> str:
    words: list[str] = []
    for word in _code_words(sql, start, len(sql)):
        if word == ";":
            break
        words.append(word)
        kind = compound_head(words)
        if kind is not None:
            return kind
    return ""


def _body_words(sql: str, i: int, j: int, body: CompoundBody) -> None:
    """Feed the words of the MySQL code in ``sql[i:j]`` to ``body``."""
    for word in _code_words(sql, i, j):
        if word != ";":  # only inside a literal or comment here, which _code_words skips
            body.word(word)


def _code_words(sql: str, i: int, j: int):  # noqa: ANN202 - a generator of str
    """The words (upper-cased) and ';' of the MySQL code in ``sql[i:j]``, skipping literals, comments and variables."""
    while True:
        match = _BODY_CODE.search(sql, i, j)
        if match is None:
            return
        token, k = match.group(), match.start()
        if token == "'" or token == '"':
            i = skip_escaped(sql, k, token)
        elif token == "`":
            i = skip_doubled(sql, k, "`", "quoted identifier")
        elif token == "#" or (token == "-" and is_dash_comment(sql, k, False)):
            i = line_end(sql, k, False)
        elif token == "/" and sql.startswith("/*", k):
            i = block_end(sql, k, False)
        elif token in ("-", "/"):
            i = k + 1
        else:
            i = match.end()
            if k and (sql[k - 1].isalnum() or sql[k - 1] in "_$@"):  # part of a longer name or a variable
                continue
            yield token if token == ";" else token.upper()


def _statement_type(sql: str, i: int, pg: bool) -> str:
    # Skip opening parentheses so "(SELECT ...) UNION ..." reports SELECT.
    while sql.startswith("(", i):
        i = _skip_blank(sql, i + 1, pg, False)
    word = _WORD.match(sql, i)
    return word.group().upper() if word else ""


def _skip_blank(sql: str, i: int, pg: bool, semicolons: bool) -> int:
    """Index of the first character at or after ``i`` that is not whitespace or a comment."""
    n = len(sql)
    while True:
        i = _SPACE.match(sql, i).end()
        if i >= n:
            return n
        c = sql[i]
        if c == ";" and semicolons:
            i += 1
        elif c == "-" and is_dash_comment(sql, i, pg):
            i = line_end(sql, i, pg)
        elif c == "#" and not pg:
            i = line_end(sql, i, False)
        elif sql.startswith("/*", i):
            if not pg and is_executable_comment(sql, i):
                raise InvalidRequest(_EXECUTABLE_REFUSED, field="sql")
            i = block_end(sql, i, pg)
        else:
            return i
