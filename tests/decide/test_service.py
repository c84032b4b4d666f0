"""Placements and audiences: created, changed, listed; every change a published version and an audit
entry naming the resource and the version; faults listed with their field and how to fix them."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.decide import service as decide_service
from tactful.decide.schemas import AudienceUpdate, Change, DefaultVariation, Kind, PlacementUpdate
from tactful.errors import Conflict, InvalidDefinition, NotFound
from tests.decide.model_builders import ACTOR, T0, at, audience, placement


def _audit(session: Session) -> list[AuditEntry]:
    return list(
        session.scalars(select(AuditEntry).where(AuditEntry.action.like("decide.%")).order_by(AuditEntry.seq))
    )


def test_a_placement_is_created_with_its_default_as_version_one(session: Session, keystore: Keystore) -> None:
    created = decide_service.create_placement(
        session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0
    )
    assert (created.key, created.channel, created.version) == ("home_hero", "web", 1)
    assert created.default.content == {"headline": "Hi"}
    assert decide_service.get_placement(session, key="home_hero") == created

    [version] = decide_service.list_versions(session, kind=Kind.PLACEMENT, key="home_hero")
    assert (version.version, version.change, version.published) == (1, Change.CREATED, True)
    assert version.actor_key_id == ACTOR.key_id
    assert version.snapshot["default"] == {"content": {"headline": "Hi"}, "templates": {}}
    [entry] = _audit(session)
    assert (entry.action, entry.actor, entry.subject_ref) == ("decide.placement.created", ACTOR.name, None)
    assert entry.details == {"key": "home_hero", "version": 1, "published": True}


def test_a_change_makes_the_next_version_and_serves_at_once(session: Session, keystore: Keystore) -> None:
    decide_service.create_placement(session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0)
    patch = PlacementUpdate(
        description="Top of the home page", default=DefaultVariation(content={"headline": "New"})
    )
    changed = decide_service.update_placement(
        session, keystore=keystore, key="home_hero", patch=patch, actor=ACTOR, at=at(5)
    )
    assert (changed.version, changed.description, changed.updated_at) == (2, "Top of the home page", at(5))
    assert changed.default.content == {"headline": "New"}
    serving = decide_service.serving(session, kind=Kind.PLACEMENT, key="home_hero")
    assert serving is not None
    assert serving.version == 2
    assert [
        v.version for v in decide_service.list_versions(session, kind=Kind.PLACEMENT, key="home_hero")
    ] == [2, 1]
    assert [e.details["version"] for e in _audit(session)] == [1, 2]


def test_an_empty_patch_changes_nothing(session: Session, keystore: Keystore) -> None:
    decide_service.create_placement(session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0)
    same = decide_service.update_placement(
        session, keystore=keystore, key="home_hero", patch=PlacementUpdate(), actor=ACTOR, at=at(1)
    )
    assert same.version == 1
    assert len(_audit(session)) == 1


def test_a_placements_channel_is_fixed(session: Session, keystore: Keystore) -> None:
    decide_service.create_placement(session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0)
    with pytest.raises(InvalidDefinition) as refused:
        decide_service.update_placement(
            session,
            keystore=keystore,
            key="home_hero",
            patch=PlacementUpdate(channel="email"),
            actor=ACTOR,
            at=T0,
        )
    assert [(p.loc, p.type) for p in refused.value.problems] == [(("channel",), "channel_fixed")]


def test_an_email_placement_needs_an_email_default(session: Session, keystore: Keystore) -> None:
    spec = placement("newsletter", "email", default={"content": {"headline": "Hi"}})
    with pytest.raises(InvalidDefinition) as refused:
        decide_service.create_placement(session, keystore=keystore, spec=spec, actor=ACTOR, at=T0)
    assert [p.type for p in refused.value.problems] == ["email_subject_missing", "email_body_missing"]
    assert "subject line" in refused.value.message
    ok = decide_service.create_placement(
        session, keystore=keystore, spec=placement("newsletter", "email"), actor=ACTOR, at=T0
    )
    assert ok.channel == "email"


def test_a_key_is_taken_once(session: Session, keystore: Keystore) -> None:
    decide_service.create_placement(session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0)
    with pytest.raises(Conflict) as taken:
        decide_service.create_placement(session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0)
    assert taken.value.code == "placement_exists"
    assert len(decide_service.list_placements(session)) == 1


def test_unknown_keys_are_not_found(session: Session, keystore: Keystore) -> None:
    with pytest.raises(NotFound) as missing:
        decide_service.get_placement(session, key="nowhere")
    assert missing.value.code == "placement_not_found"
    with pytest.raises(NotFound):
        decide_service.update_audience(
            session, keystore=keystore, key="nobody", patch=AudienceUpdate(name="x"), actor=ACTOR, at=T0
        )
    with pytest.raises(NotFound):
        decide_service.list_versions(session, kind=Kind.EXPERIENCE, key="nothing")


def test_lists_page_by_key(session: Session, keystore: Keystore) -> None:
    for key in ("c_slot", "a_slot", "b_slot"):
        decide_service.create_placement(session, keystore=keystore, spec=placement(key), actor=ACTOR, at=T0)
    assert [p.key for p in decide_service.list_placements(session, limit=2)] == ["a_slot", "b_slot"]
    assert [p.key for p in decide_service.list_placements(session, after="b_slot")] == ["c_slot"]


def test_an_audience_keeps_its_condition_as_given_and_versions_it(
    session: Session, keystore: Keystore
) -> None:
    condition = {
        "$or": [{"context.location.country": "SE"}, {"traits.age_range": {"$in": ["18-24", "25-34"]}}]
    }
    created = decide_service.create_audience(
        session, keystore=keystore, spec=audience(condition=condition), actor=ACTOR, at=T0
    )
    assert created.condition == condition
    changed, _ = decide_service.update_audience(
        session, keystore=keystore, key="sweden", patch=AudienceUpdate(name="Nordics"), actor=ACTOR, at=at(1)
    )
    assert (changed.name, changed.version, changed.condition) == ("Nordics", 2, condition)
    versions = decide_service.list_versions(session, kind=Kind.AUDIENCE, key="sweden")
    assert [(v.version, v.snapshot["name"]) for v in versions] == [
        (2, "Nordics"),
        (1, "Visitors from Sweden"),
    ]
    assert [e.action for e in _audit(session)] == ["decide.audience.created", "decide.audience.updated"]


def test_a_condition_the_language_refuses_is_not_saved(session: Session, keystore: Keystore) -> None:
    spec = audience(condition={"traits.age_range": {"$in": ["18-24", None]}, "$where": "sleep(1)"})
    with pytest.raises(InvalidDefinition) as refused:
        decide_service.create_audience(session, keystore=keystore, spec=spec, actor=ACTOR, at=T0)
    assert {p.type for p in refused.value.problems} == {"condition_invalid"}
    assert ["condition", "traits.age_range", "$in", 1] in [list(p.loc) for p in refused.value.problems]
    assert "null" in refused.value.message or "$where" in refused.value.message


def test_an_audience_condition_is_capped(session: Session, keystore: Keystore) -> None:
    spec = audience(condition={"traits.x": {"$in": ["y" * 1000] * 10}})
    with pytest.raises(InvalidDefinition) as refused:
        decide_service.create_audience(session, keystore=keystore, spec=spec, actor=ACTOR, at=T0)
    assert [p.type for p in refused.value.problems] == ["content_too_large"]


def test_text_no_database_keeps_is_refused(session: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        decide_service.create_audience(
            session, keystore=keystore, spec=audience(name="nul\x00"), actor=ACTOR, at=T0
        )
    assert [(p.loc, p.type) for p in refused.value.problems] == [(("name",), "content_text")]
