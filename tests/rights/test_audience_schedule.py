"""The scheduled count of audiences over stored profiles (`rights.schedule.AudienceSchedule`): one
process runs it when it is due, every audience once a day, the audiences changed since the last run
as soon as a process looks, and the worker runs it beside the retention sweep."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import service as decide_service
from tactful.decide.audience_count import Counted, StoredCount
from tactful.decide.schemas import AudienceCreate, AudienceUpdate
from tactful.rights.schedule import AudienceSchedule, ScheduleWorker
from tests.backends import migrated_database
from tests.decide import model_builders as build
from tests.decide.sizing import AT, LIVES_IN_SWEDEN, STORED_KEY, Kept, policy, sizes
from tests.decide.test_audience_count import _person
from tests.rights.test_schedule import DEMO

POLICY = policy()
NOT_NORWAY = {"traits.country": {"$ne": "NO"}}


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> Any:
        return self.now


@pytest.fixture
def database(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[Database]:
    """Three customers (two in Sweden, one in Norway, all letting it be used) and one audience."""
    with migrated_database(backend, tmp_path) as db:
        with db.session() as session:
            for country in ("SE", "SE", "NO"):
                _person(session, keystore, consent=True, country=country)
            spec = AudienceCreate(key="lives_in_sweden", name="Lives in Sweden", condition=LIVES_IN_SWEDEN)
            decide_service.create_audience(
                session, keystore=keystore, spec=spec, actor=build.ACTOR, at=AT - timedelta(days=1)
            )
        yield db


def _schedule(
    database: Database, keystore: Keystore, clock: Clock, owner: str, store: Kept
) -> AudienceSchedule:
    counting = StoredCount(keystore=keystore, policy=lambda: POLICY, sizes=sizes(store), batch=2)
    return AudienceSchedule(
        database=database, settings=Settings(), counting=counting, owner=owner, clock=clock
    )


def test_two_processes_looking_at_once_count_once(database: Database, keystore: Keystore) -> None:
    clock, store = Clock(), Kept()
    schedules = [_schedule(database, keystore, clock, f"process-{i}", store) for i in range(2)]
    start = threading.Barrier(2)
    results: list[Counted | None] = []

    def look(schedule: AudienceSchedule) -> None:
        start.wait()
        results.append(schedule.run_if_due())

    threads = [threading.Thread(target=look, args=(s,)) for s in schedules]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [ran] = [r for r in results if r is not None]
    assert (ran.subjects, ran.complete, dict(ran.matched)) == (3, True, {"lives_in_sweden": 2})
    assert len(store.digests(STORED_KEY)) == 2


def test_every_audience_daily_and_a_changed_one_at_the_next_look(
    database: Database, keystore: Keystore
) -> None:
    clock, store = Clock(), Kept()
    schedule = _schedule(database, keystore, clock, "me", store)
    assert schedule.run_if_due() is not None
    clock.now += timedelta(minutes=5)
    assert schedule.run_if_due() is None, "nothing changed, and a day has not passed"

    with database.session() as session:
        spec = AudienceCreate(key="not_norway", name="Not Norway", condition=NOT_NORWAY)
        decide_service.create_audience(session, keystore=keystore, spec=spec, actor=build.ACTOR, at=clock.now)
    clock.now += timedelta(minutes=5)
    changed = schedule.run_if_due()
    assert changed is not None
    assert dict(changed.matched) == {"not_norway": 2}, "only the audience changed since"

    with database.session() as session:
        decide_service.update_audience(
            session, keystore=keystore, key="not_norway", patch=AudienceUpdate(name="Outside Norway"),
            actor=build.ACTOR, at=clock.now,
        )  # fmt: skip
    clock.now += timedelta(minutes=5)
    assert schedule.run_if_due() is not None, "any new version is a change"
    clock.now += timedelta(hours=23)
    assert schedule.run_if_due() is None
    clock.now += timedelta(hours=1)
    daily = schedule.run_if_due()
    assert daily is not None
    assert dict(daily.matched) == {"lives_in_sweden": 2, "not_norway": 2}


def test_a_failed_pass_releases_the_lease_and_records_no_run(database: Database, keystore: Keystore) -> None:
    clock, store = Clock(), Kept()

    def broken() -> Any:
        raise RuntimeError("catalog unavailable")

    counting = StoredCount(keystore=keystore, policy=broken, sizes=sizes(store))
    failing = AudienceSchedule(
        database=database, settings=Settings(), counting=counting, owner="x", clock=clock
    )
    with pytest.raises(RuntimeError):
        failing.run_if_due()
    assert failing.last_run() is None
    assert _schedule(database, keystore, clock, "next", store).run_if_due() is not None, (
        "due and free at once"
    )


def test_the_worker_runs_both_tasks_unless_the_settings_turn_them_off(
    database: Database, keystore: Keystore
) -> None:
    store = Kept()
    counting = StoredCount(keystore=keystore, policy=lambda: POLICY, sizes=sizes(store))
    off = Settings(retention={"schedule": False}, decide={"audience_count_schedule": False})
    assert ScheduleWorker.start_for(
        database=database, keystore=keystore, settings=off, catalog=lambda: DEMO, counting=counting
    ) is None  # fmt: skip
    on = Settings(
        retention={"schedule": False, "poll_seconds": 0.01}, decide={"audience_count_schedule": True}
    )
    worker = ScheduleWorker.start_for(
        database=database, keystore=keystore, settings=on, catalog=lambda: DEMO, counting=counting
    )
    assert worker is not None
    try:
        for _ in range(3000):  # a bound, not a timing: it ends at the first pass
            if store.added:
                break
            threading.Event().wait(0.01)
    finally:
        worker.stop()
    assert len(store.digests(STORED_KEY)) == 2
