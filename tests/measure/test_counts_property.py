"""Whatever arrives in whatever order (outcomes of one's own decisions, of others', of decisions not
yet written or never served, malformed ids; groups landing, sweeps, erasures), every outcome is
counted exactly once and a link never joins two subjects."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.collect.outcomes import Outcome, Refusal
from tactful.decide import log as decision_log
from tactful.decide.logbook import Entry, Logbook
from tactful.decide.models import DecisionLog
from tactful.measure import outcomes
from tactful.measure.models import DecisionOutcome
from tactful.types import Level, utcnow
from tests.measure.builders import decision, decision_id
from tests.profiles.builders import T0

STEPS = ("own", "other", "stranger", "unknown", "malformed", "buffered", "land", "sweep", "erase")
NOW = utcnow()
"""When the outcomes arrive: the log's `landed` hook sweeps by the clock too."""
LATER = NOW + outcomes.PENDING_FOR + timedelta(days=1)


def _outcome(subject: uuid.UUID, decided: str | None, refusal: Refusal | None = None) -> Outcome:
    return Outcome(
        subject_id=subject,
        decision_id=decided,
        event="events.product_viewed",
        value=None,
        occurred_at=NOW,
        received_at=NOW,
        refusal=refusal,
        may_learn=True,
        learn_ceiling=Level.ONE,
    )


class Run:
    """The steps against the database, and what the counts must then be."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.book = Logbook(lambda group: None)
        self.subjects = [uuid.uuid4() for _ in range(3)]
        self.buffer: list[Entry] = []
        self.pending: list[tuple[uuid.UUID, str]] = []
        self.expected: Counter[str] = Counter()

    def log(self, made: Entry) -> Entry:
        numbered = self.book.add(made)
        decision_log.write(self.session, entries=[numbered], at=T0)
        return numbered

    def record(self, arriving: Outcome) -> None:
        outcomes.record(self.session, outcomes=[arriving], at=NOW)
        self.expected["received"] += 1

    def step(self, kind: str, who: int) -> None:
        subject = self.subjects[who]
        if kind == "own":
            self.record(_outcome(subject, self.log(decision(subject)).decision_id))
            self.expected["linked"] += 1
        elif kind in ("other", "stranger"):
            owner = None if kind == "stranger" else self.subjects[(who + 1) % 3]
            self.record(_outcome(subject, self.log(decision(owner)).decision_id))
            self.expected["other_subject"] += 1
        elif kind == "malformed":
            self.record(_outcome(subject, None, Refusal.MALFORMED))
            self.expected["malformed"] += 1
        elif kind in ("unknown", "buffered"):
            decided = decision_id()
            if kind == "buffered":
                self.buffer.append(self.book.add(decision(subject, decision_id=decided)))
            self.record(_outcome(subject, decided))
            self.pending.append((subject, decided))
        elif kind == "land" and self.buffer:
            decision_log.write(self.session, entries=self.buffer, at=T0)
            outcomes.landed(self.session, self.buffer)
            landed = {e.decision_id for e in self.buffer}
            self.expected["linked"] += sum(1 for _, d in self.pending if d in landed)
            self.pending = [(s, d) for s, d in self.pending if d not in landed]
            self.buffer = []
        elif kind == "sweep":
            outcomes.sweep(self.session, at=LATER)
            self.expected["unknown_decision"] += len(self.pending)
            self.pending = []
        elif kind == "erase":
            outcomes.erase_subject(self.session, subject_id=subject)
            self.expected["erased"] += sum(1 for s, _ in self.pending if s == subject)
            self.pending = [(s, d) for s, d in self.pending if s != subject]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 2)), max_size=20))
def test_every_outcome_is_counted_once_and_links_only_its_own_subject(
    session: Session, steps: list[tuple[str, int]]
) -> None:
    savepoint = session.begin_nested()
    try:
        before = outcomes.totals(session)
        run = Run(session)
        for kind, who in steps:
            run.step(kind, who)
        after = outcomes.totals(session)
        assert after.balanced
        got = Counter(
            {
                "received": after.received - before.received,
                "linked": after.linked - before.linked,
                **{
                    r: after.unattributed.get(r, 0) - before.unattributed.get(r, 0)
                    for r in after.unattributed
                },
            }
        )
        assert +got == +run.expected
        assert after.pending - before.pending == len(run.pending)
        linked = session.execute(
            select(DecisionOutcome.subject_id, DecisionLog.subject_id).join(
                DecisionLog, DecisionLog.decision_id == DecisionOutcome.decision_id
            )
        ).all()
        assert all(ours == theirs for ours, theirs in linked)
    finally:
        savepoint.rollback()
