"""The server's own retention sweep: one process runs it when it is due, whoever else looks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.audit.models import AuditEntry
from tactful.catalog.loader import load_catalog
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.main import default_catalog_path
from tactful.rights.retention import SWEPT, SweepReport
from tactful.rights.schedule import RetentionSchedule, ScheduleWorker
from tests.backends import migrated_database

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO = load_catalog(default_catalog_path())


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(backend, tmp_path) as db:
        yield db


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _schedule(database: Database, keystore: Keystore, owner: str, clock: Clock) -> RetentionSchedule:
    return RetentionSchedule(
        database=database,
        keystore=keystore,
        settings=Settings(),
        catalog=lambda: DEMO,
        owner=owner,
        clock=clock,
    )


def _sweeps(database: Database) -> list[AuditEntry]:
    with database.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == SWEPT)))


def test_two_processes_looking_at_once_run_it_once(database: Database, keystore: Keystore) -> None:
    clock = Clock()
    schedules = [_schedule(database, keystore, f"process-{i}", clock) for i in range(2)]
    start = threading.Barrier(2)
    reports: list[SweepReport | None] = []

    def look(schedule: RetentionSchedule) -> None:
        start.wait()
        reports.append(schedule.run_if_due())

    threads = [threading.Thread(target=look, args=(s,)) for s in schedules]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r is not None for r in reports) == 1
    assert len(_sweeps(database)) == 1
    [entry] = _sweeps(database)
    assert entry.actor == "retention:schedule"


def test_it_runs_again_only_once_the_interval_has_passed(database: Database, keystore: Keystore) -> None:
    clock = Clock()
    first, second = (_schedule(database, keystore, name, clock) for name in ("a", "b"))
    assert first.run_if_due() is not None
    clock.now += timedelta(hours=23)
    assert second.run_if_due() is None, "not due for another hour"
    assert first.run_if_due() is None
    clock.now += timedelta(hours=1)
    assert second.run_if_due() is not None
    assert len(_sweeps(database)) == 2


def test_a_held_lease_keeps_others_out_until_it_expires(database: Database, keystore: Keystore) -> None:
    clock = Clock()
    crashed, other = (_schedule(database, keystore, name, clock) for name in ("crashed", "other"))
    assert crashed.acquire(clock.now), "took the lease, then died without releasing it"
    assert other.run_if_due() is None
    clock.now += timedelta(seconds=Settings().retention.lease_seconds + 1)
    assert other.run_if_due() is not None, "the lease expired: the sweep runs in full"


def test_a_failed_sweep_releases_the_lease_and_records_no_run(database: Database, keystore: Keystore) -> None:
    clock = Clock()

    def broken() -> object:
        raise RuntimeError("catalog unavailable")

    failing = RetentionSchedule(
        database=database, keystore=keystore, settings=Settings(), catalog=broken,  # type: ignore[arg-type]
        owner="failing", clock=clock,
    )  # fmt: skip
    with pytest.raises(RuntimeError):
        failing.run_if_due()
    assert _sweeps(database) == []
    assert _schedule(database, keystore, "next", clock).run_if_due() is not None, "due and free at once"


def test_the_schedule_is_off_when_the_settings_say_so(database: Database, keystore: Keystore) -> None:
    off = Settings(retention={"schedule": False})
    assert (
        ScheduleWorker.start_for(database=database, keystore=keystore, settings=off, catalog=lambda: DEMO)
        is None
    )
    assert Settings().retention.schedule is False, "the tests' environment turns it off"


def test_the_worker_sweeps_on_its_own_and_stops(database: Database, keystore: Keystore) -> None:
    on = Settings(retention={"schedule": True, "poll_seconds": 0.01})
    worker = ScheduleWorker.start_for(database=database, keystore=keystore, settings=on, catalog=lambda: DEMO)
    assert worker is not None
    try:
        for _ in range(3000):  # a bound, not a timing: it ends at the first sweep
            if _sweeps(database):
                break
            threading.Event().wait(0.01)
    finally:
        worker.stop()
    assert len(_sweeps(database)) == 1, "once: the next is due a day later"


def test_a_run_by_hand_needs_the_lease_but_not_the_interval(database: Database, keystore: Keystore) -> None:
    clock = Clock()
    server, by_hand = (_schedule(database, keystore, name, clock) for name in ("server", "cli"))
    assert server.run_if_due() is not None
    assert by_hand.run_if_due() is None, "not due"
    report = by_hand.run_if_due(anyway=True, actor="retention:cli")
    assert report is not None, "by hand it runs whenever asked"
    assert [e.actor for e in _sweeps(database)] == ["retention:schedule", "retention:cli"]
    clock.now += timedelta(hours=23)
    assert server.run_if_due() is None, "the run by hand counts: the next is due a day after it"
    assert server.acquire(clock.now, due_only=False), "a server's sweep in progress"
    assert by_hand.run_if_due(anyway=True) is None, "never two sweeps at once"
