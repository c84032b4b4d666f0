"""Shapes of the consent domain: what the ledger service takes and returns (frozen dataclasses), and
what the consent API reads and writes (pydantic, the fixed contract of DESIGN §4)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from tactful.consent.fold import ConsentAction
from tactful.consent.tcf import MAX_TC_STRING_CHARS
from tactful.policy.state import ConsentSource
from tactful.types import Level, Purpose

EXPLICIT_NAME = re.compile(
    r"^(user\.sensitive(\.[a-z0-9_]{1,19}){0,2}|significant_decisions|special_feature_1)$"
)
"""Explicit consent is recorded per special category (`user.sensitive.*`), for significant decisions,
and for TCF special feature 1 (precise location). Names stay short enough (at most 54 characters) to
key the audit log's details."""

MAX_ID = 256
MAX_TEXT = 200
MAX_PROOF_VALUE = MAX_TC_STRING_CHARS


class TargetKind(StrEnum):
    PURPOSE = "purpose"
    EXPLICIT = "explicit"
    PARENTAL = "parental"
    LEGITIMATE_INTEREST = "legitimate_interest"
    """Refusing it is an objection (Art. 21); granting it lifts the objection."""
    RESTRICTION = "restriction"
    """Refusing it restricts processing (Art. 18); granting it lifts the restriction. The fold has no
    place for it: the gate reads it as `SubjectFacts.restriction` (see `ledger.flags_at`)."""
    LIMIT_SENSITIVE = "limit_sensitive"
    """Refusing it limits the use of sensitive personal information (CPRA, Cal. Civ. Code 1798.121);
    granting it lifts the limit. Like a restriction it keeps data stored and is outside the fold: the
    gate reads it as `SubjectFacts.limit_sensitive` and then neither decides on nor learns from
    sensitive atoms."""


_NO_PROOF: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ConsentChange:
    """One choice to append to a subject's ledger; the service adds the subject, time and order."""

    kind: TargetKind
    action: ConsentAction
    source: ConsentSource
    target: str | None = None
    notice_version: str | None = None
    method: str | None = None
    proof: Mapping[str, str] = field(default_factory=lambda: _NO_PROOF)

    def __post_init__(self) -> None:
        named = self.kind in (TargetKind.PURPOSE, TargetKind.EXPLICIT)
        if named != (self.target is not None):
            raise ValueError(f"a {self.kind} change {'needs' if named else 'takes no'} target")
        if self.kind is TargetKind.PURPOSE:
            Purpose(str(self.target))  # raises ValueError for an unknown purpose
        if self.kind is TargetKind.EXPLICIT and not EXPLICIT_NAME.match(self.target or ""):
            raise ValueError(
                "explicit consent names a special category, significant_decisions or special_feature_1"
            )

    @classmethod
    def for_purpose(
        cls, purpose: Purpose, action: ConsentAction, source: ConsentSource, **kw: object
    ) -> ConsentChange:
        return cls(TargetKind.PURPOSE, action, source, target=purpose.value, **kw)  # type: ignore[arg-type]

    @classmethod
    def for_explicit(
        cls, name: str, action: ConsentAction, source: ConsentSource, **kw: object
    ) -> ConsentChange:
        return cls(TargetKind.EXPLICIT, action, source, target=name, **kw)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """How the audit log names the target: `analytics`, `explicit:user.sensitive.health`, ..."""
        if self.kind is TargetKind.PURPOSE:
            return str(self.target)
        if self.kind is TargetKind.EXPLICIT:
            return f"explicit:{self.target}"
        return str(self.kind)

    @property
    def grants(self) -> bool:
        """Whether the change widens what may be done (a grant, or lifting an objection/restriction)."""
        return self.action is ConsentAction.GRANTED


@dataclass(frozen=True)
class LedgerEntry:
    """One stored ledger row, as the service hands it out (history, exports, the API)."""

    id: uuid.UUID
    sequence: int
    at: datetime
    kind: TargetKind
    target: str | None
    action: ConsentAction
    source: ConsentSource
    notice_version: str | None
    method: str | None
    proof: Mapping[str, str]

    @property
    def label(self) -> str:
        return ConsentChange(self.kind, self.action, self.source, target=self.target).label


@dataclass(frozen=True)
class SubjectFlags:
    """Objection (Art. 21), restriction (Art. 18) and the CPRA limit on sensitive personal
    information in force at one moment."""

    objection: bool = False
    restriction: bool = False
    limit_sensitive: bool = False


# -- HTTP ------------------------------------------------------------------------------------------

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL, which PostgreSQL refuses in text, and lone surrogates, which no UTF-8 column can hold."""
STORABLE_PATTERN = r"^[^\u0000]*$"
"""The rule as a JSON Schema pattern, so that the OpenAPI schema says it. Lone surrogates need no
pattern: they are not Unicode, so no JSON Schema string holds one (and regex engines refuse them)."""


def _storable(value: str) -> str:
    if UNSTORABLE.search(value):
        raise PydanticCustomError("unstorable_text", "NUL characters and lone surrogates are not accepted")
    return value


@dataclass(frozen=True)
class Storable:
    """Refuse text a database cannot store (422, as collection does), on SQLite as on PostgreSQL."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_storable, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = STORABLE_PATTERN
        return json_schema


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID), Storable()]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT), Storable()]
ExplicitName = Annotated[str, StringConstraints(pattern=EXPLICIT_NAME.pattern, max_length=100)]
BodySource = Literal["api", "banner", "tcf", "gpc", "import", "segment_context", "rudderstack_context"]
"""Every source of the ledger (DESIGN §1). `tcf`, `gpc` and `import` carry rules of their own that a
body must keep (`consent.choices.check_source`, and a server key for `import`)."""


class ParentalConsent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: ShortText = Field(description="How the parent was verified: `credit_card`, `signed_form`, ...")
    reference: ShortText | None = Field(None, description="A reference to the verification, kept as proof")
    granted: StrictBool = Field(True, description="False withdraws the parental consent")


SUBJECT_RULE: dict[str, Any] = {
    "anyOf": [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in ("user_id", "anonymous_id")
    ]
}
"""A user_id, an anonymous_id or both (both link them), said in the JSON Schema as the validator says it."""


class SubjectRef(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=SUBJECT_RULE)

    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> SubjectRef:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("give a user_id or an anonymous_id")
        return self


class ConsentUpdate(SubjectRef):
    """`PUT /v1/consent`. Only the subject and `source` are required."""

    # Strict: a choice is a JSON boolean, never "yes", "no", 1 or 0 read as one.
    purposes: dict[Purpose, StrictBool] = Field(default_factory=dict, description="true grants, false denies")
    explicit: dict[ExplicitName, StrictBool] = Field(
        default_factory=dict,
        max_length=24,
        description="Explicit consent per special category (`user.sensitive.health`) or for "
        "`significant_decisions`",
        # Every name must match (pydantic writes the pattern as `patternProperties`, which leaves
        # other names free in the JSON Schema).
        json_schema_extra={
            "propertyNames": {"pattern": EXPLICIT_NAME.pattern, "maxLength": 100},
            "additionalProperties": False,
        },
    )
    parental_consent: ParentalConsent | None = None
    source: BodySource = Field(
        description="Where the choice was made: `banner`, `api`, ...; `tcf` only with a `tcf_string` and "
        'no other choice, `gpc` only as `purposes: {"sale_or_share": false}` and nothing else, `import` '
        "only with a server key"
    )
    notice_version: ShortText | None = Field(None, description="The version of the notice the person saw")
    tcf_string: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_TC_STRING_CHARS), Storable()] | None
    ) = Field(None, description="An IAB TCF v2.2 TC string; recorded as proof with the choices it encodes")
    subject_token: Annotated[str, StringConstraints(min_length=1, max_length=4096), Storable()] | None = (
        Field(
            None,
            description="A JWT from the site's backend proving the user id "
            "(needed to grant with a write key)",
        )
    )


class FlagsUpdate(SubjectRef):
    """`PUT /v1/admin/subjects/flags`: leave a flag out to keep it as it is."""

    objection: StrictBool | None = Field(
        None, description="Art. 21 objection to processing on legitimate interest"
    )
    restriction: StrictBool | None = Field(None, description="Art. 18 restriction: data kept but unused")
    limit_sensitive: StrictBool | None = Field(
        None, description="CPRA limit on the use of sensitive personal information: kept, never used"
    )
    notice_version: ShortText | None = None


class PurposeView(BaseModel):
    state: Literal["granted", "denied", "withdrawn", "not_set"]
    legal_basis: str | None = Field(description="The basis the gate found, when the purpose holds")
    allowed: bool
    reason: str = Field(description="Why, in words (made from `reason_code` and `reason_params`)")
    reason_code: str = Field(description="Why, as a stable code (`consent_granted`, `consent_missing`, ...)")
    reason_params: dict[str, str] = Field(default_factory=dict, description="The code's parameters")
    at: datetime | None = Field(description="When the deciding choice was received")
    source: str | None
    proof: dict[str, str] = Field(default_factory=dict, description="The deciding choice's proof")


class ExplicitView(BaseModel):
    state: Literal["granted", "denied", "withdrawn", "not_set"]
    at: datetime | None
    source: str | None


class HistoryItem(BaseModel):
    sequence: int
    at: datetime
    target: str = Field(
        description="A purpose, `explicit:<name>`, `parental`, `legitimate_interest`, `restriction` or "
        "`limit_sensitive`"
    )
    action: Literal["granted", "denied", "withdrawn"]
    source: str
    notice_version: str | None
    method: str | None
    proof: dict[str, str]

    @classmethod
    def of(cls, entry: LedgerEntry) -> HistoryItem:
        return cls(
            sequence=entry.sequence,
            at=entry.at,
            target=entry.label,
            action=entry.action.value,
            source=entry.source.value,
            notice_version=entry.notice_version,
            method=entry.method,
            proof=dict(entry.proof),
        )


class ConsentView(BaseModel):
    """The consent of one subject at one moment, as the policy gate reads it."""

    at: datetime
    regimes: list[str]
    minor: bool
    max_level: Level
    purposes: dict[Purpose, PurposeView]
    explicit: dict[str, ExplicitView]
    objection: bool
    restriction: bool
    limit_sensitive: bool = Field(
        description="The subject limited the use of sensitive personal information (CPRA)"
    )
    gpc: bool = Field(description="A Global Privacy Control signal had been applied by then")
    history: list[HistoryItem]


class FlagsView(BaseModel):
    objection: bool
    restriction: bool
    limit_sensitive: bool


class AcceptedChoice(BaseModel):
    target: str = Field(description="A purpose, `explicit:<name>`, or `parental`: what the choice was about")
    choice: Literal["granted", "refused"] = Field(
        description="What was recorded. A refusal is recorded the same way whatever came before it, so the "
        "answer tells nothing about the person's earlier choices"
    )


class RefusedChoice(BaseModel):
    target: str = Field(description="A purpose, `explicit:<name>`, `parental`, or `link`")
    code: Literal["subject_token_required", "subject_token_invalid", "link_unverified"] = Field(
        description="`subject_token_required`: a grant for an identified person (or for an anonymous id "
        "linked to one) needs a server key or a subject token for the user id; `subject_token_invalid`: "
        "the token given proves nothing (expired, bad signature, another user); `link_unverified`: the "
        "anonymous id and user id were not joined (kept as a pending link until proven)"
    )


class ConsentAck(BaseModel):
    """The answer to `PUT /v1/consent`: what was recorded and what was refused. The person's consent
    state comes only to a server or admin key (`state`), since a write key is public."""

    recorded: list[AcceptedChoice]
    refused: list[RefusedChoice]
    unconfirmed: list[AcceptedChoice] = Field(
        default_factory=list,
        description="Only in a write key's answer: grants for an anonymous id. They are recorded unless "
        "the id speaks for an identified person (a link to a user id), which needs that user's proof; a "
        "public key is not told which, since that would tell whether the visitor is linked to someone. "
        "A server key's answer lists them under `recorded` or `refused`",
    )
    gpc: bool = Field(description="The request carried a Global Privacy Control signal (`Sec-GPC: 1`)")
    state: ConsentView | None = Field(
        None, description="The subject's consent after the request: only for a server or admin key"
    )
