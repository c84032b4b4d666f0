from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tactful.catalog.loader import load_catalog
from tactful.main import default_catalog_path
from tactful.profiles.counters import (
    MAX_FIELDS,
    InProcessCounters,
    Observation,
    RealtimeCounters,
    RedisCounters,
    SessionCounters,
    combine,
    make_counters,
    tally,
    value_text,
)
from tactful.profiles.session import SessionAtoms, session_value
from tests.backends import REDIS_URL, redis_prefix
from tests.profiles.builders import T0

WINDOW = timedelta(minutes=30)
VIEWED = "events.product_viewed"
CATALOG = load_catalog(default_catalog_path())


def viewed(category: str | None = None) -> Observation:
    return Observation(VIEWED, () if category is None else (("category", value_text(category) or ""),))


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
        yield InProcessCounters(window=WINDOW)
        return
    client: Redis = request.getfixturevalue("redis_client")
    prefix = redis_prefix()
    yield RedisCounters(client, prefix=prefix, window=WINDOW)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


def values(counters: RealtimeCounters, subject: uuid.UUID, *, at_minutes: float, version: str = "0") -> dict:
    at = T0 + timedelta(minutes=at_minutes)
    atoms = SessionAtoms(counters, subject_id=subject, at=at, version=version, catalog=CATALOG)
    return dict(atoms.items())


def test_counts_per_event_and_per_declared_value_with_last_values_and_recency(
    counters: RealtimeCounters,
) -> None:
    subject = uuid.uuid4()
    counters.record(subject, [viewed("outdoor"), viewed("books")], at=T0, version="0")
    counters.record(
        subject, [viewed("outdoor"), viewed("outdoor")], at=T0 + timedelta(minutes=2), version="0"
    )
    counters.record(subject, [Observation("events.page_viewed")], at=T0 + timedelta(minutes=3), version="0")
    found = values(counters, subject, at_minutes=5)
    assert found["session.product_views"] == 4
    assert found["session.product_views_by_category"] == [
        {"value": "outdoor", "count": 3},
        {"value": "books", "count": 1},
    ]
    assert found["session.last_viewed_category"] == "outdoor"
    assert found["session.since_product_viewed"] == 180
    assert found["session.page_views"] == 1
    assert found["session.cart_adds_by_category"] == []


def test_a_quiet_window_ends_the_session_and_the_next_event_starts_a_new_one(
    counters: RealtimeCounters,
) -> None:
    subject = uuid.uuid4()
    counters.record(subject, [viewed("outdoor")], at=T0, version="0")
    assert not counters.snapshot(subject, at=T0 + WINDOW).empty
    assert counters.snapshot(subject, at=T0 + WINDOW + timedelta(seconds=1)).empty
    assert values(counters, subject, at_minutes=31)["session.product_views"] == 0
    later = T0 + timedelta(hours=2)
    counters.record(subject, [viewed("books")], at=later, version="0")
    snapshot = counters.snapshot(subject, at=later)
    assert snapshot.counts == {VIEWED: 1, f'{VIEWED}\x1fcategory\x1f"books"': 1}
    assert snapshot.started_at == later


def test_counts_made_under_another_refusals_version_are_stale(counters: RealtimeCounters) -> None:
    subject = uuid.uuid4()
    counters.record(subject, [viewed("outdoor")] * 3, at=T0, version="0")
    assert values(counters, subject, at_minutes=1, version="0")["session.product_views"] == 3
    # A refusal was recorded since: nothing counted before it is read, on any process.
    assert values(counters, subject, at_minutes=1, version="1.abc")["session.product_views"] == 0
    # A request that read the old state and records late keeps nothing from before either.
    counters.record(subject, [viewed("books")], at=T0 + timedelta(minutes=2), version="1.abc")
    assert values(counters, subject, at_minutes=3, version="1.abc")["session.product_views_by_category"] == [
        {"value": "books", "count": 1}
    ]


def test_merge_carries_the_anonymous_session_over_to_the_login(counters: RealtimeCounters) -> None:
    visitor, user = uuid.uuid4(), uuid.uuid4()
    counters.record(visitor, [viewed("outdoor"), viewed("books")], at=T0, version="0")
    counters.record(user, [viewed("outdoor")], at=T0 + timedelta(minutes=2), version="0")
    counters.merge(source=visitor, target=user, at=T0 + timedelta(minutes=2))
    merged = values(counters, user, at_minutes=3)
    assert merged["session.product_views"] == 3
    assert merged["session.product_views_by_category"] == [
        {"value": "outdoor", "count": 2},
        {"value": "books", "count": 1},
    ]
    assert merged["session.last_viewed_category"] == "outdoor"
    assert counters.snapshot(user, at=T0 + timedelta(minutes=3)).started_at == T0
    assert counters.snapshot(visitor, at=T0 + timedelta(minutes=3)).empty
    assert counters.export(visitor) == {}


def test_export_decodes_and_erase_removes_one_subject(counters: RealtimeCounters) -> None:
    subject, other = uuid.uuid4(), uuid.uuid4()
    counters.record(subject, [viewed("outdoor")], at=T0, version="0")
    counters.record(other, [viewed("books")], at=T0, version="0")
    exported = counters.export(subject)
    assert exported["counts"] == [
        {"event": VIEWED, "count": 1},
        {"event": VIEWED, "count": 1, "property": "category", "value": "outdoor"},
    ]
    assert {"event": VIEWED, "property": "category", "value": "outdoor"} in exported["last"]  # type: ignore[operator]
    assert counters.erase(subject) >= 1
    assert counters.export(subject) == {}
    assert counters.erase(subject) == 0
    assert counters.export(other) != {}


def test_values_past_the_cap_are_not_counted_but_events_still_are(counters: RealtimeCounters) -> None:
    subject = uuid.uuid4()
    counters.record(subject, [viewed(f"c{i}") for i in range(MAX_FIELDS + 10)], at=T0, version="0")
    snapshot = counters.snapshot(subject, at=T0)
    assert snapshot.counts[VIEWED] == MAX_FIELDS + 10
    assert len(snapshot.counts) == MAX_FIELDS
    counters.record(subject, [viewed("c0")], at=T0, version="0")  # a known value still counts
    assert counters.snapshot(subject, at=T0).counts[f'{VIEWED}\x1fcategory\x1f"c0"'] == 2


def test_only_short_strings_whole_numbers_and_booleans_are_values() -> None:
    assert value_text(" outdoor ") == '"outdoor"'
    assert value_text(42) == "42"
    assert value_text(True) == "true"
    assert value_text("") is None
    assert value_text("x" * 101) is None
    assert value_text(1.5) is None
    assert value_text({"a": 1}) is None
    assert value_text(None) is None


def test_the_view_reads_the_counters_once_and_only_when_a_value_is_asked_for() -> None:
    class Counting(InProcessCounters):
        reads = 0

        def snapshot(self, subject_id: uuid.UUID, **kwargs: object) -> SessionCounters:  # type: ignore[override]
            Counting.reads += 1
            return super().snapshot(subject_id, **kwargs)  # type: ignore[arg-type]

    store = Counting(window=WINDOW)
    atoms = SessionAtoms(store, subject_id=uuid.uuid4(), at=T0, version="0", catalog=CATALOG)
    assert "session.product_views" in atoms
    assert len(atoms) == len(CATALOG.session_atoms)
    assert Counting.reads == 0
    assert atoms["session.product_views"] == 0
    assert atoms["session.page_views"] == 0
    assert Counting.reads == 1


@pytest.mark.redis
def test_redis_keys_live_under_the_prefix_and_expire_with_the_session(redis_client: Redis) -> None:
    prefix = redis_prefix()
    counters = make_counters(redis=redis_client, prefix=prefix)
    subject = uuid.uuid4()
    try:
        counters.record(subject, [viewed("books")], at=T0, version="0")
        keys = sorted(k.decode() for k in redis_client.scan_iter(match=f"{prefix}*"))
        assert keys == [f"{prefix}rt:{subject}:{name}" for name in ("counts", "lasts", "meta")]
        for key in keys:
            ttl = redis_client.pttl(key)
            assert isinstance(ttl, int)
            assert 0 < ttl <= 30 * 60 * 1000
    finally:
        counters.erase(subject)
    assert list(redis_client.scan_iter(match=f"{prefix}*")) == []


def test_without_redis_the_counters_are_in_process() -> None:
    assert isinstance(make_counters(redis=None, prefix="x:"), InProcessCounters)


CATEGORIES = st.sampled_from(["outdoor", "books", "home", "kitchen"])
BATCHES = st.lists(st.lists(CATEGORIES, min_size=1, max_size=5), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(batches=BATCHES, cut=st.integers(min_value=0, max_value=6))
def test_counting_in_batches_or_across_a_merge_equals_counting_everything_at_once(
    batches: list[list[str]], cut: int
) -> None:
    """Per-value counts are a sum: however the events are split into requests, or between two
    profiles that merge, the session counts the same."""
    every = [viewed(c) for batch in batches for c in batch]
    at_once = InProcessCounters(window=WINDOW)
    subject = uuid.uuid4()
    at_once.record(subject, every, at=T0, version="0")
    split = InProcessCounters(window=WINDOW)
    visitor, user = uuid.uuid4(), uuid.uuid4()
    for i, batch in enumerate(batches):
        split.record(visitor if i < cut else user, [viewed(c) for c in batch], at=T0, version="0")
    split.merge(source=visitor, target=user, at=T0)
    assert split.snapshot(user, at=T0).counts == at_once.snapshot(subject, at=T0).counts
    combined = combine(SessionCounters(), at_once.snapshot(subject, at=T0))
    assert combined.counts == tally(every)[0]
    by = CATALOG.atom("session.product_views_by_category")
    listed = session_value(by, split.snapshot(user, at=T0), at=T0)
    assert isinstance(listed, list)
    assert sum(item["count"] for item in listed) == len(every)


def test_counters_that_do_not_answer_read_as_an_empty_session(caplog: pytest.LogCaptureFixture) -> None:
    class Down(InProcessCounters):
        def snapshot(self, subject_id: uuid.UUID, **kwargs: object) -> SessionCounters:  # type: ignore[override]
            raise RedisConnectionError("refused")

    subject = uuid.uuid4()
    atoms = SessionAtoms(Down(window=WINDOW), subject_id=subject, at=T0, version="0", catalog=CATALOG)
    assert atoms["session.product_views"] == 0
    assert atoms["session.last_viewed_category"] is None
    assert str(subject) not in caplog.text
    assert "ConnectionError" in caplog.text
