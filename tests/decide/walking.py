"""Builders for the walk's tests: steps that read what an experience names, Allowances made by hand,
experiences and placements."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tactful.decide import assignment
from tactful.decide.walk import (
    Answer,
    Channel,
    Drawn,
    Experience,
    Matched,
    Placement,
    Rendered,
    Strategy,
    Variation,
    walk,
)
from tactful.policy import Allowance
from tactful.policy.verdicts import Code, Reason, Verdict
from tactful.types import LEVEL_PURPOSE, Level, Purpose

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DEFAULT = Variation("default", {"title": "Welcome"})


@dataclass
class Steps:
    """Steps that read every atom an experience names from the view, as a real audience would."""

    matching: frozenset[str] | None = None
    """Experiences whose audience matches (None: all)."""
    held_out: Mapping[str, float] | None = None
    unrenderable: frozenset[str] = frozenset()
    rendered_with: list[Mapping[str, object]] | None = None

    def matches(self, experience: Experience, view: Mapping[str, object]) -> Matched:
        values = {atom: view.get(atom) for atom in sorted(experience.atoms)}
        matched = self.matching is None or experience.key in self.matching
        if self.matching is None:  # a stable coin from what was read
            matched = hashlib.sha256(repr((experience.key, values)).encode()).digest()[0] < 200
        return Matched(matched, atoms_read=frozenset(values))

    def assign(self, experience: Experience, view: Mapping[str, object]) -> Drawn:
        share = (self.held_out or {}).get(experience.key)
        allocation = assignment.Allocation(
            experience.key,
            f"seed-{experience.key}",
            tuple(assignment.Variation(v.key, v.weight) for v in experience.variations),
            holdout=share or 0.0,
        )
        if share is not None:
            return Drawn(allocation, assignment.HeldOut(experience.key, share, 0.0))
        variation = experience.variations[0]
        total = sum(v.weight for v in experience.variations)
        split = experience.strategy is Strategy.SPLIT
        outcome = assignment.Assigned(
            experience.key, variation.key, experience.strategy, variation.weight / total if split else 1.0
        )
        return Drawn(allocation, outcome, variation)

    def render(self, variation: Variation, view: Mapping[str, object]) -> Rendered:
        if self.rendered_with is not None:
            self.rendered_with.append(view)
        if variation.key in self.unrenderable:
            return Rendered(None)
        return Rendered(variation.content)


def allowance(
    ceiling: Level = Level.ONE,
    atoms: frozenset[str] = frozenset({"context.location.country", "traits.first_name"}),
    *,
    email: bool = True,
    significant: bool = False,
    minor: bool = False,
) -> Allowance:
    def verdict(allowed: bool) -> Verdict:
        if allowed:
            return Verdict(True, Code.CONSENT_GRANTED, legal_basis="consent")
        return Verdict(False, Code.CONSENT_MISSING)

    return Allowance(
        ceiling=ceiling,
        decide_atoms=atoms,
        learn_atoms=frozenset(),
        purposes={
            Purpose.MARKETING_EMAIL: verdict(email),
            **{p: verdict(level <= ceiling) for level, p in LEVEL_PURPOSE.items()},
        },
        refusals={
            "traits.first_name": Reason.of(
                Code.CONSENT_MISSING, purpose="personalization.individual", status="not_set", regime="gdpr"
            )
        },
        level_reasons={
            Level.ONE: Reason.of(
                Code.CONSENT_MISSING, purpose="personalization.individual", status="not_set", regime="gdpr"
            )
        },
        may_learn=False,
        significant_decisions=verdict(significant),
        minor=minor,
    )


def experience(key: str, level: Level = Level.MANY, priority: int = 1, **changes: object) -> Experience:
    made = Experience(
        key=key,
        level=level,
        priority=priority,
        created_at=NOW - timedelta(days=1),
        atoms=frozenset({"context.location.country"}) if level > Level.ALL else frozenset(),
        variations=(Variation(f"{key}-a", {"title": key}),),
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def decide(placement: Placement, given: Allowance, steps: Steps | None = None) -> Answer:
    return walk(placement, allowance=given, view={}, at=NOW, steps=steps or Steps(matching=None))


def web(*experiences: Experience, channel: Channel = Channel.WEB) -> Placement:
    return Placement("home_hero", channel, DEFAULT, experiences)
