"""The profile tables. Every one carries `subject_id`, the Citus distribution key (DESIGN §5).

A merged subject keeps its `subjects` row as a tombstone (`merged_into` names the survivor) so that
an identifier held elsewhere still leads to the right person; every other row moves to the survivor.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base, JSONType


class Subject(Base):
    __tablename__ = "subjects"

    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # No foreign key: under Citus a reference across shards cannot be enforced.
    merged_into: Mapped[uuid.UUID | None] = mapped_column(index=True)


class Identity(Base):
    """One external identifier of a subject. `digest` finds it; `value_enc` lets it be exported."""

    __tablename__ = "identities"

    digest: Mapped[str] = mapped_column(String(96), primary_key=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class Trait(Base):
    """A stored trait atom: `value` for ordinary atoms, `value_enc` for direct identifiers."""

    __tablename__ = "traits"

    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    atom: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    value_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (Index("ix_traits_expires_at", "expires_at"),)


class Computed(Base):
    """A computed atom. `state` holds what an incremental update and a merge need (per-category
    counts, an exact decimal sum); `value` is what readers see."""

    __tablename__ = "computed"

    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    atom: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    state: Mapped[Any] = mapped_column(JSONType, nullable=True)
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (Index("ix_computed_expires_at", "expires_at"),)


class PendingLink(Base):
    """A claim, made without proof, that an anonymous id belongs to a user id (DESIGN §4).

    It never merges anyone: the two subjects stay apart. It is kept so that a grant for that
    anonymous id then needs the same proof as a grant for the user. `subject_id` is the user's
    subject; the anonymous id is held only as its keyed digest (the identities' own digest).
    """

    __tablename__ = "pending_links"

    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    anonymous_digest: Mapped[str] = mapped_column(String(96), primary_key=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_pending_links_anonymous_digest", "anonymous_digest"),
        Index("ix_pending_links_expires_at", "expires_at"),
    )
