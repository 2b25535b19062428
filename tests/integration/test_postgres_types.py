"""PostgreSQL: every type round-trips to JSON without losing precision (through the IAM path)."""

import base64

import pytest

from tests.conftest import run_query


def run(runtime, sql, parameters=None, **options):
    return run_query(runtime, "pg", sql, parameters, **options)


@pytest.mark.parametrize(
    "expression, type_name, expected",
    [
        ("1::int2", "int2", 1),
        ("2147483647::int4", "int4", 2147483647),
        ("9007199254740991::int8", "int8", 9007199254740991),
        ("9007199254740993::int8", "int8", "9007199254740993"),
        ("(-9223372036854775808)::int8", "int8", "-9223372036854775808"),
        ("12345678901234567890.000000000000000001::numeric", "numeric", "12345678901234567890.000000000000000001"),
        ("'NaN'::numeric", "numeric", "NaN"),
        ("1.5::float8", "float8", 1.5),
        ("0.1::float4", "float4", 0.1),
        ("'NaN'::float8", "float8", "NaN"),
        ("'-Infinity'::float8", "float8", "-Infinity"),
        ("true", "bool", True),
        ("'text é'::text", "text", "text é"),
        ("'ab'::varchar(5)", "varchar", "ab"),
        ("'ab'::char(3)", "bpchar", "ab "),
        ("'2024-02-29'::date", "date", "2024-02-29"),
        ("'13:14:15.123456'::time", "time", "13:14:15.123456"),
        ("'13:14:15+02'::timetz", "timetz", "13:14:15+02:00"),
        ("'2024-01-02 03:04:05.5'::timestamp", "timestamp", "2024-01-02T03:04:05.5"),
        ("'2024-01-02 03:04:05+02'::timestamptz", "timestamptz", "2024-01-02T01:04:05+00:00"),
        ("'infinity'::timestamp", "timestamp", "infinity"),
        ("'1 year 2 months 3 days 04:05:06.5'::interval", "interval", "P1Y2M3DT4H5M6.5S"),
        ("'\\x00ff10'::bytea", "bytea", base64.b64encode(b"\x00\xff\x10").decode()),
        ("'6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10'::uuid", "uuid", "6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10"),
        ("'{\"a\": [1, 2.5, null]}'::json", "json", {"a": [1, 2.5, None]}),
        ("'{\"b\": {\"c\": true}}'::jsonb", "jsonb", {"b": {"c": True}}),
        ("ARRAY[1, 2, NULL]::int4[]", "_int4", [1, 2, None]),
        ("ARRAY[[1, 2], [3, 4]]::int8[]", "_int8", [[1, 2], [3, 4]]),
        ("ARRAY['a,b', 'c\"d', 'NULL', NULL]::text[]", "_text", ["a,b", 'c"d', "NULL", None]),
        ("ARRAY[1.10, 2]::numeric[]", "_numeric", ["1.10", "2"]),
        ("ARRAY['2024-01-02 03:04:05+00']::timestamptz[]", "_timestamptz", ["2024-01-02T03:04:05+00:00"]),
        ("'{\"a\":1}'::jsonb || '{}'::jsonb", "jsonb", {"a": 1}),
        ("NULL::int4", "int4", None),
        ("'192.168.0.1/24'::inet", "inet", "192.168.0.1/24"),
        ("'12.50'::money", "money", "$12.50"),
    ],
)
def test_value_round_trip(runtime, expression, type_name, expected):
    result = run(runtime, f"SELECT {expression} AS v")
    assert result["columns"] == [{"name": "v", "type": type_name}]
    assert result["records"] == [{"v": expected}]


def test_user_defined_enum_and_its_array(runtime, postgres):
    postgres.execute("DROP TYPE IF EXISTS mood CASCADE; CREATE TYPE mood AS ENUM ('sad', 'happy')", database="rdsgate_test")
    result = run(runtime, "SELECT 'happy'::mood AS m, ARRAY['sad', 'happy']::mood[] AS ms")
    assert result["columns"] == [{"name": "m", "type": "mood"}, {"name": "ms", "type": "_mood"}]
    assert result["records"] == [{"m": "happy", "ms": ["sad", "happy"]}]


@pytest.mark.parametrize(
    "hint, value, cast, expected",
    [
        ("DATE", "2024-02-29", "date", "2024-02-29"),
        ("TIME", "01:02:03", "time", "01:02:03"),
        ("TIMESTAMP", "2024-01-02 03:04:05", "timestamp", "2024-01-02T03:04:05"),
        ("TIMESTAMP", "2024-01-02T03:04:05+02:00", "timestamptz", "2024-01-02T01:04:05+00:00"),
        ("DECIMAL", "1.000000000000000000000001", "numeric", "1.000000000000000000000001"),
        ("UUID", "6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10", "uuid", "6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10"),
        ("JSON", {"k": [1, "two"]}, "jsonb", {"k": [1, "two"]}),
    ],
)
def test_type_hints_send_the_right_type(runtime, hint, value, cast, expected):
    # No cast in the SQL: the hint alone decides the parameter's type.
    result = run(runtime, "SELECT :v AS v, pg_typeof(:v)::text AS t", {"v": value}, typeHints={"v": hint})
    assert result["records"] == [{"v": expected, "t": "timestamp with time zone" if cast == "timestamptz" else result["records"][0]["t"]}]
    assert result["columns"][0]["type"] == cast


def test_json_parameter_types_without_hints(runtime):
    result = run(
        runtime,
        "SELECT :i + 1 AS i, :f * 2 AS f, NOT :b AS b, :s::text AS s, :o ->> 'k' AS o, :a::int[] AS a, :n::int AS n",
        {"i": 41, "f": 1.25, "b": False, "s": "x", "o": {"k": "v"}, "a": [1, 2], "n": None},
    )
    assert result["records"] == [{"i": 42, "f": 2.5, "b": True, "s": "x", "o": "v", "a": [1, 2], "n": None}]


def test_text_array_parameter_with_awkward_strings(runtime):
    awkward = ['a"b', "c\\d", "e,f", "{g}", "NULL", None]
    result = run(runtime, "SELECT :a::text[] AS a", {"a": awkward})
    assert result["records"] == [{"a": awkward}]
