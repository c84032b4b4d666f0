"""The `audit_log` table. Rows are only ever inserted; `tactful.audit.service` is the one writer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base

# BIGINT on servers; SQLite only treats a column as the rowid alias when it is spelled INTEGER.
SequenceNumber = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntry(Base):
    """One link of the chain. No `subject_id` column on purpose: subjects appear only as keyed hashes."""

    __tablename__ = "audit_log"

    # Assigned by the service under the append lock (head + 1), never by the database, so that the
    # sequence has no gaps of its own and a gap always means a deleted entry.
    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def __repr__(self) -> str:
        return f"AuditEntry(seq={self.seq}, action={self.action!r})"
