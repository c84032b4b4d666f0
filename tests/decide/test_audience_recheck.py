"""Serving audiences are counted and re-checked (`decide.audience_size`, `decide.lineup_store`): a
subject's match of an audience held to k counts whether it serves or not (among experiences otherwise
candidates), and once a day the lineup holder counts the serving audiences again, sending one whose
last 30 days fell below k back to shadow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.consent.gatekeeper import stranger_allowance
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import experiences as experiences_service
from tactful.decide import service as decide_service
from tactful.decide.audience_size import AudienceSizes, held_matches
from tactful.decide.context import request_atoms
from tactful.decide.lineup import with_shadow
from tactful.decide.lineup_store import LineupHolder
from tactful.decide.sketch import sketch_key
from tactful.policy import RequestSignals
from tests.backends import migrated_database
from tests.decide import model_builders as build
from tests.decide.sizing import AT, DEMO, REQUEST_KEY, STORED_KEY, Kept, built, policy, sizes

K = 3
SWEDEN = {"context.location.country": "SE"}


def _matches(*, serving: bool, country: str = "SE", gpc: bool = False) -> frozenset[str]:
    lineup = built()
    if serving:
        lineup = with_shadow(lineup, frozenset())
    found = stranger_allowance(
        policy(), at=AT, signals=RequestSignals(gpc=gpc),
        request=request_atoms(DEMO, {"location": {"country": country}}),
    )  # fmt: skip
    return held_matches(
        list(lineup.placements.values()), sketches=lineup.sketches, compiled=lineup.conditions,
        allowance=found.allowance, view=found.view(), at=AT, known={},
    )  # fmt: skip


def test_a_match_counts_whether_the_audience_is_in_shadow_or_serving() -> None:
    assert _matches(serving=False) == _matches(serving=True) == {REQUEST_KEY}
    assert _matches(serving=True, country="NO") == frozenset()


def test_an_audience_the_allowance_withholds_is_not_counted() -> None:
    # The stored audience reads `traits.country`, which a stranger's Allowance holds back: its
    # experience is no candidate, so no match of it is counted even were the atom there.
    assert STORED_KEY not in _matches(serving=True)


# -- the daily re-check -----------------------------------------------------------------------------


class Day:
    def __init__(self) -> None:
        self.today = AT.date()

    def __call__(self) -> date:
        return self.today


@pytest.fixture
def database(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[Database]:
    """The demo's `home_hero` with one live experience for visitors from Sweden (1:many)."""
    with migrated_database(backend, tmp_path) as db:
        with db.session() as session:
            decide_service.create_placement(
                session, keystore=keystore, spec=build.placement(), actor=build.ACTOR, at=AT
            )
            decide_service.create_audience(
                session, keystore=keystore, spec=build.audience(condition=SWEDEN), actor=build.ACTOR, at=AT
            )
            experiences_service.create_experience(
                session, keystore=keystore, spec=build.experience(audience="sweden"), actor=build.ACTOR, at=AT
            )
            experiences_service.publish_experience(
                session, keystore=keystore, key="spring", actor=build.ACTOR, at=AT, catalog=DEMO
            )
        yield db


def _serving(holder: LineupHolder) -> bool:
    holder.invalidate()  # as a second passing would
    lineup = holder.current(catalog=DEMO, catalog_version="test")
    [experience] = lineup.placements["home_hero"].experiences
    return experience.audience_served


def _match(counted: AudienceSizes, people: int, day: date) -> None:
    for _ in range(people):
        counted.record([sketch_key("sweden", SWEDEN)], uuid.uuid4(), day=day)


def test_a_serving_audience_goes_back_to_shadow_once_a_days_recount_finds_it_below_k(
    database: Database,
) -> None:
    day, counted = Day(), sizes(Kept(), k=K)
    holder = LineupHolder(session=database.session, clock=time.monotonic, sizes=counted, today=day)
    assert not _serving(holder), "after a reload, counted: nobody yet"
    _match(counted, K, day.today)
    assert _serving(holder)

    day.today += timedelta(days=29)
    assert _serving(holder), "the k matched 29 days ago are in the window"
    day.today += timedelta(days=1)
    assert not _serving(holder), "a day later they are not, and nobody matched since: shadow"


def test_matches_while_serving_keep_it_serving_and_the_recount_waits_for_the_next_day(
    database: Database,
) -> None:
    day, counted = Day(), sizes(Kept(), k=K)
    holder = LineupHolder(session=database.session, clock=time.monotonic, sizes=counted, today=day)
    _match(counted, K, day.today)
    assert _serving(holder)
    day.today += timedelta(days=20)
    _match(counted, K, day.today)  # counted while it serves (decisions count serving audiences)
    assert _serving(holder)
    day.today += timedelta(days=15)  # the first k left the window; the second are in it
    assert _serving(holder)

    store = counted.store
    assert isinstance(store, Kept)
    store.added.clear()  # the sketches lost (say Redis was emptied): the count is now zero
    assert _serving(holder), "not counted again until the next day"
    day.today += timedelta(days=1)
    assert not _serving(holder)


def test_matches_wait_in_memory_deduplicated_and_beyond_the_limit_are_dropped() -> None:
    store = Kept()
    counted = AudienceSizes(store, k=K, secret=lambda: b"audience-size-test-key-0123456789", limit=3)
    people = [uuid.uuid4() for _ in range(5)]
    for _ in range(3):  # the same people matching again cost nothing more
        for person in people[:2]:
            counted.record([REQUEST_KEY], person, day=AT.date())
    for person in people[2:]:
        counted.record([REQUEST_KEY], person, day=AT.date())
    assert counted.dropped == 2, "two past the limit: counted low, never high"
    assert not store.added, "nothing stored before the flush"
    counted.flush(None)  # type: ignore[arg-type]  # the store in memory takes no session
    assert store.digests(REQUEST_KEY) == {counted.digest(p) for p in people[:3]}


def test_a_refresh_writes_only_when_matches_wait_to_be_stored(database: Database) -> None:
    # The decision that happens to refresh the lineup reads; a write unit is opened only to store
    # the matches counted since the last refresh.
    day, counted = Day(), sizes(Kept(), k=K)
    writes: list[int] = []

    def writing() -> Any:
        writes.append(1)
        return database.session()

    holder = LineupHolder(
        session=writing, reading=database.reading, clock=time.monotonic, sizes=counted, today=day
    )
    assert not _serving(holder)
    assert writes == []
    _match(counted, K, day.today)
    assert _serving(holder)
    assert writes == [1]
    assert _serving(holder)
    assert writes == [1]  # nothing waited since
