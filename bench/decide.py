"""The decision benchmark against GrowthBook: conditions plus assignment for one placement.

One placement with five experiences at one level, walked in priority order; the first four are rules
(one variation each) whose audiences the subjects miss, the fifth a two-way split they all match:

    1  sweden_mobile   country + device                 (misses on the country)
    2  nordic_members  $in on the country and the tier  (misses on the country)
    3  loyal_mobile    a numeric $gte and an $in        (misses on the value)
    4  sale_visitors   a $regex on the page path        (misses on the path)
    5  runners         all of these and an $elemMatch over viewed products: matches; split 50/50

The same five as one GrowthBook feature: four force rules with the same conditions and, fifth, an
experiment rule with two variations, equal weights and coverage 1 (`growthbook` from PyPI, the
version is recorded). GrowthBook gets flat attribute names (`country`, `deviceType`, ...) with the
conditions renamed to them, its fastest idiom; it reads nested paths when names hold dots.

    tactful     walk() of the placement with Steps that evaluate each experience's compiled audience
                against the subject's SubjectView, assign() its allocation (BLAKE2b draw for the
                split), and render plain content (the variation's content as it is). The walk's own
                checks (live, schedule, ceiling, atoms in the Allowance) are in the timed call; the
                gate, the view's construction, templates, explanations and the log are not.
    direct      the same without the walk: each audience in order, then assign() (informational).
    growthbook  gb.set_attributes(subject) then gb.eval_feature("home_hero") on one reused instance:
                no tracking callback, no feature-usage callback, no sticky bucketing, no client key
                or API host (so it never reaches the network).

Each subject's SubjectView and GrowthBook attribute dict are built before timing (the same data);
every timed call decides one subject, cycling through a few hundred with distinct user ids. A pair is
one run of each side (which goes first alternates), each the median of many calls timed one by one;
the figures are the medians over the pairs, and the ratio is the median of the pairs' own ratios.
`python -m bench.decide [--quick]`.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

from bench.report import Row, Target, figure_row, pairs_main
from bench.stats import median_us, summary
from tactful.decide.assignment import Allocation, Assigned, Strategy, Unit, UnitKind, assign
from tactful.decide.assignment import Variation as Share
from tactful.decide.conditions import Compiled, Problems, compile
from tactful.decide.walk import (
    Answer,
    Channel,
    Drawn,
    Experience,
    Matched,
    Placement,
    Rendered,
    Variation,
    walk,
)
from tactful.policy import Allowance, SubjectView
from tactful.policy.verdicts import Code, Verdict
from tactful.types import LEVEL_PURPOSE, Level

SECTION = "decide"
TITLE = "Decision: conditions + assignment against GrowthBook"
TARGET_RATIO = 1.0
FEATURE = "home_hero"
AT = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)

GB_NAMES: Mapping[str, str] = {
    "context.location.country": "country",
    "context.device.type": "deviceType",
    "context.page.path": "pagePath",
    "traits.loyalty_tier": "loyaltyTier",
    "computed.lifetime_value": "lifetimeValue",
    "events.product_viewed": "productViewed",
}
"""Each atom the audiences read, and the GrowthBook attribute that carries the same value."""

AUDIENCES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sweden_mobile", {"context.location.country": "SE", "context.device.type": "mobile"}),
    (
        "nordic_members",
        {
            "context.location.country": {"$in": ["SE", "NO", "DK", "FI", "IS"]},
            "traits.loyalty_tier": {"$in": ["gold", "platinum"]},
        },
    ),
    (
        "loyal_mobile",
        {"computed.lifetime_value": {"$gte": 5000}, "context.device.type": {"$in": ["mobile", "tablet"]}},
    ),
    ("sale_visitors", {"context.page.path": {"$regex": "^/(sale|outlet)/"}}),
    (
        "runners",
        {
            "context.location.country": {"$in": ["DE", "AT", "CH", "NL"]},
            "context.device.type": "desktop",
            "computed.lifetime_value": {"$gte": 100},
            "context.page.path": {"$regex": "^/(shoes|running)/"},
            "events.product_viewed": {"$elemMatch": {"category": "running", "price": {"$gte": 80}}},
        },
    ),
)
"""Each experience's key and audience, in priority order."""

SPLIT = ("control", "treatment")


@dataclass(frozen=True)
class Scenario:
    """Both sides, built once: Tactful's placement and what its steps read, GrowthBook's feature."""

    placement: Placement
    audiences: Mapping[str, Compiled]
    allocations: Mapping[str, Allocation]
    variations: Mapping[tuple[str, str], Variation]
    allowance: Allowance
    features: dict[str, Any]


def scenario() -> Scenario:
    created = AT - timedelta(days=30)
    experiences, audiences, allocations, variations = [], {}, {}, {}
    for priority, (key, document) in enumerate(AUDIENCES, start=1):
        compiled = compile(document)
        if isinstance(compiled, Problems):
            raise RuntimeError(f"{key}: {compiled}")
        audiences[key] = compiled
        keys = SPLIT if key == "runners" else (f"{key}_banner",)
        own = tuple(Variation(k, {"title": f"{key}: {k}"}) for k in keys)
        variations.update({(key, v.key): v for v in own})
        # Holdout 0: GrowthBook's experiment has coverage 1, so neither side holds anyone out.
        allocations[key] = Allocation(key, f"seed-{key}", tuple(Share(v.key, 1.0) for v in own), holdout=0.0)
        experiences.append(
            Experience(
                key=key,
                level=Level.SOME,
                priority=priority,
                created_at=created,
                atoms=compiled.atoms,
                variations=own,
                strategy=Strategy.SPLIT if len(own) > 1 else Strategy.RULE,
            )
        )
    default = Variation("default", {"title": "Welcome"})
    placement = Placement(FEATURE, Channel.WEB, default, tuple(experiences))
    rules: list[dict[str, Any]] = []
    for key, document in AUDIENCES:
        condition = {GB_NAMES[atom]: test for atom, test in document.items()}
        if key == "runners":
            rules.append({
                "id": key, "key": key, "condition": condition, "coverage": 1.0, "hashAttribute": "id",
                "variations": [variations[key, k].content for k in SPLIT], "weights": [0.5, 0.5],
            })  # fmt: skip
        else:
            content = variations[key, f"{key}_banner"].content
            rules.append({"id": key, "condition": condition, "force": content})
    features = {FEATURE: {"defaultValue": default.content, "rules": rules}}
    return Scenario(placement, audiences, allocations, variations, _allowance(), features)


def _allowance() -> Allowance:
    granted = Verdict(True, Code.CONSENT_GRANTED, legal_basis="consent")
    return Allowance(
        ceiling=Level.ONE,
        decide_atoms=frozenset(GB_NAMES),
        learn_atoms=frozenset(),
        purposes=dict.fromkeys(LEVEL_PURPOSE.values(), granted),
        refusals={},
        level_reasons={},
        may_learn=False,
    )


# -- subjects --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    user_id: str
    atoms: Mapping[str, object]


def subject(rng: random.Random, *, matching: bool = True) -> Subject:
    """A visitor: with `matching`, one the first four audiences miss and the fifth matches (values
    vary within that); without, one drawn from values that reach every audience or none."""
    views = [
        {"category": rng.choice(("running", "hiking", "tennis")), "price": rng.randrange(20, 200)}
        for _ in range(rng.randrange(1, 6))
    ]
    if matching:
        country, device, tier = rng.choice(("DE", "AT", "CH")), "desktop", rng.choice(("bronze", "silver"))
        value, path = rng.randrange(100, 5000), rng.choice(("/shoes/trail", "/running/road", "/shoes/"))
        views.append({"category": "running", "price": rng.randrange(80, 200)})
    else:
        country = rng.choice(("SE", "NO", "DE", "AT", "US"))
        device = rng.choice(("mobile", "tablet", "desktop"))
        tier = rng.choice(("bronze", "gold", "platinum"))
        value = rng.randrange(0, 8000)
        path = rng.choice(("/sale/shoes", "/outlet/", "/running/road", "/shoes/", "/about"))
    atoms = {
        "context.location.country": country,
        "context.device.type": device,
        "context.page.path": path,
        "traits.loyalty_tier": tier,
        "computed.lifetime_value": value,
        "events.product_viewed": views,
    }
    return Subject(f"u-{rng.getrandbits(64):016x}", atoms)


def view_of(given: Subject, allowance: Allowance) -> SubjectView:
    return SubjectView(allowance, given.atoms, allowance.decide_atoms)


def attributes_of(given: Subject) -> dict[str, Any]:
    return {"id": given.user_id, **{GB_NAMES[atom]: value for atom, value in given.atoms.items()}}


# -- the two sides ---------------------------------------------------------------------------------


class Steps:
    """The walk's steps for one subject: compiled audiences, assignment, content as it is."""

    __slots__ = ("_allocations", "_audiences", "_unit", "_variations")

    def __init__(self, built: Scenario, unit: Unit) -> None:
        self._audiences = built.audiences
        self._allocations = built.allocations
        self._variations = built.variations
        self._unit = unit

    def matches(self, experience: Experience, view: Mapping[str, object]) -> Matched:
        outcome = self._audiences[experience.key].evaluate(view)
        return Matched(outcome.matched, outcome.withheld is not None, outcome.atoms_read)

    def assign(self, experience: Experience, view: Mapping[str, object]) -> Drawn:
        allocation = self._allocations[experience.key]
        outcome = assign(allocation, self._unit, may_hash_anonymous_id=False)
        if isinstance(outcome, Assigned):
            return Drawn(allocation, outcome, self._variations[experience.key, outcome.variation])
        return Drawn(allocation, outcome)

    def render(self, variation: Variation, view: Mapping[str, object]) -> Rendered:
        return Rendered(variation.content)


def tactful_decide(built: Scenario, given: Subject, view: SubjectView) -> Answer:
    steps = Steps(built, Unit(UnitKind.USER_ID, given.user_id))
    return walk(built.placement, allowance=built.allowance, view=view, at=AT, steps=steps)


def direct_decide(built: Scenario, given: Subject, view: SubjectView) -> tuple[str, str] | None:
    """Conditions then assignment, without the walk: the experience and variation, or None."""
    unit = Unit(UnitKind.USER_ID, given.user_id)
    for experience in built.placement.experiences:
        if built.audiences[experience.key].evaluate(view).matched:
            outcome = assign(built.allocations[experience.key], unit, may_hash_anonymous_id=False)
            if isinstance(outcome, Assigned):
                return experience.key, outcome.variation
    return None


def growthbook(built: Scenario) -> Any:
    """One GrowthBook instance, reused for every subject, that can neither track nor reach the network."""
    from growthbook import GrowthBook  # the bench's dev dependency, never the product's

    gb = GrowthBook(features=built.features, on_experiment_viewed=None, sticky_bucket_service=None)
    if gb._client_key or gb._api_host or gb._remoteEval or gb.sticky_bucket_service is not None:
        raise RuntimeError("the GrowthBook instance could reach the network or keep sticky buckets")
    return gb


def growthbook_decide(gb: Any, attributes: dict[str, Any]) -> Any:
    gb.set_attributes(attributes)
    return gb.eval_feature(FEATURE)


# -- timing ----------------------------------------------------------------------------------------


def run(*, pairs: int = 5, quick: bool = False, subjects: int = 500) -> dict[str, Any]:
    """Measure; return the section for the results file."""
    iterations = 500 if quick else 20_000
    built = scenario()
    rng = random.Random(20260303)
    people = [subject(rng) for _ in range(subjects)]
    views = [view_of(p, built.allowance) for p in people]
    attributes = [attributes_of(p) for p in people]
    gb = growthbook(built)
    count = len(people)

    def ours(i: int) -> object:
        return tactful_decide(built, people[i % count], views[i % count])

    def direct(i: int) -> object:
        return direct_decide(built, people[i % count], views[i % count])

    def theirs(i: int) -> object:
        return growthbook_decide(gb, attributes[i % count])

    for call in (ours, direct, theirs):  # warm up every path once
        median_us(call, min(iterations, 1000))
    tactful, plain, growth, ratios = [], [], [], []
    for pair in range(max(pairs, 1)):
        sides = (ours, theirs) if pair % 2 == 0 else (theirs, ours)
        timed = {side: median_us(side, iterations) for side in sides}
        tactful.append(timed[ours])
        growth.append(timed[theirs])
        ratios.append(timed[ours] / timed[theirs])
        plain.append(median_us(direct, iterations))
    section: dict[str, Any] = {
        "growthbook_version": version("growthbook"),
        "experiences": len(AUDIENCES),
        "subjects": count,
        "pairs": max(pairs, 1),
        "calls_per_run": iterations,
        "tactful_us": summary(tactful, digits=2),
        "direct_us": summary(plain, digits=2),
        "growthbook_us": summary(growth, digits=2),
        "ratio": summary(ratios, digits=3),
    }
    target = _target(section)
    section["targets"] = {"ratio": target.as_json()}
    if quick:
        section["quick"] = True
    return section


def _target(section: dict[str, Any]) -> Target:
    return Target("tactful / growthbook", section["ratio"]["median"], "<=", TARGET_RATIO)


def rows(section: dict[str, Any]) -> list[Row]:
    return [
        figure_row(section, "tactful: walk with conditions + assignment", "tactful_us"),
        figure_row(section, "tactful: conditions + assignment, no walk", "direct_us"),
        figure_row(
            section,
            f"growthbook {section['growthbook_version']}: set_attributes + eval_feature",
            "growthbook_us",
        ),
        figure_row(
            section, "tactful walk / growthbook (median of pairs)", "ratio", unit="", target=_target(section)
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return pairs_main(
        argv,
        prog="python -m bench.decide",
        description=__doc__,
        run=run,
        section=SECTION,
        title=TITLE,
        rows=rows,
    )


if __name__ == "__main__":
    sys.exit(main())
