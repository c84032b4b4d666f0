"""What an answered review keeps doing, and how long its record is kept (`reviews.py` files them,
`review_queue.py` answers them).

    POST /v1/decide ──decide.overrides──▶ overturned(subject, significant keys asked for)
        ──one query: decision_reviews (indexed by subject) of the subject and of every profile
          merged into it, outcome overturned──▶ the keys that never answer for this person
    retention sweep ──expired(at, days)──▶ answered reviews whose answer is older than
        `privacy.review_record_days` (open ones never) ──▶ deleted, counted (dry run included)
    erasure (registry) ──▶ every review of the person, whatever its age (`reviews.erase_subject`)

**What an overturn binds.** A person who reviewed a significant automated decision and overturned
it judged that decision wrong for this person, not one version of the rule wrong in general: the
overturn binds the experience's *key* for that subject, across every later version published, for
as long as the experience has a significant effect. It binds the person across merges: reviews are
keyed by the subject the decision was made for, and a decision reads the reviews of its subject
and of every profile merged into it (a merge repoints tombstones straight at the survivor, so that
is one hop), so a profile merged into the person, or the person merged into another, keeps it.
Experiences are never deleted (their keys are permanent), so what ends an overturn is its record
going: the retention below, or the person's erasure. A version published without the significant
flag is the operator's audited statement that the experience has no significant effect any more;
no Art. 22 right attaches to it and the overturn no longer applies.

**How long.** `privacy.review_record_days`, default 730 days from the answer: the same 24 months
as a closed privacy request's record (CCPA regulations §7101), because an answered review plays the
same part: it is the operator's record that a person gave the human intervention Art. 22(3) asks
for (accountability, Art. 5(2)), and what the person reads back at `GET /v1/decisions/{id}/review`.
The overturn lasts as long: a shorter period would let the automated decision come back sooner and
make the person contest it again; a longer one keeps their statement and the reviewer's reason
longer than the proof needs. The floor is 30 days, so that the person can always read the answer.
Open reviews are never swept: they are due for an answer and stay listed (overdue) until they get
one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, bindparam, or_, select
from sqlalchemy.orm import Session

from tactful.profiles.models import Subject
from tactful.rights.models import DecisionReview
from tactful.rights.reviews import Outcome, ReviewStatus


def _table(model: type[DecisionReview] | type[Subject]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_REVIEWS, _SUBJECTS = _table(DecisionReview).c, _table(Subject).c
# Built once, of plain table columns: every decision that asks for a significant experience runs it,
# so no statement is built or compiled per call (that took longer than the query itself).
_OVERTURNED = (
    select(_REVIEWS.experience)
    .where(
        or_(
            _REVIEWS.subject_id == bindparam("subject"),
            _REVIEWS.subject_id.in_(
                select(_SUBJECTS.subject_id).where(_SUBJECTS.merged_into == bindparam("subject"))
            ),
        ),
        _REVIEWS.outcome == Outcome.OVERTURNED.value,
    )
    .distinct()
)


def overturned(session: Session, *, subject_id: uuid.UUID, experiences: frozenset[str]) -> frozenset[str]:
    """The keys among `experiences` of which a decision about `subject_id` (a surviving subject), or
    about a profile merged into it, was overturned on review: one query, by the reviews' subject
    index and the subjects' merge index (a person has a handful of reviews at most, so the keys are
    matched here rather than in the statement)."""
    found = session.connection().execute(_OVERTURNED, {"subject": subject_id}).scalars()
    return experiences.intersection(found)


def expired(at: datetime, *, days: int) -> ColumnElement[bool]:
    """Answered reviews whose answer is older than `days` at `at`; never an open one."""
    return (DecisionReview.status == ReviewStatus.ANSWERED.value) & (
        DecisionReview.answered_at < at - timedelta(days=days)
    )
