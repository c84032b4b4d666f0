"""The demo's placements: seeded once with the shop, every experience live at the level it was made
for, and decisions for seeded customers that climb as far as their consent allows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tactful.audit import service as audit_service
from tactful.audit.models import AuditEntry
from tactful.decide import service as decide_service
from tactful.decide.models import Audience, DecideVersion, Experience, Placement
from tactful.decide.schemas import Actor, Kind, PlacementCreate
from tactful.demo import placements
from tactful.demo.placements import CONTEXT, EXPERIENCES, PLACEMENTS, VISITOR, published, seed_placements
from tactful.demo.seed import MARKER, seed
from tactful.keys.schemas import Scope
from tests.demo.builders import NOW, REFUSER, SMALL, Shop, fresh_context, seeded_shop

LEVELS = {
    "hero_sweden_mobile": ("1:many", "rule"),
    "hero_outdoor": ("1:some", "rule"),
    "greeting_by_name": ("1:1", "rule"),
    "picks_layout": ("1:all", "split"),
    "picks_favorite": ("1:few", "rule"),
}


@pytest.fixture(scope="module")
def shop(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    with seeded_shop(backend, tmp_path_factory.mktemp("demo")) as seeded:
        yield seeded


def decide(shop: Shop, user_id: str, context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = {"user_id": user_id, "placements": [p.key for p in PLACEMENTS], "context": context}
    response = shop.api.post("/v1/decide", json=body, auth=shop.auth(Scope.SERVER))
    assert response.status_code == 200, response.text
    return {d["placement"]: d for d in response.json()["decisions"]}


def test_every_demo_experience_is_live_at_the_level_it_was_made_for(shop: Shop) -> None:
    with shop.context.session() as session:
        live = published(session)
    assert {p.experience: (p.level, p.strategy) for p in live} == LEVELS
    assert [e.key for e in EXPERIENCES] == [p.experience for p in live]
    assert {p.placement for p in live} == {p.key for p in PLACEMENTS}
    # Holdouts are stated: none for one variation, 5% for the split.
    holdouts = {e.key: e.holdout for e in EXPERIENCES}
    assert holdouts == {key: 0.05 if strategy == "split" else 0.0 for key, (_, strategy) in LEVELS.items()}


def test_the_visitor_of_the_readme_reaches_every_level_their_consent_allows(shop: Shop) -> None:
    answers = decide(shop, VISITOR, CONTEXT)
    assert (answers["greeting"]["level"], answers["greeting"]["content"]) == ("1:1", {"text": "Hello Felix!"})
    assert answers["home_hero"]["level"] == "1:some"
    assert answers["picks"]["level"] == "1:few"
    assert {a["explanation"]["ceiling"] for a in answers.values()} == {"1:1"}

    # The 1:many audience matches, but has not yet matched k people: counted in shadow, not served.
    sweden = decide(shop, VISITOR, {"device": {"type": "mobile"}, "location": {"country": "SE"}})
    hero = sweden["home_hero"]
    assert (hero["level"], hero["experience"]) == ("1:all", None)
    steps = [(s["level"], s["code"], s["experience"]) for s in hero["explanation"]["not_higher"]]
    assert ("1:many", "audience_not_served", "hero_sweden_mobile") in steps


def test_a_customer_who_refused_personalization_gets_nothing_above_one_to_all(shop: Shop) -> None:
    answers = decide(shop, REFUSER, CONTEXT)
    assert {a["level"] for a in answers.values()} == {"1:all"}
    assert answers["home_hero"]["content"] == PLACEMENTS[0].default.content
    assert answers["greeting"]["content"] == {"text": "Hello!"}
    assert all(a["explanation"]["consent_downgrade"] for a in answers.values())
    assert all(a["explanation"]["atoms"] == [] for a in answers.values())
    # A split for everyone reads nothing about her: it still runs, hashing her user id (each
    # database draws its own assignment seed, so she may be in the 5% held out).
    picks = answers["picks"]
    assert (picks["strategy"], picks["propensity"]) in {("split", 0.475), ("holdout", 0.05)}
    assert picks["explanation"]["exploration"] is (picks["strategy"] == "split")


def test_seeding_again_creates_nothing(shop: Shop) -> None:
    def counts() -> tuple[int, ...]:
        with shop.context.session() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Placement, Audience, Experience, DecideVersion, AuditEntry)
            )

    before = counts()
    again = seed(shop.context, now=NOW, config=SMALL)
    assert (again.seeded, again.definitions, dict(again.keys)) == (False, 0, {})
    assert seed_placements(shop.context, catalog=shop.context.catalog, now=NOW) == 0
    assert counts() == before


def test_a_shop_seeded_before_the_placements_gains_them(backend: str, tmp_path: Path) -> None:
    made = len(PLACEMENTS) + len(placements.AUDIENCES) + len(EXPERIENCES)
    with fresh_context(backend, tmp_path) as context:
        with context.session() as session:  # as an older demo left it: the shop's marker alone
            audit_service.append(session, keystore=context.keystore, action=MARKER, actor="demo", at=NOW)
        report = seed(context, now=NOW, config=SMALL)
        assert (report.seeded, report.received, report.definitions) == (False, 0, made)
        with context.session() as session:
            assert len(published(session)) == len(EXPERIENCES)


def test_a_definition_made_by_hand_is_left_as_it_is(backend: str, tmp_path: Path) -> None:
    mine = PlacementCreate.model_validate(
        {"key": "greeting", "channel": "app", "default": {"content": {"text": "Hi"}}}
    )
    with fresh_context(backend, tmp_path) as context:
        with context.session() as session:
            decide_service.create_placement(
                session, keystore=context.keystore, spec=mine, actor=Actor(None, "tests"), at=NOW
            )
        assert seed_placements(context, catalog=context.catalog, now=NOW) > 0
        with context.session() as session:
            kept = decide_service.get_placement(session, key="greeting")
            assert (kept.channel, kept.version) == ("app", 1)
            assert decide_service.serving(session, kind=Kind.EXPERIENCE, key="greeting_by_name") is not None
