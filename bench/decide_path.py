"""The whole in-process decision path against GrowthBook's evaluation: from the seam's inputs, already
read, to the answers and their log entries.

    consent state, flags, traits ──allowance_from (the process's compiled gate)──▶ Allowance
    Segment context ──request_atoms──▶ request atoms ─┐
    stored atoms ─────────────────────────────────────┴──build_view──▶ SubjectView
    decisions.serve: engine.decide per placement (walk, conditions, assignment, render, explain in
                     codes, a decision id) ──▶ Served ──▶ decision log entries (not written)

This is the code `decisions.decide` runs after its reads (`subject_allowance` is a read, then
`allowance_from`, then a `ProfileSnapshot` that `build_view` wraps; `serve` does the rest), with the
demo catalog, the default policy settings (GDPR: the demo controller is established in DE) and its
gate compiled once, as a serving process holds them. Persistence is left out (finding the subject,
reading its ledger and atoms, writing the log), and so is wording: sentences are made only when an
explanation is read.

Two placements, built by `lineup.build` from published snapshots as `lineup_store.load` builds them from
rows, so their levels are computed from the demo catalog:

    home_hero   the five experiences of `bench.decide` (same audiences, priorities and split). Level
                beats priority: the two that read `computed.lifetime_value` are 1:1 and come first
                (loyal_mobile, which the subjects miss, then runners, which they match and which
                splits them 50/50); the 1:few, 1:some and 1:many ones below are not reached.
    greeting    a 1:1 template for everyone, "Hello {{ traits.first_name | default('there') }}!",
                rendered in the sandbox, over a 1:all default.

Each subject has granted every purpose (a folded 20-event ledger: ceiling 1:1), a stored first name,
tier, lifetime value, viewed products, country and age range, and a request context (country,
device, page, locale). The consent state a call receives is a fresh copy, made before the timed call,
so that the gate never finds its reading of an earlier call: every request folds its subject's
ledger again. GrowthBook's side is `bench.decide`'s: `set_attributes` + `eval_feature` of the
five-rule feature, the fifth a two-way experiment, over the same subjects' attributes.

A pair is one run of each side (which goes first alternates), each the median of many calls timed
one by one; the figures are the medians over the pairs, and the ratio is the median of the pairs' own
ratios. Beside them, for finding where the time goes, each stage timed alone: the gate (a fresh
state again), the view and `serve` (one Allowance and one view per subject, reused). They add up to
less than the whole: the whole also finds the request atoms, and runs over a larger working set.
`python -m bench.decide_path [--quick]`.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version
from typing import Any

from bench import decide as walk_bench
from bench.report import Row, Target, figure_row, pairs_main
from bench.stats import median_us, summary
from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.config import PolicySettings
from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.consent.gatekeeper import PolicyContext, allowance_from
from tactful.consent.regimes import configured_regimes
from tactful.consent.schemas import SubjectFlags
from tactful.decide import decisions, lineup
from tactful.decide.context import request_atoms
from tactful.decide.walk import Channel, Placement, Variation
from tactful.main import default_catalog_path
from tactful.policy import ConsentSource, ConsentState, ProfileSnapshot, RequestSignals, build_view
from tactful.types import Purpose

SECTION = "decide_path"
TITLE = "Decision path: gate, view, walk, render, explain, entries against GrowthBook"
TARGET_RATIO = 3.0
AT = walk_bench.AT
PLACEMENTS = (walk_bench.FEATURE, "greeting")
GREETING = "Hello {{ traits.first_name | default('there') }}!"
FIRST_NAMES = ("Ada", "Björn", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas")
_CONTEXT_PATHS: Mapping[str, tuple[str, ...]] = {
    "context.location.country": ("location", "country"),
    "context.device.type": ("device", "type"),
    "context.page.path": ("page", "path"),
}
"""The request atoms of `bench.decide`'s subjects, and where Segment's context object carries them."""


@dataclass(frozen=True)
class Setup:
    """What a serving process holds: the catalog, its policy context (gate compiled) and the lineup."""

    catalog: Catalog
    policy: PolicyContext
    lineup: lineup.Lineup
    placements: Sequence[Placement]


def _published(key: str, placement: str, priority: int, variations: list[dict[str, Any]]) -> lineup.Published:
    snapshot = {
        "placement": placement, "description": "", "priority": priority, "status": "live",
        "starts_at": None, "ends_at": None, "holdout": 0.0,
        "strategy": "split" if len(variations) > 1 else "rule", "significant_effect": False,
        "namespace": None, "audience": key if placement == walk_bench.FEATURE else None,
        "variations": variations, "seed": f"seed-{key}",
    }  # fmt: skip
    return lineup.Published(key, AT - timedelta(days=30), 1, snapshot)


def published() -> list[lineup.Published]:
    """The experiences as their published snapshots: `bench.decide`'s five (holdout 0, as GrowthBook's
    coverage 1), and the greeting."""
    found = []
    for priority, (key, _) in enumerate(walk_bench.AUDIENCES, start=1):
        keys = walk_bench.SPLIT if key == "runners" else (f"{key}_banner",)
        variations = [{"key": k, "content": {"title": f"{key}: {k}"}, "weight": 1.0} for k in keys]
        found.append(_published(key, walk_bench.FEATURE, priority, variations))
    by_name = {"key": "by_name", "content": {"title": "Hello"}, "templates": {"title": GREETING}}
    found.append(_published("greeting_by_name", "greeting", 1, [by_name | {"weight": 1.0}]))
    return found


def setup() -> Setup:
    catalog = load_catalog(default_catalog_path())
    settings = PolicySettings()
    policy = PolicyContext(catalog, settings, configured_regimes(settings))
    policy.gate  # noqa: B018  # compiled once, before any timing, as a serving process does
    default = Variation("default", {"title": "Welcome"})
    placements = {key: Placement(key, Channel.WEB, default) for key in PLACEMENTS}
    built = lineup.build(
        placements,
        published(),
        dict(walk_bench.AUDIENCES),
        catalog=catalog,
        catalog_version="bench",
        mark=(0, None),
    )
    return Setup(catalog, policy, built, decisions.placements_of(built, PLACEMENTS))


def ledger() -> list[ConsentEvent]:
    """Twenty events: every purpose granted on a banner, then again through a TC string, a marketing
    e-mail withdrawal and grant, a sale-or-share refusal."""
    t0 = AT - timedelta(days=20)
    granted = [p for p in Purpose if p is not Purpose.SALE_OR_SHARE]
    events = [
        ConsentEvent(ConsentAction.GRANTED, t0 + timedelta(minutes=i), ConsentSource.BANNER, purpose=p)
        for i, p in enumerate(granted)
    ]
    events += [
        ConsentEvent(ConsentAction.GRANTED, t0 + timedelta(days=1, minutes=i), ConsentSource.TCF, purpose=p)
        for i, p in enumerate(granted)
    ]
    later = t0 + timedelta(days=2)
    events += [
        ConsentEvent(ConsentAction.WITHDRAWN, later, ConsentSource.API, purpose=Purpose.MARKETING_EMAIL),
        ConsentEvent(ConsentAction.DENIED, later, ConsentSource.API, purpose=Purpose.SALE_OR_SHARE),
    ]
    events += [
        ConsentEvent(ConsentAction.GRANTED, later + timedelta(days=i + 1), ConsentSource.BANNER, purpose=p)
        for i, p in enumerate((Purpose.MARKETING_EMAIL, *granted))
    ][: 20 - len(events)]
    assert len(events) == 20
    return events


@dataclass(frozen=True)
class Inputs:
    """One subject as the seam has read it, and what its request asks."""

    subject_id: uuid.UUID
    consent: ConsentState
    flags: SubjectFlags
    stored: Mapping[str, object]
    """The stored atoms (traits, computed, ...): the gate reads its few, the view the rest."""
    ask: decisions.Ask


def inputs(given: walk_bench.Subject, rng: random.Random, consent: ConsentState) -> Inputs:
    context: dict[str, Any] = {"locale": "de-DE"}
    stored: dict[str, object] = {
        "traits.first_name": rng.choice(FIRST_NAMES),
        "traits.country": "DE",
        "traits.age_range": "25-34",
    }
    for atom, value in given.atoms.items():
        where = _CONTEXT_PATHS.get(atom)
        if where is None:
            stored[atom] = value
        else:
            context.setdefault(where[0], {})[where[1]] = value
    ask = decisions.Ask(PLACEMENTS, user_id=given.user_id, context=context)
    return Inputs(uuid.UUID(int=rng.getrandbits(128)), consent, SubjectFlags(), stored, ask)


def decide(built: Setup, given: Inputs) -> decisions.Decided:
    """The path timed: what `decisions.decide` does once the subject's inputs are read."""
    ask, catalog = given.ask, built.catalog
    request = request_atoms(catalog, ask.context or {})
    allowance = allowance_from(
        built.policy,
        consent=given.consent,
        flags=given.flags,
        traits=given.stored,
        at=AT,
        signals=RequestSignals(gpc=ask.gpc),
    )
    view = build_view(allowance, ProfileSnapshot(values=given.stored, request=request))
    return decisions.serve(
        lineup=built.lineup,
        placements=decisions.placements_of(built.lineup, ask.placements),
        allowance=allowance,
        view=view,
        ask=ask,
        at=AT,
        subject_id=given.subject_id,
    )


# -- timing ----------------------------------------------------------------------------------------


def run(*, pairs: int = 5, quick: bool = False, subjects: int = 500) -> dict[str, Any]:
    """Measure; return the section for the results file."""
    iterations = 500 if quick else 20_000
    built = setup()
    rng = random.Random(20260303)
    state = fold(ledger())
    people = [walk_bench.subject(rng) for _ in range(subjects)]
    given = [inputs(p, rng, state) for p in people]
    attributes = [walk_bench.attributes_of(p) for p in people]
    gb = walk_bench.growthbook(walk_bench.scenario())
    count = len(given)
    fresh: list[Inputs] = []

    def renew() -> None:
        # A consent state never read before for every call: made before the timed calls, as the
        # states a request folds are made before the gate is asked.
        fresh[:] = [
            dataclasses.replace(given[i % count], consent=dataclasses.replace(state))
            for i in range(iterations)
        ]

    def ours(i: int) -> object:
        return decide(built, fresh[i])

    def theirs(i: int) -> object:
        return walk_bench.growthbook_decide(gb, attributes[i % count])

    def gate_only(i: int) -> object:
        one = fresh[i]
        return allowance_from(built.policy, consent=one.consent, flags=one.flags, traits=one.stored, at=AT)

    # The stages alone reuse one Allowance and one view per subject.
    answers = [
        allowance_from(built.policy, consent=g.consent, flags=g.flags, traits=g.stored, at=AT) for g in given
    ]
    profiles = [
        ProfileSnapshot(values=g.stored, request=request_atoms(built.catalog, g.ask.context or {}))
        for g in given
    ]
    views = [build_view(a, p) for a, p in zip(answers, profiles, strict=True)]

    def view_only(i: int) -> object:
        return build_view(answers[i % count], profiles[i % count])

    def serve_only(i: int) -> object:
        one = given[i % count]
        return decisions.serve(
            lineup=built.lineup,
            placements=built.placements,
            allowance=answers[i % count],
            view=views[i % count],
            ask=one.ask,
            at=AT,
            subject_id=one.subject_id,
        )

    renew()
    for call in (ours, theirs, serve_only):  # warm up every path once
        median_us(call, min(iterations, 1000))
    timed: dict[str, list[float]] = {"ours": [], "theirs": [], "gate": [], "view": [], "serve": []}
    ratios = []
    for pair in range(max(pairs, 1)):
        sides = (ours, theirs) if pair % 2 == 0 else (theirs, ours)
        figures = {}
        for side in sides:
            renew()
            figures[side] = median_us(side, iterations)
        timed["ours"].append(figures[ours])
        timed["theirs"].append(figures[theirs])
        ratios.append(figures[ours] / figures[theirs])
        renew()
        timed["gate"].append(median_us(gate_only, iterations))
        timed["view"].append(median_us(view_only, iterations))
        timed["serve"].append(median_us(serve_only, iterations))
    section: dict[str, Any] = {
        "growthbook_version": version("growthbook"),
        "placements": list(PLACEMENTS),
        "experiences": sum(len(p.experiences) for p in built.placements),
        "subjects": count,
        "pairs": max(pairs, 1),
        "calls_per_run": iterations,
        "tactful_us": summary(timed["ours"], digits=2),
        "growthbook_us": summary(timed["theirs"], digits=2),
        "gate_us": summary(timed["gate"], digits=2),
        "view_us": summary(timed["view"], digits=2),
        "serve_us": summary(timed["serve"], digits=2),
        "ratio": summary(ratios, digits=3),
    }
    section["targets"] = {"ratio": _target(section).as_json()}
    if quick:
        section["quick"] = True
    return section


def _target(section: dict[str, Any]) -> Target:
    return Target("tactful path / growthbook", section["ratio"]["median"], "<=", TARGET_RATIO)


def rows(section: dict[str, Any]) -> list[Row]:
    return [
        figure_row(section, "tactful: whole path, 2 placements (gate to log entries)", "tactful_us"),
        figure_row(section, "  alone: the gate (allowance_from)", "gate_us"),
        figure_row(section, "  alone: the view (build_view)", "view_us"),
        figure_row(section, "  alone: serve (walk, render, explain, entries)", "serve_us"),
        figure_row(
            section,
            f"growthbook {section['growthbook_version']}: set_attributes + eval_feature",
            "growthbook_us",
        ),
        figure_row(
            section, "tactful path / growthbook (median of pairs)", "ratio", unit="", target=_target(section)
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return pairs_main(
        argv,
        prog="python -m bench.decide_path",
        description=__doc__,
        run=run,
        section=SECTION,
        title=TITLE,
        rows=rows,
    )


if __name__ == "__main__":
    sys.exit(main())
