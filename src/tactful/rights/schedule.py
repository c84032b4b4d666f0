"""The server's own schedule: the retention sweep and the count of audiences over stored profiles,
each due on its own interval and run by one process at a time.

    every poll_seconds, in each process, for each task:
        UPDATE schedule_leases SET lease_owner = me, lease_expires_at = now + lease
         WHERE task = <task> AND (lease free or expired) AND <due>
        rowcount 1 = mine ──▶ the task's work ──▶ last_run_at = now, lease released ──▶ commit
        rowcount 0 = not due, or another process runs it

    retention        due every `retention.every_hours`; one transaction: run_retention (its audit
                     entry with the counts) and the release commit together
    audience-count   due every `decide.audience_count_every_hours`, and at once when an audience was
                     given a version since the last run (the management API counts a new condition
                     only up to its bound); each batch of subjects commits on its own

A process that dies mid-run leaves its lease to expire after `lease_seconds`; the next process that
looks runs the task in full (both are idempotent: a sweep finds nothing twice, a subject counted
twice into a sketch counts once). A task that raises releases the lease without recording a run, so
the next poll tries again.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import audience_count
from tactful.decide.audience_count import Counted, OnBatch, StoredCount
from tactful.decide.models import DecideVersion
from tactful.decide.schemas import Kind
from tactful.rights.jobs import LeaseLost, count_of
from tactful.rights.models import ScheduleLease
from tactful.rights.retention import OnStep, SweepReport, run_retention
from tactful.types import utcnow

log = logging.getLogger("tactful.rights")

TASK = "retention"
ACTOR = "retention:schedule"
AUDIENCES = "audience-count"


def _owner() -> str:
    return f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:12]}"


class LeasedTask:
    """One task of the schedule: its lease row (`task`), when it is due, and holding the lease while
    it runs. `owner` names this process."""

    task: ClassVar[str]

    def __init__(
        self,
        *,
        database: Database,
        every: timedelta,
        lease: timedelta,
        owner: str | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.database, self.every, self.lease, self.clock = database, every, lease, clock
        self.owner = owner or _owner()

    def _ensure_row(self) -> None:
        try:
            with self.database.session() as session:
                if session.get(ScheduleLease, self.task) is None:
                    session.add(ScheduleLease(task=self.task))
        except IntegrityError:
            pass  # another process made it first

    def _due(self, now: datetime) -> ColumnElement[bool]:
        """Whether the task is due at `now` (over its lease row)."""
        return or_(ScheduleLease.last_run_at.is_(None), ScheduleLease.last_run_at <= now - self.every)

    def acquire(self, now: datetime, *, due_only: bool = True) -> bool:
        """Take the lease if no live lease holds it (and, with `due_only`, the task is due); True
        when taken."""
        self._ensure_row()
        conditions = [
            ScheduleLease.task == self.task,
            or_(ScheduleLease.lease_owner.is_(None), ScheduleLease.lease_expires_at < now),
        ]
        if due_only:
            conditions.append(self._due(now))
        with self.database.session() as session:
            taken = session.execute(
                update(ScheduleLease)
                .where(*conditions)
                .values(lease_owner=self.owner, lease_expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            return count_of(taken) == 1

    def last_run(self) -> datetime | None:
        with self.database.session() as session:
            return session.scalar(select(ScheduleLease.last_run_at).where(ScheduleLease.task == self.task))

    def _release(self, session: Session, *, ran_at: datetime | None) -> bool:
        values: dict[str, object] = {"lease_owner": None, "lease_expires_at": None}
        if ran_at is not None:
            values["last_run_at"] = ran_at
        released = session.execute(
            update(ScheduleLease)
            .where(ScheduleLease.task == self.task, ScheduleLease.lease_owner == self.owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return count_of(released) == 1

    def _failed(self) -> None:
        with self.database.session() as session:
            self._release(session, ran_at=None)

    def run_if_due(self) -> object | None:
        """Run the task if it is due and the lease is ours: what it did, or None."""
        raise NotImplementedError


class RetentionSchedule(LeasedTask):
    """Runs the retention sweep when it is due and this process holds the lease."""

    task = TASK

    def __init__(
        self,
        *,
        database: Database,
        keystore: Keystore,
        settings: Settings,
        catalog: Callable[[], Catalog],
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(
            database=database, every=timedelta(hours=settings.retention.every_hours),
            lease=timedelta(seconds=settings.retention.lease_seconds), owner=owner, clock=clock,
        )  # fmt: skip
        self.keystore, self.settings, self.catalog = keystore, settings, catalog

    def run_if_due(
        self, *, anyway: bool = False, actor: str = ACTOR, on_step: OnStep | None = None
    ) -> SweepReport | None:
        """Run the sweep if it is due (or `anyway`, as `tactful retention run` does) and the lease
        is ours; its report, or None. A run by hand counts as the last run: the next is due a full
        interval after it."""
        now = self.clock()
        if not self.acquire(now, due_only=not anyway):
            return None
        try:
            with self.database.session() as session:
                report = run_retention(
                    session, catalog=self.catalog(), settings=self.settings, at=now,
                    keystore=self.keystore, actor=actor, on_step=on_step,
                )  # fmt: skip
                if not self._release(session, ran_at=now):
                    raise LeaseLost
            return report
        except Exception:
            self._failed()
            raise


class AudienceSchedule(LeasedTask):
    """Counts audiences over the stored profiles (`decide.audience_count`): every audience once per
    interval, and the audiences changed since the last run as soon as a poll sees a change."""

    task = AUDIENCES

    def __init__(
        self,
        *,
        database: Database,
        settings: Settings,
        counting: StoredCount,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(
            database=database, every=timedelta(hours=settings.decide.audience_count_every_hours),
            lease=timedelta(seconds=settings.retention.lease_seconds), owner=owner, clock=clock,
        )  # fmt: skip
        self.counting = counting

    def _due(self, now: datetime) -> ColumnElement[bool]:
        changed = exists().where(
            DecideVersion.kind == Kind.AUDIENCE.value, DecideVersion.at >= ScheduleLease.last_run_at
        )
        return or_(super()._due(now), changed)

    def run_if_due(self, *, anyway: bool = False, on_batch: OnBatch | None = None) -> Counted | None:
        """Count if due (or `anyway`: every audience, as `tactful audiences count` does) and the
        lease is ours; what the pass did, or None."""
        now = self.clock()
        if not self.acquire(now, due_only=not anyway):
            return None
        try:
            last = self.last_run()
            whole = anyway or last is None or last <= now - self.every
            with self.database.session() as session:
                audiences = audience_count.audiences(session, changed_since=None if whole else last)
            counted = self.counting.run_apart(self.database.session, audiences, at=now, on_batch=on_batch)
            with self.database.session() as session:
                if not self._release(session, ran_at=now):
                    raise LeaseLost
            return counted
        except Exception:
            self._failed()
            raise


def _said(result: object) -> str:
    if isinstance(result, SweepReport):
        return f"retention sweep: {result.total()} rows deleted or anonymised"
    if isinstance(result, Counted):
        return (
            f"audience sizes: {len(result.matched)} audiences counted over {result.subjects} stored profiles"
        )
    return "ran"


class ScheduleWorker:
    """The server's thread: looks every `interval` seconds whether a task is due, until stopped."""

    def __init__(self, schedules: Sequence[LeasedTask], *, interval: float) -> None:
        self.schedules, self.interval = tuple(schedules), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tactful-schedule", daemon=True)

    @classmethod
    def start_for(
        cls,
        *,
        database: Database,
        keystore: Keystore,
        settings: Settings,
        catalog: Callable[[], Catalog],
        counting: StoredCount | None = None,
    ) -> ScheduleWorker | None:
        """The server's worker, started; None when the settings turn every task off. Audiences are
        counted only given `counting` (a process that measures audience sizes)."""
        schedules: list[LeasedTask] = []
        if settings.retention.schedule:
            schedules.append(
                RetentionSchedule(database=database, keystore=keystore, settings=settings, catalog=catalog)
            )
        if counting is not None and settings.decide.audience_count_schedule:
            schedules.append(AudienceSchedule(database=database, settings=settings, counting=counting))
        if not schedules:
            return None
        worker = cls(schedules, interval=settings.retention.poll_seconds)
        worker._thread.start()
        return worker

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for schedule in self.schedules:
                try:
                    result = schedule.run_if_due()
                except Exception as exc:  # tried again at the next poll
                    log.warning("%s not run this round (%s)", schedule.task, type(exc).__name__)
                    continue
                if result is not None:
                    log.info(_said(result))
