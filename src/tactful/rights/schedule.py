"""The server's own retention sweep: due every `retention.every_hours`, run by one process at a time.

    every poll_seconds, in each process:
        UPDATE schedule_leases SET lease_owner = me, lease_expires_at = now + lease
         WHERE task = 'retention' AND (lease free or expired) AND (never run or last run ≤ now - every)
        rowcount 1 = mine ──▶ one transaction: run_retention (its audit entry with the counts)
                                               + last_run_at = now, lease released ──▶ commit
        rowcount 0 = not due, or another process runs it

A process that dies mid-sweep rolls its transaction back; its lease expires after `lease_seconds`
and the next process that looks runs the sweep in full (it is idempotent). A sweep that raises
releases the lease without recording a run, so the next poll tries again.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.rights.models import ScheduleLease
from tactful.rights.retention import OnStep, SweepReport, run_retention
from tactful.types import utcnow

log = logging.getLogger("tactful.rights")

TASK = "retention"
ACTOR = "retention:schedule"


def _count(result: object) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


class RetentionSchedule:
    """Runs the sweep when it is due and this process holds the lease (`owner` names it)."""

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
        self.database, self.keystore, self.settings, self.catalog = database, keystore, settings, catalog
        self.owner = owner or f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:12]}"
        self.clock = clock
        self.every = timedelta(hours=settings.retention.every_hours)
        self.lease = timedelta(seconds=settings.retention.lease_seconds)

    def _ensure_row(self) -> None:
        try:
            with self.database.session() as session:
                if session.get(ScheduleLease, TASK) is None:
                    session.add(ScheduleLease(task=TASK))
        except IntegrityError:
            pass  # another process made it first

    def acquire(self, now: datetime, *, due_only: bool = True) -> bool:
        """Take the lease if no live lease holds it (and, with `due_only`, the sweep is due); True
        when taken."""
        self._ensure_row()
        conditions = [
            ScheduleLease.task == TASK,
            or_(ScheduleLease.lease_owner.is_(None), ScheduleLease.lease_expires_at < now),
        ]
        if due_only:
            conditions.append(
                or_(ScheduleLease.last_run_at.is_(None), ScheduleLease.last_run_at <= now - self.every)
            )
        with self.database.session() as session:
            taken = session.execute(
                update(ScheduleLease)
                .where(*conditions)
                .values(lease_owner=self.owner, lease_expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            return _count(taken) == 1

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
            with self.database.session() as session:
                self._release(session, ran_at=None)
            raise

    def _release(self, session: Session, *, ran_at: datetime | None) -> bool:
        values: dict[str, object] = {"lease_owner": None, "lease_expires_at": None}
        if ran_at is not None:
            values["last_run_at"] = ran_at
        released = session.execute(
            update(ScheduleLease)
            .where(ScheduleLease.task == TASK, ScheduleLease.lease_owner == self.owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _count(released) == 1


class LeaseLost(Exception):
    """Another process took the lease over (this one ran past it): this run's work rolls back."""


class RetentionWorker:
    """The server's thread: looks every `poll_seconds` whether the sweep is due, until stopped."""

    def __init__(self, schedule: RetentionSchedule, *, interval: float) -> None:
        self.schedule, self.interval = schedule, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tactful-retention", daemon=True)

    @classmethod
    def start_for(
        cls, *, database: Database, keystore: Keystore, settings: Settings, catalog: Callable[[], Catalog]
    ) -> RetentionWorker | None:
        """The server's worker, started; None when the settings turn the schedule off."""
        if not settings.retention.schedule:
            return None
        schedule = RetentionSchedule(database=database, keystore=keystore, settings=settings, catalog=catalog)
        worker = cls(schedule, interval=settings.retention.poll_seconds)
        worker._thread.start()
        return worker

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = self.schedule.run_if_due()
            except Exception as exc:  # tried again at the next poll
                log.warning("retention sweep not run this round (%s)", type(exc).__name__)
                continue
            if report is not None:
                log.info("retention sweep: %d rows deleted or anonymised", report.total())
