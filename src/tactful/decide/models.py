"""The decision model's tables: placements, audiences, experiences, their variations, and the versions
of each; and the decision log.

None of the model's tables holds personal data: they describe what a site may show and to whom, never who
saw it (no `subject_id` column, so `rights.registry`'s completeness test has nothing to ask of them).

An experience's row is its working copy: edits change it and make an unpublished version; what
serves is the latest published version's snapshot (`published_version`). Placements and audiences
have no draft state: each change is published as it is made.

The decision log holds one row per served decision (DESIGN §3, invariant 8), written in groups after
the answer (`logbook.py`), with the subject as its internal id only (pseudonymous), and names, codes
and numbers: never an atom's value; it is a registered store of personal data (`rights.registry`).
`decision_log_processes` says how far each serving process has written, so that a process that
stopped without writing its last window is found and counted.

`audience_sketches` holds one HyperLogLog sketch per audience (and condition) per day: registers
over keyed hashes, no row and no identifier per subject (`audience_size.py`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tactful.db import Base, JSONType

KEY_LENGTH = 64


class Placement(Base):
    __tablename__ = "placements"
    __table_args__ = (CheckConstraint("channel IN ('web', 'app', 'email')", name="channel"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(String(500))
    # The default variation that answers when nothing above it does (DESIGN §2): always present.
    default_content: Mapped[Any] = mapped_column(JSONType)
    default_templates: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"Placement(key={self.key!r}, channel={self.channel!r})"


class Audience(Base):
    __tablename__ = "audiences"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Stored as given; the condition language reads and analyses it.
    condition: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"Audience(key={self.key!r})"


class Experience(Base):
    __tablename__ = "experiences"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'live', 'paused')", name="status"),
        CheckConstraint("strategy IN ('rule', 'split', 'bandit')", name="strategy"),
        CheckConstraint("holdout >= 0 AND holdout < 1", name="holdout"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    placement_key: Mapped[str] = mapped_column(ForeignKey("placements.key"), index=True)
    description: Mapped[str] = mapped_column(String(500))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    holdout: Mapped[float] = mapped_column(Float)
    strategy: Mapped[str] = mapped_column(String(8))
    significant_effect: Mapped[bool] = mapped_column(Boolean)
    namespace: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    audience_key: Mapped[str | None] = mapped_column(ForeignKey("audiences.key"), index=True)
    # Assignment hashes with it: it changes only with the variations or weights, or on request.
    seed: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    variations: Mapped[list[Variation]] = relationship(
        order_by="Variation.position", cascade="all, delete-orphan", lazy="selectin"
    )

    def __repr__(self) -> str:
        return f"Experience(key={self.key!r}, status={self.status!r})"


class Variation(Base):
    __tablename__ = "variations"
    __table_args__ = (
        UniqueConstraint("experience_id", "key", name="uq_variations_experience_key"),
        CheckConstraint("weight > 0", name="weight"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    experience_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experiences.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    content: Mapped[Any] = mapped_column(JSONType)
    templates: Mapped[dict[str, Any]]
    weight: Mapped[float] = mapped_column(Float)

    def __repr__(self) -> str:
        return f"Variation(key={self.key!r}, weight={self.weight})"


class DecideVersion(Base):
    """One version of a placement, audience or experience: a snapshot of its definition, who made it
    (an API key's id; none from the command line) and whether it was published."""

    __tablename__ = "decide_versions"
    __table_args__ = (
        UniqueConstraint("kind", "key", "version", name="uq_decide_versions_kind_key_version"),
        CheckConstraint("kind IN ('placement', 'audience', 'experience')", name="kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    published: Mapped[bool] = mapped_column(Boolean)
    snapshot: Mapped[dict[str, Any]]
    actor_key_id: Mapped[uuid.UUID | None]
    at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"DecideVersion({self.kind} {self.key!r} v{self.version})"


class DecisionLog(Base):
    """One served decision: what was shown, why, from what, and with which probability."""

    __tablename__ = "decision_log"
    __table_args__ = (
        UniqueConstraint("process", "sequence", name="uq_decision_log_process_sequence"),
        Index("ix_decision_log_subject_id_decided_at", "subject_id", "decided_at"),
        Index("ix_decision_log_decided_at", "decided_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(48), unique=True)
    subject_id: Mapped[uuid.UUID | None]
    process: Mapped[uuid.UUID]
    sequence: Mapped[int] = mapped_column(Integer)
    placement: Mapped[str] = mapped_column(String(KEY_LENGTH))
    experience: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    experience_version: Mapped[int | None] = mapped_column(Integer)
    variation: Mapped[str] = mapped_column(String(KEY_LENGTH))
    level: Mapped[str] = mapped_column(String(8))
    strategy: Mapped[str] = mapped_column(String(8))
    propensity: Mapped[float] = mapped_column(Float)
    atoms_read: Mapped[list[str]] = mapped_column(JSONType)
    purposes: Mapped[list[str]] = mapped_column(JSONType)
    legal_basis: Mapped[dict[str, Any]]
    explanation: Mapped[dict[str, Any]]
    model_version: Mapped[str | None] = mapped_column(String(64))
    forced: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[datetime]


class DecisionLogProcess(Base):
    """How far one serving process has written its numbered log entries."""

    __tablename__ = "decision_log_processes"

    process: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    started_at: Mapped[datetime]
    written_through: Mapped[int] = mapped_column(Integer)
    """The highest entry number written (entries are written in order, in groups)."""
    written_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    """Set when the process wrote its last group and stopped; a process without it that has not
    written for long stopped without writing its last window."""


class AudienceSketch(Base):
    """The distinct subjects one audience matched on one day, as compressed sketch registers."""

    __tablename__ = "audience_sketches"

    sketch_key: Mapped[str] = mapped_column(String(KEY_LENGTH + 17), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    registers: Mapped[bytes] = mapped_column(LargeBinary)
