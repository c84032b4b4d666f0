"""A decision's explanation: made of codes when decided, worded when read (English and Swedish);
it says why the answer did not climb higher and what choice would change it, and never carries an
atom's value."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentEvent, fold
from tactful.decide import wording
from tactful.decide.explain import AtomUses, Explanation, explain
from tactful.decide.walk import Skip, Strategy, walk
from tactful.main import default_catalog_path
from tactful.policy import ProfileSnapshot, Regime, RequestSignals, SubjectFacts, build_view, evaluate
from tactful.policy.verdicts import Code, Reason
from tactful.types import Level, Purpose
from tests.decide.test_walk import placements
from tests.decide.walking import NOW, Steps, allowance, decide, experience, web
from tests.policy.strategies import AT, catalogs, facts, ledgers, regime_sets, signals

DEMO: Catalog = load_catalog(default_catalog_path())
INDIVIDUAL = Reason.of(
    Code.CONSENT_MISSING, purpose="personalization.individual", status="not_set", regime="gdpr"
)


def test_a_greeting_above_the_ceiling_is_explained_and_what_would_change_it_is_named() -> None:
    greeting = experience("greeting", Level.ONE, atoms=frozenset({"traits.first_name"}))
    sweden = experience("sweden", Level.MANY)
    given = allowance(ceiling=Level.MANY)
    answer = decide(web(greeting, sweden), given)

    made = explain(answer, allowance=given, uses=AtomUses(DEMO), answered_atoms=sweden.atoms)

    assert (made.level, made.strategy, made.exploration, made.holdout) == (
        Level.MANY,
        Strategy.RULE,
        False,
        False,
    )
    assert [(a.atom, a.category, a.weight) for a in made.atoms] == [
        ("context.location.country", DEMO.atoms["context.location.country"].category, 1.0)
    ]
    assert [(s.level, s.code) for s in made.not_higher] == [(Level.ONE, "consent_missing")]
    assert made.would_change == (INDIVIDUAL,)
    assert made.consent_downgrade

    english = wording.sentences(made, wording.Language.EN)
    assert english.what_would_change == (
        "This would change if: you granted consent for personalization.individual.",
    )
    assert english.data_used == ("your approximate location (country or region): 100% of the choice",)
    swedish = wording.sentences(made, wording.Language.SV)
    assert swedish.what_would_change == (
        "Detta skulle ändras om: du gav samtycke till personalization.individual.",
    )
    assert swedish.summary[1] == "En regel som butiken satt upp valde det."


def test_levels_within_the_ceiling_say_what_kept_their_experiences_out() -> None:
    few = experience(
        "returning", Level.FEW, atoms=frozenset({"context.location.country"}), audience_served=False
    )
    answer = decide(web(few), allowance(ceiling=Level.ONE))
    made = explain(
        answer, allowance=allowance(ceiling=Level.ONE), uses=AtomUses(DEMO), answered_atoms=frozenset()
    )
    assert [(s.level, s.code, s.experience) for s in made.not_higher] == [
        (Level.FEW, Skip.AUDIENCE_NOT_SERVED, "returning")
    ]
    assert made.would_change == ()  # nothing the person could choose would change that
    assert wording.sentences(made, wording.Language.EN).data_used == ("No data about you was used.",)


def test_a_holdout_and_a_split_are_said_to_be_chance() -> None:
    top = experience("top", Level.MANY, strategy=Strategy.SPLIT)
    held = decide(web(top), allowance(), Steps(matching=frozenset({"top"}), held_out={"top": 0.05}))
    made = explain(held, allowance=allowance(), uses=AtomUses(DEMO), answered_atoms=frozenset())
    assert (made.holdout, made.exploration) == (True, False)
    split = decide(web(top), allowance(), Steps(matching=frozenset({"top"})))
    assert explain(split, allowance=allowance(), uses=AtomUses(DEMO), answered_atoms=top.atoms).exploration


def test_a_significant_decision_tells_the_person_they_may_ask_for_review_and_contest() -> None:
    price = experience("price", significant=True)
    given = allowance(significant=True)
    answer = decide(web(price), given)
    made = explain(answer, allowance=given, uses=AtomUses(DEMO), answered_atoms=price.atoms)
    assert made.significant
    assert made.to_json()["significant"] is True
    assert Explanation.from_json(made.to_json()) == made
    english = wording.sentences(made, wording.Language.EN)
    assert len(english.your_rights) == 2
    assert "review" in english.your_rights[0]
    assert "contest" in english.your_rights[1]
    swedish = wording.sentences(made, wording.Language.SV)
    assert "granskar" in swedish.your_rights[0]
    assert "bestrida" in swedish.your_rights[1]

    ordinary = decide(web(experience("banner")), given)
    plain = explain(ordinary, allowance=given, uses=AtomUses(DEMO), answered_atoms=frozenset())
    assert not plain.significant
    assert "significant" not in plain.to_json()  # every other explanation reads as before
    assert wording.sentences(plain, wording.Language.EN).your_rights == ()
    assert all(len(words) == len(wording.Language) and all(words) for words in wording.RIGHTS)


def test_every_code_has_words_in_every_language() -> None:
    for table, keys in (
        (wording.LEVELS, tuple(Level)),
        (wording.STRATEGIES, tuple(Strategy)),
        (wording.SKIPS, tuple(Skip)),
    ):
        assert set(table) == set(keys)
        assert all(len(words) == len(wording.Language) and all(words) for words in table.values())
    from tactful.decide.explain import _CONSENT_CODES

    assert set(wording.CHANGES) == _CONSENT_CODES
    assert not {str(s) for s in Skip} & {str(c) for c in Code}  # a step's code names one table


@given(catalogs(), ledgers, regime_sets, facts(), signals, st.data())
def test_explanations_carry_codes_never_values_and_survive_the_log(
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
    values = {name: f"SECRET-{i}" for i, name in enumerate(catalog.atoms)}
    view = build_view(given_allowance, ProfileSnapshot(values=values, request=values))
    placement = data.draw(placements(catalog))
    answer = walk(placement, allowance=given_allowance, view=view, at=NOW + timedelta(0), steps=Steps())
    chosen = next((e.atoms for e in placement.experiences if e.key == answer.experience), frozenset())

    made = explain(answer, allowance=given_allowance, uses=AtomUses(catalog), answered_atoms=chosen)

    assert Explanation.from_json(made.to_json()) == made
    assert all(step.level > made.level for step in made.not_higher)
    assert made.level <= made.ceiling
    if made.level > Level.ALL:
        assert Purpose.SEGMENTS in {Purpose(p) for p in made.legal_basis}
    for language in wording.Language:
        said = wording.sentences(made, language)
        text = " ".join(said.summary + said.data_used + said.why_not_higher + said.what_would_change)
        assert "SECRET-" not in text
        assert "{" not in text
    assert "SECRET-" not in repr(made.to_json())


def test_the_atoms_of_an_answer_are_made_once_per_pair_and_name_each_category() -> None:
    uses = AtomUses(DEMO)
    read = frozenset({"context.device.type", "traits.first_name"})
    answered = frozenset({"traits.first_name", "computed.lifetime_value"})

    made = uses(read, answered)

    assert [(a.atom, a.category, a.weight) for a in made] == [
        ("computed.lifetime_value", str(DEMO.atoms["computed.lifetime_value"].category), 0.5),
        ("context.device.type", str(DEMO.atoms["context.device.type"].category), 0.0),
        ("traits.first_name", str(DEMO.atoms["traits.first_name"].category), 0.5),
    ]
    assert uses(frozenset(read), frozenset(answered)) is made  # equal sets, one tuple
    assert uses(read, frozenset()) != made
    assert [a.category for a in uses(frozenset({"traits.nowhere"}), frozenset())] == ["undeclared"]
