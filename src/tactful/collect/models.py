"""Collection's tables: the append-only event store, the dedup ledger, the quarantine and the counters.

Every table holding per-subject data carries `subject_id` (the Citus distribution key, DESIGN §5). The
counters are aggregates without subjects; they are sharded so that concurrent requests on PostgreSQL
do not queue on one hot row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tactful.db import Base, JSONType


class Event(Base):
    """One stored Segment message, as filtered by the catalog. Append-only."""

    __tablename__ = "events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID]
    message_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(255))
    group_id: Mapped[str | None] = mapped_column(String(255))
    timestamp: Mapped[datetime]
    original_timestamp: Mapped[datetime | None]
    received_at: Mapped[datetime]
    properties: Mapped[dict[str, Any]]
    traits: Mapped[dict[str, Any]]
    context: Mapped[dict[str, Any]]
    consent: Mapped[dict[str, Any] | None]
    gpc: Mapped[bool | None]
    purposes: Mapped[list[str] | None] = mapped_column(JSONType)
    """The purposes the event may serve, decided at receipt (sorted names); None when consent was
    not applied (a catalog without the policy gate, in tests of collection alone)."""
    write_key_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_events_subject_id_timestamp", "subject_id", "timestamp"),
        Index("ix_events_timestamp", "timestamp"),
    )


class MessageId(Base):
    """A seen `messageId`, keyed-hashed and scoped by write key; outlives event retention.

    After erasure the row stays without subject or fingerprint, so that a replay of the erased
    subject's message is recognised (and suppressed) instead of recreating the subject.
    """

    __tablename__ = "message_ids"

    digest: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str | None] = mapped_column(String(100))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)


class Quarantine(Base):
    """An event that was received but not stored, with why, and the raw payload as escaped text.

    A rejected payload can hold anything (an identify's e-mail address, say). It is minimised and
    kept only in `raw_enc`: under the subject's data key when the event names a subject, so that
    erasure shreds it, otherwise under the quarantine key of its day. The identifiers it names are
    kept only as keyed digests (`*_ref`), so that a subject's export and erasure find the row. The
    row goes at `expires_at`. `raw` (payloads in clear) is only read from rows written before.
    """

    __tablename__ = "quarantine"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(String(500))
    message_id: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(16))
    raw: Mapped[str | None] = mapped_column(Text)
    raw_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    user_ref: Mapped[str | None] = mapped_column(String(96), index=True)
    anonymous_ref: Mapped[str | None] = mapped_column(String(96), index=True)
    email_ref: Mapped[str | None] = mapped_column(String(96), index=True)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    write_key_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(64))


class IngestCounter(Base):
    """Running totals: received, stored, deduplicated, quarantined[:reason], suppressed[:reason]."""

    __tablename__ = "ingest_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class DroppedField(Base):
    """How often each undeclared field was dropped before storage (data minimisation, counted)."""

    __tablename__ = "dropped_fields"

    field: Mapped[str] = mapped_column(String(255), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
