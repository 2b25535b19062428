"""Session ids, what travels on the channel, and which statements a session adds or refuses."""

from __future__ import annotations

import pytest

from rdsgate import errors
from rdsgate.sessions import codec
from rdsgate.sessions.settings import SessionSettings
from rdsgate.sessions.sqlcheck import check_session_statement, session_only
from rdsgate.sql.text import prepare


def test_session_ids_are_random_and_only_well_formed_ones_have_a_key():
    ids = {codec.new_session_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 43 for i in ids)
    one = next(iter(ids))
    assert codec.key_of(one) == codec.key_of(one) and len(codec.key_of(one)) == 64 and one not in codec.key_of(one)
    for bad in (None, 42, "", "short", one + "x", one[:-1] + "!", "../" + one[3:]):
        assert codec.key_of(bad) is None


def test_requests_keep_bytes_and_errors_keep_their_class_and_details():
    document = {"request": {"sql": "SELECT :b", "parameters": {"b": b"\x00\xff", "n": 1, "j": {"b": "x"}}},
                "statements": [{"parameters": {"p": b"\x01"}}]}
    assert codec.decode_request(codec.encode_request(document)) == document
    error = codec.decode_error(codec.encode_error(errors.SqlError("duplicate key", sqlstate="23505", statement=1)))
    assert type(error) is errors.SqlError and error.details == {"sqlstate": "23505", "statement": 1}
    assert type(codec.decode_error(codec.encode_error(errors.RequestTooLarge("big")))) is errors.RequestTooLarge
    hidden = codec.decode_error(codec.encode_error(KeyError("secret value")))
    assert type(hidden) is errors.InternalError and "secret" not in hidden.message


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
@pytest.mark.parametrize("sql", ["SAVEPOINT s1", "RELEASE SAVEPOINT s1", "ROLLBACK TO SAVEPOINT s1", "rollback work to s1",
                                 "  -- note\n ROLLBACK TO s1"])
def test_savepoints_are_allowed_in_sessions(dialect, sql):
    prepared = prepare(sql, dialect)
    assert session_only(prepared, sql, dialect)
    check_session_statement(prepared, sql, dialect)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
@pytest.mark.parametrize("sql", ["COMMIT", "ROLLBACK", "ROLLBACK AND CHAIN", "BEGIN", "START TRANSACTION", "END", "XA START 'x'",
                                 "ROLLBACK /* TO s1 */", "/* rollback to s */ ROLLBACK", "COMMIT PREPARED 'x'",
                                 "ROLLBACK PREPARED 'x'"])
def test_ending_the_transaction_from_inside_is_refused(dialect, sql):
    prepared = prepare(sql, dialect)
    assert not session_only(prepared, sql, dialect)
    with pytest.raises(errors.InvalidRequest, match="gateway owns the session's BEGIN and COMMIT"):
        check_session_statement(prepared, sql, dialect)


@pytest.mark.parametrize("sql, dialect", [
    ("-- \rcommit -- \nand no chain", "postgres"),  # PostgreSQL ends the comment at \r: COMMIT AND NO CHAIN
    ("--\x7f '\ncommit -- '", "mysql"),  # MySQL's -- before DEL is a comment: the quote is in it
])
def test_a_comment_hides_no_transaction_end(sql, dialect):
    prepared = prepare(sql, dialect)
    with pytest.raises(errors.InvalidRequest, match="gateway owns the session's BEGIN and COMMIT"):
        check_session_statement(prepared, sql, dialect)


def test_postgres_cursors_and_table_locks_live_in_the_transaction():
    for sql in ("DECLARE c CURSOR FOR SELECT 1", "FETCH 10 FROM c", "MOVE 1 IN c", "CLOSE c", "LOCK TABLE t IN SHARE MODE"):
        assert session_only(prepare(sql, "postgres"), sql, "postgres")
    for sql in ("LOCK TABLES t WRITE", "HANDLER t OPEN", "RELEASE s1"):  # MySQL: session-level, or not a savepoint
        assert not session_only(prepare(sql, "mysql"), sql, "mysql")


def test_settings_come_from_the_environment_with_bounds():
    settings = SessionSettings.resolve({"RDSGATE_SESSIONS_TABLE": "t", "RDSGATE_SESSION_IDLE_SECONDS": "1.5",
                                        "RDSGATE_MAX_SESSIONS_PER_CALLER": "3"})
    assert settings.enabled and settings.idle_seconds == 1.5 and settings.max_per_caller == 3 and settings.idle_seconds != 180
    assert not SessionSettings.resolve({}).enabled and SessionSettings.resolve({}).idle_seconds == 180
    with pytest.raises(ValueError, match="RDSGATE_MAX_SESSIONS_PER_CONNECTION must be at least 1"):
        SessionSettings.resolve({"RDSGATE_MAX_SESSIONS_PER_CONNECTION": "0"})
    with pytest.raises(ValueError, match="must be a float"):
        SessionSettings.resolve({"RDSGATE_SESSION_POLL_MS": "fast"})
