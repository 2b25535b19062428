"""Column lineage and masking plans on tricky SQL, without a database."""

import pytest

from rdsgate.errors import GuardrailViolation
from rdsgate.lineage import Untraceable, output_sources, referenced_tables
from rdsgate.masking import MaskCatalog, parse_pattern

SCHEMA = {"public": {"customers": ["id", "name", "email"], "orders": ["id", "customer_id", "total"]}}
EMAIL = ("public", "customers", "email")
NAME = ("public", "customers", "name")


def sources(sql, engine="postgres"):
    tree, _ = referenced_tables(sql, engine)
    return [set(s) for s in output_sources(tree, engine, SCHEMA, "public")]


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SELECT email AS e FROM customers", [{EMAIL}]),
        ("SELECT lower(email) || name FROM customers", [{EMAIL, NAME}]),
        ("SELECT x.e FROM (SELECT email AS e FROM customers) x", [{EMAIL}]),
        ("WITH w AS (SELECT email FROM customers) SELECT * FROM w", [{EMAIL}]),
        ("SELECT name FROM customers UNION SELECT email FROM customers", [{NAME, EMAIL}]),
        ("SELECT (SELECT max(email) FROM customers) AS m", [{EMAIL}]),
        ("SELECT count(*) FROM customers", [set()]),
        ("SELECT o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id", [{("public", "orders", "total")}, {NAME}]),
        ("SELECT id FROM customers WHERE email LIKE 'a%'", [{("public", "customers", "id")}]),
        ("SELECT 'x' AS email", [set()]),
    ],
)
def test_outputs_trace_to_their_source_columns(sql, expected):
    assert sources(sql) == expected


@pytest.mark.parametrize("sql", ["SELECT row_to_json(c) FROM customers c", "SELECT c FROM customers c"])
def test_whole_row_references_derive_from_every_column(sql):
    assert EMAIL in sources(sql)[0] and NAME in sources(sql)[0]


@pytest.mark.parametrize(
    "sql",
    ["UPDATE customers SET name = 'x' RETURNING email", "SELECT to_jsonb(c.*) FROM customers c", "SELECT FROM WHERE"],
)
def test_what_cannot_be_traced_says_so(sql):
    with pytest.raises(Untraceable):
        sources(sql)


def catalog(patterns):
    rows = [("public", t, c, 100 + i, j + 1) for i, (t, cols) in enumerate(SCHEMA["public"].items()) for j, c in enumerate(cols)]
    return MaskCatalog.build("postgres", "public", rows, tuple(patterns))


@pytest.mark.parametrize("patterns", [["email"], ["customers.email"], ["public.customers.e*"], ["*.EMAIL"]])
def test_patterns_resolve_to_sources(patterns):
    built = catalog(patterns)
    assert built.masked == {EMAIL} and built.server_keys == {(100, 3)}


def test_plans_mask_derived_outputs_and_refuse_copies():
    built = catalog(["email"])
    assert built.plan("SELECT id, upper(email) FROM customers").outputs == (False, True)
    assert not built.plan("SELECT total FROM orders").touches
    assert not built.plan("SELECT 'a@b.c' AS email").touches  # names no table holding a masked column
    with pytest.raises(GuardrailViolation):
        built.plan("INSERT INTO orders (total) SELECT length(email) FROM customers")
    with pytest.raises(GuardrailViolation):
        built.plan("SELECT email INTO leak FROM customers")
    with pytest.raises(GuardrailViolation):
        built.plan("SELECT email FROM customers c, LATERAL (SELECT c.email AS x) l WHERE")


@pytest.mark.parametrize("pattern", ["", "a..b", "a.b.c.d", "."])
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(ValueError):
        parse_pattern(pattern)


def test_names_are_read_as_the_server_reads_them():
    built = catalog(["email"])
    # Quoted, commented or split names still name the masked column: the full trace runs.
    assert built.plan('SELECT "email" FROM /* x */ "customers"').outputs == (True,)
    assert not built.plan("SELECT total FROM orders -- email").touches  # a comment names nothing


@pytest.mark.parametrize(
    "sql, why",
    [
        ('SELECT upper(U&"\\0065mail") FROM U&"\\0063ustomers"', "Unicode-escaped name"),
        ("SELECT query_to_xml('select em'||'ail from cust'||'omers', true, true, '')", "query_to_xml()"),
        ("SELECT pg_catalog.schema_to_xml('public', true, true, '')", "schema_to_xml()"),
        ("SELECT \"table_to_xml\"('orders', true, true, '')", "table_to_xml()"),
        ("SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)", "dblink()"),
        ("SELECT histogram_bounds FROM pg_stats", "pg_stats"),
        ("DO $$ BEGIN EXECUTE 'select 1'; END $$", "procedural code (DO)"),
        ("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", "defines code"),
        ("SELECT " + "x" * 64 + " FROM orders", "longer than PostgreSQL's 63 bytes"),
    ],
)
def test_what_masking_cannot_trace_is_refused_whatever_it_names(sql, why):
    with pytest.raises(GuardrailViolation) as caught:
        catalog(["email"]).plan(sql)
    assert why in str(caught.value) and "the connection masks columns" in str(caught.value)


def test_mysql_reads_its_own_quoting():
    rows = [("shop", "customers", "email", 0, 0), ("shop", "orders", "total", 0, 0)]
    built = MaskCatalog.build("mysql", "shop", rows, ("email",))
    assert built.plan("SELECT upper(`email`) FROM `customers`").outputs == (True,)
    assert not built.plan("SELECT total FROM orders").touches
    with pytest.raises(GuardrailViolation):
        built.plan("SELECT sys_eval('id')")
