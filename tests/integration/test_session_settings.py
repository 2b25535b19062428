"""Statement timeouts: each statement runs under exactly its own timeout, however the driver sets it.

PostgreSQL sets it in the request's transaction (SET LOCAL), MariaDB on the statement
(SET STATEMENT ... FOR), MySQL on the session, again only when it changes (a failed
request leaves nothing behind either way). The function's deadline is turned into whole
seconds, so that consecutive requests ask for the same timeout.
"""

import pytest

from rdsgate import errors
from rdsgate.access import TRUSTED
from rdsgate.request import parse_query
from rdsgate.service import Invocation
from tests.conftest import ENGINES, run_query

SHOW = {"postgres": "SELECT current_setting('statement_timeout') AS t", "mysql": "SELECT @@max_statement_time AS t"}
# The runtime fixture sets RDSGATE_STATEMENT_TIMEOUT_MS=5000: the login's timeout.
LOGIN = {"postgres": "5s", "mysql": 5.0}
EXPECTED = {
    "postgres": lambda ms: f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms",
    "mysql": lambda ms: ms / 1000,
}


def timeout_seen(runtime, engine, **options):
    return run_query(runtime, ENGINES[engine], SHOW[engine], **options)["records"][0]["t"]


def test_each_request_runs_under_its_own_timeout(runtime, engine):
    expect = EXPECTED[engine]
    assert timeout_seen(runtime, engine) == LOGIN[engine]
    assert timeout_seen(runtime, engine, timeoutMs=1500) == expect(1500)
    assert timeout_seen(runtime, engine, timeoutMs=1500) == expect(1500)  # kept: no SET sent
    assert timeout_seen(runtime, engine) == LOGIN[engine]  # back to the login's
    assert timeout_seen(runtime, engine, timeoutMs=2500) == expect(2500)
    assert timeout_seen(runtime, engine) == LOGIN[engine]
    assert runtime.get().pool.stats.opened == 1


def test_a_failed_request_does_not_leave_its_timeout_behind(runtime, engine):
    expect = EXPECTED[engine]
    assert timeout_seen(runtime, engine, timeoutMs=1500) == expect(1500)
    with pytest.raises(errors.SqlError):
        run_query(runtime, ENGINES[engine], "SELECT * FROM no_such_table_here", timeoutMs=2500)
    assert timeout_seen(runtime, engine, timeoutMs=2500) == expect(2500)
    assert timeout_seen(runtime, engine) == LOGIN[engine]
    assert timeout_seen(runtime, engine, timeoutMs=1500) == expect(1500)
    assert runtime.get().pool.stats.opened == 1


def test_the_function_deadline_is_whole_seconds(runtime, engine):
    request = parse_query({"sql": SHOW[engine]})
    for remaining_ms in (4_900.0, 4_750.5, 4_501.0):  # 3.4, 3.25 and 3.001 s left after the margin
        invocation = Invocation(caller=TRUSTED, result_limit_bytes=10**6, remaining_ms=remaining_ms)
        assert runtime.get().query(ENGINES[engine], request, invocation)["records"][0]["t"] == EXPECTED[engine](3000)
    short = Invocation(caller=TRUSTED, result_limit_bytes=10**6, remaining_ms=2_250.0)  # under a second: kept exact
    assert runtime.get().query(ENGINES[engine], request, short)["records"][0]["t"] == EXPECTED[engine](750)
