"""A person's review binds the walk (DESIGN §1, GDPR Art. 22(3)): an experience overturned for this
subject is passed over with its own code, its audience unread, nothing significant below answers in
its place, the explanation says so in codes and in words; over random lineups and consents, it never
answers and everything it does not touch answers as before."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.decide import overrides
from tactful.decide.explain import AtomUses, Explanation, explain
from tactful.decide.walk import Answer, Placement, Skip, walk
from tactful.decide.wording import SKIPS, Language, sentences
from tactful.main import default_catalog_path
from tactful.types import Level
from tests.decide.test_walk import placements
from tests.decide.walking import NOW, Steps, allowance, experience, web
from tests.policy.strategies import catalogs

DEMO: Catalog = load_catalog(default_catalog_path())
EVERYONE = Steps(matching=frozenset({"price", "cheaper", "banner", "greeting"}))
PRICE = experience("price", Level.SOME, significant=True, atoms=frozenset({"traits.first_name"}))
CHEAPER = experience("cheaper", priority=0, significant=True)
BANNER = experience("banner")


def _walk(placement: Placement, overturned: frozenset[str], *, significant: bool = True) -> Answer:
    given = allowance(significant=significant)
    return walk(placement, allowance=given, view={}, at=NOW, steps=EVERYONE, overturned=overturned)


def test_an_overturned_experience_is_passed_over_and_the_walk_goes_on_below() -> None:
    placement = web(PRICE, BANNER)
    assert _walk(placement, frozenset()).experience == "price"

    answer = _walk(placement, frozenset({"price"}))

    assert (answer.experience, answer.significant) == ("banner", False)
    [passed] = answer.passed
    assert (passed.experience, passed.level, passed.skip) == ("price", Level.SOME, Skip.OVERTURNED)
    assert "traits.first_name" not in answer.atoms_read  # its audience was never asked
    assert not answer.downgraded  # a person's review, not the person's consent


def test_nothing_significant_below_an_overturned_experience_answers_in_its_place() -> None:
    placement = web(PRICE, CHEAPER, BANNER)
    answer = _walk(placement, frozenset({"price"}))
    assert answer.experience == "banner"
    assert [(p.experience, p.skip) for p in answer.passed] == [
        ("price", Skip.OVERTURNED),
        ("cheaper", Skip.SIGNIFICANT_FALLBACK),
    ]
    # Overturning the lower one alone leaves the higher one answering.
    assert _walk(placement, frozenset({"cheaper"})).experience == "price"
    # Only the default is left when nothing ordinary is below.
    alone = _walk(web(PRICE, CHEAPER), frozenset({"price"}))
    assert (alone.experience, alone.variation, alone.level) == (None, "default", Level.ALL)


def test_an_overturned_experience_that_would_not_apply_anyway_keeps_its_own_reason() -> None:
    placement = web(PRICE, CHEAPER, BANNER)
    # Without the explicit consent, neither significant experience applies: that is the reason.
    refused = _walk(placement, frozenset({"price"}), significant=False)
    assert [(p.experience, p.skip) for p in refused.passed] == [
        ("price", Skip.SIGNIFICANT_EFFECT),
        ("cheaper", Skip.SIGNIFICANT_EFFECT),
    ]
    # A paused experience is not running: the overturn did not pass it over, so what is below it
    # competes as it would without it.
    paused = experience("price", Level.SOME, significant=True, live=False)
    answer = _walk(web(paused, CHEAPER, BANNER), frozenset({"price"}))
    assert answer.experience == "cheaper"
    assert [(p.experience, p.skip) for p in answer.passed] == [("price", Skip.NOT_LIVE)]


def test_the_explanation_names_the_review_in_codes_at_any_level_and_in_both_languages() -> None:
    same_level = web(experience("price", Level.MANY, 0, significant=True), experience("banner", Level.MANY))
    answer = _walk(same_level, frozenset({"price"}))
    assert (answer.experience, answer.level) == ("banner", Level.MANY)
    explained = _explained(answer)
    # Same level as the answer: not a reason it is no higher, and still why it is what it is.
    assert explained.not_higher == ()
    [step] = explained.overturned
    assert (step.level, step.code, step.experience) == (Level.MANY, "overturned_by_review", "price")
    made = explained.to_json()
    assert made["overturned"] == [{"level": "1:many", "code": "overturned_by_review", "experience": "price"}]
    assert Explanation.from_json(made) == explained

    english = sentences(explained, Language.EN)
    assert any("reviewed an earlier decision about you" in s for s in english.summary)
    swedish = sentences(explained, Language.SV)
    assert any("granskade ett tidigare beslut om dig" in s for s in swedish.summary)
    assert english.your_rights == ()  # the answer itself has no significant effect

    above = _explained(_walk(web(PRICE, BANNER), frozenset({"price"})))
    assert [s.code for s in above.not_higher] == ["overturned_by_review"]
    words = sentences(above, Language.EN)
    said = [s for s in (*words.summary, *words.why_not_higher) if "reviewed an earlier decision" in s]
    assert len(said) == 1, "said once, in the summary"
    assert SKIPS[Skip.OVERTURNED][0].startswith("a person at the shop reviewed")


def test_an_explanation_without_an_overturn_reads_as_before() -> None:
    explained = _explained(_walk(web(PRICE, BANNER), frozenset()))
    assert "overturned" not in explained.to_json()
    assert len(sentences(explained, Language.EN).summary) == 2


def _explained(answer: Answer) -> Explanation:
    given = allowance(significant=True)
    return explain(answer, allowance=given, uses=AtomUses(DEMO), answered_atoms=answer.experience_atoms)


# -- the read: only when a significant experience is asked for, never for a stranger ------------


class Reader:
    def __init__(self, found: frozenset[str]) -> None:
        self.found, self.calls = found, list[frozenset[str]]()

    def __call__(
        self, session: Session, *, subject_id: uuid.UUID, experiences: frozenset[str]
    ) -> frozenset[str]:
        self.calls.append(experiences)
        return self.found & experiences


def _read(reader: Reader, subject: uuid.UUID | None, asked: Sequence[Placement]) -> frozenset[str]:
    return overrides.overturned_for(None, reader=reader, subject_id=subject, placements=asked)  # type: ignore[arg-type]


def test_reviews_are_read_only_for_a_known_subject_and_a_significant_experience_asked_for() -> None:
    reader = Reader(frozenset({"price"}))
    ordinary = Placement("hero", web().channel, web().default, (BANNER,))
    prices = web(PRICE, CHEAPER, BANNER)
    assert _read(reader, uuid.uuid4(), [ordinary]) == frozenset()
    assert _read(reader, None, [prices]) == frozenset()
    assert reader.calls == [], "nothing read"
    assert _read(reader, uuid.uuid4(), [ordinary, prices]) == frozenset({"price"})
    assert reader.calls == [frozenset({"price", "cheaper"})], "one read, for the significant keys"
    assert overrides.none(None, subject_id=uuid.uuid4(), experiences=frozenset({"price"})) == frozenset()  # type: ignore[arg-type]


# -- over random lineups, consents and overturns ------------------------------------------------


@settings(max_examples=200)
@given(catalogs(), st.data())
def test_an_overturned_experience_never_answers_and_the_rest_answer_as_before(
    catalog: Catalog, data: st.DataObject
) -> None:
    """Whatever the catalog, Allowance, experiences and overturns: no overturned experience answers;
    an answer from above every overturned experience is the answer without overturns; once an
    overturned experience was passed over for it, nothing significant below it answers."""
    names = sorted(catalog.atoms)
    mostly = st.sampled_from((True, True, True, False))
    every = data.draw(mostly)  # often everything: else few experiences could apply at all
    given_allowance = allowance(
        ceiling=Level.ONE if every else data.draw(st.sampled_from(tuple(Level))),
        atoms=frozenset(names if every else data.draw(st.lists(st.sampled_from(names), unique=True))),
        significant=data.draw(mostly),
    )
    view = {name: f"value of {name}" for name in given_allowance.decide_atoms}
    placement = data.draw(placements(catalog, significant=st.booleans()))
    keys = [e.key for e in placement.experiences]
    # What the reader hands the walk: significant keys (but the walk passes over any it is given).
    significant = sorted(e.key for e in placement.experiences if e.significant)
    pool = significant if significant and data.draw(mostly) else keys
    overturned = frozenset(
        data.draw(st.lists(st.sampled_from(pool), min_size=1, unique=True)) if pool else ()
    )
    rarely = st.sampled_from((False, False, False, True))
    steps = Steps(held_out={e.key: 0.05 for e in placement.experiences if data.draw(rarely)})

    before = walk(placement, allowance=given_allowance, view=view, at=NOW, steps=steps)
    answer = walk(placement, allowance=given_allowance, view=view, at=NOW, steps=steps, overturned=overturned)

    assert answer.experience not in overturned
    assert answer.level <= given_allowance.ceiling
    assert answer.content is not None
    position = {key: i for i, key in enumerate(e.key for e in placement.ordered)}
    first = min((position[k] for k in overturned), default=len(keys))
    if before.experience is None:
        assert answer.experience is None  # an overturn only takes answers away
    elif position[before.experience] < first:
        assert (answer.experience, answer.variation, answer.propensity) == (
            before.experience, before.variation, before.propensity,
        )  # fmt: skip
    assert {p.experience for p in answer.passed if p.skip is Skip.OVERTURNED} <= overturned
    passed = [
        position[p.experience]
        for p in answer.passed
        if p.skip is Skip.OVERTURNED and p.experience in significant
    ]
    if passed and answer.experience is not None:
        below = position[answer.experience] > min(passed)
        assert not (below and answer.significant), "nothing significant replaces an overturned one"
    stopped = passed and any(p.skip is Skip.SIGNIFICANT_FALLBACK for p in answer.passed)
    event("an overturn passed over" if passed else "no overturn in the way")
    event("a significant experience below it stopped" if stopped else "none stopped below")
