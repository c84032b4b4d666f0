"""The decision model's vocabulary and the shapes of its management API (pydantic v2).

Request shapes say what a schema can (keys, sizes, enumerations, ranges); what needs the rest of the
definition or the database (nulls inside content, an e-mail's subject line, variations per strategy,
an audience that exists) is checked by `checks` and the service, with a field path and a sentence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StrictStr,
)

from tactful.consent.schemas import Identifier

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MAX_VARIATIONS = 20
MAX_TEMPLATES = 10
MAX_PRIORITY = 1_000_000
DEFAULT_HOLDOUT = 0.05
"""The holdout of an experience with several variations, unless it states its own (a single-variation
experience holds out nobody unless it says so)."""


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL = "email"


class Status(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"


class Strategy(StrEnum):
    """How an experience chooses among its variations: `rule` shows its one variation, `split` draws
    by weight, `bandit` learns (both need two variations or more)."""

    RULE = "rule"
    SPLIT = "split"
    BANDIT = "bandit"


class Kind(StrEnum):
    PLACEMENT = "placement"
    AUDIENCE = "audience"
    EXPERIENCE = "experience"


class Change(StrEnum):
    """What made a version."""

    CREATED = "created"
    UPDATED = "updated"
    PUBLISHED = "published"
    PAUSED = "paused"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Actor:
    """Who changes the model: an admin key (its id goes into each version), or the command line."""

    key_id: uuid.UUID | None
    name: str

    @classmethod
    def of_key(cls, key_id: uuid.UUID) -> Actor:
        return cls(key_id=key_id, name=f"api:key:{key_id}")


def _integral(value: object) -> object:
    # JSON has one number type: 3.0 is the integer 3 (as JSON Schema's "integer" says), "3" is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Key = Annotated[
    str,
    Field(
        pattern=KEY_PATTERN,
        min_length=1,
        max_length=64,
        description="A lower-case letter, then up to 63 lower-case letters, digits or `_`",
        examples=["home_hero"],
    ),
]
Description = Annotated[StrictStr, Field(max_length=500)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=100)]
Content = (
    dict[str, JsonValue]
    | list[JsonValue]
    | StrictStr
    | StrictInt
    | Annotated[float, Field(allow_inf_nan=False)]
    | StrictBool
)
"""Typed JSON: objects, arrays, text, numbers and booleans; never null, at any depth."""
Templates = Annotated[
    dict[
        Annotated[str, Field(pattern=KEY_PATTERN, max_length=64)],
        Annotated[StrictStr, Field(max_length=8192)],
    ],
    Field(
        max_length=MAX_TEMPLATES,
        description="Template sources by name, checked by the template language when published",
        # Names other than keys are refused: say so, as `patternProperties` alone would allow them.
        json_schema_extra={"additionalProperties": False},
    ),
]
Condition = Annotated[
    dict[str, JsonValue],
    Field(description="A condition of the condition language, stored as given (at most 8 KiB of JSON)"),
]
# Integers, also when written `3.0`; never text or a boolean.
Priority = Annotated[StrictInt, Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY), BeforeValidator(_integral)]
VersionNumber = Annotated[StrictInt, Field(ge=1, le=2**31 - 1), BeforeValidator(_integral)]
Holdout = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Weight = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)]
Time = Annotated[AwareDatetime, Field(description="An ISO 8601 time with its UTC offset; stored in UTC")]


# -- placements ------------------------------------------------------------------------------------


class DefaultVariation(BaseModel):
    """What a placement shows when no experience above it applies: consent never turns into an error."""

    model_config = ConfigDict(extra="forbid")

    content: Content = Field(
        description='Non-empty JSON without nulls; an e-mail\'s is {"subject": ..., "body": [blocks]}',
        examples=[{"headline": "Welcome to the shop"}],
    )
    templates: Templates = Field(default_factory=dict)


class PlacementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    channel: Channel
    description: Description = ""
    default: DefaultVariation


class PlacementUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = Field(None, description="May be given, but must be the placement's channel")
    description: Description | None = None
    default: DefaultVariation | None = None


class PlacementView(BaseModel):
    key: str
    channel: Channel
    description: str
    default: DefaultVariation
    version: int
    created_at: datetime
    updated_at: datetime


# -- audiences --------------------------------------------------------------------------------------


class AudienceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    name: Name
    condition: Condition


class AudienceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    condition: Condition | None = None


class AudienceView(BaseModel):
    key: str
    name: str
    condition: dict[str, Any]
    estimated_size: int = Field(
        description="Distinct people its condition matched in the last 30 days, for a 1:many audience (an "
        "estimate from sketches, no row per person): those decisions matched, in shadow or serving, and, "
        "for an audience that reads only stored atoms, the stored profiles that match it (estimated when "
        "it is created or changed, and daily); only people whose consent permits every atom it reads. "
        "0 for other levels, which are not counted"
    )
    serving: bool = Field(
        description="Whether it may serve: a 1:many audience serves once it has matched k people "
        "(`TACTFUL_DECIDE__AUDIENCE_K`, default 50), and goes back to shadow when a daily recount finds "
        "fewer; until then it is evaluated in shadow only. Other levels always serve"
    )
    version: int
    created_at: datetime
    updated_at: datetime


# -- experiences ------------------------------------------------------------------------------------


class VariationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    content: Content = Field(description="Non-empty JSON without nulls", examples=[{"headline": "Run more"}])
    templates: Templates = Field(default_factory=dict)
    weight: Weight = Field(1.0, description="Relative share in a split (positive)")


class ExperienceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Key
    placement: Key = Field(description="The placement's key; fixed once the experience exists")
    description: Description = ""
    priority: Priority = Field(
        0, description="Lower first, within a level (an integer); level beats priority"
    )
    starts_at: Time | None = None
    ends_at: Time | None = None
    holdout: Holdout | None = Field(
        None,
        description=f"Share held out to measure lift, from 0 to below 1; default {DEFAULT_HOLDOUT} with "
        "several variations, 0 with one",
    )
    strategy: Strategy = Strategy.RULE
    significant_effect: StrictBool = Field(
        False, description="A price, an eligibility (GDPR Art. 22): needs human review to publish"
    )
    namespace: Key | None = Field(None, description="Experiences sharing one are mutually exclusive")
    audience: Key | None = Field(None, description="An audience's key; none for everyone")
    variations: list[VariationSpec] = Field(min_length=1, max_length=MAX_VARIATIONS)


class ExperienceUpdate(BaseModel):
    """Members given replace the stored ones (`variations` as a whole); a null clears the optional
    ones. Changing variations or weights, or `rerandomize`, draws a new assignment seed."""

    model_config = ConfigDict(extra="forbid")

    placement: Key | None = Field(None, description="May be given, but must be the experience's placement")
    description: Description | None = None
    priority: Priority | None = None
    starts_at: Time | None = None
    ends_at: Time | None = None
    holdout: Holdout | None = None
    strategy: Strategy | None = None
    significant_effect: StrictBool | None = None
    namespace: Key | None = None
    audience: Key | None = None
    variations: list[VariationSpec] | None = Field(None, min_length=1, max_length=MAX_VARIATIONS)
    rerandomize: StrictBool = Field(False, description="Draw a new assignment seed: subjects are reassigned")


class ExperienceView(BaseModel):
    key: str
    placement: str
    description: str
    priority: int
    status: Status
    starts_at: datetime | None
    ends_at: datetime | None
    holdout: float
    strategy: Strategy
    significant_effect: bool
    namespace: str | None
    audience: str | None
    variations: list[VariationSpec]
    seed: str = Field(description="The assignment seed")
    version: int = Field(description="The latest version, published or not")
    published_version: int | None = Field(description="The version that serves; none before publishing")
    created_at: datetime
    updated_at: datetime


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: VersionNumber = Field(description="The earlier version to publish again")


# -- versions -----------------------------------------------------------------------------------------


class VersionView(BaseModel):
    kind: Kind
    key: str
    version: int
    change: Change
    published: bool = Field(description="Whether this version served (placements and audiences: always)")
    snapshot: dict[str, Any] = Field(description="The definition as it was at this version")
    actor_key_id: uuid.UUID | None = Field(description="The admin key that made it; none from the CLI")
    at: datetime


# -- decisions ----------------------------------------------------------------------------------------

MAX_PLACEMENTS = 50


class DecideRequest(BaseModel):
    """`POST /v1/decide`: for whom, which placements, in which context."""

    model_config = ConfigDict(extra="forbid")

    user_id: Identifier | None = Field(None, description="The user id (hashed first for a split)")
    anonymous_id: Identifier | None = Field(
        None, description="The anonymous id; with a pending link, only what was collected under it is read"
    )
    placements: list[Key] = Field(
        min_length=1, max_length=MAX_PLACEMENTS, description="Placement keys, answered in this order"
    )
    context: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Segment's context object (locale, device, location, page, ...): read for this "
        "decision, never stored; the caller's IP address is never looked up",
    )


class DecisionView(BaseModel):
    """The answer for one placement."""

    placement: str
    decision_id: str = Field(description="Random and unguessable: what 'why am I seeing this?' asks with")
    experience: str | None = Field(description="The experience that answered; none for the default")
    experience_version: int | None = Field(description="Its published version that served")
    variation: str
    content: JsonValue = Field(description="Rendered: no template syntax, no placeholders, no nulls")
    level: str = Field(description="The pyramid level reached: 1:all, 1:many, 1:some, 1:few or 1:1")
    strategy: str = Field(description="rule, split, bandit, holdout, default or forced")
    propensity: float = Field(description="The probability that this answer was served in this context")
    explanation: dict[str, JsonValue] = Field(
        description="Atoms and categories read, purposes and legal bases, why not higher (reason codes)"
    )


class DecideResponse(BaseModel):
    decisions: list[DecisionView]


class ExplanationView(BaseModel):
    """`GET /v1/decisions/{id}/explanation`: the person-facing answer to "why am I seeing this?"."""

    decision_id: str
    placement: str
    language: str = Field(description="The language of the sentences (en or sv)")
    level: str
    decided_at: datetime
    experience_version: int | None
    summary: list[str] = Field(description="What the person sees and how it was chosen")
    data_used: list[str] = Field(description="The kinds of data used and how much each weighed; never values")
    why_not_higher: list[str]
    what_would_change: list[str] = Field(description="Consent choices that would have changed the result")
    exploration: bool = Field(description="Chosen at random (a test or exploration), not for the person")
    holdout: bool = Field(description="The person is in a comparison group that sees the default")
    significant: bool = Field(
        False,
        description="The decision has a significant effect (a price, an eligibility): the person may ask "
        "for human review and contest it (`POST /v1/decisions/{id}/review`)",
    )
    your_rights: list[str] = Field(
        default_factory=list, description="For a significant decision: the right to review and to contest"
    )


class PreviewRequest(BaseModel):
    """`POST /v1/admin/placements/{key}/preview`: a made-up subject, never a real one."""

    model_config = ConfigDict(extra="forbid")

    ceiling: Literal["1:all", "1:many", "1:some", "1:few", "1:1"] = Field(
        "1:1", description="Consent is taken as granted for every pyramid purpose up to this level"
    )
    atoms: dict[str, JsonValue] = Field(
        default_factory=dict,
        max_length=200,
        description="Made-up stored atoms by catalog name (`traits.first_name`, `computed.ltv`, ...)",
    )
    context: dict[str, JsonValue] = Field(default_factory=dict, description="A made-up Segment context")
    unit: Identifier = Field(
        "preview", description="Hashed for splits as a user id is: vary it to see variations"
    )
    significant_decisions: bool = Field(
        False,
        description="The made-up subject also gave the explicit consent `significant_decisions` (GDPR "
        "Art. 22(2)(c)) and is an adult: the gate reads an age past every protection of age unless "
        "`atoms` give one (a minor's preview shows why the experience does not serve). Without it, an "
        "experience with a significant effect never shows in a preview, as it never serves without that "
        "consent",
    )


class PreviewView(BaseModel):
    """What the placement would show that subject, and why; not a decision (nothing is logged)."""

    placement: str
    experience: str | None
    variation: str
    content: JsonValue
    level: str
    strategy: str
    propensity: float
    explanation: dict[str, JsonValue]
    significant: bool = Field(
        description="The answer has a significant effect: the person could ask for human review of it"
    )
    sentences: dict[str, list[str]] = Field(
        description="What the person would read at `GET /v1/decisions/{id}/explanation`, in the made-up "
        "context's locale where a translation exists (English otherwise): summary, data used, why not "
        "higher, what would change, their rights"
    )
