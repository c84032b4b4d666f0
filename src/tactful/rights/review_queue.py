"""The operator's side of human review (`reviews.py` has the person's): the queue, a review read
with its decision explained, and the answer.

    GET /v1/admin/reviews ──list_reviews──▶ overdue first, then by due date (pages by position)
    GET /v1/admin/reviews/{id} ──admin_view──▶ the statement opened; the read audited
    POST /v1/admin/reviews/{id}/answer ──answer_review──▶ upheld | overturned: the placement's
        default replaces it (`fallback`: it reads nothing about the person and is never
        significant); the reason minimised and sealed; the answering key recorded; audited
        ──▶ an overturn binds the person's later decisions while the record is kept
            (`review_records.py`: the experience's key, across versions and merges)
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.decide.lineup import Lineup
from tactful.decide.steps import ServingSteps
from tactful.errors import Conflict, InvalidInput, NotFound
from tactful.rights.models import DecisionReview
from tactful.rights.reviews import (
    ANSWERED,
    LISTED,
    READ,
    REASON_CONTEXT,
    Outcome,
    ReviewKind,
    ReviewRecord,
    ReviewStatus,
    audit_details,
    minimised,
    record_of,
)
from tactful.types import Level

Position = tuple[int, datetime, str]
"""Where a listing page ended: (0 overdue / 1 not, the due date, the public id)."""


def _overdue(at: datetime) -> ColumnElement[bool]:
    return and_(DecisionReview.status == ReviewStatus.OPEN.value, DecisionReview.due_at < at)


def list_reviews(
    session: Session,
    *,
    at: datetime,
    status: ReviewStatus | None = None,
    kind: ReviewKind | None = None,
    overdue: bool | None = None,
    after: Position | None = None,
    limit: int = 100,
) -> list[tuple[Position, ReviewRecord]]:
    """Reviews overdue at `at` first, then by due date (the open ones are what is due); each with
    its position for the next page."""
    rank = case((_overdue(at), 0), else_=1)
    query = select(DecisionReview, rank.label("rank"))
    if status is not None:
        query = query.where(DecisionReview.status == status.value)
    if kind is not None:
        query = query.where(DecisionReview.kind == kind.value)
    if overdue is not None:
        query = query.where(_overdue(at) if overdue else ~_overdue(at))
    if after is not None:
        r, d, p = after
        due = DecisionReview.due_at
        query = query.where(
            or_(rank > r, and_(rank == r, due > d), and_(rank == r, due == d, DecisionReview.public_id > p))
        )
    ordered = query.order_by(rank, DecisionReview.due_at, DecisionReview.public_id).limit(limit)
    found = []
    for row, place in session.execute(ordered).all():
        record = record_of(row)
        found.append(((int(place), record.due_at, record.public_id), record))
    return found


def audit_listing(
    session: Session, *, keystore: Keystore, key_id: uuid.UUID, count: int, at: datetime
) -> None:
    audit_service.append(
        session, keystore=keystore, action=LISTED, actor=f"api:key:{key_id}", at=at,
        details={"key_id": str(key_id), "count": count},
    )  # fmt: skip


def _row(session: Session, public_id: str, *, lock: bool = False) -> DecisionReview:
    query = select(DecisionReview).where(DecisionReview.public_id == public_id)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise NotFound("no review has this id", code="review_not_found")
    return row


def admin_view(
    session: Session, *, keystore: Keystore, public_id: str, key_id: uuid.UUID, at: datetime
) -> ReviewRecord:
    """The review with its statement opened, for the operator; the read is audited."""
    row = _row(session, public_id)
    audit_service.append(
        session, keystore=keystore, action=READ, actor=f"api:key:{key_id}", at=at, subject_id=row.subject_id,
        details=audit_details(row, reader="operator", key_id=str(key_id)),
    )  # fmt: skip
    return record_of(row, keystore)


def fallback(lineup: Lineup, placement: str) -> dict[str, Any] | None:
    """What replaces an overturned decision: the placement's default as it serves now, rendered for
    nobody (it reads nothing about the subject, and a placement's default is never significant)."""
    found = lineup.placements.get(placement)
    if found is None:
        return None
    steps = ServingSteps(lineup, lineup.renderer, None, False, found.channel)
    rendered = steps.render(found.default, {})
    content = rendered.content if rendered.content is not None else found.default.content
    return {"variation": found.default.key, "content": content, "level": Level.ALL.value}


def answer_review(
    session: Session,
    *,
    keystore: Keystore,
    public_id: str,
    outcome: Outcome,
    reason: str,
    lineup: Lineup,
    key_id: uuid.UUID,
    at: datetime,
) -> ReviewRecord:
    """Answer an open review: upheld, or overturned and replaced by the placement's default as it
    serves in `lineup` (`fallback`). The reason is minimised and sealed under the subject's key;
    the answering key is recorded. Conflict (`review_answered`) when it was answered already.

    An overturn takes effect on the subject's next decision, once this transaction commits: the
    experience no longer answers for them while the record is kept (`review_records.overturned`)."""
    row = _row(session, public_id, lock=True)
    if row.status != ReviewStatus.OPEN.value:
        raise Conflict("this review was answered already", code="review_answered")
    if not reason.strip():
        raise InvalidInput("give the reason in words the person can read", field="reason")
    kept, removed = minimised(reason.strip())
    row.reason_enc = keystore.encrypt(row.subject_id, kept, context=f"{REASON_CONTEXT}:{row.id}")
    row.status = ReviewStatus.ANSWERED.value
    row.outcome = outcome.value
    row.replacement = fallback(lineup, row.placement) if outcome is Outcome.OVERTURNED else None
    row.answered_key_id = key_id
    row.answered_at = at
    session.flush()
    audit_service.append(
        session, keystore=keystore, action=ANSWERED, actor=f"api:key:{key_id}", at=at,
        subject_id=row.subject_id,
        details=audit_details(
            row, outcome=outcome.value, key_id=str(key_id), reason_removed=len(removed),
            replaced_by=(row.replacement or {}).get("variation"),
        ),
    )  # fmt: skip
    return record_of(row, keystore)
