"""Human review of decisions with a significant effect (GDPR Art. 22(3), DESIGN §1): the person asks
for a human to look at a decision, or contests it, with their point of view; an operator answers.

    POST /v1/decisions/{id}/review ──file_review──▶ the decision (buffer, then log) ──▶ whose? (a
        server key, or a subject token whose user is the decision's subject: else 404 as unknown)
        ──▶ significant? (its experience version's flag: else 409) ──▶ one per decision and kind
        ──▶ statement minimised (no e-mail, phone, card number) and sealed under the subject's key
        ──▶ decision_reviews (the explanation's codes copied, due in a month) + audit
    the operator's queue, reading and answering ──▶ `review_queue.py`
    GET /v1/decisions/{id}/review ──read_reviews──▶ the person sees the outcome (same rule as filing)
    rights.registry ──export_subject / erase_subject──▶ the subject's reviews (erasure deletes them;
        the sealed texts were shredded with the key in any case)

The due date is one calendar month from filing, counted as GDPR Art. 12(3) counts it for requests
(the privacy calendar's time zone); Art. 22 names none, and a month is the longest a subject should
wait for a person to look at a decision about them.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.catalog.redact import Redactor, TextKind
from tactful.crypto import Keystore
from tactful.decide import decisions
from tactful.decide import service as decide_service
from tactful.decide.logbook import Entry, Logbook
from tactful.decide.schemas import Kind
from tactful.errors import Conflict, NotFound
from tactful.profiles import service as profiles_service
from tactful.rights.due import GDPR_MONTHS, BusinessCalendar, add_months
from tactful.rights.models import DecisionReview
from tactful.types import NOBODY, new_id

FILED = "rights.review_filed"
READ = "rights.review_read"
LISTED = "rights.reviews_listed"
ANSWERED = "rights.review_answered"
STATEMENT_CONTEXT = "decision-review-statement"
REASON_CONTEXT = "decision-review-reason"
_REDACT = Redactor()


class ReviewKind(StrEnum):
    REVIEW = "review"
    """Human intervention: a person looks at the decision again."""
    CONTEST = "contest"
    """The person disputes the decision."""


class ReviewStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class Outcome(StrEnum):
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class FiledBy(StrEnum):
    SERVER_KEY = "server_key"
    """The site's backend filed it (a server or admin key)."""
    SUBJECT_TOKEN = "subject_token"  # noqa: S105 - a kind of proof, not a secret
    """The person filed it with a public key and their subject token."""


@dataclass(frozen=True)
class Caller:
    """Who asks: a key, and whether it is trusted with any decision (server scope) or only with the
    decisions of the user id a subject token proved (None: no token, so none)."""

    key_id: uuid.UUID
    trusted: bool
    user_id: str | None = None

    @property
    def actor(self) -> str:
        return f"api:key:{self.key_id}"


@dataclass(frozen=True)
class ReviewRecord:
    """A review as the service hands it out; the sealed texts opened only where asked for."""

    id: uuid.UUID
    public_id: str
    decision_id: str
    kind: ReviewKind
    status: ReviewStatus
    subject_id: uuid.UUID
    placement: str
    experience: str
    experience_version: int
    variation: str
    level: str
    decided_at: datetime
    explanation: dict[str, Any]
    statement_removed: tuple[str, ...]
    filed_by: FiledBy
    filed_key_id: uuid.UUID
    filed_at: datetime
    due_at: datetime
    outcome: Outcome | None
    replacement: dict[str, Any] | None
    answered_key_id: uuid.UUID | None
    answered_at: datetime | None
    statement: str | None = None
    reason: str | None = None

    def overdue(self, at: datetime) -> bool:
        return self.status is ReviewStatus.OPEN and self.due_at < at


def record_of(row: DecisionReview, keystore: Keystore | None = None) -> ReviewRecord:
    """The row as a record; with `keystore`, its statement and reason opened."""
    statement = reason = None
    if keystore is not None:
        if row.statement_enc is not None:
            statement = keystore.decrypt(
                row.subject_id, row.statement_enc, context=f"{STATEMENT_CONTEXT}:{row.id}"
            )
        if row.reason_enc is not None:
            reason = keystore.decrypt(row.subject_id, row.reason_enc, context=f"{REASON_CONTEXT}:{row.id}")
    return ReviewRecord(
        id=row.id,
        public_id=row.public_id,
        decision_id=row.decision_id,
        kind=ReviewKind(row.kind),
        status=ReviewStatus(row.status),
        subject_id=row.subject_id,
        placement=row.placement,
        experience=row.experience,
        experience_version=row.experience_version,
        variation=row.variation,
        level=row.level,
        decided_at=row.decided_at,
        explanation=dict(row.explanation),
        statement_removed=tuple(row.statement_removed or ()),
        filed_by=FiledBy(row.filed_by),
        filed_key_id=row.filed_key_id,
        filed_at=row.filed_at,
        due_at=row.due_at,
        outcome=Outcome(row.outcome) if row.outcome else None,
        replacement=dict(row.replacement) if row.replacement is not None else None,
        answered_key_id=row.answered_key_id,
        answered_at=row.answered_at,
        statement=statement,
        reason=reason,
    )


def minimised(text: str) -> tuple[str, tuple[str, ...]]:
    """Free text as it may be kept: without e-mail addresses, phone and card numbers, or URL query
    strings (invariant 15, as collection keeps free text); and what was taken out."""
    kept, found = _REDACT(TextKind.FREE, text)
    return kept, tuple(str(f) for f in found)


# -- whose decision ----------------------------------------------------------------------------


def _unknown() -> NotFound:
    return NotFound("no decision has this id", code="decision_not_found")


def _authorize(session: Session, *, keystore: Keystore, caller: Caller, subject_id: uuid.UUID | None) -> None:
    """A server key may act on any decision; a public key only on one of the user its subject token
    proved (following merges). Otherwise the same 404 as an unknown id (`subject_id` None), after the
    same lookups, so that a public key learns nothing about other people's decisions."""
    if caller.trusted:
        return
    if caller.user_id is None:
        raise _unknown()
    theirs = profiles_service.find_subject(session, keystore=keystore, user_id=caller.user_id)
    whose = profiles_service.canonical(session, subject_id or NOBODY)
    if subject_id is None or theirs is None or whose != theirs:
        raise _unknown()


def decision_of(
    session: Session, *, keystore: Keystore, logbook: Logbook | None, decision_id: str, caller: Caller
) -> Entry:
    """The decision (from this process's buffer, then the log), if `caller` may act on it."""
    entry = decisions.find(session, logbook=logbook, decision_id=decision_id)
    _authorize(session, keystore=keystore, caller=caller, subject_id=entry.subject_id if entry else None)
    if entry is None:
        raise _unknown()
    return entry


def significant(session: Session, entry: Entry) -> bool:
    """Whether the experience version that made the decision has a significant effect."""
    if entry.experience is None or entry.experience_version is None:
        return False  # the placement's default: never significant
    version = decide_service.get_version(
        session, kind=Kind.EXPERIENCE, key=entry.experience, version=entry.experience_version
    )
    return version is not None and bool(version.snapshot.get("significant_effect"))


def due_at(received_at: datetime, calendar: BusinessCalendar) -> datetime:
    """The end of the day one calendar month after `received_at` (GDPR Art. 12(3)'s counting)."""
    return calendar.end_of(add_months(calendar.day_of(received_at), GDPR_MONTHS))


# -- filing --------------------------------------------------------------------------------------


def _rows_of(session: Session, decision_id: str) -> list[DecisionReview]:
    return list(
        session.scalars(
            select(DecisionReview)
            .where(DecisionReview.decision_id == decision_id)
            .order_by(DecisionReview.kind)
        )
    )


def audit_details(
    row: DecisionReview, **more: str | int | None
) -> dict[str, str | int | bool | float | None]:
    """What an audit entry about a review says: names, numbers and codes, never its words, the
    decision id (a capability to read the explanation) or the person's ids."""
    return {
        "review": row.public_id,
        "kind": row.kind,
        "placement": row.placement,
        "experience": row.experience,
        "experience_version": row.experience_version,
        **more,
    }


def file_review(
    session: Session,
    *,
    keystore: Keystore,
    logbook: Logbook | None,
    calendar: BusinessCalendar,
    decision_id: str,
    kind: ReviewKind,
    statement: str | None,
    caller: Caller,
    at: datetime,
) -> tuple[ReviewRecord, bool]:
    """File a review of `decision_id`, or find the one filed before for the same decision and kind
    (then its statement stays as first given); True when it was filed now.

    NotFound for an unknown decision or one the caller may not act on (the same answer); Conflict
    (`decision_not_significant`) for a decision without a significant effect."""
    entry = decision_of(session, keystore=keystore, logbook=logbook, decision_id=decision_id, caller=caller)
    if entry.subject_id is None or entry.experience is None or not significant(session, entry):
        raise Conflict(
            "this decision has no significant effect, so there is no human review to ask for; its "
            "explanation says why it was made",
            code="decision_not_significant",
        )
    for found in _rows_of(session, decision_id):
        if found.kind == kind.value:
            return record_of(found), False
    row = DecisionReview(
        id=new_id(),
        public_id="rv_" + secrets.token_urlsafe(18),
        decision_id=decision_id,
        kind=kind.value,
        status=ReviewStatus.OPEN.value,
        subject_id=entry.subject_id,
        placement=entry.placement,
        experience=entry.experience,
        experience_version=int(entry.experience_version or 0),
        variation=entry.variation,
        level=entry.level,
        decided_at=entry.decided_at,
        explanation={k: v for k, v in entry.explanation.items() if k != "language"},
        statement_enc=None,
        statement_removed=[],
        filed_by=(FiledBy.SERVER_KEY if caller.trusted else FiledBy.SUBJECT_TOKEN).value,
        filed_key_id=caller.key_id,
        filed_at=at,
        due_at=due_at(at, calendar),
        outcome=None,
        reason_enc=None,
        replacement=None,
        answered_key_id=None,
        answered_at=None,
    )
    if statement is not None and statement.strip():
        kept, removed = minimised(statement.strip())
        row.statement_enc = keystore.encrypt(entry.subject_id, kept, context=f"{STATEMENT_CONTEXT}:{row.id}")
        row.statement_removed = list(removed)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        # Filed by a concurrent request in the meantime: that one stands.
        for found in _rows_of(session, decision_id):
            if found.kind == kind.value:
                return record_of(found), False
        raise
    audit_service.append(
        session,
        keystore=keystore,
        action=FILED,
        actor=caller.actor,
        at=at,
        subject_id=row.subject_id,
        details=audit_details(row, filed_by=row.filed_by, key_id=str(caller.key_id)),
    )
    return record_of(row), True


def read_reviews(
    session: Session,
    *,
    keystore: Keystore,
    logbook: Logbook | None,
    decision_id: str,
    caller: Caller,
    at: datetime,
) -> list[ReviewRecord]:
    """The reviews of a decision, with the reviewer's reasons, for the caller that may file them;
    NotFound (`review_not_found`) when none was filed. A review outlives its decision's log entry
    (the log has its own retention): then the review says whose decision it was. Each read is
    audited."""
    # Both looked up whatever the first finds: whether a review was asked for must not show in the
    # time a public key waits for its 404.
    rows = _rows_of(session, decision_id)
    entry = decisions.find(session, logbook=logbook, decision_id=decision_id)
    subject_id = rows[0].subject_id if rows else entry.subject_id if entry else None
    _authorize(session, keystore=keystore, caller=caller, subject_id=subject_id)
    if not rows and entry is None:
        raise _unknown()
    if not rows:
        raise NotFound("no review of this decision was asked for", code="review_not_found")
    records = []
    for row in rows:
        records.append(record_of(row, keystore))
        reader = "server_key" if caller.trusted else "subject_token"
        audit_service.append(
            session, keystore=keystore, action=READ, actor=caller.actor, at=at, subject_id=row.subject_id,
            details=audit_details(row, reader=reader, key_id=str(caller.key_id)),
        )  # fmt: skip
    # The person reads what the reviewer wrote; their own statement they have (and export).
    return [replace(r, statement=None) for r in records]


# -- the registry's handlers ------------------------------------------------------------------------


def export_subject(session: Session, *, keystore: Keystore, subject_id: uuid.UUID) -> dict[str, object]:
    """The subject's reviews with their statements and answers, oldest first."""
    rows = session.scalars(
        select(DecisionReview)
        .where(DecisionReview.subject_id == subject_id)
        .order_by(DecisionReview.filed_at)
    ).all()
    if not rows:
        return {}
    exported = []
    for row in rows:
        record = record_of(row, keystore)
        exported.append(
            {
                "id": record.public_id,
                "decision_id": record.decision_id,
                "kind": record.kind.value,
                "status": record.status.value,
                "placement": record.placement,
                "experience": record.experience,
                "decided_at": record.decided_at.isoformat(),
                "filed_at": record.filed_at.isoformat(),
                "due_at": record.due_at.isoformat(),
                "statement": record.statement,
                "outcome": record.outcome.value if record.outcome else None,
                "reason": record.reason,
                "replacement": record.replacement,
                "answered_at": record.answered_at.isoformat() if record.answered_at else None,
            }
        )
    return {"reviews": exported}


def erase_subject(session: Session, *, subject_id: uuid.UUID) -> int:
    """Delete the subject's reviews (their sealed texts are unreadable once the key goes anyway)."""
    result = session.execute(delete(DecisionReview).where(DecisionReview.subject_id == subject_id))
    return cast(CursorResult[Any], result).rowcount or 0
