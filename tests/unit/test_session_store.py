"""The session channel and state on DynamoDB (moto's server): binding, ordering, chunks, limits, leases."""

from __future__ import annotations

import os
import time

import boto3
import pytest

from rdsgate import errors
from rdsgate.sessions import codec
from rdsgate.sessions.payloads import CHUNK_BYTES, INLINE_BYTES
from rdsgate.sessions.store import DynamoDBSessionStore
from rdsgate.sessions.table import EXPIRED, LOST, OPEN, STARTING, now_ms
from rdsgate_devstack.sessions_local import create_table

REGION = "us-east-1"


@pytest.fixture(scope="module")
def table(aws):
    name = "rdsgate-sessions-unit"
    create_table(lambda service: boto3.client(service, region_name=REGION), table=name)
    return name


@pytest.fixture
def store(table):
    return DynamoDBSessionStore(table, client_factory=lambda: boto3.client("dynamodb", region_name=REGION))


def new_session(store, *, connection="orders", caller="arn:alice", limits=(5, 5), start_until=None, deadline=None):
    key = codec.key_of(codec.new_session_id())
    now = now_ms()
    store.create(key, connection=connection, caller=caller, engine="postgres", read_only=False,
                 start_until=start_until or now + 60_000, deadline=deadline or now + 900_000, limits=limits)
    return key


def opened(store, **kwargs):
    key = new_session(store, **kwargs)
    now = now_ms()
    assert store.open(key, runner="r1", lease_until=now + 60_000, idle_until=now + 60_000, deadline=now + 600_000)
    return key


def test_a_session_starts_then_opens_once(store):
    key = new_session(store)
    item = store.get(key)
    assert (item.state, item.connection, item.caller, item.seq, item.done) == (STARTING, "orders", "arn:alice", 0, 0)
    assert store.open(key, runner="r1", lease_until=1, idle_until=2, deadline=3)
    assert not store.open(key, runner="r2", lease_until=1, idle_until=2, deadline=3)  # only from "starting"
    assert store.get(key).runner == "r1"
    assert store.get(codec.key_of(codec.new_session_id())) is None


def test_requests_are_bound_to_caller_and_connection_and_one_at_a_time(store):
    key = opened(store)
    assert store.post(key, caller="arn:mallory", connection="orders", op="run", payload=b"{}") is None
    assert store.post(key, caller="arn:alice", connection="other", op="run", payload=b"{}") is None
    assert store.post(key, caller="arn:alice", connection="orders", op="run", payload=b'{"a":1}') == 1
    assert store.post(key, caller="arn:alice", connection="orders", op="run", payload=b"{}") is None  # one pending
    pending = store.poll_request(key)
    assert (pending.seq, pending.done) == (1, 0) and store.unpack(pending.request) == ("run", b'{"a":1}')
    assert store.answer(key, 1, "ok", b'{"rows":1}', idle_until=now_ms() + 1000)
    answered = store.poll_answer(key)
    assert answered.done == 1 and answered.request is None and store.unpack(answered.result) == ("ok", b'{"rows":1}')
    assert store.post(key, caller="arn:alice", connection="orders", op="run", payload=b"{}") == 2
    assert store.poll_answer(key).result is None  # the new request cleared the old answer


def test_a_runner_whose_lease_ran_out_takes_no_request(store):
    key = new_session(store)
    now = now_ms()
    store.open(key, runner="r1", lease_until=now - 1, idle_until=now + 60_000, deadline=now + 60_000)
    assert store.post(key, caller="arn:alice", connection="orders", op="run", payload=b"{}") is None
    assert not store.mark_lost(key, now - 2)  # only for the lease it saw
    assert store.mark_lost(key, now - 1) and store.get(key).state == LOST
    assert not store.heartbeat(key, now + 10_000)  # a lost session is not revived


@pytest.mark.parametrize("size, compressible", [(INLINE_BYTES // 2, False), (50_000, True), (CHUNK_BYTES * 2 + 10, False)])
def test_large_payloads_travel_in_chunks_and_the_session_item_stays_small(store, size, compressible):
    key = opened(store)
    payload = (b"x" * size) if compressible else os.urandom(size)
    seq = store.post(key, caller="arn:alice", connection="orders", op="run", payload=payload)
    pending = store.poll_request(key)
    assert store.unpack(pending.request) == ("run", payload)
    store.answer(key, seq, "ok", payload[::-1], idle_until=now_ms())
    assert store.unpack(store.poll_answer(key).result) == ("ok", payload[::-1])
    raw = store.client.get_item(TableName=store.table, Key={"id": {"S": f"s#{key}"}}, ConsistentRead=True)["Item"]
    assert len(repr(raw)) < 4 * INLINE_BYTES  # within one read unit (4 KB) on every poll


def test_idle_expiry_yields_to_a_pending_request(store):
    key = opened(store)
    seq = store.post(key, caller="arn:alice", connection="orders", op="run", payload=b"{}")
    assert not store.end(key, EXPIRED, "idle", only_if_idle=True)  # a request came: serve it first
    store.answer(key, seq, "ok", b"{}", idle_until=now_ms())
    assert store.end(key, EXPIRED, "idle", only_if_idle=True)
    item = store.get(key)
    assert (item.state, item.reason) == (EXPIRED, "idle")


def test_limits_count_live_sessions_per_connection_and_per_caller(store):
    connection, caller = f"conn-{time.time_ns()}", f"arn:caller-{time.time_ns()}"
    first = opened(store, connection=connection, caller=caller, limits=(2, 5))
    opened(store, connection=connection, caller=f"{caller}-other", limits=(2, 5))
    with pytest.raises(errors.TooManySessions, match="has 2 open sessions") as full:
        new_session(store, connection=connection, caller=caller, limits=(2, 5))
    assert full.value.details["retry_after"] > 0
    store.release(first, connection, caller)
    store.end(first, "committed", "commit")
    third = new_session(store, connection=connection, caller=caller, limits=(2, 5))
    with pytest.raises(errors.TooManySessions, match="this caller has 1"):
        new_session(store, connection=f"{connection}-b", caller=caller, limits=(5, 1))
    assert store.get(third).state == STARTING


def test_holders_that_are_gone_or_past_their_deadline_stop_counting(store):
    connection, now = f"conn-{time.time_ns()}", now_ms()
    silent = new_session(store, connection=connection, caller="arn:a", limits=(2, 9))
    store.open(silent, runner="r", lease_until=now - 1, idle_until=now + 60_000, deadline=now + 60_000)  # runner gone
    new_session(store, connection=connection, caller="arn:b", limits=(2, 9), deadline=now_ms() + 300)  # ends soon
    with pytest.raises(errors.TooManySessions):
        new_session(store, connection=connection, caller="arn:c", limits=(1, 9))
    time.sleep(0.4)
    fresh = new_session(store, connection=connection, caller="arn:c", limits=(1, 9))  # both have stopped counting
    assert store.get(fresh).state == STARTING


def test_an_abandoned_begin_is_final(store):
    key = new_session(store)
    assert store.abandon(key)
    assert not store.open(key, runner="late", lease_until=1, idle_until=1, deadline=1)
    assert store.get(key).state == "abandoned"


def test_failures_are_kept_for_the_begin_to_raise(store):
    key = new_session(store)
    assert store.fail(key, {"class": "AuthenticationFailed", "message": "refused", "details": {"sqlstate": "28000"}})
    error = codec.decode_error(store.get(key).error)
    assert isinstance(error, errors.AuthenticationFailed) and error.details == {"sqlstate": "28000"}
    assert store.get(key).state != OPEN
