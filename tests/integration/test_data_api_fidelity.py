"""Data API fidelity: what boto3's rds-data client and aurora-data-api see is what AWS's Data API returns.

Through the local HTTP server with SigV4, on both engines: json values as their JSON text,
timestamps and intervals in the Data API's formats, results over a limit failing the call
(unless rdsgate's extension field opts into truncation), database errors worded with the
engine's codes, continueAfterTimeout refused, MySQL AUTO_INCREMENT ids in generatedFields.
aurora-data-api's cursor is used as it is, without a transaction (rdsgate has none across
calls yet): its own value parsing, error-class mapping and lastrowid read these responses.
"""

import datetime as dt
import json
from decimal import Decimal

import aurora_data_api
import pytest

from rdsgate import dataapi
from rdsgate.drivers import ExecutionOptions
from rdsgate.errors import ResultTooLarge, SqlError
from rdsgate.sql.text import prepare
from tests.conftest import DATABASE, ENGINES, iam_definition, run_query
from tests.integration.sessions_fixtures import runners, session_table, sessions  # noqa: F401 (fixtures)
from tests.integration.test_data_api import SECRET, arn, client, endpoint  # noqa: F401 (fixtures)

DOC_DDL = {
    "pg": "CREATE TABLE fidelity_docs (id INT PRIMARY KEY, doc JSONB)",
    "my": "CREATE TABLE fidelity_docs (id INT PRIMARY KEY, doc JSON)",
}
SERIAL_DDL = {
    "pg": "CREATE TABLE fidelity_serial (id SERIAL PRIMARY KEY, name TEXT)",
    "my": "CREATE TABLE fidelity_serial (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT)",
}


@pytest.fixture(params=sorted(ENGINES))
def conn(request, runtime):
    name = ENGINES[request.param]
    for table, ddl in (("fidelity_docs", DOC_DDL), ("fidelity_serial", SERIAL_DDL)):
        run_query(runtime, name, f"DROP TABLE IF EXISTS {table}")
        run_query(runtime, name, ddl[name])
    yield name
    for table in ("fidelity_docs", "fidelity_serial"):
        run_query(runtime, name, f"DROP TABLE IF EXISTS {table}")


def execute(client, conn, sql, **kwargs):
    return client.execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql=sql, **kwargs)


def with_rdsgate_options(client, options):
    """Send rdsgate's extension field from boto3: the request body is rewritten before it is signed."""

    def add(request, **_):
        body = json.loads(request.data or b"{}")
        body["rdsgate"] = options
        request.data = json.dumps(body).encode()

    client.meta.events.register("before-sign.rds-data.ExecuteStatement", add)
    return client


def cursor_for(client, conn):
    """aurora-data-api's own cursor, used without a transaction (transaction_id is None)."""
    return aurora_data_api.AuroraDataAPICursor(client=client, dbname=DATABASE, aurora_cluster_arn=arn(conn), secret_arn=SECRET)


# -- 1. json/jsonb values are their JSON text; SQL NULL stays isNull ---------------------------


def test_json_values_come_back_as_their_json_text(client, conn):
    docs = ['{"a": "x", "bb": [1, 2]}', "[1, 2, 3]", '"str"', "true", "12.5"]
    for index, doc in enumerate(docs, start=1):
        execute(client, conn, "INSERT INTO fidelity_docs (id, doc) VALUES (:id, :doc)",
                parameters=[{"name": "id", "value": {"longValue": index}}, {"name": "doc", "value": {"stringValue": doc}, "typeHint": "JSON"}])
    execute(client, conn, "INSERT INTO fidelity_docs (id, doc) VALUES (9, NULL)")
    expected = ['{"a":"x","bb":[1,2]}', "[1,2,3]", '"str"', "true", "12.5"]  # compact, as the Data API writes JSON

    records = execute(client, conn, "SELECT doc FROM fidelity_docs ORDER BY id")["records"]
    assert records == [[{"stringValue": text}] for text in expected] + [[{"isNull": True}]]

    formatted = execute(client, conn, "SELECT id, doc FROM fidelity_docs ORDER BY id", formatRecordsAs="JSON", includeResultMetadata=True)
    assert json.loads(formatted["formattedRecords"]) == [{"id": i, "doc": text} for i, text in enumerate(expected, start=1)] + [{"id": 9, "doc": None}]
    assert "columnMetadata" not in formatted and "records" not in formatted  # AWS leaves both out beside formattedRecords


def test_json_null_is_the_text_null_not_sql_null(client, conn):
    execute(client, conn, "INSERT INTO fidelity_docs (id, doc) VALUES (1, 'null'), (2, NULL)")
    records = execute(client, conn, "SELECT doc FROM fidelity_docs ORDER BY id")["records"]
    assert records == [[{"stringValue": "null"}], [{"isNull": True}]]


def test_json_values_are_the_same_inside_a_transaction(client, conn, sessions):
    """A held transaction (transactionId) returns json as its text too: JSON null stays "null", not isNull."""
    execute(client, conn, "INSERT INTO fidelity_docs (id, doc) VALUES (1, 'null'), (2, '{\"a\": 1}'), (3, NULL)")
    sql = "SELECT doc FROM fidelity_docs ORDER BY id"
    expected = [[{"stringValue": "null"}], [{"stringValue": '{"a":1}'}], [{"isNull": True}]]
    assert execute(client, conn, sql)["records"] == expected
    begun = client.begin_transaction(resourceArn=arn(conn), secretArn=SECRET, database=DATABASE)
    try:
        inside = execute(client, conn, sql, transactionId=begun["transactionId"])
        formatted = execute(client, conn, sql, transactionId=begun["transactionId"], formatRecordsAs="JSON")
    finally:
        client.rollback_transaction(resourceArn=arn(conn), secretArn=SECRET, transactionId=begun["transactionId"])
    assert inside["records"] == expected
    assert json.loads(formatted["formattedRecords"]) == [{"doc": "null"}, {"doc": '{"a":1}'}, {"doc": None}]


def test_aurora_data_api_reads_json_decimals_and_timestamps(client, conn):
    cursor = cursor_for(client, conn)
    execute(client, conn, "INSERT INTO fidelity_docs (id, doc) VALUES (1, '[0, 0, 1]')")
    cast_ts = "CAST('2020-09-17 13:49:32.78018' AS TIMESTAMP)" if conn == "pg" else "CAST('2020-09-17 13:49:32.780180' AS DATETIME(6))"
    if conn == "my":  # aurora-data-api converts MySQL TIMESTAMP columns (typeName TIMESTAMP), not DATETIME
        run_sql = "CREATE TABLE fidelity_ts (ts TIMESTAMP(6) NULL, num DECIMAL(10, 5))"
    else:
        run_sql = "CREATE TABLE fidelity_ts (ts TIMESTAMP, num NUMERIC(10, 5))"
    execute(client, conn, "DROP TABLE IF EXISTS fidelity_ts")
    execute(client, conn, run_sql)
    try:
        execute(client, conn, f"INSERT INTO fidelity_ts VALUES ({cast_ts}, 2047.2047)")
        cursor.execute("SELECT d.doc, t.ts, t.num FROM fidelity_docs d, fidelity_ts t")
        assert cursor.fetchall() == [("[0,0,1]", dt.datetime(2020, 9, 17, 13, 49, 32, 780180), Decimal("2047.2047"))]
    finally:
        execute(client, conn, "DROP TABLE IF EXISTS fidelity_ts")


# -- 5. timestamps, times and intervals in the Data API's formats; /query keeps ISO 8601 -------


PG_TEMPORAL = (
    "SELECT TIMESTAMP '2024-02-29 13:14:15.123456' AS ts, TIMESTAMPTZ '2024-02-29 14:14:15.1234+01' AS tstz,"
    " DATE '2024-02-29' AS d, TIME '13:14:15.5' AS t, TIMETZ '13:14:15+05' AS ttz, TIMETZ '13:14:15+05:30' AS ttz2,"
    " INTERVAL '1 year 2 months 3 days 04:05:06.5' AS i, INTERVAL '-1 day +2 hours' AS i2, INTERVAL '0' AS i3,"
    " INTERVAL '-1 year -2 months 3 days -04:05:06' AS i4, INTERVAL '1 day -00:00:01.000001' AS i5, INTERVAL '100 hours' AS i6,"
    " ARRAY[TIMESTAMP '2024-02-29 13:14:15', TIMESTAMP '2024-03-01 00:00:00.5'] AS tss, TIMESTAMP 'infinity' AS inf"
)
PG_EXPECTED = [
    "2024-02-29 13:14:15.123456", "2024-02-29 13:14:15.1234", "2024-02-29", "13:14:15.5", "13:14:15+05", "13:14:15+05:30",
    "1 year 2 mons 3 days 04:05:06.5", "-1 days +02:00:00", "00:00:00",
    "-1 years -2 mons +3 days -04:05:06", "1 day -00:00:01.000001", "100:00:00",  # as PostgreSQL's default style writes them
    ["2024-02-29 13:14:15", "2024-03-01 00:00:00.5"], "infinity",
]
MY_TEMPORAL = (
    "SELECT CAST('2024-02-29 13:14:15.123456' AS DATETIME(6)) AS ts, CAST('2024-02-29 13:14:15' AS DATETIME) AS ts0,"
    " DATE '2024-02-29' AS d, CAST('13:14:15.5' AS TIME(1)) AS t, CAST('838:59:59' AS TIME) AS tmax"
)
MY_EXPECTED = ["2024-02-29 13:14:15.123456", "2024-02-29 13:14:15", "2024-02-29", "13:14:15.5", "838:59:59"]


def test_temporal_values_in_the_data_api_formats(client, runtime, conn):
    sql, expected = (PG_TEMPORAL, PG_EXPECTED) if conn == "pg" else (MY_TEMPORAL, MY_EXPECTED)
    fields = execute(client, conn, sql)["records"][0]
    assert fields == [{"arrayValue": {"stringValues": e}} if isinstance(e, list) else {"stringValue": e} for e in expected]
    formatted = json.loads(execute(client, conn, sql, formatRecordsAs="JSON")["formattedRecords"])[0]
    assert list(formatted.values()) == expected
    native = run_query(runtime, conn, sql)["records"][0]  # rdsgate's own /query keeps ISO 8601
    assert native["ts"] == "2024-02-29T13:14:15.123456"
    if conn == "pg":
        assert (native["tstz"], native["i"]) == ("2024-02-29T13:14:15.1234+00:00", "P1Y2M3DT4H5M6.5S")


def test_timestamptz_is_written_in_utc_whatever_the_statement_set(client):
    # set_config(..., true) lasts for the statement's transaction: the value still comes back in UTC.
    fields = execute(client, "pg", "SELECT set_config('TimeZone', 'Asia/Kolkata', true) AS tz, TIMESTAMPTZ '2024-02-29 13:14:15+00' AS at")["records"][0]
    assert fields == [{"stringValue": "Asia/Kolkata"}, {"stringValue": "2024-02-29 13:14:15"}]


def test_mysql_set_is_one_string_and_type_names_are_in_capitals(client):
    execute(client, "my", "DROP TABLE IF EXISTS fidelity_set")
    execute(client, "my", "CREATE TABLE fidelity_set (s SET('a', 'b', 'c'), v VARCHAR(5))")
    try:
        execute(client, "my", "INSERT INTO fidelity_set VALUES ('a,c', 'v')")
        response = execute(client, "my", "SELECT s, v FROM fidelity_set", includeResultMetadata=True)
        assert response["records"] == [[{"stringValue": "a,c"}, {"stringValue": "v"}]]
        assert [c["typeName"] for c in response["columnMetadata"]] == ["SET", "VARCHAR"]
    finally:
        execute(client, "my", "DROP TABLE IF EXISTS fidelity_set")


def test_json_format_numbers_and_duplicate_names(client, conn):
    big = "SELECT CAST(9007199254740993 AS BIGINT) AS big" if conn == "pg" else "SELECT CAST(9007199254740993 AS SIGNED) AS big"
    assert execute(client, conn, big, formatRecordsAs="JSON")["formattedRecords"] == '[{"big":9007199254740993}]'
    as_string = execute(client, conn, big, formatRecordsAs="JSON", resultSetOptions={"longReturnType": "STRING"})
    assert as_string["formattedRecords"] == '[{"big":"9007199254740993"}]'
    with pytest.raises(client.exceptions.BadRequestException, match="two columns named 'x'"):
        execute(client, conn, "SELECT 1 AS x, 2 AS x", formatRecordsAs="JSON")
    assert execute(client, conn, "SELECT 1 AS x, 2 AS x")["records"] == [[{"longValue": 1}, {"longValue": 2}]]
    with pytest.raises(client.exceptions.BadRequestException, match="formatRecordsAs: must be one of NONE, JSON"):
        execute(client, conn, "SELECT 1", formatRecordsAs="XML")


def test_masked_columns_are_strings_whatever_their_type(client, connections, postgres, mariadb):
    for engine, server in (("postgres", postgres), ("mysql", mariadb)):
        name = f"{ENGINES[engine]}-data-api-masked"
        connections.put(iam_definition(name, server, engine, masked_columns=["secret*"]))
        plain = ENGINES[engine]  # the table is made through an unmasked connection: DDL naming a masked column is refused
        execute(client, plain, "DROP TABLE IF EXISTS data_api_masked")
        execute(client, plain, "CREATE TABLE data_api_masked (secret_n int, n int)")
        execute(client, plain, "INSERT INTO data_api_masked VALUES (42, 7)")
        fields = execute(client, name, "SELECT secret_n, n FROM data_api_masked")["records"][0]
        assert fields == [{"stringValue": "****"}, {"longValue": 7}]
        formatted = execute(client, name, "SELECT secret_n, n FROM data_api_masked", formatRecordsAs="JSON")["formattedRecords"]
        assert json.loads(formatted) == [{"secret_n": "****", "n": 7}]
        # Only values from the masked source are masked: a literal under the same name is the caller's own.
        assert execute(client, name, "SELECT 42 AS secret_n")["records"][0] == [{"longValue": 42}]


# -- 2. a result over a limit fails the call, unless rdsgate's extension field opts in ---------


@pytest.fixture
def limited(connections, postgres, mariadb):
    """Connections whose definitions cap rows at 3 and bytes at 300."""
    names = {}
    for engine, server in (("postgres", postgres), ("mysql", mariadb)):
        prefix = ENGINES[engine]
        connections.put(iam_definition(f"{prefix}-rows-3", server, engine, max_rows=3))
        connections.put(iam_definition(f"{prefix}-bytes-300", server, engine, max_bytes=300))
        names[prefix] = (f"{prefix}-rows-3", f"{prefix}-bytes-300")
    return names


def five_rows(conn, width=1):
    if conn == "pg":
        return f"SELECT n, repeat('x', {width}) AS pad FROM generate_series(1, 5) AS n ORDER BY n"
    return f"SELECT seq AS n, REPEAT('x', {width}) AS pad FROM (SELECT 1 AS seq UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) s ORDER BY seq"


def test_result_over_max_rows_fails_naming_the_limit(client, conn, limited):
    rows_3, _ = limited[conn]
    with pytest.raises(client.exceptions.BadRequestException) as failure:
        execute(client, rows_3, five_rows(conn))
    message = str(failure.value)
    assert "Database response exceeded size limit" in message
    assert f"more than 3 rows, the limit set by max_rows of connection '{rows_3}'" in message
    assert '"rdsgate": {"truncate": true}' in message
    assert len(execute(client, rows_3, five_rows(conn) + " LIMIT 3")["records"]) == 3  # at the limit: no error


def test_result_over_max_bytes_fails_naming_the_limit(client, conn, limited):
    _, bytes_300 = limited[conn]
    with pytest.raises(client.exceptions.BadRequestException, match=f"over 300 bytes of JSON, the limit set by max_bytes of connection '{bytes_300}'"):
        execute(client, bytes_300, five_rows(conn, width=100))


def test_truncation_is_an_explicit_opt_in(client, conn, limited):
    rows_3, bytes_300 = limited[conn]
    with_rdsgate_options(client, {"truncate": True})
    response = execute(client, rows_3, five_rows(conn))
    assert [r[0] for r in response["records"]] == [{"longValue": 1}, {"longValue": 2}, {"longValue": 3}]
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-rdsgate-truncated"] == "true"
    cut = execute(client, bytes_300, five_rows(conn, width=100))
    assert 1 <= len(cut["records"]) < 5 and cut["ResponseMetadata"]["HTTPHeaders"]["x-rdsgate-truncated"] == "true"
    whole = execute(client, rows_3, five_rows(conn) + " LIMIT 2")
    assert "x-rdsgate-truncated" not in whole["ResponseMetadata"]["HTTPHeaders"]


def test_extension_field_is_checked(client):
    with_rdsgate_options(client, {"truncate": "yes"})
    with pytest.raises(client.exceptions.BadRequestException, match="rdsgate.truncate: must be true or false"):
        execute(client, "pg", "SELECT 1")


def test_writes_cut_at_a_limit_say_they_may_have_run(client, limited):
    rows_3, _ = limited["pg"]
    execute(client, "pg", "DROP TABLE IF EXISTS fidelity_cut")
    execute(client, "pg", "CREATE TABLE fidelity_cut (n INT)")
    try:
        with pytest.raises(client.exceptions.BadRequestException, match="may have written data"):
            execute(client, rows_3, "INSERT INTO fidelity_cut SELECT generate_series(1, 5) RETURNING n")
        with pytest.raises(client.exceptions.BadRequestException) as failure:
            execute(client, rows_3, "SELECT generate_series(1, 5)")
        assert "may have written" not in str(failure.value)
    finally:
        execute(client, "pg", "DROP TABLE IF EXISTS fidelity_cut")


def test_response_over_the_transport_limit_fails_or_is_cut_to_fit():
    records = [[{"stringValue": "x" * 50}, {"longValue": i}] for i in range(100)]
    document = {"numberOfRecordsUpdated": 0, "generatedFields": [], "records": records}
    with pytest.raises(ResultTooLarge, match="over the API's limit of 1000 bytes"):
        dataapi.encode_response(dict(document), 1000, truncate=False)
    text, cut = dataapi.encode_response(dict(document), 1000, truncate=True)
    kept = json.loads(text)["records"]
    assert cut and len(text.encode()) <= 1000 and kept == records[: len(kept)]
    assert len(json.dumps({**document, "records": records[: len(kept) + 1]}, separators=(",", ":")).encode()) > 1000  # as many as fit

    formatted = {"numberOfRecordsUpdated": 0, "generatedFields": [], "formattedRecords": [{"quote": 'say "hi"', "n": i} for i in range(100)]}
    text, cut = dataapi.encode_response(dict(formatted), 1000, truncate=True)
    rows = json.loads(json.loads(text)["formattedRecords"])
    assert cut and len(text.encode()) <= 1000 and rows == formatted["formattedRecords"][: len(rows)]
    more = json.dumps({**formatted, "formattedRecords": json.dumps(formatted["formattedRecords"][: len(rows) + 1], separators=(",", ":"))}, separators=(",", ":"))
    assert len(more.encode()) > 1000


# -- 3. database errors carry the engine's codes, as the Data API words them -------------------


def test_database_errors_carry_engine_codes(client, conn):
    with pytest.raises(client.exceptions.DatabaseErrorException) as missing:
        execute(client, conn, "SELECT * FROM no_such_table")
    execute(client, conn, "INSERT INTO fidelity_docs (id) VALUES (1)")
    with pytest.raises(client.exceptions.DatabaseErrorException) as duplicate:
        execute(client, conn, "INSERT INTO fidelity_docs (id) VALUES (1)")
    with pytest.raises(client.exceptions.DatabaseErrorException) as batch:
        client.batch_execute_statement(resourceArn=arn(conn), secretArn=SECRET, sql="INSERT INTO fidelity_docs (id) VALUES (:id)",
                                       parameterSets=[[{"name": "id", "value": {"longValue": 1}}]])
    message = lambda failure: failure.value.response["Error"]["Message"]  # noqa: E731
    if conn == "pg":
        assert message(missing) == 'ERROR: relation "no_such_table" does not exist; Position: 15; SQLState: 42P01'
        assert message(duplicate) == 'ERROR: duplicate key value violates unique constraint "fidelity_docs_pkey"; SQLState: 23505'
        assert message(batch).endswith("; SQLState: 23505")
    else:
        assert message(missing) == f"Table '{DATABASE}.no_such_table' doesn't exist; Error code: 1146; SQLState: 42S02"
        assert message(duplicate).endswith("; Error code: 1062; SQLState: 23000") and "Duplicate entry '1'" in message(duplicate)
        assert message(batch).endswith("; Error code: 1062; SQLState: 23000")


def test_aurora_data_api_maps_mysql_errors_to_its_classes(client):
    cursor = cursor_for(client, "my")
    with pytest.raises(aurora_data_api.MySQLError.ER_PARSE_ERROR):  # what aurora-data-api itself uses to detect MySQL
        cursor.execute("selec * from table")
    cursor.execute("DROP TABLE IF EXISTS fidelity_dup")
    cursor.execute("CREATE TABLE fidelity_dup (id INT PRIMARY KEY)")
    try:
        cursor.execute("INSERT INTO fidelity_dup VALUES (:id)", {"id": 1})
        with pytest.raises(aurora_data_api.MySQLError.ER_DUP_ENTRY):
            cursor.execute("INSERT INTO fidelity_dup VALUES (:id)", {"id": 1})
    finally:
        cursor.execute("DROP TABLE IF EXISTS fidelity_dup")


def test_aurora_data_api_maps_postgres_errors_to_its_classes(client):
    with pytest.raises(aurora_data_api.PostgreSQLError.ER_UNDEF_TABLE):
        cursor_for(client, "pg").execute("SELECT * FROM no_such_table")


def test_error_wording_for_each_engine():
    pg = SqlError('column "nme" does not exist', sqlstate="42703", hint='Perhaps you meant to reference the column "t.name".', position="8")
    assert dataapi.error_message(pg) == (
        'ERROR: column "nme" does not exist; Hint: Perhaps you meant to reference the column "t.name".; Position: 8; SQLState: 42703'
    )
    assert dataapi.error_message(SqlError("Unknown column 'nme' in 'field list'", errno=1054)) == (
        "Unknown column 'nme' in 'field list'; Error code: 1054; SQLState: 42S22"
    )
    assert dataapi.error_message(SqlError("Lock wait timeout exceeded", errno=1205)).endswith("; Error code: 1205; SQLState: HY000")


# -- 4. continueAfterTimeout is refused, never ignored -----------------------------------------


def test_continue_after_timeout_is_refused(client, conn):
    with pytest.raises(client.exceptions.BadRequestException, match="continueAfterTimeout: not supported"):
        execute(client, conn, "SELECT 1", continueAfterTimeout=True)
    assert execute(client, conn, "SELECT 1", continueAfterTimeout=False)["records"] == [[{"longValue": 1}]]


# -- 6. generatedFields: MySQL's AUTO_INCREMENT id, none on PostgreSQL --------------------------


def test_mysql_driver_reports_the_auto_increment_id(runtime, conn):
    service = runtime.get()
    definition = service.catalog.get(conn)
    connection = service.pool.acquire(definition)
    options = ExecutionOptions(max_rows=10)
    sql = "INSERT INTO fidelity_serial (name) VALUES ('a')"
    first = connection.execute(prepare(sql, definition.engine), {}, options)
    second = connection.execute(prepare(sql, definition.engine), {}, options)
    selected = connection.execute(prepare("SELECT id FROM fidelity_serial", definition.engine), {}, options)
    if conn == "my":
        assert (first.last_insert_id, second.last_insert_id) == (1, 2)
    else:
        assert (first.last_insert_id, second.last_insert_id) == (None, None)
    assert selected.last_insert_id is None


def test_postgres_generated_fields_are_empty(client):
    assert execute(client, "pg", "SELECT 1")["generatedFields"] == []
    execute(client, "pg", "DROP TABLE IF EXISTS fidelity_pg_serial")
    execute(client, "pg", "CREATE TABLE fidelity_pg_serial (id SERIAL PRIMARY KEY, name TEXT)")
    try:
        inserted = execute(client, "pg", "INSERT INTO fidelity_pg_serial (name) VALUES ('a')")
        assert (inserted["numberOfRecordsUpdated"], inserted["generatedFields"]) == (1, [])  # AWS: use RETURNING
    finally:
        execute(client, "pg", "DROP TABLE IF EXISTS fidelity_pg_serial")


def test_mysql_generated_fields_and_lastrowid(client, runtime):
    run_query(runtime, "my", "DROP TABLE IF EXISTS fidelity_serial")
    run_query(runtime, "my", SERIAL_DDL["my"])
    try:
        assert execute(client, "my", "INSERT INTO fidelity_serial (name) VALUES ('a')")["generatedFields"] == [{"longValue": 1}]
        cursor = cursor_for(client, "my")
        cursor.execute("INSERT INTO fidelity_serial (name) VALUES (:name)", {"name": "b"})
        assert cursor.lastrowid == 2
        batch = client.batch_execute_statement(resourceArn=arn("my"), secretArn=SECRET, sql="INSERT INTO fidelity_serial (name) VALUES (:name)",
                                               parameterSets=[[{"name": "name", "value": {"stringValue": n}}] for n in ("c", "d")])
        assert [u["generatedFields"] for u in batch["updateResults"]] == [[{"longValue": 3}], [{"longValue": 4}]]
    finally:
        run_query(runtime, "my", "DROP TABLE IF EXISTS fidelity_serial")


def test_generated_fields_from_a_result_that_carries_the_id():
    # What the Data API path writes once the service passes the driver's id on (see the xfail above).
    result = {"columns": [], "records": [], "rowCount": 0, "updatedRows": 1, "truncated": False, "lastInsertId": 315}
    output = {"metadata": False, "json": False, "decimal": "STRING", "long": "LONG", "truncate": False}
    assert dataapi.execute_response(result, output, "mysql") == {"numberOfRecordsUpdated": 1, "generatedFields": [{"longValue": 315}]}
    batch = dataapi.batch_response({"updateResults": [{"updatedRows": 1, "lastInsertId": 7}, {"updatedRows": 0}]})
    assert batch == {"updateResults": [{"generatedFields": [{"longValue": 7}]}, {"generatedFields": []}]}
