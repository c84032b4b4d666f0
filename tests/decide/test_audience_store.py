"""Where audience sketches are kept (`decide.audience_store`): one contract for both stores, run
against the table on SQLite (and PostgreSQL when `TACTFUL_TEST_POSTGRES_URL` is set) and against a
real Redis when `TACTFUL_TEST_REDIS_URL` is set (a key prefix of this run's own). Distinct digests
count once, over the 30 days ending today and no others; Redis keys expire after the window, old
table rows go as the window passes them; a store that fails counts low, never high."""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tactful.decide.audience_size import WINDOW_DAYS, SizeStore
from tactful.decide.audience_store import RedisSizes, TableSizes
from tactful.decide.models import AudienceSketch
from tests.backends import REDIS_URL, redis_prefix

TODAY = date(2026, 12, 1)


def digest(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


def near(estimate: float, truth: int) -> bool:
    """Small counts are close to exact in both sketches (linear counting): within 2%, or 1."""
    return abs(estimate - truth) <= max(1.0, 0.02 * truth)


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Redis]:
    if not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    client = Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture(params=["table", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Iterator[SizeStore]:
    if request.param == "table":
        yield TableSizes()
        return
    client: Redis = request.getfixturevalue("redis_client")
    prefix = redis_prefix()
    yield RedisSizes(client, prefix=prefix)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def key() -> str:
    return f"audience-{uuid.uuid4().hex[:8]}:{uuid.uuid4().hex[:16]}"


def test_distinct_digests_count_once_per_audience(store: SizeStore, session: Session) -> None:
    first, second = key(), key()
    store.add(session, {(first, TODAY): {digest(n) for n in range(40)}})
    store.add(session, {(first, TODAY): {digest(n) for n in range(20, 60)}, (second, TODAY): {digest(1)}})
    counted = store.count(session, [first, second, key()], today=TODAY)
    assert near(counted[first], 60)
    assert near(counted[second], 1)
    assert counted.get(key(), 0.0) == 0.0


def test_the_count_is_the_union_of_the_last_30_days_today_included(
    store: SizeStore, session: Session
) -> None:
    audience = key()
    inside = TODAY - timedelta(days=WINDOW_DAYS - 1)
    store.add(session, {(audience, inside): {digest(n) for n in range(10)}})
    store.add(session, {(audience, TODAY): {digest(n) for n in range(5, 15)}})  # 5 seen again
    assert near(store.count(session, [audience], today=TODAY)[audience], 15)
    # The next day, the oldest day has left the window: only what was seen today is left.
    tomorrow = TODAY + timedelta(days=1)
    assert near(store.count(session, [audience], today=tomorrow)[audience], 10)
    # Nothing counts before it happened.
    yesterday = TODAY - timedelta(days=1)
    assert near(store.count(session, [audience], today=yesterday).get(audience, 0.0), 10)


def test_a_day_past_the_window_counts_for_nothing(store: SizeStore, session: Session) -> None:
    audience = key()
    store.add(session, {(audience, TODAY - timedelta(days=WINDOW_DAYS)): {digest(n) for n in range(10)}})
    assert store.count(session, [audience], today=TODAY).get(audience, 0.0) == 0.0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(
    days=st.dictionaries(
        st.integers(0, WINDOW_DAYS + 5), st.sets(st.integers(0, 300), max_size=40), max_size=6
    )
)
def test_whatever_was_added_the_count_is_the_distinct_digests_in_the_window(
    store: SizeStore, session: Session, days: dict[int, set[int]]
) -> None:
    audience = key()
    for back, items in days.items():
        if items:
            store.add(session, {(audience, TODAY - timedelta(days=back)): {digest(n) for n in items}})
    truth = set().union(*(items for back, items in days.items() if back < WINDOW_DAYS))
    assert near(store.count(session, [audience], today=TODAY).get(audience, 0.0), len(truth))


@pytest.mark.redis
def test_redis_keys_expire_after_the_window(redis_client: Redis, session: Session) -> None:
    prefix = redis_prefix()
    audience = key()
    try:
        RedisSizes(redis_client, prefix=prefix).add(session, {(audience, TODAY): {digest(1)}})
        [stored] = list(redis_client.scan_iter(match=f"{prefix}*"))
        assert stored.decode() == f"{prefix}audience-size:{audience}:{TODAY.isoformat()}"
        ttl = int(redis_client.ttl(stored))
        assert WINDOW_DAYS * 86400 < ttl <= (WINDOW_DAYS + 1) * 86400
    finally:
        for stale in redis_client.scan_iter(match=f"{prefix}*"):
            redis_client.delete(stale)


def test_table_rows_past_the_window_go_when_later_days_are_added(session: Session) -> None:
    audience, old = key(), TODAY - timedelta(days=WINDOW_DAYS + 1)
    table = TableSizes()
    table.add(session, {(audience, old): {digest(1)}})
    table.add(session, {(audience, TODAY): {digest(2)}})
    days = session.scalars(select(AudienceSketch.day).where(AudienceSketch.sketch_key == audience)).all()
    assert days == [TODAY]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_redis_that_fails_counts_low_and_never_raises(session: Session) -> None:
    unreachable = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.5)
    store = RedisSizes(unreachable, prefix=redis_prefix())
    audience = key()
    store.add(session, {(audience, TODAY): {digest(n) for n in range(100)}})  # dropped, said in a log
    assert store.count(session, [audience], today=TODAY) == {}


def test_a_table_store_that_fails_drops_the_batch_and_leaves_the_transaction_usable(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    audience = key()
    table = TableSizes()
    table.add(session, {(audience, TODAY): {digest(1)}})

    def locked(*_: object, **__: object) -> None:
        raise OperationalError("UPDATE audience_sketches", None, Exception("database is locked"))

    monkeypatch.setattr(TableSizes, "_merge", staticmethod(locked))
    table.add(session, {(audience, TODAY): {digest(2)}})  # dropped, said in a log; nothing raised
    monkeypatch.undo()
    assert near(table.count(session, [audience], today=TODAY)[audience], 1)  # the session goes on
