"""The HTTP shapes of human review (`reviews.py`): what a person files and reads, what the operator's
queue shows and how it answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from tactful.consent.schemas import Storable
from tactful.decide.explain import Explanation
from tactful.decide.wording import Language, sentences
from tactful.rights.reviews import FiledBy, Outcome, ReviewKind, ReviewRecord, ReviewStatus

MAX_STATEMENT = 4000
MAX_REASON = 2000


class ReviewCreate(BaseModel):
    """`POST /v1/decisions/{id}/review`."""

    model_config = ConfigDict(extra="forbid")

    kind: ReviewKind = Field(
        ReviewKind.REVIEW,
        description="`review`: ask for a person to look at the decision again; `contest`: dispute it. "
        "One of each per decision: filing again answers the first",
    )
    statement: Annotated[str, StringConstraints(max_length=MAX_STATEMENT), Storable()] | None = Field(
        None,
        description="The person's point of view, in their words. Kept without e-mail addresses, phone "
        "or card numbers, and sealed under their data key",
    )
    subject_token: Annotated[str, StringConstraints(min_length=1, max_length=4096), Storable()] | None = (
        Field(
            None,
            description="With a write key: a JWT from the site's backend proving the user whose decision "
            "this is (or the header X-Tactful-Subject-Token). Never stored",
        )
    )


class Replacement(BaseModel):
    """What serves in place of an overturned decision: the placement's default."""

    variation: str
    content: JsonValue
    level: str = Field(description="Always 1:all: the default reads nothing about the person")


class ReviewView(BaseModel):
    """One review as the person (or the site's backend) sees it."""

    id: str = Field(description="The review's id in the operator's queue")
    decision_id: str
    kind: ReviewKind
    status: ReviewStatus
    filed_at: datetime
    due_at: datetime = Field(description="When a person will have answered: one month after filing")
    statement_removed: list[str] = Field(
        description="What was taken out of the statement before it was kept (`email`, `phone`, `card`, "
        "`url_query`), one entry each"
    )
    outcome: Outcome | None = Field(description="`upheld` or `overturned`; none until answered")
    reason: str | None = Field(description="The reviewer's reason, once answered")
    replacement: Replacement | None = Field(description="For an overturned decision: what replaces it")
    answered_at: datetime | None

    @classmethod
    def of(cls, record: ReviewRecord) -> ReviewView:
        return cls(
            id=record.public_id,
            decision_id=record.decision_id,
            kind=record.kind,
            status=record.status,
            filed_at=record.filed_at,
            due_at=record.due_at,
            statement_removed=list(record.statement_removed),
            outcome=record.outcome,
            reason=record.reason,
            replacement=Replacement.model_validate(record.replacement) if record.replacement else None,
            answered_at=record.answered_at,
        )


class DecisionReviews(BaseModel):
    """`GET /v1/decisions/{id}/review`: the reviews asked for one decision (a review, a contest)."""

    decision_id: str
    reviews: list[ReviewView]


class ReviewSummary(BaseModel):
    """One review in the operator's queue."""

    id: str
    kind: ReviewKind
    status: ReviewStatus
    overdue: bool = Field(description="Open past its due date")
    placement: str
    experience: str
    experience_version: int
    level: str
    decided_at: datetime
    filed_by: FiledBy
    filed_at: datetime
    due_at: datetime
    outcome: Outcome | None
    answered_at: datetime | None

    @classmethod
    def of(cls, record: ReviewRecord, *, at: datetime) -> ReviewSummary:
        return cls(
            id=record.public_id, kind=record.kind, status=record.status, overdue=record.overdue(at),
            placement=record.placement, experience=record.experience,
            experience_version=record.experience_version, level=record.level,
            decided_at=record.decided_at, filed_by=record.filed_by, filed_at=record.filed_at,
            due_at=record.due_at, outcome=record.outcome, answered_at=record.answered_at,
        )  # fmt: skip


class ReviewPage(BaseModel):
    items: list[ReviewSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; none at the end")


class DecisionExplained(BaseModel):
    """The decision under review as its log explained it: names, categories and codes, never values."""

    variation: str
    level: str
    legal_basis: dict[str, str] = Field(description="Each purpose the answer rests on, with its basis")
    atoms: list[dict[str, JsonValue]] = Field(
        description="Each atom read: its name, its data category and its weight in the answer"
    )
    codes: dict[str, JsonValue] = Field(description="The whole explanation in codes, as the log keeps it")
    sentences: list[str] = Field(description="The same in plain English, as the person reads it")


class ReviewAdminView(ReviewSummary):
    """A review for the operator who answers it: the decision explained and the person's statement."""

    decision_id: str
    subject_id: uuid.UUID = Field(description="Opens the person's profile at /v1/admin/subjects/{id}")
    decision: DecisionExplained
    statement: str | None = Field(description="The person's point of view, minimised")
    statement_removed: list[str]
    filed_key_id: uuid.UUID
    reason: str | None
    replacement: Replacement | None
    answered_key_id: uuid.UUID | None

    @classmethod
    def admin(cls, record: ReviewRecord, *, at: datetime) -> ReviewAdminView:
        raw: dict[str, Any] = record.explanation
        words = sentences(Explanation.from_json(raw), Language.EN)
        decision = DecisionExplained(
            variation=record.variation,
            level=record.level,
            legal_basis={str(k): str(v) for k, v in dict(raw.get("legal_basis") or {}).items()},
            atoms=list(raw.get("atoms") or []),
            codes=raw,
            sentences=[*words.summary, *words.data_used, *words.why_not_higher],
        )
        return cls(
            **ReviewSummary.of(record, at=at).model_dump(),
            decision_id=record.decision_id, subject_id=record.subject_id, decision=decision,
            statement=record.statement, statement_removed=list(record.statement_removed),
            filed_key_id=record.filed_key_id, reason=record.reason,
            replacement=Replacement.model_validate(record.replacement) if record.replacement else None,
            answered_key_id=record.answered_key_id,
        )  # fmt: skip


class ReviewAnswer(BaseModel):
    """`POST /v1/admin/reviews/{id}/answer`."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome = Field(
        description="`upheld`: the decision stands; `overturned`: the placement's default replaces it, and "
        "the experience is not served to this person again while the review's record is kept"
    )
    reason: Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON), Storable()] = Field(
        description="Why, in words the person reads; kept without e-mail addresses, phone or card numbers"
    )
