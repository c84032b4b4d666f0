"""The shapes of the rights domain: an operator's look-up of a subject (`GET /v1/admin/subjects...`),
and privacy requests (engine types, then what `/v1/privacy/requests` reads and writes)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from tactful.consent.schemas import Identifier, Storable
from tactful.keys.tokens import MAX_TOKEN_CHARS
from tactful.rights.due import LegalRegime, RepeatFlag, RequestType
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


# -- privacy requests: engine types ----------------------------------------------------------------


class RequestStatus(StrEnum):
    """received ─▶ verified ─▶ running ─▶ completed | rejected | failed. A request that needs no proof
    (an opt-out, a limit, an objection, a restriction) filed without any stays `received` until it
    runs, which is at once."""

    RECEIVED = "received"
    VERIFIED = "verified"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def open(self) -> bool:
        return self in _OPEN


_OPEN = frozenset({RequestStatus.RECEIVED, RequestStatus.VERIFIED, RequestStatus.RUNNING})
OPEN_STATUSES: tuple[RequestStatus, ...] = tuple(sorted(_OPEN))


class VerifiedBy(StrEnum):
    OPERATOR = "operator"
    """An admin key (or the command line) filed it: the operator verified the person."""
    TOKEN = "token"  # noqa: S105 - a way of verifying, not a secret
    """A subject token for the user id came with it: the site's backend vouches for the person."""


class NamedBy(StrEnum):
    """Which identifier a request named (held as a keyed hash, never the identifier)."""

    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"
    EMAIL = "email"


class RejectionReason(StrEnum):
    """Why an operator rejected a request: never decided by Tactful itself."""

    NOT_VERIFIED = "identity_not_verified"
    UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"
    EXEMPT = "legal_exemption"
    OTHER = "other"


@dataclass(frozen=True)
class RequestRecord:
    """One privacy request as the service hands it out."""

    id: uuid.UUID
    public_id: str
    type: RequestType
    status: RequestStatus
    regimes: tuple[LegalRegime, ...]
    subject_id: uuid.UUID | None
    named_by: NamedBy
    verified_by: VerifiedBy | None
    actor_key_id: uuid.UUID | None
    received_at: datetime
    due_at: datetime
    confirm_by: datetime | None
    extended_due_at: datetime | None
    extension_reason: str | None
    flags: tuple[RepeatFlag, ...]
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    receipt: Mapping[str, Any] | None = None
    failure_code: str | None = None
    attempts: int = 0
    closed_at: datetime | None = None

    @property
    def effective_due_at(self) -> datetime:
        return self.extended_due_at or self.due_at

    def overdue(self, at: datetime) -> bool:
        return self.status.open and self.effective_due_at < at


# -- privacy requests: HTTP ------------------------------------------------------------------------

MAX_CHANGES = 50
MAX_CHANGE_TEXT = 1000
TRAIT_NAME = r"^[A-Za-z0-9_.$-]{1,200}$"
TraitName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TRAIT_NAME)]
ChangeText = Annotated[str, StringConstraints(max_length=MAX_CHANGE_TEXT), Storable()]
ChangeValue = ChangeText | StrictInt | StrictFloat | StrictBool | None
Email = Annotated[str, StringConstraints(min_length=3, max_length=320), Storable()]
Token = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOKEN_CHARS), Storable()]


class PrivacyRequestCreate(BaseModel):
    """`POST /v1/privacy/requests`: the type, exactly one identifier, how the person was verified."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("user_id", "anonymous_id", "email")
            ],
        },
    )

    type: RequestType
    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    email: Email | None = Field(None, description="Found through the blind index (an admin key only)")
    verified_by: VerifiedBy | None = Field(
        None,
        description="`operator`: an admin key files for a person it verified; `token`: a subject token "
        "for `user_id` comes with the request. Access, portability, erasure and rectification always "
        "need one; an opt-out, a limit, an objection or a restriction needs none",
    )
    token: Token | None = Field(
        None,
        description="The subject token, with `verified_by: token` (or the X-Tactful-Subject-Token header)",
    )
    changes: dict[TraitName, ChangeValue] | None = Field(
        None,
        max_length=MAX_CHANGES,
        description="Rectification only: trait names as the catalog declares them (`first_name`), each "
        "with its corrected value (null removes it)",
        # Every name must match (pydantic writes the pattern as `patternProperties`, which leaves
        # other names free in the JSON Schema).
        json_schema_extra={
            "propertyNames": {"pattern": TRAIT_NAME, "maxLength": 200},
            "additionalProperties": False,
        },
    )

    @model_validator(mode="after")
    def _one_identifier(self) -> PrivacyRequestCreate:
        given = [v for v in (self.user_id, self.anonymous_id, self.email) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of user_id, anonymous_id and email")
        return self

    @property
    def named(self) -> tuple[NamedBy, str]:
        for kind, value in (
            (NamedBy.USER_ID, self.user_id),
            (NamedBy.ANONYMOUS_ID, self.anonymous_id),
            (NamedBy.EMAIL, self.email),
        ):
            if value is not None:
                return kind, value
        raise AssertionError("the validator requires one identifier")


class RecipientTaskView(BaseModel):
    """One recipient to be told of an erasure, rectification or restriction (Art. 19), and whether
    it was: the person may ask who they are."""

    recipient: str = Field(description="The recipient's key in the catalog")
    name: str
    role: str = Field(description="processor, controller, third party, ... as the catalog says")
    country: str | None
    status: str = Field(description="pending (the operator's to do), sent, failed or not_required")
    updated_at: datetime


class PrivacyRequestView(BaseModel):
    """A privacy request as the person (through a subject token) or the operator reads it."""

    id: str = Field(description="The request's public id")
    type: RequestType
    status: RequestStatus
    due_at: datetime = Field(description="The legal due date in force (the extended one once extended)")
    receipt: dict[str, Any] | None = Field(
        description="What was done, per step, once closed; a rejection's reasons and how to complain. "
        "Not shown to a caller who filed without proof"
    )
    download_url: str | None = Field(
        None,
        description="Once an access or portability request completed: where its package is downloaded "
        "(`GET`, with the admin key or the person's subject token), until it expires or its downloads "
        "are used up; None before, after, and for other types",
    )
    received_at: datetime
    closed_at: datetime | None
    recipients: list[RecipientTaskView] = Field(
        default_factory=list,
        description="Erasure, rectification, restriction: each recipient of the data to be told (Art. 19)",
    )

    @classmethod
    def of(
        cls,
        record: RequestRecord,
        *,
        with_receipt: bool = True,
        recipients: Sequence[RecipientTaskView] = (),
        download_url: str | None = None,
    ) -> PrivacyRequestView:
        return cls(
            id=record.public_id,
            download_url=download_url,
            type=record.type,
            status=record.status,
            due_at=record.effective_due_at,
            receipt=dict(record.receipt) if with_receipt and record.receipt is not None else None,
            received_at=record.received_at,
            closed_at=record.closed_at,
            recipients=list(recipients),
        )


class FlagView(BaseModel):
    code: str
    count: int


class PrivacyRequestAdminView(PrivacyRequestView):
    """A privacy request as the operator's listing shows it."""

    regimes: list[LegalRegime]
    subject_id: uuid.UUID | None = Field(description="None when nothing was held, and once erased")
    named_by: NamedBy
    verified_by: VerifiedBy | None
    first_due_at: datetime
    confirm_by: datetime | None = Field(description="CCPA: receipt confirmed by then")
    extended: bool
    extension_reason: str | None
    overdue: bool
    flags: list[FlagView] = Field(description="Repeated or excessive requests, for the operator to weigh")
    failure_code: str | None

    @classmethod
    def admin(
        cls, record: RequestRecord, *, at: datetime, download_url: str | None = None
    ) -> PrivacyRequestAdminView:
        base = PrivacyRequestView.of(record, download_url=download_url).model_dump()
        return cls(
            **base,
            regimes=list(record.regimes),
            subject_id=record.subject_id,
            named_by=record.named_by,
            verified_by=record.verified_by,
            first_due_at=record.due_at,
            confirm_by=record.confirm_by,
            extended=record.extended_due_at is not None,
            extension_reason=record.extension_reason,
            overdue=record.overdue(at),
            flags=[FlagView(code=f.code.value, count=f.count) for f in record.flags],
            failure_code=record.failure_code,
        )


class PrivacyRequestPage(BaseModel):
    items: list[PrivacyRequestAdminView] = Field(description="Overdue first, then by due date")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None at the end")


class ExtensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reasons: Annotated[str, StringConstraints(min_length=1, max_length=1000), Storable()] = Field(
        description="The reasons given to the person (GDPR Art. 12(3)); sent now, within the first period"
    )


class RecipientMark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["sent", "failed", "not_required"] = Field(
        description="`sent`: the recipient was told; `failed`: telling failed; `not_required`: telling is "
        "impossible or would take disproportionate effort (GDPR Art. 19)"
    )
    detail: Annotated[str, StringConstraints(min_length=1, max_length=200), Storable()] | None = Field(
        None, description="The operator's reference (a ticket, a date): never data about the person"
    )


class RejectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: RejectionReason
