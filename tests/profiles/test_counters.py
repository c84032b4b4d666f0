from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis import Redis

from tactful.profiles.counters import (
    InProcessCounters,
    RealtimeCounters,
    RedisCounters,
    make_counters,
    observe,
)
from tests.backends import REDIS_URL, redis_prefix
from tests.profiles.builders import T0, page, track

WINDOW = timedelta(minutes=30)


@pytest.fixture(scope="module")
def redis_client() -> Iterator[Redis]:
    if not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    client = Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def counters(request: pytest.FixtureRequest) -> Iterator[RealtimeCounters]:
    if request.param == "memory":
        yield InProcessCounters(window=WINDOW, recent=3)
        return
    client: Redis = request.getfixturevalue("redis_client")
    prefix = redis_prefix()
    yield RedisCounters(client, prefix=prefix, window=WINDOW, recent=3)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def test_counts_events_and_keeps_the_newest_categories(counters: RealtimeCounters) -> None:
    subject = uuid.uuid4()
    for minute, category in enumerate(["books", "home", "outdoor", "kitchen"]):
        observe(counters, subject, track("Product Viewed", category=category), T0 + timedelta(minutes=minute))
    observe(counters, subject, page(), T0 + timedelta(minutes=5))
    snapshot = counters.snapshot(subject, at=T0 + timedelta(minutes=6))
    assert snapshot.events == {"Product Viewed": 4, "page": 1}
    assert snapshot.recent_categories == ("kitchen", "outdoor", "home")
    assert snapshot.started_at == T0
    assert snapshot.last_at == T0 + timedelta(minutes=5)
    assert counters.snapshot(uuid.uuid4(), at=T0).empty


def test_a_quiet_window_ends_the_session(counters: RealtimeCounters) -> None:
    subject = uuid.uuid4()
    counters.increment(subject, event="page", at=T0)
    assert not counters.snapshot(subject, at=T0 + WINDOW).empty
    assert counters.snapshot(subject, at=T0 + WINDOW + timedelta(seconds=1)).empty
    # The next event starts a new session instead of continuing the old counts.
    counters.increment(subject, event="page", at=T0 + timedelta(hours=2))
    assert counters.snapshot(subject, at=T0 + timedelta(hours=2)).events == {"page": 1}
    assert counters.snapshot(subject, at=T0 + timedelta(hours=2)).started_at == T0 + timedelta(hours=2)


def test_merge_carries_the_anonymous_session_over_to_the_login(counters: RealtimeCounters) -> None:
    visitor, user = uuid.uuid4(), uuid.uuid4()
    counters.increment(visitor, event="Product Viewed", categories=["books"], at=T0)
    counters.increment(visitor, event="Product Viewed", categories=["home"], at=T0 + timedelta(minutes=1))
    counters.increment(user, event="Signed In", at=T0 + timedelta(minutes=2))
    counters.merge(source=visitor, target=user, at=T0 + timedelta(minutes=2))
    merged = counters.snapshot(user, at=T0 + timedelta(minutes=3))
    assert merged.events == {"Product Viewed": 2, "Signed In": 1}
    assert merged.recent_categories == ("home", "books")
    assert merged.started_at == T0
    assert counters.snapshot(visitor, at=T0 + timedelta(minutes=3)).empty
    assert counters.export(visitor) == {}


def test_export_and_erase(counters: RealtimeCounters) -> None:
    subject, other = uuid.uuid4(), uuid.uuid4()
    counters.increment(subject, event="Cart Viewed", categories=["books"], at=T0)
    counters.increment(other, event="page", at=T0)
    exported = counters.export(subject)
    assert exported["events"] == {"Cart Viewed": 1}
    assert exported["recent_categories"] == ["books"]
    assert counters.erase(subject) >= 1
    assert counters.export(subject) == {}
    assert counters.erase(subject) == 0
    assert counters.export(other) != {}


@pytest.mark.redis
def test_redis_keys_live_under_the_prefix_and_expire_with_the_session(redis_client: Redis) -> None:
    prefix = redis_prefix()
    counters = make_counters(redis=redis_client, prefix=prefix)
    subject = uuid.uuid4()
    try:
        counters.increment(subject, event="Product Viewed", categories=["books"], at=T0)
        keys = sorted(k.decode() for k in redis_client.scan_iter(match=f"{prefix}*"))
        assert keys == [f"{prefix}rt:{subject}:{name}" for name in ("categories", "events", "meta")]
        for key in keys:
            ttl = redis_client.pttl(key)
            assert isinstance(ttl, int)
            assert 0 < ttl <= 30 * 60 * 1000
    finally:
        counters.erase(subject)
    assert list(redis_client.scan_iter(match=f"{prefix}*")) == []


def test_without_redis_the_counters_are_in_process() -> None:
    assert isinstance(make_counters(redis=None, prefix="x:"), InProcessCounters)
