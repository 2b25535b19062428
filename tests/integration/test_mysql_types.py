"""MariaDB/MySQL: every type round-trips to JSON without losing precision (through the IAM path)."""

import base64

import pytest

from tests.conftest import run_query

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS every_type (
  id INT PRIMARY KEY,
  c_tiny TINYINT, c_small SMALLINT, c_medium MEDIUMINT, c_int INT, c_big BIGINT, c_ubig BIGINT UNSIGNED,
  c_dec DECIMAL(40, 20), c_float FLOAT, c_double DOUBLE, c_bit BIT(10), c_year YEAR,
  c_date DATE, c_time TIME(6), c_datetime DATETIME(6), c_ts TIMESTAMP(3) NULL,
  c_char CHAR(3), c_varchar VARCHAR(20), c_text TEXT, c_binary BINARY(3), c_varbinary VARBINARY(8), c_blob BLOB,
  c_enum ENUM('small', 'large'), c_set SET('a', 'b', 'c'), c_json JSON, c_null INT
)
"""


def run(runtime, sql, parameters=None, **options):
    return run_query(runtime, "my", sql, parameters, **options)


@pytest.fixture(scope="module")
def every_type(mariadb):
    mariadb.execute(TABLE_DDL, database="rdsgate_test")
    mariadb.execute("DELETE FROM every_type", database="rdsgate_test")
    mariadb.execute(
        "INSERT INTO every_type VALUES (1, -128, 32767, 8388607, 2147483647, 9007199254740993, 18446744073709551615,"
        " '12345678901234567890.12345678901234567890', 1.5, 0.1, b'1000000001', 2024,"
        " '2024-02-29', '-12:34:56.5', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.5',"
        " 'ab', 'varchar é', 'long text', X'00FF10', X'DEADBEEF', X'0102',"
        " 'large', 'a,c', '{\"k\": [1, 2.5, null]}', NULL)",
        database="rdsgate_test",
    )
    return "every_type"


EXPECTED = {
    "c_tiny": ("tinyint", -128),
    "c_small": ("smallint", 32767),
    "c_medium": ("mediumint", 8388607),
    "c_int": ("int", 2147483647),
    "c_big": ("bigint", "9007199254740993"),
    "c_ubig": ("bigint", "18446744073709551615"),
    "c_dec": ("decimal", "12345678901234567890.12345678901234567890"),
    "c_float": ("float", 1.5),
    "c_double": ("double", 0.1),
    "c_bit": ("bit", 513),
    "c_year": ("year", 2024),
    "c_date": ("date", "2024-02-29"),
    "c_time": ("time", "-12:34:56.500000"),
    "c_datetime": ("datetime", "2024-01-02T03:04:05.123456"),
    "c_ts": ("timestamp", "2024-01-02T03:04:05.500"),
    "c_char": ("char", "ab"),
    "c_varchar": ("varchar", "varchar é"),
    "c_text": ("text", "long text"),
    "c_binary": ("binary", base64.b64encode(b"\x00\xff\x10").decode()),
    "c_varbinary": ("varbinary", base64.b64encode(b"\xde\xad\xbe\xef").decode()),
    "c_blob": ("blob", base64.b64encode(b"\x01\x02").decode()),
    "c_enum": ("enum", "large"),
    "c_set": ("set", ["a", "c"]),
    "c_json": ("json", {"k": [1, 2.5, None]}),
    "c_null": ("int", None),
}


@pytest.mark.parametrize("column", sorted(EXPECTED))
def test_column_round_trip(runtime, every_type, column):
    result = run(runtime, f"SELECT {column} FROM every_type WHERE id = :id", {"id": 1})
    type_name, value = EXPECTED[column]
    assert result["columns"] == [{"name": column, "type": type_name}]
    assert result["records"] == [{column: value}]


@pytest.mark.parametrize(
    "hint, value, cast, expected",
    [
        ("DATE", "2024-02-29", "DATE", "2024-02-29"),
        ("TIME", "01:02:03", "TIME", "01:02:03"),
        ("TIMESTAMP", "2024-01-02 03:04:05", "DATETIME", "2024-01-02T03:04:05"),
        ("TIMESTAMP", "2024-01-02T03:04:05+02:00", "DATETIME", "2024-01-02T01:04:05"),
        ("DECIMAL", "1.000000000000000000000001", "DECIMAL(30, 24)", "1.000000000000000000000001"),
        ("UUID", "6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10", "CHAR", "6f1c0a3e-64a4-4c1e-9d36-3f5a4b3f2c10"),
    ],
)
def test_type_hints(runtime, hint, value, cast, expected):
    result = run(runtime, f"SELECT CAST(:v AS {cast}) AS v", {"v": value}, typeHints={"v": hint})
    assert result["records"] == [{"v": expected}]


def test_json_hint_is_stored_as_json(runtime, every_type):
    run(runtime, "INSERT INTO every_type (id, c_json) VALUES (2, :doc)", {"doc": {"a": [1, "x"]}}, typeHints={"doc": "JSON"})
    try:
        result = run(runtime, "SELECT c_json FROM every_type WHERE id = 2")
        assert result["records"] == [{"c_json": {"a": [1, "x"]}}]
    finally:
        run(runtime, "DELETE FROM every_type WHERE id = 2")
