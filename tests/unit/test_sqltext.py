"""Unit tests for rdsgate.sql.text: parameter rewriting, statement checks, statement type."""

from __future__ import annotations

import pytest

from rdsgate.errors import InvalidRequest
from rdsgate.sql.text import PreparedSql, compound_head, parameter_names, prepare

PG = "postgres"
MY = "mysql"


def assert_refused(sql: str, dialect: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        prepare(sql, dialect)
    assert fragment in caught.value.message
    assert caught.value.details == {"field": "sql"}


def assert_rejected(sql: str, dialect: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        prepare(sql, dialect)
    assert caught.value.message == message
    assert caught.value.details == {"field": "sql"}


# --- PostgreSQL rewriting -------------------------------------------------------------------

@pytest.mark.parametrize(
    "sql, text, names",
    [
        ("select :a", "select $1", ("a",)),
        ("select :a, :b, :a", "select $1, $2, $1", ("a", "b")),
        ("select :a::int", "select $1::int", ("a",)),
        ("select :a::text, '::x'", "select $1::text, '::x'", ("a",)),
        ("select x::int, 'a'::text, y:: int from t", "select x::int, 'a'::text, y:: int from t", ()),
        ("select :_x1, :X_2", "select $1, $2", ("_x1", "X_2")),
        ("select :Id, :id", "select $1, $2", ("Id", "id")),
        ("select arr[1:2], arr[:3], arr[4:] from t", "select arr[1:2], arr[:3], arr[4:] from t", ()),
        ("select f(a := 1)", "select f(a := 1)", ()),
        ("select $1, $2::int", "select $1, $2::int", ()),
        ("select 'it''s :x', :y", "select 'it''s :x', $1", ("y",)),
        ("select E'it\\'s :x', :y", "select E'it\\'s :x', $1", ("y",)),
        ("select e'\\\\', :y", "select e'\\\\', $1", ("y",)),
        # Without the E prefix a backslash is an ordinary character, so the literal ends at \'.
        ("select 'a\\', :x", "select 'a\\', $1", ("x",)),
        # A word ending in e is not an E prefix.
        ("select some'a\\', :x", "select some'a\\', $1", ("x",)),
        ('select "col:x", "a""b:y", :z', 'select "col:x", "a""b:y", $1', ("z",)),
        ("select 1 -- :x\n, :y", "select 1 -- :x\n, $1", ("y",)),
        ("select /* :x */ :y", "select /* :x */ $1", ("y",)),
        ("select /* a /* :x */ :y */ :z", "select /* a /* :x */ :y */ $1", ("z",)),
        ("select $$ :x ; $$, :y", "select $$ :x ; $$, $1", ("y",)),
        ("select $fn$ :x $$ :y $fn$, :z", "select $fn$ :x $$ :y $fn$, $1", ("z",)),
        ("select a$b, :z from t", "select a$b, $1 from t", ("z",)),
        ("select 5 % 2, :p", "select 5 % 2, $1", ("p",)),
        ("select ':x'", "select ':x'", ()),
        ("select 1 : 2", "select 1 : 2", ()),
    ],
)
def test_postgres_rewrites_named_parameters(sql: str, text: str, names: tuple[str, ...]) -> None:
    prepared = prepare(sql, PG)

    assert prepared.text == text
    assert prepared.names == names


# --- MySQL rewriting ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "sql, text, names",
    [
        ("select :a", "select %(a)s", ("a",)),
        ("select :a, :b, :a", "select %(a)s, %(b)s, %(a)s", ("a", "b")),
        (
            "select * from t where n like 'a%' and id = :id",
            "select * from t where n like 'a%%' and id = %(id)s",
            ("id",),
        ),
        ("select 5 % 2", "select 5 %% 2", ()),
        ("select '%s %(x)s' # 100%\n", "select '%%s %%(x)s' # 100%%\n", ()),
        ("select /* 50% */ `pct%`, :p", "select /* 50%% */ `pct%%`, %(p)s", ("p",)),
        ("set @v := 1, @w := :x", "set @v := 1, @w := %(x)s", ("x",)),
        ("select 'it\\'s :x', :y", "select 'it\\'s :x', %(y)s", ("y",)),
        ("select 'it''s :x', :y", "select 'it''s :x', %(y)s", ("y",)),
        ('select "say \\":x\\"", "a"":b", :y', 'select "say \\":x\\"", "a"":b", %(y)s', ("y",)),
        ("select 'a\\\\', :x", "select 'a\\\\', %(x)s", ("x",)),
        ("select `a``:b`, :c", "select `a``:b`, %(c)s", ("c",)),
        ("select 1 # :x\n, :y", "select 1 # :x\n, %(y)s", ("y",)),
        ("select 1 -- :x\n, :y", "select 1 -- :x\n, %(y)s", ("y",)),
        ("select 1 --\t:x\n, :y", "select 1 --\t:x\n, %(y)s", ("y",)),
        # "--" without whitespace after it is two minus signs, so :x is a parameter.
        ("select 1--:x", "select 1--%(x)s", ("x",)),
        ("select /* :x */ :y", "select /* :x */ %(y)s", ("y",)),
        # MySQL block comments do not nest: the first */ closes it.
        ("select /* a /* b */ :y", "select /* a /* b */ %(y)s", ("y",)),
        ("select $$ :x $$", "select $$ %(x)s $$", ("x",)),
        ("select '10:30', :t", "select '10:30', %(t)s", ("t",)),
    ],
)
def test_mysql_rewrites_named_parameters(sql: str, text: str, names: tuple[str, ...]) -> None:
    prepared = prepare(sql, MY)

    assert prepared.text == text
    assert prepared.names == names


def test_mysql_text_formats_back_to_the_original_with_python_percent() -> None:
    # GIVEN SQL full of percent signs, as PyMySQL will format it with the escaped arguments
    sql = "select * from t where a like '50%' and b like \"%x\" and c = :c # 100%"

    # WHEN it is prepared and formatted the way PyMySQL does
    prepared = prepare(sql, MY)
    sent = prepared.text % {"c": "'v'"}

    # THEN every literal percent survives and only the parameter is substituted
    assert sent == "select * from t where a like '50%' and b like \"%x\" and c = 'v' # 100%"
    assert prepare("select 'a%b'", MY).text % {} == "select 'a%b'"


def test_postgres_rejects_mixing_named_and_positional_parameters() -> None:
    # Our $1 would silently bind to the caller's $1.
    assert_rejected("select $1, :a", PG, "sql mixes :name parameters with positional $n parameters")
    assert prepare("select '$1', $$ $2 $$, a$1, :a", PG).text == "select '$1', $$ $2 $$, a$1, $1"
    assert prepare("select $1, :a", MY).text == "select $1, %(a)s"


def test_injection_looking_names_stay_placeholders() -> None:
    sql = "select * from users where name = :select_or_1_eq_1 and :DROP = :drop_table_users"

    assert prepare(sql, PG).text == "select * from users where name = $1 and $2 = $3"
    assert prepare(sql, MY).text == (
        "select * from users where name = %(select_or_1_eq_1)s and %(DROP)s = %(drop_table_users)s"
    )
    assert prepare(sql, MY).names == ("select_or_1_eq_1", "DROP", "drop_table_users")


def test_a_name_stops_at_the_first_non_identifier_character() -> None:
    # A ';' right after a name is not part of it: it ends the statement.
    assert_rejected("select :x;drop table t", PG, "sql must contain exactly one statement; found more than one")
    assert prepare("select :x)--", PG).text == "select $1)--"
    assert prepare("select :x.y", MY).names == ("x",)


# --- Statement boundaries -------------------------------------------------------------------

MULTIPLE = "sql must contain exactly one statement; found more than one"
EMPTY = "sql is empty"


@pytest.mark.parametrize("dialect", [PG, MY])
@pytest.mark.parametrize(
    "sql",
    [
        "select 1; drop table t",
        "select 1;select 2",
        "select ';'; select 2",
        "select 1; -- c\n select 2",
        "select 1; /* c */ select 2",
        "select 1;;; select 2",
        "; select 1",
    ],
)
def test_more_than_one_statement_is_rejected(sql: str, dialect: str) -> None:
    assert_rejected(sql, dialect, MULTIPLE)


def test_dollar_quotes_open_where_postgres_opens_them() -> None:
    # A non-ASCII character continues a name (PostgreSQL's ident_cont holds every byte from \x80): €$a$ is a name.
    assert_rejected("select 1 as €$a$; delete from t; select 2 as x$a$", PG, MULTIPLE)
    assert_rejected("select 1 as é$a$; delete from t; select 2 as x$a$", PG, MULTIPLE)
    # A tag may hold any non-ASCII character, beyond U+FFFF too.
    assert_rejected("select $😀$ ' $😀$ as a; delete from t -- '", PG, MULTIPLE)
    assert prepare("select $😀$ :no $😀$, $𝔞_1$ :no $𝔞_1$, :yes", PG).names == ("yes",)


def test_a_carriage_return_ends_a_line_comment_on_postgres_only() -> None:
    assert_rejected("select 1 -- c\r; select 2", PG, MULTIPLE)
    assert prepare("select 1 -- c\r; select 2\n, :a", MY).names == ("a",)
    assert prepare("select 1 -- c\r, :a\n, :b", PG).names == ("a", "b")


@pytest.mark.parametrize(
    "sql, dialect, text",
    [
        ("select 1;", PG, "select 1"),
        ("select 1 ;\n", MY, "select 1 "),
        ("select 1;  -- trailing comment", PG, "select 1"),
        ("select 1;  -- trailing comment", MY, "select 1"),
        ("select 1; # trailing\n", MY, "select 1"),
        ("select 1; /* a /* nested */ comment */ ;;", PG, "select 1"),
        ("select ';'", PG, "select ';'"),
        ("select ';' ; ", MY, "select ';' "),
        ('select ";"', PG, 'select ";"'),
        ('select ";", `;`', MY, 'select ";", `;`'),
        ("select 1 -- ; select 2", PG, "select 1 -- ; select 2"),
        ("select 1 /* ; select 2 */", MY, "select 1 /* ; select 2 */"),
        ("select 1 # ; select 2", MY, "select 1 # ; select 2"),
        ("select $$;$$, $t$ ; select 2 $t$", PG, "select $$;$$, $t$ ; select 2 $t$"),
        ("select E'\\';'", PG, "select E'\\';'"),
        ("select '\\';'", MY, "select '\\';'"),
    ],
)
def test_one_statement_with_optional_trailing_semicolon(sql: str, dialect: str, text: str) -> None:
    assert prepare(sql, dialect).text == text


@pytest.mark.parametrize(
    "sql",
    [
        "select 1; /*! drop table t */",
        "/*!SET SESSION TRANSACTION READ WRITE*/",
        "/*!40101 SET autocommit=0 */",
        "/*M!100100 SET max_statement_time=0 */",
        "/*m!100100 SET max_statement_time=0 */",
        "select /*!*/ 1",
        "select 1 /*!50000 , sleep(1) */",
        "/*!DELETE FROM t*/",
        "select :x /*! :y */",
        "select 1 -- x\n/*!delete from t*/",
    ],
)
def test_mysql_executable_comments_are_refused(sql: str) -> None:
    # MySQL runs their body as code, depending on the server's version: never guessed at.
    assert_refused(sql, MY, "executable comments")


def test_ordinary_comments_and_hints_stay_comments() -> None:
    assert prepare("select 1; /* drop table t */", MY).text == "select 1"
    assert prepare("select /*+ MAX_EXECUTION_TIME(10) */ 1", MY).statement_type == "SELECT"
    # In PostgreSQL /*! is an ordinary comment.
    assert prepare("/*! drop table t */ select 1", PG).statement_type == "SELECT"
    # Inside a literal, it is data.
    assert prepare("select '/*!delete*/'", MY).names == ()


@pytest.mark.parametrize("dialect", [PG, MY])
def test_nul_and_lone_surrogates_are_refused(dialect: str) -> None:
    assert_refused("select 1\x00", dialect, "NUL")
    assert_refused("select 'a\x00b'", dialect, "NUL")
    assert_refused("select '\ud800'", dialect, "surrogate")
    assert prepare("select '\U0001F600 é'", dialect).statement_type == "SELECT"


@pytest.mark.parametrize("dialect", [PG, MY])
@pytest.mark.parametrize("sql", ["", "   \n\t", ";", " ; ;", "-- only a comment", "/* just */ -- this\n;"])
def test_empty_sql_is_rejected(sql: str, dialect: str) -> None:
    assert_rejected(sql, dialect, EMPTY)


def test_dialect_specific_comments_only_are_empty() -> None:
    assert_rejected("# hash comment", MY, EMPTY)
    assert_rejected("/* a /* nested */ b */", PG, EMPTY)
    # In MySQL "--x" is not a comment, and in PostgreSQL "#" is an operator: both are code.
    assert prepare("--x", MY).statement_type == ""
    assert prepare("# x", PG).text == "# x"


# --- Unterminated constructs ----------------------------------------------------------------

@pytest.mark.parametrize(
    "sql, dialect, what",
    [
        ("select 'abc", PG, "string literal"),
        ("select 'it''s", PG, "string literal"),
        ("select E'abc\\'", PG, "string literal"),
        ("select 'abc\\'", MY, "string literal"),
        ('select "abc', MY, "string literal"),
        ('select "abc', PG, "quoted identifier"),
        ("select `abc", MY, "quoted identifier"),
        ("select $$abc", PG, "dollar-quoted string"),
        ("select $a$abc$b$", PG, "dollar-quoted string"),
        ("select /* abc", PG, "block comment"),
        ("select /* a /* b */", PG, "block comment"),
        ("select /* abc", MY, "block comment"),
        ("select 1; /* abc", PG, "block comment"),
    ],
)
def test_unterminated_constructs_are_rejected(sql: str, dialect: str, what: str) -> None:
    assert_rejected(sql, dialect, f"sql has an unterminated {what}")


# --- Statement type -------------------------------------------------------------------------

@pytest.mark.parametrize(
    "sql, dialect, statement_type",
    [
        ("select 1", PG, "SELECT"),
        ("  InSeRt into t values (:a)", PG, "INSERT"),
        ("WITH x AS (select 1) select * from x", PG, "WITH"),
        ("-- why\n/* how /* nested */ */ update t set a = 1", PG, "UPDATE"),
        ("# note\n-- more\n/* and */ delete from t", MY, "DELETE"),
        ("((select 1)) union (select 2)", PG, "SELECT"),
        ("( /* c */ select 1)", MY, "SELECT"),
        ("select\n1", MY, "SELECT"),
        ("select*from t", PG, "SELECT"),
        ("$$x$$", PG, ""),
        ("'x'", MY, ""),
        ("-- \rcommit -- \nand no chain", PG, "COMMIT"),  # PostgreSQL's -- comment ends at \r
        ("-- \rcommit -- \nselect 1", MY, "SELECT"),  # MySQL's at \n only
    ],
)
def test_statement_type_is_the_first_keyword(sql: str, dialect: str, statement_type: str) -> None:
    assert prepare(sql, dialect).statement_type == statement_type


# --- API details ----------------------------------------------------------------------------

def test_plain_sql_is_returned_as_is() -> None:
    sql = "select a, b from t where c = 1 order by a"

    prepared = prepare(sql, MY)

    assert prepared == PreparedSql(sql, (), "SELECT")
    assert prepared.text is sql


def test_results_are_cached_and_frozen() -> None:
    first = prepare("select :a from t", PG)

    assert prepare("select :a from t", PG) is first
    assert prepare("select :a from t", MY) is not first
    with pytest.raises(AttributeError):
        first.text = "x"  # type: ignore[misc]


def test_long_sql_is_prepared_without_the_cache() -> None:
    sql = "select :a" + " " * 10_000 + ", '%'"

    prepared = prepare(sql, MY)

    assert prepared.names == ("a",)
    assert prepared.text.endswith(", '%%'")
    assert prepare(sql, MY) is not prepared


def test_parameter_names_are_distinct_in_order_of_appearance() -> None:
    sql = "select :b, :a, :b, ':c', :d::int"

    assert parameter_names(sql, PG) == ("b", "a", "d")
    assert parameter_names(sql, MY) == ("b", "a", "d")


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        prepare("select 1", "oracle")


def test_non_string_sql_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as caught:
        prepare(b"select 1", PG)  # type: ignore[arg-type]
    assert caught.value.details == {"field": "sql"}


# --- MySQL compound statements --------------------------------------------------------------

@pytest.mark.parametrize(
    "sql",
    [
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
        "create procedure p() begin if 1 then select 1; end if; case when 1 then select 2; end case; "
        "set @x = case when 1 then 2 else 3 end; end;",
        "CREATE DEFINER=`root`@`%` PROCEDURE p() lbl: BEGIN DECLARE x INT DEFAULT 0; WHILE x < 3 DO "
        "SET x = x + 1; END WHILE; REPEAT SET x = x - 1; UNTIL x = 0 END REPEAT; LOOP LEAVE lbl; END LOOP; END lbl",
        "CREATE OR REPLACE FUNCTION f() RETURNS int BEGIN DECLARE s TEXT DEFAULT 'end; begin'; -- end;\n"
        "RETURN 1; END",
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; SET NEW.b = `end;`; END",
        "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO BEGIN DELETE FROM t /* ; */; END",
        "BEGIN NOT ATOMIC SELECT 1; SELECT 2; END",
    ],
)
def test_mysql_compound_statement_is_one_statement(sql: str) -> None:
    prepared = prepare(sql, MY)

    assert prepared.text == sql.rstrip(";").replace("%", "%%")  # PyMySQL formats the text
    assert prepared.statement_type in ("CREATE", "BEGIN")


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE PROCEDURE p() BEGIN SELECT 1; END; SELECT 2",
        "CREATE FUNCTION f() RETURNS int RETURN 1; SELECT 2",  # no BEGIN ... END body
        "CREATE TABLE t (a int); SELECT 1",
        "SELECT CASE WHEN 1 THEN 2 END; SELECT 2",
        "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET NEW.a = 1; SELECT 2",
    ],
)
def test_mysql_statements_after_a_compound_statement_are_still_several(sql: str) -> None:
    assert_rejected(sql, MY, "sql must contain exactly one statement; found more than one")


def test_mysql_compound_statement_keeps_its_parameters_and_postgres_is_unchanged() -> None:
    prepared = prepare("CREATE PROCEDURE p() BEGIN SELECT :a; SELECT :b; END", MY)

    assert prepared.names == ("a", "b")
    assert prepared.text == "CREATE PROCEDURE p() BEGIN SELECT %(a)s; SELECT %(b)s; END"
    assert_rejected("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql; SELECT 1", PG,
                    "sql must contain exactly one statement; found more than one")


@pytest.mark.parametrize(
    "words, kind",
    [
        (["CREATE", "PROCEDURE"], "PROCEDURE"),
        (["CREATE", "OR", "REPLACE", "DEFINER", "A", "B", "AGGREGATE", "FUNCTION"], "FUNCTION"),
        (["CREATE", "PACKAGE", "BODY"], "PACKAGE"),
        (["BEGIN", "NOT", "ATOMIC"], "ATOMIC"),
        (["CREATE", "TABLE", "PROCEDURE"], ""),
        (["BEGIN", "WORK"], ""),
        (["SELECT"], ""),
        (["CREATE", "DEFINER"], None),
        (["BEGIN", "NOT"], None),
        (["CREATE"] + ["X"] * 7, ""),
    ],
)
def test_one_head_test_decides_a_mysql_compound_statement(words: list[str], kind: str | None) -> None:
    assert compound_head(words) == kind
