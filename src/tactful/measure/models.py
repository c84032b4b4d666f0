"""Measurement's tables: outcomes linked to their decisions, and the running counts of every outcome.

`decision_outcomes` holds one row per outcome that was linked to a decision of the same subject, or
that waits for its decision to be written (`pending`): the subject as its internal id only, the event
atom's name, a number (the value), times and flags; never a value the person sent. It is personal
data, a registered store (`rights.registry`). A merge leaves the rows with the subject id they were
recorded under: linking follows merges, and export and erasure reach every id of a merged family.

`outcome_counters` holds totals only (no subject): received, linked and unattributed by reason, on a
few shards so that concurrent requests rarely wait for the same row.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Float, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base


class DecisionOutcome(Base):
    """One outcome: a stored track event that named a decision of the same subject."""

    __tablename__ = "decision_outcomes"
    __table_args__ = (
        CheckConstraint("status IN ('linked', 'pending')", name="status"),
        Index("ix_decision_outcomes_subject_id", "subject_id"),
        Index("ix_decision_outcomes_decision_id", "decision_id"),
        Index("ix_decision_outcomes_status_received_at", "status", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID]
    decision_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(200))
    """The event atom (`events.order_completed`)."""
    value: Mapped[float | None] = mapped_column(Float)
    """The outcome's number (revenue), when its event declares one and carries it."""
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(8))
    may_learn: Mapped[bool] = mapped_column(Boolean)
    """Whether the subject's Allowance when the outcome arrived let anything be learned from them."""
    learn_ceiling: Mapped[str] = mapped_column(String(8))
    """The highest level that Allowance let be learned from."""
    level: Mapped[str | None] = mapped_column(String(8))
    """The decision's level, once linked."""
    learnable: Mapped[bool | None] = mapped_column(Boolean)
    """Once linked: may a model learn from it (the Allowance reached the decision's level, with
    analytics, and the decision was not forced)."""
    linked_at: Mapped[datetime | None]


class OutcomeCounter(Base):
    """Running totals of outcomes: `received`, `linked`, `unattributed:<reason>`."""

    __tablename__ = "outcome_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
