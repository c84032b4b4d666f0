"""Outcomes linked to the decisions they follow, and counted exactly.

    collection's hook ──record(session, outcomes)──▶ per outcome, in the event's transaction:
        refused by collection (malformed id, undeclared, no analytics) ──▶ unattributed:<refusal>
        the decision is in the log ──▶ same subject (after merges)? ──▶ linked
                                                              └─ no ──▶ unattributed:other_subject
        not in the log (yet) ──▶ pending: kept, since a serving process may hold it unwritten
    the log's writer ──landed(session, entries)──▶ the pending outcomes of those decisions settle
    sweep(session, at) ──▶ pending outcomes whose decision landed settle; those whose decision
        never landed within PENDING_FOR ──▶ unattributed:unknown_decision
    erasure ──erase_subject──▶ the subject's outcomes; pending ones count as unattributed:erased
    a withdrawal of analytics ──forget_withdrawn──▶ the same, pending ones as unattributed:withdrawn

Every outcome is counted once as `received` and, once settled, once as `linked` or as
`unattributed:<reason>`; until then it is a pending row. So, at any moment,
`received == linked + Σ unattributed + pending`, exactly (`totals`).

The write key is public: whoever has it can send a track event naming any decision id. An outcome
links only to a decision of the same subject as its event (the decision's subject followed through
merges, as the event's already is); any other id is not linked, and nothing of this reaches the
event's answer (collection answers `stored` alike). A decision for a visitor nobody knew
(`subject_id` none) links to nobody: it could be anyone's.

Whether an outcome may be learned from is recorded when it links (`learnable`): the subject's
Allowance when the outcome arrived must let its decision's level be learned from (the level's
purpose and `analytics`, DESIGN §2; never for minors or restricted subjects), and the decision must
not have been forced.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, func, select
from sqlalchemy.orm import Session

from tactful import jsontext
from tactful.bulk import insert_rows, upsert_rows
from tactful.collect import store as collect_store
from tactful.collect.outcomes import FAILED, OUTCOME_PURPOSE, Outcome
from tactful.decide.logbook import Entry
from tactful.decide.models import DecisionLog
from tactful.measure.models import DecisionOutcome, OutcomeCounter
from tactful.profiles import service as profiles_service
from tactful.types import Level, Purpose, new_row_id, utcnow

PENDING_FOR = timedelta(hours=1)
"""How long an outcome waits for its decision to be written before it counts as unknown. The log is
written within 100 ms or 500 decisions; a process whose writes keep failing holds them longer."""

RECEIVED, LINKED, PENDING = "received", "linked", "pending"
SHARDS = 8
_CHUNK = 500

_OUTCOMES = cast(Table, DecisionOutcome.__table__)
_COUNTERS = cast(Table, OutcomeCounter.__table__)


class Unattributed(StrEnum):
    """Why an outcome was not linked to a decision."""

    MALFORMED = "malformed"
    UNDECLARED = "undeclared"
    NO_ANALYTICS = "no_analytics"
    UNKNOWN_DECISION = "unknown_decision"
    OTHER_SUBJECT = "other_subject"
    ERASED = "erased"
    """Erased with its subject while it waited for its decision."""
    WITHDRAWN = "withdrawn"
    """Deleted while it waited for its decision: the subject withdrew analytics."""
    FAILED = "failed"
    """Measuring failed; the event was stored (collection's counter)."""


@dataclass(frozen=True)
class Decided:
    """What linking reads of a logged decision."""

    subject_id: uuid.UUID | None
    level: str
    forced: bool


@dataclass(frozen=True)
class Totals:
    received: int
    linked: int
    unattributed: Mapping[str, int]
    pending: int

    @property
    def balanced(self) -> bool:
        return self.received == self.linked + sum(self.unattributed.values()) + self.pending


def learnable(*, may_learn: bool, learn_ceiling: str, decision: Decided) -> bool:
    """Whether a model may learn from an outcome of `decision` under the recorded Allowance."""
    if decision.forced or not may_learn:
        return False
    try:
        return Level(decision.level) <= Level(learn_ceiling)
    except ValueError:
        return False


# -- arriving ----------------------------------------------------------------------------------


def record(session: Session, *, outcomes: Sequence[Outcome], at: datetime) -> None:
    """Collection's outcome hook (`main` wires it): link, keep pending, or count each outcome."""
    counts: Counter[str] = Counter({RECEIVED: len(outcomes)})
    waiting = [o for o in outcomes if o.refusal is None and o.decision_id is not None]
    for outcome in outcomes:
        if outcome.refusal is not None:
            counts[f"unattributed:{outcome.refusal}"] += 1
        elif outcome.decision_id is None:
            counts[f"unattributed:{Unattributed.MALFORMED}"] += 1
    found = decisions(session, {o.decision_id for o in waiting if o.decision_id is not None})
    rows = []
    for outcome in waiting:
        assert outcome.decision_id is not None
        decision = found.get(outcome.decision_id)
        row = _row(outcome)
        if decision is None:
            rows.append(row)
            continue
        judged = _judge(
            session,
            outcome.subject_id,
            decision,
            may_learn=outcome.may_learn,
            learn_ceiling=row["learn_ceiling"],
        )
        if isinstance(judged, Unattributed):
            counts[f"unattributed:{judged}"] += 1
            continue
        rows.append(row | {"status": LINKED, "level": decision.level, "learnable": judged, "linked_at": at})
        counts[LINKED] += 1
    insert_rows(session, _OUTCOMES, rows)
    add_counts(session, counts)


def _row(outcome: Outcome) -> dict[str, Any]:
    return {
        "id": new_row_id(),
        "subject_id": outcome.subject_id,
        "decision_id": outcome.decision_id,
        "event": outcome.event,
        "value": outcome.value,
        "occurred_at": outcome.occurred_at,
        "received_at": outcome.received_at,
        "status": PENDING,
        "may_learn": outcome.may_learn,
        "learn_ceiling": str(outcome.learn_ceiling),
        "level": None,
        "learnable": None,
        "linked_at": None,
    }


def _judge(
    session: Session, subject_id: uuid.UUID, decision: Decided, *, may_learn: bool, learn_ceiling: str
) -> Unattributed | bool:
    """Why an outcome of `subject_id` may not link to `decision`; else whether it may be learned from."""
    if decision.subject_id is None or not _same_subject(session, subject_id, decision.subject_id):
        return Unattributed.OTHER_SUBJECT
    return learnable(may_learn=may_learn, learn_ceiling=learn_ceiling, decision=decision)


def _same_subject(session: Session, a: uuid.UUID, b: uuid.UUID) -> bool:
    if a == b:
        return True
    survivor = profiles_service.canonical(session, a)
    return survivor is not None and survivor == profiles_service.canonical(session, b)


def decisions(session: Session, ids: Iterable[str]) -> dict[str, Decided]:
    """The logged decisions among `ids`."""
    wanted = sorted(ids)
    found: dict[str, Decided] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(
                DecisionLog.decision_id, DecisionLog.subject_id, DecisionLog.level, DecisionLog.forced
            ).where(DecisionLog.decision_id.in_(wanted[start : start + _CHUNK]))
        )
        found.update((r.decision_id, Decided(r.subject_id, r.level, r.forced)) for r in rows)
    return found


def add_counts(session: Session, counts: Mapping[str, int]) -> None:
    shard = random.randrange(SHARDS)
    rows = [{"name": n, "shard": shard, "value": v} for n, v in sorted(counts.items()) if v]
    upsert_rows(session, _COUNTERS, rows, keys=("name", "shard"), add=("value",))


# -- settling ----------------------------------------------------------------------------------


def landed(session: Session, entries: Sequence[Entry]) -> None:
    """The decision log's `landed` hook (`main` wires it): the pending outcomes of these decisions,
    just written, settle in the same transaction; so do those whose decision another group wrote
    while they were being recorded (on PostgreSQL each transaction missed the other's rows)."""
    at = utcnow()
    by_id = {e.decision_id: Decided(e.subject_id, e.level, e.forced) for e in entries}
    _settle(session, by_id, at=at, only=sorted(by_id))
    missed = session.scalars(
        select(DecisionOutcome.decision_id)
        .join(DecisionLog, DecisionLog.decision_id == DecisionOutcome.decision_id)
        .where(DecisionOutcome.status == PENDING)
        .limit(_CHUNK)
    ).all()
    if missed:
        _settle(session, decisions(session, set(missed)), at=at, only=sorted(set(missed)))


def sweep(session: Session, *, at: datetime, limit: int = 5_000) -> dict[str, int]:
    """Settle pending outcomes: those whose decision is in the log link (or not); those that waited
    longer than PENDING_FOR for it count as unknown. What changed, by outcome."""
    pending = session.scalars(
        select(DecisionOutcome.decision_id)
        .where(DecisionOutcome.status == PENDING)
        .order_by(DecisionOutcome.received_at)
        .limit(limit)
    ).all()
    return _settle(session, decisions(session, set(pending)), at=at, only=sorted(set(pending)), expire=True)


def _settle(
    session: Session, found: Mapping[str, Decided], *, at: datetime, only: Sequence[str], expire: bool = False
) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for start in range(0, len(only), _CHUNK):
        rows = session.scalars(
            select(DecisionOutcome)
            .where(
                DecisionOutcome.status == PENDING,
                DecisionOutcome.decision_id.in_(only[start : start + _CHUNK]),
            )
            .with_for_update()
        ).all()
        for row in rows:
            decision = found.get(row.decision_id)
            if decision is None:
                if expire and row.received_at <= at - PENDING_FOR:
                    session.delete(row)
                    counts[f"unattributed:{Unattributed.UNKNOWN_DECISION}"] += 1
                continue
            judged = _judge(
                session, row.subject_id, decision, may_learn=row.may_learn, learn_ceiling=row.learn_ceiling
            )
            if isinstance(judged, Unattributed):
                session.delete(row)
                counts[f"unattributed:{judged}"] += 1
                continue
            row.status, row.level, row.learnable, row.linked_at = LINKED, decision.level, judged, at
            counts[LINKED] += 1
    session.flush()
    add_counts(session, counts)
    return dict(counts)


# -- reading, exporting, erasing -----------------------------------------------------------------


def totals(session: Session) -> Totals:
    """Every outcome so far: received, linked, unattributed by reason, and pending now."""
    sums = session.execute(
        select(OutcomeCounter.name, func.sum(OutcomeCounter.value)).group_by(OutcomeCounter.name)
    )
    counted = {str(name): int(n) for name, n in sums}
    failed = collect_store.totals(session)[0].get(FAILED, 0)
    unattributed = {
        n.removeprefix("unattributed:"): int(v) for n, v in counted.items() if n.startswith("unattributed:")
    }
    if failed:
        unattributed[Unattributed.FAILED] = failed
    pending = session.scalar(
        select(func.count()).select_from(DecisionOutcome).where(DecisionOutcome.status == PENDING)
    )
    return Totals(
        received=int(counted.get(RECEIVED, 0)) + failed,
        linked=int(counted.get(LINKED, 0)),
        unattributed=unattributed,
        pending=int(pending or 0),
    )


_EXPORTED = ("decision_id", "event", "value", "occurred_at", "received_at", "status", "level", "learnable")


def export_subject(session: Session, *, subject_id: uuid.UUID) -> dict[str, Any]:
    """The subject's outcomes, oldest first."""
    rows = session.scalars(
        select(DecisionOutcome)
        .where(DecisionOutcome.subject_id == subject_id)
        .order_by(DecisionOutcome.occurred_at)
    )
    found = [{c: jsontext.column_value(getattr(row, c)) for c in _EXPORTED} for row in rows]
    return {"outcomes": found} if found else {}


def erase_subject(session: Session, *, subject_id: uuid.UUID) -> int:
    """Delete the subject's outcomes; pending ones are counted as unattributed (erased), so the
    totals stay exact."""
    return _delete(session, subject_id, Unattributed.ERASED)


def forget_withdrawn(
    session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
) -> int:
    """After a refusal (consent's withdrawal hook, beside collection's: `main` wires both): without
    `analytics` among the purposes the subject's data may still serve, their outcomes go; pending
    ones are counted as unattributed (withdrawn). Outcomes stay under the subject id they arrived
    with, so those of every profile merged into the subject go too."""
    del at
    if OUTCOME_PURPOSE in purposes:
        return 0
    family = profiles_service.family(session, subject_id) or (subject_id,)
    return sum(_delete(session, member, Unattributed.WITHDRAWN) for member in family)


def _delete(session: Session, subject_id: uuid.UUID, reason: Unattributed) -> int:
    own = DecisionOutcome.subject_id == subject_id
    pending = session.scalar(
        select(func.count()).select_from(DecisionOutcome).where(own, DecisionOutcome.status == PENDING)
    )
    result = cast(CursorResult[Any], session.execute(delete(DecisionOutcome).where(own)))
    if pending:
        add_counts(session, {f"unattributed:{reason}": int(pending)})
    return result.rowcount or 0


def expire(session: Session, *, at: datetime, before: datetime) -> int:
    """The retention sweep's part: settle what waited (`sweep`: those that waited too long for
    their decision are deleted as unknown) and delete linked outcomes that occurred before `before`,
    as old as the decisions the log then drops; how many rows went."""
    settled = sweep(session, at=at)
    result = session.execute(
        delete(DecisionOutcome).where(DecisionOutcome.status == LINKED, DecisionOutcome.occurred_at < before)
    )
    removed = int(getattr(result, "rowcount", 0) or 0)
    return removed + sum(n for name, n in settled.items() if name != LINKED)
