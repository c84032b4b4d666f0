"""How long an answered review of a significant decision is kept (`reviews.py` files them,
`review_queue.py` answers them).

    retention sweep ──expired(at, days)──▶ answered reviews whose answer is older than
        `privacy.review_record_days` (open ones never) ──▶ deleted, counted (dry run included)
    erasure (registry) ──▶ every review of the person, whatever its age (`reviews.erase_subject`)

**How long.** `privacy.review_record_days`, default 730 days from the answer: the same 24 months
as a closed privacy request's record (CCPA regulations §7101), because an answered review plays the
same part: it is the operator's record that a person gave the human intervention Art. 22(3) asks
for (accountability, Art. 5(2)), and what the person reads back at `GET /v1/decisions/{id}/review`.
A longer period keeps the person's statement and the reviewer's reason longer than the proof
needs. The floor is 30 days, so that the person can always read the answer.
Open reviews are never swept: they are due for an answer and stay listed (overdue) until they get
one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement

from tactful.rights.models import DecisionReview
from tactful.rights.reviews import ReviewStatus


def expired(at: datetime, *, days: int) -> ColumnElement[bool]:
    """Answered reviews whose answer is older than `days` at `at`; never an open one."""
    return (DecisionReview.status == ReviewStatus.ANSWERED.value) & (
        DecisionReview.answered_at < at - timedelta(days=days)
    )
