"""The walk down the pyramid (DESIGN §2, invariants 1 and 2): order, the reasons an experience does
not apply, holdouts and their propensities, the default; and, over random catalogs, consents and
experiences, that a placement always answers, never above the ceiling, reading only allowed atoms."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentEvent, fold
from tactful.decide.walk import Channel, Experience, Placement, Skip, Strategy, Variation, walk
from tactful.policy import (
    ProfileSnapshot,
    Regime,
    RequestSignals,
    SubjectFacts,
    build_view,
    evaluate,
)
from tactful.policy.verdicts import Code, Reason
from tactful.types import Level
from tests.decide.walking import DEFAULT, NOW, Steps, allowance, decide, experience, web
from tests.policy.strategies import AT, catalogs, facts, ledgers, regime_sets, signals


def test_level_beats_priority_then_priority_then_age() -> None:
    experiences = (
        experience("many_first", Level.MANY, priority=1),
        experience("one_late", Level.ONE, priority=9, atoms=frozenset({"traits.first_name"})),
        experience("one_early", Level.ONE, priority=9, atoms=frozenset({"traits.first_name"}),
                   created_at=NOW - timedelta(days=9)),
        experience("one_top", Level.ONE, priority=2, atoms=frozenset({"traits.first_name"})),
    )  # fmt: skip
    everyone = Steps(matching=frozenset(e.key for e in experiences))
    assert decide(web(*experiences), allowance(), everyone).experience == "one_top"
    without_top = Steps(matching=frozenset({"many_first", "one_late", "one_early"}))
    answer = decide(web(*experiences), allowance(), without_top)
    assert answer.experience == "one_early"
    assert [(p.experience, p.skip) for p in answer.passed] == [("one_top", Skip.NO_MATCH)]


def test_above_the_ceiling_the_walk_goes_down_and_says_why() -> None:
    greeting = experience("greeting", Level.ONE, atoms=frozenset({"traits.first_name"}))
    answer = decide(web(greeting, experience("sweden")), allowance(ceiling=Level.MANY))
    assert (answer.experience, answer.level, answer.strategy) == ("sweden", Level.MANY, Strategy.RULE)
    [passed] = answer.passed
    assert (passed.experience, passed.skip) == ("greeting", Skip.ABOVE_CEILING)
    assert passed.reasons == (
        Reason.of(
            Code.CONSENT_MISSING, purpose="personalization.individual", status="not_set", regime="gdpr"
        ),
    )
    assert answer.downgraded


def test_a_withheld_atom_keeps_an_experience_out_even_within_the_ceiling() -> None:
    reads_name = experience("greeting", Level.MANY, atoms=frozenset({"traits.first_name"}))
    answer = decide(web(reads_name), allowance(atoms=frozenset({"context.location.country"})))
    assert answer.experience is None
    assert answer.strategy is Strategy.DEFAULT
    [passed] = answer.passed
    assert (passed.skip, passed.atoms) == (Skip.ATOMS_WITHHELD, frozenset({"traits.first_name"}))


@pytest.mark.parametrize(
    ("changes", "skip"),
    [
        ({"live": False}, Skip.NOT_LIVE),
        ({"starts_at": NOW + timedelta(seconds=1)}, Skip.NOT_SCHEDULED),
        ({"ends_at": NOW}, Skip.NOT_SCHEDULED),
        ({"audience_served": False}, Skip.AUDIENCE_NOT_SERVED),
        ({"significant": True}, Skip.SIGNIFICANT_EFFECT),
    ],
)
def test_what_keeps_an_experience_from_applying(changes: dict[str, object], skip: Skip) -> None:
    answer = decide(web(experience("x", **changes)), allowance())
    assert answer.experience is None
    assert [p.skip for p in answer.passed] == [skip]


def test_a_significant_effect_needs_explicit_consent_and_an_adult() -> None:
    significant = experience("price", significant=True)
    assert decide(web(significant), allowance(significant=True)).experience == "price"
    assert decide(web(significant), allowance(significant=True, minor=True)).experience is None


def test_a_significant_effect_never_reads_a_special_category() -> None:
    reads_health = experience("price", significant=True, reads_special=True)
    answer = decide(web(reads_health), allowance(significant=True))
    assert answer.experience is None
    assert [p.skip for p in answer.passed] == [Skip.SIGNIFICANT_SPECIAL]
    assert not answer.downgraded  # the experience's own fault, not the person's choices
    ordinary = experience("banner", reads_special=True)  # special data with its explicit consent
    assert decide(web(ordinary), allowance(significant=True)).experience == "banner"


def test_what_replaces_a_significant_decision_is_never_significant() -> None:
    first = experience("price_a", Level.SOME, significant=True)
    second = experience("price_b", significant=True)
    banner = experience("banner", priority=2)
    placement = web(first, second, banner)
    everyone = frozenset({"price_a", "price_b", "banner"})
    held = decide(placement, allowance(significant=True), Steps(matching=everyone, held_out={"price_a": 0.1}))
    assert (held.experience, held.significant) == ("banner", False)
    assert [(p.experience, p.skip) for p in held.passed] == [
        ("price_a", Skip.HELD_OUT),
        ("price_b", Skip.SIGNIFICANT_FALLBACK),
    ]
    unrendered = decide(
        placement,
        allowance(significant=True),
        Steps(matching=everyone, unrenderable=frozenset({"price_a-a"})),
    )
    assert unrendered.experience == "banner"
    # Not in the first one's audience: the second is a decision in its own right, not a fallback.
    other = decide(placement, allowance(significant=True), Steps(matching=frozenset({"price_b", "banner"})))
    assert (other.experience, other.significant) == ("price_b", True)
    # Without the explicit consent every significant experience is passed: the banner, never a price.
    refused = decide(placement, allowance(significant=False), Steps(matching=everyone))
    assert (refused.experience, refused.significant) == ("banner", False)
    assert {p.skip for p in refused.passed} == {Skip.SIGNIFICANT_EFFECT}


def test_an_email_placement_needs_the_channels_consent() -> None:
    placement = web(experience("newsletter"), channel=Channel.EMAIL)
    assert decide(placement, allowance(email=True)).experience == "newsletter"
    refused = decide(placement, allowance(email=False))
    assert [p.skip for p in refused.passed] == [Skip.CHANNEL_CONSENT]
    assert refused.downgraded


def test_a_held_out_subject_goes_on_down_with_the_share_in_its_propensity() -> None:
    variations = (Variation("a", {"t": "a"}, 3.0), Variation("b", {"t": "b"}, 1.0))
    top = experience("top", Level.SOME, strategy=Strategy.SPLIT, variations=variations)
    below = experience("below", Level.MANY)
    answer = decide(
        web(top, below), allowance(), Steps(matching=frozenset({"top", "below"}), held_out={"top": 0.05})
    )
    assert (answer.experience, answer.strategy, answer.held_out_of) == ("below", Strategy.HOLDOUT, ("top",))
    assert answer.propensity == pytest.approx(0.05)
    assert not answer.downgraded  # a holdout is the experiment's design, not the person's consent

    alone = decide(web(top), allowance(), Steps(matching=frozenset({"top"}), held_out={"top": 0.1}))
    assert (alone.variation, alone.strategy, alone.propensity) == (
        "default",
        Strategy.HOLDOUT,
        pytest.approx(0.1),
    )


def test_a_variation_that_cannot_render_for_this_subject_is_passed_by() -> None:
    answer = decide(web(experience("x")), allowance(), Steps(matching=None, unrenderable=frozenset({"x-a"})))
    assert answer.variation == "default"
    assert [p.skip for p in answer.passed] == [Skip.NOT_RENDERED]


def test_the_default_is_rendered_with_nothing_about_the_subject() -> None:
    seen: list[Mapping[str, object]] = []
    answer = walk(
        web(),
        allowance=allowance(),
        view={"traits.first_name": "Anna"},
        at=NOW,
        steps=Steps(rendered_with=seen),
    )
    assert (answer.content, answer.level, answer.propensity) == ({"title": "Welcome"}, Level.ALL, 1.0)
    assert seen == [{}]


# -- invariants 1 and 2 over random catalogs, consents and experiences ---------------------------


def _level(catalog: Catalog, atoms: frozenset[str]) -> Level:
    return max((catalog.atoms[a].level for a in atoms), default=Level.ALL)


_ONE_IN_THREE = st.sampled_from((False, False, True))


@st.composite
def placements(
    draw: st.DrawFn,
    catalog: Catalog,
    significant: st.SearchStrategy[bool] = _ONE_IN_THREE,
) -> Placement:
    names = sorted(catalog.atoms)
    experiences = []
    for n in range(draw(st.integers(0, 6))):
        atoms = frozenset(draw(st.lists(st.sampled_from(names), max_size=3, unique=True)))
        strategy = draw(st.sampled_from((Strategy.RULE, Strategy.SPLIT)))
        weights = draw(st.lists(st.floats(0.1, 5), min_size=1, max_size=3))
        variations = tuple(Variation(f"e{n}v{i}", {"n": n, "i": i}, w) for i, w in enumerate(weights))
        experiences.append(
            Experience(
                key=f"e{n}",
                level=_level(catalog, atoms),
                priority=draw(st.integers(0, 3)),
                created_at=NOW - timedelta(hours=draw(st.integers(0, 100))),
                atoms=atoms,
                variations=variations,
                strategy=strategy,
                live=draw(st.sampled_from((True, True, False))),
                audience_served=draw(st.sampled_from((True, True, False))),
                significant=draw(significant),
                reads_special=any(catalog.atoms[a].special for a in atoms),
            )
        )
    channel = draw(st.sampled_from(tuple(Channel)))
    return Placement("p", channel, DEFAULT, tuple(experiences))


@given(catalogs(), ledgers, regime_sets, facts(), signals, st.data())
def test_every_placement_answers_within_the_allowance(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
    data: st.DataObject,
) -> None:
    given_allowance = evaluate(
        catalog=catalog, consent=fold(events), regimes=regimes, facts=subject, signals=request, at=AT
    )
    stored = {name: f"value of {name}" for name in catalog.atoms}
    view = build_view(given_allowance, ProfileSnapshot(values=stored, request=stored))
    placement = data.draw(placements(catalog))
    held = {e.key: 0.05 for e in placement.experiences if data.draw(st.booleans())}

    answer = walk(placement, allowance=given_allowance, view=view, at=NOW, steps=Steps(held_out=held))

    assert answer.level <= given_allowance.ceiling
    assert answer.atoms_read <= given_allowance.decide_atoms
    assert view.atoms_read <= given_allowance.decide_atoms  # nothing outside was even asked for
    assert answer.content is not None
    assert 0 < answer.propensity <= 1
    if answer.experience is not None:
        chosen = next(e for e in placement.experiences if e.key == answer.experience)
        assert chosen.atoms <= given_allowance.decide_atoms
        assert chosen.live
        assert chosen.audience_served
    else:
        assert answer.level is Level.ALL


_DRAWN_PAST = frozenset(
    {Skip.HELD_OUT, Skip.NOT_IN_NAMESPACE, Skip.NOT_RENDERED, Skip.DEVICE_IDENTIFIER, Skip.NO_UNIT}
)
"""How an experience that matched the subject is passed over: what answers below replaces it."""


@settings(max_examples=150)
@given(catalogs(), st.data())
def test_a_significant_effect_holds_design_section_1(catalog: Catalog, data: st.DataObject) -> None:
    """Whatever the catalog, Allowance and experiences: a significant answer has explicit consent, an
    adult, no special category; and what replaces a significant experience is never significant."""
    names = sorted(catalog.atoms)
    # Often everything (else few experiences could apply at all), otherwise a random part.
    every = data.draw(st.booleans())
    given_allowance = allowance(
        ceiling=Level.ONE if every else data.draw(st.sampled_from(tuple(Level))),
        atoms=frozenset(names if every else data.draw(st.lists(st.sampled_from(names), unique=True))),
        significant=data.draw(st.booleans()),
        minor=data.draw(_ONE_IN_THREE),
    )
    view = {name: f"value of {name}" for name in given_allowance.decide_atoms}
    placement = data.draw(placements(catalog, significant=st.booleans()))
    rarely = st.sampled_from((False, False, False, True))
    held = {e.key: 0.05 for e in placement.experiences if data.draw(rarely)}
    broken = frozenset(f"{e.key}v0" for e in placement.experiences if data.draw(rarely))

    answer = walk(
        placement,
        allowance=given_allowance,
        view=view,
        at=NOW,
        steps=Steps(held_out=held, unrenderable=broken),
    )

    chosen = next((e for e in placement.experiences if e.key == answer.experience), None)
    assert answer.significant == (chosen is not None and chosen.significant)
    if answer.significant:
        assert chosen is not None
        assert given_allowance.significant_decisions.allowed
        assert not given_allowance.minor
        assert not chosen.reads_special
        significant = {e.key for e in placement.experiences if e.significant}
        assert not [p for p in answer.passed if p.experience in significant and p.skip in _DRAWN_PAST]
    if given_allowance.minor or not given_allowance.significant_decisions.allowed:
        assert not answer.significant
    event("significant answer" if answer.significant else "ordinary answer")
