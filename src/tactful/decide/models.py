"""The decision model's tables.

The decision log holds one row per served decision (DESIGN §3, invariant 8), written in groups after
the answer (`logbook.py`), with the subject as its internal id only (pseudonymous), and names, codes
and numbers: never an atom's value. `decision_log_processes` says how far each serving process has
written, so that a process that stopped without writing its last window is found and counted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base, JSONType

KEY_LENGTH = 64


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
