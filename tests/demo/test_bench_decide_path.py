"""The decision path benchmark times what serving runs: experiences the publish check accepts under the
demo catalog, a subject who reaches 1:1, the split and the greeting answered, and the same subjects
that the GrowthBook side evaluates."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from typing import Any

from bench import decide, decide_path
from tactful.consent.fold import fold
from tactful.decide.checks import ExperienceData, VariationData
from tactful.decide.publishing import check_publish
from tactful.types import Level

BUILT = decide_path.setup()


def people(count: int, seed: int = 20260303) -> list[decide_path.Inputs]:
    rng = random.Random(seed)
    state = fold(decide_path.ledger())
    return [decide_path.inputs(decide.subject(rng), rng, state) for _ in range(count)]


def _time(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def test_every_experience_passes_the_publish_check_at_its_computed_level() -> None:
    audiences = dict(decide.AUDIENCES)
    levels = {}
    for published in decide_path.published():
        snapshot = published.snapshot
        data = ExperienceData(
            strategy=snapshot["strategy"],
            starts_at=_time(snapshot["starts_at"]),
            ends_at=_time(snapshot["ends_at"]),
            variations=[
                VariationData(v["key"], v["content"], v.get("templates", {}), v["weight"])
                for v in snapshot["variations"]
            ],
        )
        verdict = check_publish(
            data,
            channel="web",
            significant_effect=False,
            audience=audiences.get(snapshot["audience"] or ""),
            catalog=BUILT.catalog,
            now=decide_path.AT,
        )
        assert verdict.ok, verdict.problems
        levels[published.key] = verdict.level
    served = {e.key: e.level for p in BUILT.placements for e in p.experiences}
    assert served == levels
    assert levels["runners"] is levels["greeting_by_name"] is Level.ONE


def test_every_timed_subject_reaches_1_1_gets_the_split_and_is_greeted_by_name() -> None:
    variations: Counter[str] = Counter()
    for given in people(500):
        decided = decide_path.decide(BUILT, given)
        hero, greeting = decided.served
        assert hero.answer.ceiling is Level.ONE
        assert (hero.answer.experience, hero.answer.level) == ("runners", Level.ONE)
        assert [p.experience for p in hero.answer.passed] == ["loyal_mobile"]
        assert hero.answer.propensity == 0.5
        variations[hero.answer.variation] += 1
        name = given.stored["traits.first_name"]
        assert greeting.answer.content == {"title": f"Hello {name}!"}
        assert greeting.answer.level is Level.ONE
        assert [e.placement for e in decided.entries] == ["home_hero", "greeting"]
        assert all(str(name) not in repr(e) for e in decided.entries)
    assert set(variations) == set(decide.SPLIT)
    assert 0.42 < variations["control"] / 500 < 0.58


def test_growthbook_evaluates_the_same_subjects_and_reaches_the_split() -> None:
    rng = random.Random(20260303)
    gb = decide.growthbook(decide.scenario())
    for _ in range(200):
        result = decide.growthbook_decide(gb, decide.attributes_of(decide.subject(rng)))
        assert (result.source, result.ruleId) == ("experiment", "runners")


def test_a_quick_run_reports_the_path_its_stages_and_the_ratio() -> None:
    section = decide_path.run(pairs=2, quick=True, subjects=20)
    for key in ("tactful_us", "growthbook_us", "gate_us", "view_us", "serve_us", "ratio"):
        assert len(section[key]["runs"]) == 2
        assert section[key]["median"] > 0
    assert section["targets"]["ratio"]["target"] == "<= 3"
    assert section["placements"] == ["home_hero", "greeting"]
    assert [row.label for row in decide_path.rows(section)][-1].startswith("tactful path / growthbook")
