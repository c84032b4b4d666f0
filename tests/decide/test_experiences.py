"""Experiences: drafted, checked, published, paused, rolled back; the seed moves only with the arms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.decide import experiences as experiences_service
from tactful.decide import service as decide_service
from tactful.decide.checks import Code
from tactful.decide.publishing import PublishChecks
from tactful.decide.schemas import Change, ExperienceUpdate, Kind, Status, VariationSpec
from tactful.errors import Conflict, InvalidDefinition, NotFound
from tests.decide.model_builders import (
    ACTOR,
    T0,
    at,
    audience,
    demo_catalog,
    experience,
    placement,
    variation,
)


@pytest.fixture
def model(session: Session, keystore: Keystore) -> Session:
    """A session holding a web placement `home_hero`, an e-mail placement `newsletter` and an
    audience `sweden`."""
    decide_service.create_placement(session, keystore=keystore, spec=placement(), actor=ACTOR, at=T0)
    decide_service.create_placement(
        session, keystore=keystore, spec=placement("newsletter", "email"), actor=ACTOR, at=T0
    )
    decide_service.create_audience(session, keystore=keystore, spec=audience(), actor=ACTOR, at=T0)
    return session


def _create(session: Session, keystore: Keystore, **fields: object) -> None:
    experiences_service.create_experience(
        session, keystore=keystore, spec=experience(**fields), actor=ACTOR, at=T0
    )


def _update(session: Session, keystore: Keystore, minute: float = 1, **fields: object) -> None:
    patch = ExperienceUpdate.model_validate(fields)
    experiences_service.update_experience(
        session, keystore=keystore, key="spring", patch=patch, actor=ACTOR, at=at(minute)
    )


def _publish(
    session: Session, keystore: Keystore, minute: float = 2, checks: PublishChecks | None = None
) -> None:
    experiences_service.publish_experience(
        session,
        keystore=keystore,
        key="spring",
        actor=ACTOR,
        at=at(minute),
        catalog=demo_catalog(),
        checks=checks,
    )


def _refusal(caught: pytest.ExceptionInfo[InvalidDefinition]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(p.loc, p.type) for p in caught.value.problems]


def test_an_experience_starts_as_an_unpublished_draft(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, audience="sweden", priority=3)
    created = experiences_service.get_experience(model, key="spring")
    assert (created.status, created.version, created.published_version) == (Status.DRAFT, 1, None)
    assert (created.audience, created.priority, created.strategy) == ("sweden", 3, "rule")
    assert decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring") is None


def test_the_holdout_defaults_by_the_number_of_variations(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, key="single")
    _create(model, keystore, key="split", strategy="split", variations=[variation("a"), variation("b")])
    _create(model, keystore, key="stated", holdout=0.2)
    holdouts = {e.key: e.holdout for e in experiences_service.list_experiences(model)}
    assert holdouts == {"single": 0.0, "split": 0.05, "stated": 0.2}


def test_references_must_exist(model: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        _create(model, keystore, placement="nowhere", audience="nobody")
    assert _refusal(refused) == [(("placement",), "placement_unknown"), (("audience",), "audience_unknown")]
    assert "POST /v1/admin/audiences" in refused.value.problems[1].msg


def test_an_email_experience_needs_a_subject_and_body(model: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        _create(model, keystore, placement="newsletter")
    assert [t for _, t in _refusal(refused)] == ["email_subject_missing", "email_body_missing"]
    _create(
        model, keystore, placement="newsletter", variations=[variation("a", subject="Hi", body=["Hello"])]
    )


def test_every_fault_is_listed_at_once(model: Session, keystore: Keystore) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        _create(
            model, keystore, strategy="split",
            starts_at=T0.isoformat(), ends_at=(T0 - timedelta(days=1)).isoformat(),
            variations=[variation("a"), {"key": "a", "content": {"x": None}}],
        )  # fmt: skip
    assert _refusal(refused) == [
        (("variations", 1, "key"), "variation_key_repeated"),
        (("variations", 1, "content", "x"), "content_null"),
        (("ends_at",), "schedule_end_before_start"),
    ]


def test_times_are_kept_in_utc(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, starts_at="2026-06-01T12:00:00+02:00")
    assert experiences_service.get_experience(model, key="spring").starts_at == at(60)


def test_content_edits_keep_the_seed_and_arm_changes_draw_a_new_one(
    model: Session, keystore: Keystore
) -> None:
    _create(model, keystore, strategy="split", variations=[variation("a"), variation("b")])
    seed = experiences_service.get_experience(model, key="spring").seed

    _update(model, keystore, variations=[variation("a", headline="New words"), variation("b")])
    edited = experiences_service.get_experience(model, key="spring")
    assert edited.seed == seed
    assert edited.variations[0].content == {"headline": "New words"}

    _update(model, keystore, description="Spring campaign", priority=7)
    assert experiences_service.get_experience(model, key="spring").seed == seed

    _update(model, keystore, variations=[variation("a", headline="New words"), variation("b", weight=3)])
    reweighted = experiences_service.get_experience(model, key="spring").seed
    assert reweighted != seed

    _update(model, keystore, variations=[variation("a"), variation("b", weight=3), variation("c")])
    added = experiences_service.get_experience(model, key="spring").seed
    assert added != reweighted

    _update(model, keystore, rerandomize=True)
    assert experiences_service.get_experience(model, key="spring").seed != added


def test_an_update_is_checked_as_a_whole(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, strategy="split", variations=[variation("a"), variation("b")])
    with pytest.raises(InvalidDefinition) as refused:
        _update(model, keystore, strategy="rule", placement="newsletter", audience="nobody")
    assert [t for _, t in _refusal(refused)] == [
        "placement_fixed",
        "audience_unknown",
        "rule_needs_one_variation",
    ]
    assert experiences_service.get_experience(model, key="spring").version == 1


def test_nulls_clear_the_optional_members(model: Session, keystore: Keystore) -> None:
    _create(
        model, keystore, audience="sweden", namespace="hero_tests", holdout=0.3, ends_at=at(600).isoformat()
    )
    _update(model, keystore, audience=None, namespace=None, holdout=None, ends_at=None)
    cleared = experiences_service.get_experience(model, key="spring")
    assert (cleared.audience, cleared.namespace, cleared.holdout, cleared.ends_at) == (None, None, 0.0, None)


def test_publishing_serves_the_working_copy_and_edits_wait_for_the_next(
    model: Session, keystore: Keystore
) -> None:
    _create(model, keystore)
    _publish(model, keystore)
    live = experiences_service.get_experience(model, key="spring")
    assert (live.status, live.version, live.published_version) == (Status.LIVE, 2, 2)
    serving = decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring")
    assert serving is not None
    assert (serving.version, serving.snapshot["level"], serving.snapshot["status"]) == (2, "1:all", "live")

    _update(model, keystore, minute=3, variations=[variation("a", headline="Draft words")])
    edited = experiences_service.get_experience(model, key="spring")
    assert (edited.status, edited.version, edited.published_version) == (Status.LIVE, 3, 2)
    serving = decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring")
    assert serving is not None
    assert serving.snapshot["variations"][0]["content"] == {"headline": "Variation a"}

    _publish(model, keystore, minute=4)
    serving = decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring")
    assert serving is not None
    assert (serving.version, serving.snapshot["variations"][0]["content"]) == (4, {"headline": "Draft words"})


def test_publishing_twice_changes_nothing(model: Session, keystore: Keystore) -> None:
    _create(model, keystore)
    _publish(model, keystore)
    _publish(model, keystore, minute=3)
    assert experiences_service.get_experience(model, key="spring").version == 2


def test_pause_stops_serving_and_a_draft_cannot_be_paused(model: Session, keystore: Keystore) -> None:
    _create(model, keystore)
    with pytest.raises(Conflict) as draft:
        experiences_service.pause_experience(model, keystore=keystore, key="spring", actor=ACTOR, at=at(1))
    assert draft.value.code == "experience_not_live"
    _publish(model, keystore)
    paused = experiences_service.pause_experience(
        model, keystore=keystore, key="spring", actor=ACTOR, at=at(3)
    )
    assert (paused.status, paused.published_version) == (Status.PAUSED, 3)
    serving = decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring")
    assert serving is not None
    assert (serving.change, serving.snapshot["status"]) == (Change.PAUSED, "paused")


def test_a_significant_effect_cannot_be_published_without_human_review(
    model: Session, keystore: Keystore
) -> None:
    _create(model, keystore, significant_effect=True)
    with pytest.raises(InvalidDefinition) as refused:
        _publish(model, keystore)
    assert refused.value.code == "publish_refused"
    assert _refusal(refused) == [(("significant_effect",), Code.NEEDS_HUMAN_REVIEW.value)]
    assert "human review" in refused.value.message
    assert experiences_service.get_experience(model, key="spring").status == Status.DRAFT
    _publish(model, keystore, checks=PublishChecks(human_review=True))
    assert experiences_service.get_experience(model, key="spring").status == Status.LIVE


def test_a_significant_effect_never_reads_a_special_category(model: Session, keystore: Keystore) -> None:
    wellness = audience("wellness", condition={"traits.health_interest": "back_pain"})
    decide_service.create_audience(model, keystore=keystore, spec=wellness, actor=ACTOR, at=T0)
    _create(model, keystore, significant_effect=True, audience="wellness")
    with pytest.raises(InvalidDefinition) as refused:
        _publish(model, keystore, checks=PublishChecks(human_review=True))
    assert _refusal(refused) == [(("significant_effect",), Code.SIGNIFICANT_SPECIAL.value)]
    _update(model, keystore, significant_effect=False)  # the same audience, no significant effect
    _publish(model, keystore, checks=PublishChecks(human_review=True))
    assert experiences_service.get_experience(model, key="spring").status == Status.LIVE


def test_an_ended_schedule_cannot_be_published(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, starts_at=at(-120).isoformat(), ends_at=at(-60).isoformat())
    with pytest.raises(InvalidDefinition) as refused:
        _publish(model, keystore)
    assert _refusal(refused) == [(("ends_at",), "schedule_ended")]


def _audience(model: Session, keystore: Keystore, condition: dict[str, object]) -> None:
    decide_service.create_audience(
        model, keystore=keystore, spec=audience("reading", condition=condition), actor=ACTOR, at=at(0)
    )


def test_the_level_is_computed_from_the_atoms_the_experience_reads(
    model: Session, keystore: Keystore
) -> None:
    _audience(model, keystore, {"context.location.country": "SE", "context.page.path": {"$regex": "^/shoes"}})
    _create(model, keystore, audience="reading")
    _publish(model, keystore)
    serving = decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring")
    assert serving is not None
    assert serving.snapshot["level"] == "1:some"
    assert serving.snapshot["atoms"] == ["context.location.country", "context.page.path"]
    entry = model.scalars(select(AuditEntry).where(AuditEntry.action == "decide.experience.published")).one()
    assert entry.details == {"key": "spring", "version": 2, "published": True, "level": "1:some"}


def test_an_atom_the_catalog_does_not_declare_cannot_be_published(model: Session, keystore: Keystore) -> None:
    _audience(model, keystore, {"context.location.country": "SE", "traits.shoe_size": 44})
    _create(model, keystore, audience="reading")
    with pytest.raises(InvalidDefinition) as refused:
        _publish(model, keystore)
    assert _refusal(refused) == [(("audience",), "undeclared_atom")]
    assert "traits.shoe_size" in refused.value.problems[0].msg


def test_rollback_publishes_an_earlier_definition_as_a_new_version(
    model: Session, keystore: Keystore
) -> None:
    _create(model, keystore, strategy="split", variations=[variation("a"), variation("b")])
    _publish(model, keystore)  # v2
    first_seed = experiences_service.get_experience(model, key="spring").seed
    _update(
        model, keystore, minute=3, variations=[variation("a"), variation("b", weight=4)], priority=9
    )  # v3
    _publish(model, keystore, minute=4)  # v4
    assert experiences_service.get_experience(model, key="spring").seed != first_seed

    rolled = experiences_service.rollback_experience(
        model, keystore=keystore, key="spring", version=2, actor=ACTOR, at=at(5), catalog=demo_catalog()
    )
    assert (rolled.version, rolled.published_version, rolled.status, rolled.priority) == (
        5,
        5,
        Status.LIVE,
        0,
    )
    assert [v.weight for v in rolled.variations] == [1.0, 1.0]
    assert rolled.seed == first_seed  # the arms of version 2 come back with their seed
    versions = decide_service.list_versions(model, kind=Kind.EXPERIENCE, key="spring")
    assert [(v.version, v.change, v.published) for v in versions] == [
        (5, Change.ROLLED_BACK, True),
        (4, Change.PUBLISHED, True),
        (3, Change.UPDATED, False),
        (2, Change.PUBLISHED, True),
        (1, Change.CREATED, False),
    ]
    entry = model.scalars(
        select(AuditEntry).where(AuditEntry.action == "decide.experience.rolled_back")
    ).one()
    assert entry.details["from_version"] == 2


def test_rollback_keeps_the_seed_when_the_arms_are_those_of_now(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, strategy="split", variations=[variation("a"), variation("b")])
    _publish(model, keystore)
    _update(model, keystore, minute=3, rerandomize=True)
    seed = experiences_service.get_experience(model, key="spring").seed
    rolled = experiences_service.rollback_experience(
        model, keystore=keystore, key="spring", version=1, actor=ACTOR, at=at(5), catalog=demo_catalog()
    )
    assert rolled.seed == seed


def test_rollback_is_checked_like_a_publish_and_names_real_versions(
    model: Session, keystore: Keystore
) -> None:
    _create(model, keystore, significant_effect=True)
    _update(model, keystore, significant_effect=False)
    _publish(model, keystore)
    with pytest.raises(InvalidDefinition) as refused:
        experiences_service.rollback_experience(
            model, keystore=keystore, key="spring", version=1, actor=ACTOR, at=at(5), catalog=demo_catalog()
        )
    assert refused.value.code == "publish_refused"
    for version in (3, 99):
        with pytest.raises(NotFound) as missing:
            experiences_service.rollback_experience(
                model,
                keystore=keystore,
                key="spring",
                version=version,
                actor=ACTOR,
                at=at(5),
                catalog=demo_catalog(),
            )
        assert missing.value.code == "version_not_found"


def test_variations_are_replaced_whole_with_keys_reused(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, strategy="split", variations=[variation("a"), variation("b")])
    _update(model, keystore, variations=[variation("b", weight=2), variation("a")])
    assert experiences_service.get_experience(model, key="spring").variations == [
        VariationSpec.model_validate(variation("b", weight=2)),
        VariationSpec.model_validate(variation("a")),
    ]


def test_experiences_list_by_placement(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, key="hero_one")
    _create(
        model,
        keystore,
        key="mail_one",
        placement="newsletter",
        variations=[variation("a", subject="S", body=["B"])],
    )
    assert [e.key for e in experiences_service.list_experiences(model, placement="newsletter")] == [
        "mail_one"
    ]


def _greeting(source: str) -> dict[str, object]:
    return {"key": "hi", "weight": 1.0, "content": {"headline": "Hello"}, "templates": {"headline": source}}


def test_a_template_reading_an_atom_without_a_fallback_is_refused_with_its_line(
    model: Session, keystore: Keystore
) -> None:
    _create(model, keystore, variations=[_greeting("Hello\n{{ traits.first_name }}!")])
    with pytest.raises(InvalidDefinition) as refused:
        _publish(model, keystore)
    assert _refusal(refused) == [(("variations", 0, "templates", "headline"), "template_invalid")]
    assert "line 2" in refused.value.message
    assert "default" in refused.value.message


def test_a_template_counts_toward_the_level(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, variations=[_greeting("Hello {{ traits.first_name | default('there') }}!")])
    _publish(model, keystore)
    serving = decide_service.serving(model, kind=Kind.EXPERIENCE, key="spring")
    assert serving is not None
    assert (serving.snapshot["level"], serving.snapshot["atoms"]) == ("1:1", ["traits.first_name"])


def test_a_placeholder_pasted_into_plain_copy_is_refused(model: Session, keystore: Keystore) -> None:
    _create(model, keystore, variations=[variation("a", headline="Hi *|FNAME|*, welcome back")])
    with pytest.raises(InvalidDefinition) as refused:
        _publish(model, keystore)
    assert [code for _, code in _refusal(refused)] == ["template_invalid"]
