"""The shapes of the audit API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class AuditHead(BaseModel):
    """The newest entry of the audit log. Record it somewhere the database's writers cannot reach
    (a ticket, another system's log) and check later with `tactful audit verify --expect-head
    SEQUENCE:HASH`: a log cut back below it is then detected."""

    model_config = ConfigDict(frozen=True)

    sequence: int = Field(description="Sequence number of the newest entry; 0 for an empty log", ge=0)
    hash: str = Field(
        description="Its hash (64 hex digits); for an empty log, the genesis hash of 64 zeros",
        pattern="^[0-9a-f]{64}$",
    )
    at: datetime | None = Field(description="When the newest entry was written; null for an empty log")
