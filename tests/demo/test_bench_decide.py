"""The decision benchmark compares like with like: both sides pick the same experience for every
subject, split the fifth alike, and GrowthBook can neither track nor reach the network."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import decide
from bench.report import Target

BUILT = decide.scenario()
SPLIT_CONTENT = {str(BUILT.variations["runners", key].content): key for key in decide.SPLIT}


def both(subject: decide.Subject, gb: Any) -> tuple[Any, Any]:
    ours = decide.tactful_decide(BUILT, subject, decide.view_of(subject, BUILT.allowance))
    return ours, decide.growthbook_decide(gb, decide.attributes_of(subject))


@given(st.randoms(use_true_random=False), st.booleans())
@settings(max_examples=300)
def test_both_sides_choose_the_same_experience(rng: random.Random, matching: bool) -> None:
    subject = decide.subject(rng, matching=matching)
    ours, theirs = both(subject, decide.growthbook(BUILT))
    assert (theirs.ruleId or None) == ours.experience
    if ours.experience is None:
        assert theirs.source == "defaultValue"
        assert theirs.value == ours.content
    elif ours.experience == "runners":
        assert theirs.source == "experiment"
        assert str(theirs.value) in SPLIT_CONTENT
    else:
        assert theirs.source == "force"
        assert theirs.value == ours.content
    direct = decide.direct_decide(BUILT, subject, decide.view_of(subject, BUILT.allowance))
    assert direct == (None if ours.experience is None else (ours.experience, ours.variation))


def test_the_timed_subjects_all_reach_the_fifth_and_split_it_alike() -> None:
    rng = random.Random(20260303)
    gb = decide.growthbook(BUILT)
    ours: Counter[str] = Counter()
    theirs: Counter[str] = Counter()
    for _ in range(4000):
        answer, result = both(decide.subject(rng), gb)
        assert answer.experience == result.ruleId == "runners"
        assert [p.experience for p in answer.passed] == [key for key, _ in decide.AUDIENCES[:4]]
        ours[answer.variation] += 1
        theirs[SPLIT_CONTENT[str(result.value)]] += 1
    for counts in (ours, theirs):
        assert set(counts) == set(decide.SPLIT)
        assert 0.46 < counts["control"] / 4000 < 0.54


def test_growthbook_never_tracks_nor_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    import growthbook.growthbook as module

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("GrowthBook tried to reach the network")

    monkeypatch.setattr(module.FeatureRepository, "_get", refuse)
    monkeypatch.setattr(module.FeatureRepository, "_post", refuse)
    gb = decide.growthbook(BUILT)
    for _ in range(50):
        both(decide.subject(random.Random(7)), gb)
    assert gb._trackingCallback is None
    assert gb._featureUsageCallback is None
    assert gb.sticky_bucket_service is None
    assert gb._sticky_bucket_assignment_docs == {}


def test_a_quick_run_reports_both_sides_and_the_ratio() -> None:
    section = decide.run(pairs=2, quick=True, subjects=20)
    assert section["growthbook_version"] == "4.0.0"
    for key in ("tactful_us", "direct_us", "growthbook_us", "ratio"):
        assert len(section[key]["runs"]) == 2
        assert section[key]["median"] > 0
    assert section["targets"]["ratio"]["target"] == "<= 1"
    assert [row.label for row in decide.rows(section)][-1].startswith("tactful walk / growthbook")


def test_a_target_at_most_its_bound_passes_on_the_bound() -> None:
    assert Target("ratio", 1.0, "<=", 1.0).verdict == "PASS"
    assert Target("ratio", 1.01, "<=", 1.0).verdict == "MISS"
