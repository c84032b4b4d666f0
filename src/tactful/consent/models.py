"""The `consent_events` table: the consent ledger, one row per recorded choice. Append-only.

Rows are never edited and never deleted by the engine. Two operations move them without changing what
they say: a profile merge gives them to the surviving subject, and erasure pseudonymises them (DESIGN
invariant 11: consent records are kept as proof). Erasure replaces `subject_id` with a random
tombstone id shared by that subject's rows and stores `subject_ref`, the keyed hash the audit log
knows the subject by; once the subject's salt is destroyed neither leads back to the person.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base

TARGET_KINDS = ("purpose", "explicit", "parental", "legitimate_interest", "restriction", "limit_sensitive")
ACTIONS = ("granted", "denied", "withdrawn")
SOURCES = ("api", "banner", "tcf", "gpc", "segment_context", "rudderstack_context", "import")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ConsentEventRow(Base):
    """One ledger entry. `target` names the purpose or the explicit consent (special category,
    `significant_decisions`, `special_feature_1`); it is empty for the other kinds of target."""

    __tablename__ = "consent_events"
    __table_args__ = (
        CheckConstraint(_one_of("target_kind", TARGET_KINDS), name="target_kind"),
        CheckConstraint(_one_of("action", ACTIONS), name="action"),
        CheckConstraint(_one_of("source", SOURCES), name="source"),
        Index("ix_consent_events_subject_id_at", "subject_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID]
    sequence: Mapped[int] = mapped_column(Integer)
    """The subject's own order of receipt; breaks ties between rows received at the same time."""
    at: Mapped[datetime]
    """The server's receipt time (TC strings carry day-precise times only)."""
    target_kind: Mapped[str] = mapped_column(String(24))
    target: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(24))
    notice_version: Mapped[str | None] = mapped_column(String(100))
    method: Mapped[str | None] = mapped_column(String(100))
    """How a parent was verified, for parental consent."""
    proof: Mapped[dict[str, Any]]
    """Request id, TC string, text version, key id: strings only."""
    subject_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    """Set by erasure: the subject's audit reference, computed before its salt was destroyed."""
    erased_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"ConsentEventRow({self.target_kind}:{self.target} {self.action} via {self.source})"
