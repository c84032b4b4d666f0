"""The privacy requests table: one row per request a person (or an operator for them) filed; and the
requests for human review of significant decisions (`DecisionReview`), whose overturns bind the
person's later decisions while they are kept.

What the request named is held only as a keyed hash under a system key of its own (`requests.
REQUESTS_KEY`), never in clear: enough to match a later request of the same person (repetition
flags) and a subject token's user id (self-service reads), nothing else. The request is kept as the
law's proof that it was answered (CCPA §7101: 24 months), so erasing its subject does not delete it:
`subject_id` is cleared and what the row says stays, linked to no one.

A job's progress lives on the row: `steps` holds each finished step's result, written in the same
transaction as the step's own work, and the lease (`lease_owner`, `lease_expires_at`) lets one
process at a time run it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base, JSONType


class PrivacyRequest(Base):
    __tablename__ = "privacy_requests"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    """What callers name the request by: random, unguessable, not the row's key."""
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    regime: Mapped[str] = mapped_column(String(64))
    """The legal regimes its due dates were counted under, comma-separated (`ccpa,gdpr`)."""
    subject_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    """The subject found when it was filed; None when Tactful held no one, and once erased."""
    identity_kind: Mapped[str] = mapped_column(String(16))
    identity_digest: Mapped[str] = mapped_column(String(96), index=True)
    verified_by: Mapped[str | None] = mapped_column(String(16))
    actor_key_id: Mapped[uuid.UUID | None]
    received_at: Mapped[datetime]
    due_at: Mapped[datetime]
    confirm_by: Mapped[datetime | None]
    extended_due_at: Mapped[datetime | None]
    extension_reason: Mapped[str | None] = mapped_column(String(1000))
    extension_noticed_at: Mapped[datetime | None]
    flags: Mapped[Any] = mapped_column(JSONType)
    """Repetition patterns for the operator (`due.RepeatCode`): never a refusal."""
    changes_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    """A rectification's new values, sealed under the subject's key until the job applies them."""
    steps: Mapped[Any] = mapped_column(JSONType)
    receipt: Mapped[Any] = mapped_column(JSONType, nullable=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_privacy_requests_status_due_at", "status", "due_at"),)


class DecisionReview(Base):
    """One request for human review of, or a contest against, a decision with a significant effect
    (GDPR Art. 22(3)); one per decision and kind.

    What the decision was is copied from the decision log when the request is filed (placement,
    experience and version, level, and its explanation in codes: atoms and categories, purposes,
    legal bases, never an atom's value), so that the queue outlives the log's retention. The person's
    statement and the reviewer's reason are free text: minimised (no e-mail address, phone or card
    number) and sealed under the subject's data key, shredded with it on erasure (`reviews.py`).

    An overturned review binds the subject's later decisions: the experience no longer answers for
    them (`review_records.py`). An answered review is kept `privacy.review_record_days` after its
    answer, then swept; an open one until it is answered; all of them go when the subject is erased.
    """

    __tablename__ = "decision_reviews"
    __table_args__ = (
        UniqueConstraint("decision_id", "kind", name="uq_decision_reviews_decision_id_kind"),
        Index("ix_decision_reviews_status_due_at", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    """What the admin queue names it by: random, not the row's key."""
    decision_id: Mapped[str] = mapped_column(String(48))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    placement: Mapped[str] = mapped_column(String(64))
    experience: Mapped[str] = mapped_column(String(64))
    experience_version: Mapped[int]
    variation: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(8))
    decided_at: Mapped[datetime]
    explanation: Mapped[Any] = mapped_column(JSONType)
    statement_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    statement_removed: Mapped[Any] = mapped_column(JSONType)
    """What minimisation took out of the statement (`email`, `phone`, ...), one entry per removal."""
    filed_by: Mapped[str] = mapped_column(String(16))
    filed_key_id: Mapped[uuid.UUID]
    filed_at: Mapped[datetime]
    due_at: Mapped[datetime]
    outcome: Mapped[str | None] = mapped_column(String(16))
    reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    replacement: Mapped[Any] = mapped_column(JSONType, nullable=True)
    """What serves in place of an overturned decision: the placement's default (never significant)."""
    answered_key_id: Mapped[uuid.UUID | None]
    answered_at: Mapped[datetime | None]


class RecipientNotice(Base):
    """A recipient the catalog names for a subject's data, to be told of an erasure, a rectification
    or a restriction (GDPR Art. 19; CCPA service providers and third parties): one tracked task per
    request and recipient. It names the recipient by its catalog key, never the person."""

    __tablename__ = "recipient_notices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(index=True)
    recipient: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(String(200))
    """A short, data-free note from whoever told the recipient (a hook's reference, an operator)."""

    __table_args__ = (UniqueConstraint("request_id", "recipient"),)


class ScheduleLease(Base):
    """A scheduled task of the server (the retention sweep): who runs it now and when it last ran.

    One row per task. A process takes the lease with one conditional UPDATE (free or expired, and
    the task due); rowcount 1 means it runs the task, and it releases the lease, recording the run,
    in the same transaction as the task's work. Holds no subject data.
    """

    __tablename__ = "schedule_leases"

    task: Mapped[str] = mapped_column(String(32), primary_key=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    """When the last run that completed started (the next is due an interval after it)."""


class PrivacyExport(Base):
    """One sealed access or portability package: its file lives in the export folder under `id`.

    The package is sealed with a random key of its own, kept here only sealed under the subject's
    data key (`key_enc`): erasing the subject deletes the row and the file, and destroying the key
    leaves any copy of either unreadable. The download link's token is kept only as its SHA-256
    (`token_digest`); the token itself is an HMAC of `id` under a keystore system key, so that it can
    be shown again to whoever may read the request, and never from the main database alone.
    """

    __tablename__ = "privacy_exports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`access` or `portability`."""
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    """Bytes of the zip file once opened (the download's Content-Length)."""
    chunk_size: Mapped[int]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    downloads: Mapped[int]
    """Completed downloads: a transfer counts only once its last byte was handed to the connection."""
    max_downloads: Mapped[int]
    last_download_at: Mapped[datetime | None]
