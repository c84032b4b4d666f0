"""The shapes of an operator's look-up of a subject (`GET /v1/admin/subjects...`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from tactful.rights.lookup import LinkStatus, SubjectRecord


class HeldIdentityView(BaseModel):
    kind: str = Field(description="`user_id`, `anonymous_id` or `email`")
    value: str | None = Field(description="The identifier, decrypted for the operator (None if unreadable)")
    status: LinkStatus = Field(
        description="`linked`: held by this subject; `pending`: claimed without proof, never merged (a "
        "pending link names the subject on its other side)"
    )
    since: datetime | None
    expires_at: datetime | None = Field(None, description="When a pending link is forgotten")
    other_subject_id: uuid.UUID | None = Field(None, description="The subject on a pending link's other side")


class HeldAtomView(BaseModel):
    atom: str
    value: Any
    category: str | None = Field(
        description="The catalog's data category (None for an atom it no longer declares)"
    )
    inferred: bool = Field(description="Computed or inferred by Tactful rather than given by the person")


class PurposeSummaryView(BaseModel):
    state: str
    allowed: bool
    legal_basis: str | None
    reason_code: str
    reason: str


class ConsentSummaryView(BaseModel):
    regimes: list[str]
    max_level: str
    minor: bool
    purposes: dict[str, PurposeSummaryView]
    objection: bool = Field(description="An objection (Art. 21) is in force")
    restriction: bool = Field(description="Processing is restricted (Art. 18)")
    limit_sensitive: bool = Field(description="The use of sensitive personal information is limited (CPRA)")
    gpc: bool = Field(description="A Global Privacy Control signal has been applied")


class EventView(BaseModel):
    id: uuid.UUID
    message_id: str
    type: str
    event: str | None
    group_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    received_at: datetime
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    consent: dict[str, Any] | None
    gpc: bool | None
    purposes: list[str] | None
    write_key_id: uuid.UUID | None
    request_id: str | None


class EventPage(BaseModel):
    items: list[EventView] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as `events_cursor` for the next (older) page; None at the end"
    )


class QuarantinedView(BaseModel):
    id: uuid.UUID
    reason: str
    detail: str
    message_id: str | None
    type: str | None
    raw: str | None = Field(
        description="The minimised message, opened for the operator (None once unreadable)"
    )
    truncated: bool
    received_at: datetime
    expires_at: datetime
    write_key_id: uuid.UUID | None
    request_id: str | None


class QuarantinePage(BaseModel):
    items: list[QuarantinedView] = Field(description="Newest first")
    more: bool = Field(description="Older quarantined messages exist beyond these")


class SubjectLookup(BaseModel):
    """What Tactful holds about one subject, as its operator sees it."""

    subject_id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    merged_from: list[uuid.UUID] = Field(description="Profiles merged into this one")
    identities: list[HeldIdentityView]
    traits: list[HeldAtomView]
    consent: ConsentSummaryView
    events: EventPage
    quarantine: QuarantinePage

    @classmethod
    def of(cls, record: SubjectRecord, *, next_cursor: str | None) -> SubjectLookup:
        return cls(
            subject_id=record.subject_id,
            created_at=record.created_at,
            last_seen_at=record.last_seen_at,
            merged_from=list(record.merged),
            identities=[
                HeldIdentityView(
                    kind=i.kind,
                    value=i.value,
                    status=i.status,
                    since=i.since,
                    expires_at=i.expires_at,
                    other_subject_id=i.other_subject,
                )
                for i in record.identities
            ],
            traits=[
                HeldAtomView(atom=a.atom, value=a.value, category=a.category, inferred=a.inferred)
                for a in record.traits
            ],
            consent=ConsentSummaryView(
                regimes=list(record.consent.regimes),
                max_level=record.consent.max_level,
                minor=record.consent.minor,
                purposes={
                    name: PurposeSummaryView(
                        state=p.state,
                        allowed=p.allowed,
                        legal_basis=p.legal_basis,
                        reason_code=p.reason_code,
                        reason=p.reason,
                    )
                    for name, p in record.consent.purposes.items()
                },
                objection=record.consent.objection,
                restriction=record.consent.restriction,
                limit_sensitive=record.consent.limit_sensitive,
                gpc=record.consent.gpc,
            ),
            events=EventPage(
                items=[EventView.model_validate(e) for e in record.events], next_cursor=next_cursor
            ),
            quarantine=QuarantinePage(
                items=[QuarantinedView.model_validate(q) for q in record.quarantine],
                more=record.quarantine_more,
            ),
        )
