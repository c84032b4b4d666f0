"""Running privacy requests: a lease so that one process runs a job, a commit per step, a receipt.

    open request, lease free or expired
        │ UPDATE … SET lease_owner = me WHERE id = … AND (lease free or expired): rowcount 1 = mine
        ▼
    for each step of its plan not yet in `steps`, one transaction:
        renew the lease (UPDATE … WHERE lease_owner = me: 0 rows = another took it, roll back)
        the step's work ──▶ its result in `steps` ──▶ a `rights.request_step` audit entry ──▶ commit
        ▼
    the receipt, from the recorded results alone ──▶ completed, lease released

A crash between steps leaves the finished ones recorded with their work: the next run (after the
lease expires) starts at the first unfinished step and ends with the same receipt. A step that
raises is retried by a later run, up to `max_attempts` runs, then the request fails with a code;
one that must wait (`StepPending`: a model still unlearning) is run again later without using up
an attempt.
A request whose subject Tactful does not hold (or no longer holds) completes as "nothing held".

`JobWorker` is the server's thread: it runs whatever is pending every `job_poll_seconds`, and its
chores (the export packages' expiry sweep).
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from redis import Redis
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.config import Settings
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide.audience_size import AudienceSizes
from tactful.decide.logbook import Logbook
from tactful.errors import TactfulError
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import RealtimeCounters
from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType
from tactful.rights.erasure import StepPending
from tactful.rights.models import PrivacyRequest
from tactful.rights.registry import RightsContext
from tactful.rights.schemas import OPEN_STATUSES, RequestRecord, RequestStatus
from tactful.rights.steps import PLANS, Step, StepContext
from tactful.types import utcnow

log = logging.getLogger("tactful.rights")

STEP_DONE = "rights.request_step"
COMPLETED = "rights.request_completed"
FAILED = "rights.request_failed"
MAX_ATTEMPTS = 3
_OPEN = [s.value for s in OPEN_STATUSES]

OnStep = Callable[[str, int, int], None]
"""(step name, steps done, steps in the plan): for a progress bar."""


class RunOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    RETRY = "retry"
    """A step raised: the lease is released for a later run."""
    BUSY = "busy"
    """Another process holds the lease, or took it over."""
    CLOSED = "closed"
    """Not open (completed, rejected, failed), or no such request."""
    WAITING = "waiting"
    """A step must wait (a model still unlearning): run again later, no attempt used up."""


@dataclass(frozen=True)
class JobContext:
    """What jobs reach: the databases, settings, the gate's inputs (read afresh per step)."""

    database: Database
    keystore: Keystore
    settings: Settings
    policy: Callable[[], PolicyContext]
    redis: Redis | None = None
    logbook: Logbook | None = None
    """This process's decision log buffer: an export and an erasure reach its entries too."""
    counters: RealtimeCounters | None = None
    """The session counters this process serves from (in its memory without Redis)."""
    audience_sizes: AudienceSizes | None = None
    """This process's audience matches not yet counted: an erasure reaches them too."""


class LeaseLost(Exception):
    """Another process holds this job's lease now: this run stops, its transaction rolls back."""


def count_of(result: object) -> int:
    """The rows a statement's result says it touched (0 where the driver does not say)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def receipt_of(record: RequestRecord, plan: Sequence[Step], *, nothing_held: bool) -> dict[str, Any]:
    """What was done, from the recorded step results alone: a rerun after a crash makes the same."""
    return {
        "type": record.type.value,
        "regimes": [r.value for r in record.regimes],
        "nothing_held": nothing_held,
        "steps": {
            step.name: dict(record.steps[step.name].get("result", {}))
            for step in plan
            if step.name in record.steps
        },
    }


class JobRunner:
    """Runs privacy request jobs for one process (`owner` names it in the lease)."""

    def __init__(
        self,
        jobs: JobContext,
        *,
        owner: str | None = None,
        plans: Mapping[RequestType, Sequence[Step]] = PLANS,
        clock: Callable[[], datetime] = utcnow,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.jobs = jobs
        self.owner = owner or f"{socket.gethostname()[:40]}:{uuid.uuid4().hex[:12]}"
        self.plans = plans
        self.clock = clock
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=jobs.settings.privacy.job_lease_seconds)

    # -- the lease ---------------------------------------------------------------------------------

    def acquire(self, request_id: uuid.UUID) -> bool:
        """Take the job's lease if it is open and no live lease holds it; True when taken."""
        now = self.clock()
        with self.jobs.database.session() as session:
            taken = session.execute(
                update(PrivacyRequest)
                .where(
                    PrivacyRequest.id == request_id,
                    PrivacyRequest.status.in_(_OPEN),
                    or_(PrivacyRequest.lease_owner.is_(None), PrivacyRequest.lease_expires_at < now),
                )
                .values(
                    lease_owner=self.owner,
                    lease_expires_at=now + self.lease,
                    status=RequestStatus.RUNNING.value,
                    attempts=PrivacyRequest.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            return count_of(taken) == 1

    def _fenced(self, session: Session, request_id: uuid.UUID, now: datetime) -> PrivacyRequest:
        # Renewing first holds the row (PostgreSQL locks it; SQLite runs one writer) for the step.
        renewed = session.execute(
            update(PrivacyRequest)
            .where(PrivacyRequest.id == request_id, PrivacyRequest.lease_owner == self.owner)
            .values(lease_expires_at=now + self.lease)
            .execution_options(synchronize_session=False)
        )
        if count_of(renewed) != 1:
            raise LeaseLost
        row = session.scalars(
            select(PrivacyRequest)
            .where(PrivacyRequest.id == request_id)
            .execution_options(populate_existing=True)
        ).one()
        return row

    # -- running -----------------------------------------------------------------------------------

    def run(self, request_id: uuid.UUID, *, on_step: OnStep | None = None) -> RunOutcome:
        """Run the job to its end (or to a step that raises) if its lease can be taken."""
        if not self.acquire(request_id):
            return self._why_not(request_id)
        step_name = "start"
        try:
            while True:
                now = self.clock()
                with self.jobs.database.session() as session:
                    row = self._fenced(session, request_id, now)
                    if row.attempts > self.max_attempts:
                        self._fail(session, row, "too_many_attempts", step_name, now)
                        return RunOutcome.FAILED
                    record = requests_service.record_of(row)
                    plan = self.plans[record.type]
                    subject = self._subject(session, record)
                    pending = [step for step in plan if step.name not in record.steps]
                    if subject is None and not record.steps:
                        self._finish(session, row, record, plan, now, nothing_held=True)
                        return RunOutcome.COMPLETED
                    if not pending:
                        self._finish(session, row, record, plan, now, nothing_held=False)
                        return RunOutcome.COMPLETED
                    step = pending[0]
                    step_name = step.name
                    self._step(session, row, record, step, subject, now)
                if on_step is not None:
                    on_step(step.name, len(plan) - len(pending) + 1, len(plan))
        except LeaseLost:
            return RunOutcome.BUSY
        except StepPending:
            return self._wait(request_id)
        except Exception as exc:
            # The step's transaction rolled back with its work. Only the type: messages can carry data.
            log.warning("privacy request step %s failed (%s)", step_name, type(exc).__name__)
            return self._after_error(request_id, step_name, exc)

    def run_pending(self, *, limit: int = 20) -> int:
        """Run the open requests whose lease is free, oldest first; how many ran to an end."""
        now = self.clock()
        with self.jobs.database.session() as session:
            ids = session.scalars(
                select(PrivacyRequest.id)
                .where(
                    PrivacyRequest.status.in_(_OPEN),
                    or_(PrivacyRequest.lease_owner.is_(None), PrivacyRequest.lease_expires_at < now),
                )
                .order_by(PrivacyRequest.received_at)
                .limit(limit)
            ).all()
        ended = (RunOutcome.COMPLETED, RunOutcome.FAILED)
        return sum(1 for request_id in ids if self.run(request_id) in ended)

    # -- inside a step's transaction ----------------------------------------------------------------

    def _subject(self, session: Session, record: RequestRecord) -> uuid.UUID | None:
        if record.subject_id is None:
            return None
        return profiles_service.canonical(session, record.subject_id)

    def _rights(self, session: Session) -> RightsContext:
        jobs = self.jobs
        return RightsContext(
            session=session,
            keystore=jobs.keystore,
            settings=jobs.settings,
            redis=jobs.redis,
            counters=jobs.counters,
            logbook=jobs.logbook,
            audience_sizes=jobs.audience_sizes,
        )

    def _step(
        self,
        session: Session,
        row: PrivacyRequest,
        record: RequestRecord,
        step: Step,
        subject: uuid.UUID | None,
        now: datetime,
    ) -> None:
        keystore = self.jobs.keystore
        done = {name: {"result": dict(value.get("result", {}))} for name, value in record.steps.items()}
        carry = next((dict(value["carry"]) for value in record.steps.values() if value.get("carry")), {})
        context = StepContext(
            rights=self._rights(session),
            policy=self.jobs.policy(),
            request=record,
            subject_id=subject,
            changes=requests_service.changes_of(keystore, record, row.changes_enc),
            carry=carry,
            at=now,
            actor=f"privacy:{record.public_id}",
        )
        outcome = step.run(context)
        entry: dict[str, Any] = {"result": dict(outcome.result)}
        if outcome.carry:
            entry["carry"] = dict(outcome.carry)
        row.steps = done | {step.name: entry}  # a carry lives until the next step commits
        row.updated_at = now
        audit_service.append(
            session, keystore=keystore, action=STEP_DONE, actor=context.actor, at=now, subject_id=subject,
            details={"request": record.public_id, "type": record.type.value, "step": step.name},
        )  # fmt: skip

    def _finish(
        self,
        session: Session,
        row: PrivacyRequest,
        record: RequestRecord,
        plan: Sequence[Step],
        now: datetime,
        *,
        nothing_held: bool,
    ) -> None:
        row.receipt = receipt_of(record, plan, nothing_held=nothing_held)
        row.steps = {name: {"result": dict(v.get("result", {}))} for name, v in record.steps.items()}
        row.status = RequestStatus.COMPLETED.value
        row.changes_enc = None
        row.closed_at = row.updated_at = now
        row.lease_owner = row.lease_expires_at = None
        audit_service.append(
            session, keystore=self.jobs.keystore, action=COMPLETED, actor=f"privacy:{record.public_id}",
            at=now, subject_id=record.subject_id,
            details={"request": record.public_id, "type": record.type.value, "nothing_held": nothing_held},
        )  # fmt: skip

    def _fail(self, session: Session, row: PrivacyRequest, code: str, step: str, now: datetime) -> None:
        row.status = RequestStatus.FAILED.value
        row.failure_code = code
        row.receipt = {"failed": {"step": step, "code": code}}
        row.changes_enc = None
        row.closed_at = row.updated_at = now
        row.lease_owner = row.lease_expires_at = None
        audit_service.append(
            session, keystore=self.jobs.keystore, action=FAILED, actor=f"privacy:{row.public_id}", at=now,
            subject_id=row.subject_id, details={"request": row.public_id, "step": step, "code": code},
        )  # fmt: skip

    # -- after a run stopped ------------------------------------------------------------------------

    def _after_error(self, request_id: uuid.UUID, step: str, exc: Exception) -> RunOutcome:
        now = self.clock()
        with self.jobs.database.session() as session:
            try:
                row = self._fenced(session, request_id, now)
            except LeaseLost:
                return RunOutcome.BUSY
            if row.attempts >= self.max_attempts:
                code = exc.code if isinstance(exc, TactfulError) else "step_failed"
                self._fail(session, row, code, step, now)
                return RunOutcome.FAILED
            row.lease_owner = row.lease_expires_at = None  # a later run tries again
            row.updated_at = now
        return RunOutcome.RETRY

    def _wait(self, request_id: uuid.UUID) -> RunOutcome:
        now = self.clock()
        with self.jobs.database.session() as session:
            try:
                row = self._fenced(session, request_id, now)
            except LeaseLost:
                return RunOutcome.BUSY
            # Waiting is not failing: the attempt this run took is given back, the lease released.
            row.attempts = max(row.attempts - 1, 0)
            row.lease_owner = row.lease_expires_at = None
            row.updated_at = now
        return RunOutcome.WAITING

    def _why_not(self, request_id: uuid.UUID) -> RunOutcome:
        with self.jobs.database.session() as session:
            status = session.scalar(select(PrivacyRequest.status).where(PrivacyRequest.id == request_id))
        return RunOutcome.BUSY if status is not None and RequestStatus(status).open else RunOutcome.CLOSED


class JobWorker:
    """The server's thread: runs pending jobs every `interval` seconds until stopped, then each of
    `chores` (the export packages' expiry sweep, say)."""

    def __init__(
        self, runner: JobRunner, *, interval: float, chores: Sequence[Callable[[], object]] = ()
    ) -> None:
        self.runner, self.interval, self.chores = runner, interval, tuple(chores)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tactful-privacy-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.runner.run_pending()
            except Exception as exc:  # a failed round is retried at the next one
                log.warning("privacy request jobs not run this round (%s)", type(exc).__name__)
            for chore in self.chores:
                try:
                    chore()
                except Exception as exc:
                    log.warning("a privacy chore did not run this round (%s)", type(exc).__name__)
