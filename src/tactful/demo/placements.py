"""The demo shop's placements and experiences: every level of the pyramid, so that a decision shows it.

    home_hero  1:all   the default banner
               1:many  hero_sweden_mobile  audience sweden_mobile: country SE on a mobile device
               1:some  hero_outdoor        audience browsing_outdoor: this request's page is under /c/outdoor,
                                           or three outdoor products viewed in this session
    greeting   1:all   "Hello!"
               1:1     greeting_by_name    a template: the first name, or "there"
    picks      1:all   the default: bestsellers
               1:all   picks_layout        a two-way split (grid or carousel), 5% held out
               1:few   picks_favorite      audience has_favorite; a template with the favourite category

Made as an administrator would through `/v1/admin/`: the decide services create each placement,
audience and experience (each change a version and an audit entry), and publishing runs the same
check, the condition language and the template lint against the catalog, so a definition here that
the catalog does not allow fails the seed instead of serving. Holdouts are stated, not defaulted.

Seeded once: the audit entry `demo.placements_seeded` is written in the same transaction as the
definitions, and a key that exists already (made by hand) is left as it is. A database seeded
before the demo had placements gains them on the next `tactful demo`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit.models import AuditEntry
from tactful.catalog.model import Catalog
from tactful.crypto import Keystore
from tactful.decide import experiences as experiences_service
from tactful.decide import service as decide_service
from tactful.decide.models import Audience, Experience, Placement
from tactful.decide.schemas import (
    Actor,
    AudienceCreate,
    Channel,
    DefaultVariation,
    ExperienceCreate,
    Kind,
    PlacementCreate,
    Strategy,
    VariationSpec,
)
from tactful.types import Level

MARKER = "demo.placements_seeded"
VISITOR = "u007000032"
"""A demo customer who granted every personalization purpose and told the shop their first name."""
CONTEXT: dict[str, object] = {"locale": "de-DE", "device": {"type": "mobile"}, "page": {"path": "/c/outdoor"}}
"""The request the README's decision describes: a phone, on the outdoor category's page."""
ACTOR = Actor(key_id=None, name="demo")

PLACEMENTS: tuple[PlacementCreate, ...] = (
    PlacementCreate(
        key="home_hero",
        channel=Channel.WEB,
        description="The banner at the top of the home page",
        default=DefaultVariation(content={"headline": "Welcome to the shop", "link": "/new"}),
    ),
    PlacementCreate(
        key="greeting",
        channel=Channel.WEB,
        description="The line above the navigation",
        default=DefaultVariation(content={"text": "Hello!"}),
    ),
    PlacementCreate(
        key="picks",
        channel=Channel.WEB,
        description="The product row under the banner: which category, in which layout",
        default=DefaultVariation(
            content={"title": "Bestsellers this week", "category": "bestsellers", "layout": "grid"}
        ),
    ),
)

OUTDOOR_THREE_TIMES = {"value": "outdoor", "count": {"$gte": 3}}
"""Three or more outdoor products viewed in this session (one of the counts per category)."""

AUDIENCES: tuple[AudienceCreate, ...] = (
    AudienceCreate(
        key="sweden_mobile",
        name="Visitors from Sweden on a mobile device",
        condition={"context.location.country": "SE", "context.device.type": "mobile"},
    ),
    AudienceCreate(
        key="browsing_outdoor",
        name="Browsing outdoor gear in this session",
        condition={
            "$or": [
                {"context.page.path": {"$regex": "^/c/outdoor"}},
                {"session.product_views_by_category": {"$elemMatch": OUTDOOR_THREE_TIMES}},
            ]
        },
    ),
    AudienceCreate(
        key="has_favorite",
        name="People with a favourite category",
        condition={"computed.favorite_category": {"$exists": True}},
    ),
)

GREETING = "Hello {{ traits.first_name | default('there') }}!"
FAVORITE = "{{ computed.favorite_category | default('bestsellers') }}"

EXPERIENCES: tuple[ExperienceCreate, ...] = (
    ExperienceCreate(
        key="hero_sweden_mobile",
        placement="home_hero",
        description="Free delivery to Sweden, shown to Swedish visitors on their phones",
        audience="sweden_mobile",
        holdout=0.0,
        variations=[
            VariationSpec(key="fri_frakt", content={"headline": "Fri frakt till Sverige", "link": "/se"})
        ],
    ),
    ExperienceCreate(
        key="hero_outdoor",
        placement="home_hero",
        description="Trail gear for people browsing the outdoor category",
        audience="browsing_outdoor",
        holdout=0.0,
        variations=[
            VariationSpec(key="trail", content={"headline": "Ready for the trail?", "link": "/c/outdoor"})
        ],
    ),
    ExperienceCreate(
        key="greeting_by_name",
        placement="greeting",
        description="Greets a signed-in customer by first name",
        holdout=0.0,
        variations=[
            VariationSpec(key="by_name", content={"text": "Hello there!"}, templates={"text": GREETING})
        ],
    ),
    ExperienceCreate(
        key="picks_layout",
        placement="picks",
        description="Which layout sells more: a grid or a carousel (everyone, 5% held out)",
        strategy=Strategy.SPLIT,
        holdout=0.05,
        variations=[
            VariationSpec(
                key="grid",
                content={"title": "Bestsellers this week", "category": "bestsellers", "layout": "grid"},
            ),
            VariationSpec(
                key="carousel",
                content={"title": "Bestsellers this week", "category": "bestsellers", "layout": "carousel"},
            ),
        ],
    ),
    ExperienceCreate(
        key="picks_favorite",
        placement="picks",
        description="The row from the category a customer keeps coming back to",
        audience="has_favorite",
        holdout=0.0,
        variations=[
            VariationSpec(
                key="favorite",
                content={"title": "Picked for you", "category": "bestsellers", "layout": "grid"},
                templates={"category": FAVORITE},
            )
        ],
    ),
)


class PlacementsContext(Protocol):
    """What seeding the placements needs of the process context (`AppContext` fits)."""

    @property
    def keystore(self) -> Keystore: ...

    def session(self) -> AbstractContextManager[Session]: ...


@dataclass(frozen=True)
class Published:
    """One demo experience as it serves: its placement and the level publishing computed."""

    placement: str
    experience: str
    level: Level
    strategy: str


def placements_seeded(session: Session) -> bool:
    statement = select(AuditEntry.seq).where(AuditEntry.action == MARKER).limit(1)
    return session.execute(statement).first() is not None


def _exists(session: Session, model: type[Placement] | type[Audience] | type[Experience], key: str) -> bool:
    return session.scalars(select(model.id).where(model.key == key)).first() is not None


def seed_placements(context: PlacementsContext, *, catalog: Catalog, now: datetime) -> int:
    """Create and publish the demo's placements, audiences and experiences unless seeded already;
    how many definitions were made (0 the second time)."""
    made = 0
    with context.session() as session:
        if placements_seeded(session):
            return 0
        keystore = context.keystore
        for placement in PLACEMENTS:
            if not _exists(session, Placement, placement.key):
                decide_service.create_placement(
                    session, keystore=keystore, spec=placement, actor=ACTOR, at=now
                )
                made += 1
        for audience in AUDIENCES:
            if not _exists(session, Audience, audience.key):
                decide_service.create_audience(session, keystore=keystore, spec=audience, actor=ACTOR, at=now)
                made += 1
        for experience in EXPERIENCES:
            if _exists(session, Experience, experience.key):
                continue
            experiences_service.create_experience(
                session, keystore=keystore, spec=experience, actor=ACTOR, at=now
            )
            experiences_service.publish_experience(
                session, keystore=keystore, key=experience.key, actor=ACTOR, at=now, catalog=catalog
            )
            made += 1
        audit_service.append(
            session, keystore=keystore, action=MARKER, actor=ACTOR.name, at=now, details={"made": made}
        )
    return made


def published(session: Session) -> list[Published]:
    """The demo's experiences as they serve now, in the order of `EXPERIENCES` (unknown keys left out)."""
    found: list[Published] = []
    for experience in EXPERIENCES:
        version = decide_service.serving(session, kind=Kind.EXPERIENCE, key=experience.key)
        if version is None or version.snapshot.get("status") != "live":
            continue
        snapshot = version.snapshot
        found.append(
            Published(
                snapshot["placement"], experience.key, Level(snapshot["level"]), str(snapshot["strategy"])
            )
        )
    return found


def describe(items: Sequence[Published]) -> list[str]:
    """One line per placement: its experiences, highest level first, over the default."""
    lines: list[str] = []
    for placement in PLACEMENTS:
        mine = sorted((p for p in items if p.placement == placement.key), key=lambda p: p.level, reverse=True)
        parts = [
            f"{p.experience} ({p.level}{'' if p.strategy == 'rule' else ', ' + p.strategy})" for p in mine
        ]
        lines.append(f"{placement.key}: {', '.join([*parts, 'default (1:all)'])}")
    return lines


def try_it(context: PlacementsContext, *, base_url: str) -> list[str]:
    """What `tactful demo` prints about decisions: the placements, and a decision to ask for (with a
    placeholder for the server key, which is shown once, above it)."""
    with context.session() as session:
        lines = describe(published(session))
    body = json.dumps({"user_id": VISITOR, "placements": [p.key for p in PLACEMENTS], "context": CONTEXT})
    return [
        "Placements (each decision climbs as high as the visitor's consent allows):",
        *(f"  {line}" for line in lines),
        "Ask for a decision with your server key (README: Your first decision):",
        f"  curl -u \"tfk_server_...:\" {base_url}/v1/decide -H 'Content-Type: application/json' -d '{body}'",
        "",
    ]
