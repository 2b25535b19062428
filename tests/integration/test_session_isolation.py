"""One caller's session settings never reach the next request on the shared, pooled connection."""

import pytest

from rdsgate import errors
from tests.conftest import ENGINES, run_query


@pytest.mark.parametrize("sql", ["SET timezone = 'Asia/Tokyo'", "RESET ALL", "set time_zone = '+09:00'"])
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_set_and_reset_are_refused(runtime, engine, sql):
    with pytest.raises(errors.InvalidRequest, match="outlive the request"):
        run_query(runtime, ENGINES[engine], sql)


def test_set_config_in_a_query_does_not_leak_into_the_next_request(runtime):
    changed = run_query(runtime, "pg", "SELECT set_config('TimeZone', 'Asia/Tokyo', false) AS tz, current_setting('TimeZone') AS now_tz")
    assert changed["records"] == [{"tz": "Asia/Tokyo", "now_tz": "Asia/Tokyo"}]
    after = run_query(runtime, "pg", "SELECT current_setting('TimeZone') AS tz, now()::text LIKE '%+00' AS utc")
    assert after["records"] == [{"tz": "UTC", "utc": True}]
    assert runtime.get().pool.stats.opened == 1  # the same connection, reset in place


def test_login_settings_survive_the_reset(runtime):
    run_query(runtime, "pg", "SELECT set_config('statement_timeout', '0', false)")
    # The statement timeout from the login (the runtime fixture's 5 s) is back in force.
    assert run_query(runtime, "pg", "SELECT current_setting('statement_timeout') AS t")["records"] == [{"t": "5s"}]
    with pytest.raises(errors.QueryTimeout):
        run_query(runtime, "pg", "SELECT set_config('statement_timeout', '0', false), pg_sleep(0.5)", timeoutMs=100)
