"""The decision log in the database: written in groups from a process's `Logbook`, read back for
explanations, exported and erased with the subject, and watched for processes that stopped without
writing their last window.

    Logbook ──writer(database, landed)──▶ one transaction per group:
        living(session, entries): entries whose subject was erased since are dropped (counted)
        write(session, entries) ──▶ decision_log + decision_log_processes
        landed(session, entries): what waited for these decisions (outcomes) follows them in
    explanation ──find(session, decision_id)──▶ Entry | None
    rights ──export_subject / erase_subject──▶ a subject's decisions
    /metrics ──stalled(session, at, quiet)──▶ processes that stopped mid-window
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from tactful.bulk import insert_rows, upsert_rows
from tactful.db import Database
from tactful.decide.logbook import Entry
from tactful.decide.models import DecisionLog, DecisionLogProcess
from tactful.jsontext import column_value
from tactful.profiles.models import Subject
from tactful.types import new_row_id, utcnow

log = logging.getLogger(__name__)

_CHUNK = 500
_LOG = cast(Table, DecisionLog.__table__)
_PROCESSES = cast(Table, DecisionLogProcess.__table__)


def _row(entry: Entry) -> dict[str, object]:
    return {
        "id": new_row_id(),
        "decision_id": entry.decision_id,
        "subject_id": entry.subject_id,
        "process": entry.process,
        "sequence": entry.sequence,
        "placement": entry.placement,
        "experience": entry.experience,
        "experience_version": entry.experience_version,
        "variation": entry.variation,
        "level": entry.level,
        "strategy": entry.strategy,
        "propensity": entry.propensity,
        "atoms_read": list(entry.atoms_read),
        "purposes": list(entry.purposes),
        "legal_basis": dict(entry.legal_basis),
        "explanation": dict(entry.explanation),
        "model_version": entry.model_version,
        "forced": entry.forced,
        "decided_at": entry.decided_at,
    }


def write(session: Session, *, entries: Sequence[Entry], at: datetime, dropped: Sequence[Entry] = ()) -> None:
    """Insert a group of entries and move each process's mark to the last number written or
    `dropped` (entries accounted for, not lost: their subject was erased before they were written)."""
    if not entries and not dropped:
        return
    if entries:
        insert_rows(session, _LOG, [_row(e) for e in entries])
    through: dict[uuid.UUID, int] = {}
    for entry in (*entries, *dropped):
        through[entry.process] = max(through.get(entry.process, 0), entry.sequence)
    marks = [
        {"process": p, "started_at": at, "written_through": n, "written_at": at, "stopped_at": None}
        for p, n in through.items()
    ]
    upsert_rows(session, _PROCESSES, marks, keys=("process",), replace=("written_through", "written_at"))


def stopped(session: Session, *, process: uuid.UUID, at: datetime) -> None:
    """Mark a process as having written its last group."""
    row = session.get(DecisionLogProcess, process)
    if row is None:
        session.add(
            DecisionLogProcess(
                process=process, started_at=at, written_through=0, written_at=at, stopped_at=at
            )
        )
    else:
        row.stopped_at = at


def living(session: Session, entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """`entries` split into those to write and those whose subject is gone: erased, by this process
    or another, after the decision was served and before its group is written. Written, they would
    undo the erasure, which deleted the subject's log rows and its `subjects` row alike.

    The subjects are read with a share lock (PostgreSQL; SQLite's writers take turns anyway): an
    erasure locks the subject's row before it deletes its log rows (`erase_subject`), so it either
    waits for this group's commit and then deletes what it wrote, or this read waits for the
    erasure's commit and finds the subject gone. Entries for nobody known are written as they are.
    """
    wanted = sorted({e.subject_id for e in entries if e.subject_id is not None})
    if not wanted:
        return list(entries), []
    present: set[uuid.UUID] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        query = select(Subject.subject_id).where(Subject.subject_id.in_(chunk)).with_for_update(read=True)
        present.update(session.scalars(query))
    kept = [e for e in entries if e.subject_id is None or e.subject_id in present]
    gone = [e for e in entries if e.subject_id is not None and e.subject_id not in present]
    return kept, gone


Landed = Callable[[Session, Sequence[Entry]], None]
"""Called with a group's written entries in its transaction (`main` wires measure's outcomes)."""


def writer(database: Database, *, landed: Landed | None = None) -> Callable[[Sequence[Entry]], int]:
    """The Logbook's writer over `database`: one transaction per group, which writes the entries of
    subjects that still exist and answers how many it dropped because theirs were erased. `landed`
    runs in the same transaction, in a savepoint: if it fails, the group is written all the same."""

    def write_group(entries: Sequence[Entry]) -> int:
        with database.session() as session:
            kept, gone = living(session, entries)
            write(session, entries=kept, at=utcnow(), dropped=gone)
            if landed is not None and kept:
                _follow(session, landed, kept)
            session.commit()
        return len(gone)

    return write_group


def _follow(session: Session, landed: Landed, entries: Sequence[Entry]) -> None:
    savepoint = session.begin_nested()
    try:
        landed(session, entries)
    except Exception as error:
        savepoint.rollback()
        # Only the type: a driver's message can quote the rows' values. What waited is swept later.
        log.warning(
            "what waited for %d decisions was not followed up (%s)", len(entries), type(error).__name__
        )
        return
    savepoint.commit()


def _entry(row: DecisionLog) -> Entry:
    return Entry(
        decision_id=row.decision_id,
        subject_id=row.subject_id,
        placement=row.placement,
        experience=row.experience,
        experience_version=row.experience_version,
        variation=row.variation,
        level=row.level,
        strategy=row.strategy,
        propensity=row.propensity,
        atoms_read=tuple(row.atoms_read),
        purposes=tuple(row.purposes),
        legal_basis=dict(row.legal_basis),
        explanation=dict(row.explanation),
        decided_at=row.decided_at,
        model_version=row.model_version,
        forced=row.forced,
        process=row.process,
        sequence=row.sequence,
    )


def find(session: Session, *, decision_id: str) -> Entry | None:
    row = session.scalar(select(DecisionLog).where(DecisionLog.decision_id == decision_id))
    return None if row is None else _entry(row)


def stalled(session: Session, *, at: datetime, quiet: timedelta) -> list[uuid.UUID]:
    """Processes that have not written for `quiet` and never said they stopped: each lost the window
    it had not written (at most 100 ms or 500 decisions)."""
    rows = session.scalars(
        select(DecisionLogProcess.process).where(
            DecisionLogProcess.stopped_at.is_(None), DecisionLogProcess.written_at < at - quiet
        )
    )
    return list(rows)


def export_subject(session: Session, *, subject_id: uuid.UUID) -> dict[str, Any]:
    """The subject's decisions with their explanations (in codes), oldest first."""
    rows = session.scalars(
        select(DecisionLog).where(DecisionLog.subject_id == subject_id).order_by(DecisionLog.decided_at)
    )
    columns = ("decision_id", "decided_at", "placement", "experience", "variation", "level", "strategy",
               "propensity", "atoms_read", "legal_basis", "explanation")  # fmt: skip
    decisions = [{c: column_value(getattr(row, c)) for c in columns} for row in rows]
    return {"decisions": decisions} if decisions else {}


def expire(session: Session, *, before: datetime) -> int:
    """Delete decisions made before `before`, and the marks of processes stopped before it."""
    result = session.execute(delete(DecisionLog).where(DecisionLog.decided_at < before))
    session.execute(
        delete(DecisionLogProcess).where(
            DecisionLogProcess.stopped_at.is_not(None), DecisionLogProcess.stopped_at < before
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def erase_subject(session: Session, *, subject_id: uuid.UUID) -> int:
    """Delete the subject's decisions. Its `subjects` row is locked first (PostgreSQL), so that a
    group another process is writing for it commits before these rows are deleted, or reads the
    subject as gone and drops its entries (`living`)."""
    session.execute(select(Subject.subject_id).where(Subject.subject_id == subject_id).with_for_update())
    result = session.execute(delete(DecisionLog).where(DecisionLog.subject_id == subject_id))
    return int(getattr(result, "rowcount", 0) or 0)
