"""The walk down the pyramid for one placement (DESIGN §2): pure, plain data in and out.

    experiences, highest level first ──▶ each: may it apply? ──▶ does its audience match?
        (level beats priority; then priority,     │ no: why (Skip)        │ no: on down
         lower first; then creation time)         ▼                       ▼
                                             on down the walk      assignment ──▶ held out: on down,
                                                                       │          the share noted
                                                                       ▼
                                                                 render ──▶ the answer
    nothing answered ──▶ the placement's default (`1:all`, reads nothing about the subject)

An experience may apply only if it is live and inside its schedule, its level is within the
Allowance's ceiling, every atom it reads is in the Allowance (a withheld atom is never treated as
absent), its audience is served, a significant effect is allowed, and the channel's consent holds.

A significant effect (DESIGN §1, GDPR Art. 22) applies only with the explicit consent
`significant_decisions` of an adult, never reading a special category; and what replaces it is never
itself significant: once a significant experience matched the subject and was passed over (held out,
outside its namespace share, unrenderable), no significant experience below it answers, so the
subject gets the next ordinary answer or the default (which reads nothing and is never significant).

A person's review binds their later decisions: an experience whose decision about this subject a
person overturned on review (`overturned`, read by the caller for this subject) is passed over
(`Skip.OVERTURNED`) wherever it would otherwise apply, without asking its audience, and counts as a
significant experience passed over: the review replaced it with the placement's default, so nothing
significant below it answers in its place either.

What the walk cannot know by itself (whether an audience matches, which variation a subject gets,
how content renders) it asks `Steps`, so that this module stays the rule and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Protocol

from tactful.decide.assignment import (
    Allocation,
    Assigned,
    AssignmentCode,
    HeldOut,
    NotCandidate,
    NotInNamespace,
    Outcome,
    Path,
    Strategy,
)
from tactful.policy.allowance import Allowance
from tactful.policy.verdicts import Reason
from tactful.records import quick
from tactful.types import Level, Purpose


class Channel(StrEnum):
    WEB = "web"
    APP = "app"
    EMAIL = "email"


class Skip(StrEnum):
    """Why an experience did not answer."""

    NOT_LIVE = "not_live"
    NOT_SCHEDULED = "not_scheduled"
    ABOVE_CEILING = "above_ceiling"
    """Its level is above what the subject's consent and situation allow ({level})."""
    ATOMS_WITHHELD = "atoms_withheld"
    """It reads atoms the Allowance holds back ({atoms})."""
    CHANNEL_CONSENT = "channel_consent"
    SIGNIFICANT_EFFECT = "significant_effect"
    """Significant effects need explicit consent and an adult subject."""
    SIGNIFICANT_SPECIAL = "significant_reads_special_category"
    """A significant effect never reads a special category (its audience changed since publishing,
    or the catalog did)."""
    SIGNIFICANT_FALLBACK = "significant_fallback"
    """A significant experience above matched and was passed over: its fallback is never significant."""
    AUDIENCE_NOT_SERVED = "audience_not_served"
    """The audience is in shadow or below k subjects (it would single a person out)."""
    NO_MATCH = "no_match"
    NOT_IN_NAMESPACE = "not_in_namespace"
    DEVICE_IDENTIFIER = "split_needs_device_identifier"
    """A split hashes the anonymous id, a device identifier the Allowance does not permit."""
    NO_UNIT = "split_needs_an_id"
    """A split or holdout hashes an id, and the request named none."""
    HELD_OUT = "held_out"
    NOT_RENDERED = "not_rendered"
    OVERTURNED = "overturned_by_review"
    """A person reviewed an earlier decision of this experience about this subject and overturned it
    (GDPR Art. 22(3)): the automated decision is not made about them again."""


@dataclass(frozen=True)
class Variation:
    key: str
    content: object
    weight: float = 1.0
    templates: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Experience:
    """One published experience as the walk sees it. `atoms` are all the atoms it reads (audience,
    content templates, strategy features); `level` is computed from them by the catalog."""

    key: str
    level: Level
    priority: int
    created_at: datetime
    atoms: frozenset[str]
    variations: tuple[Variation, ...]
    strategy: Strategy = Strategy.RULE
    live: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    audience_served: bool = True
    significant: bool = False
    reads_special: bool = False
    """It reads an atom of a special category (GDPR Art. 9), as the catalog in force says."""
    version: int = 1


@dataclass(frozen=True)
class Placement:
    key: str
    channel: Channel
    default: Variation
    experiences: tuple[Experience, ...] = ()

    @cached_property
    def ordered(self) -> tuple[Experience, ...]:
        """The experiences in walk order (`order`), sorted once: a lineup builds a placement once
        and every decision walks it."""
        return tuple(order(self.experiences))

    @cached_property
    def significant(self) -> frozenset[str]:
        """The keys of its significant experiences: only those can have been overturned on review,
        so a placement without any needs no reviews read."""
        return frozenset(e.key for e in self.experiences if e.significant)


@quick
@dataclass(frozen=True)
class Matched:
    """An audience's answer: matched or not, or unknown because an atom it read is withheld."""

    matched: bool
    withheld: bool = False
    atoms_read: frozenset[str] = frozenset()


@quick
@dataclass(frozen=True)
class Drawn:
    """An assignment's outcome, the allocation it came from (the walk's `Path` needs both for the
    logged propensity) and, when assigned, the variation to render."""

    allocation: Allocation
    outcome: Outcome
    variation: Variation | None = None


@quick
@dataclass(frozen=True)
class Rendered:
    content: object | None
    """None: the variation could not render for this subject (a withheld atom without fallback)."""
    atoms_read: frozenset[str] = frozenset()


class Steps(Protocol):
    """What the walk asks of conditions, assignment and rendering."""

    def matches(self, experience: Experience, view: Mapping[str, object]) -> Matched: ...

    def assign(self, experience: Experience, view: Mapping[str, object]) -> Drawn: ...

    def render(self, variation: Variation, view: Mapping[str, object]) -> Rendered: ...


@quick
@dataclass(frozen=True)
class Passed:
    """An experience above the answer, and why it did not answer."""

    experience: str
    level: Level
    skip: Skip
    reasons: tuple[Reason, ...] = ()
    atoms: frozenset[str] = frozenset()


@quick
@dataclass(frozen=True)
class Answer:
    """What one placement shows, and everything the log and the explanation need."""

    placement: str
    experience: str | None
    experience_version: int | None
    variation: str
    content: object
    level: Level
    strategy: Strategy
    propensity: float
    atoms_read: frozenset[str]
    passed: tuple[Passed, ...]
    ceiling: Level
    held_out_of: tuple[str, ...] = ()
    experience_atoms: frozenset[str] = frozenset()
    """Every atom the answering experience reads (its audience, templates and strategy), read
    here or not: what the explanation weighs."""
    significant: bool = False
    """The answering experience has a significant effect: the subject may ask for human review."""

    @property
    def downgraded(self) -> bool:
        """The consent or situation of the subject kept a higher experience from answering."""
        return any(p.skip in _CONSENT_SKIPS for p in self.passed)


_CONSENT_SKIPS = frozenset(
    {Skip.ABOVE_CEILING, Skip.ATOMS_WITHHELD, Skip.CHANNEL_CONSENT, Skip.SIGNIFICANT_EFFECT}
)
_NOTHING: Mapping[str, object] = {}
_FALLBACK: tuple[Skip, tuple[Reason, ...], frozenset[str]] = (Skip.SIGNIFICANT_FALLBACK, (), frozenset())
_OVERTURNED: tuple[Skip, tuple[Reason, ...], frozenset[str]] = (Skip.OVERTURNED, (), frozenset())


def order(experiences: Sequence[Experience]) -> list[Experience]:
    """Level beats priority; within a level, priority (lower first), then creation time."""
    return sorted(experiences, key=lambda e: (-e.level.rank, e.priority, e.created_at, e.key))


def _may_apply(
    experience: Experience, *, allowance: Allowance, channel: Channel, at: datetime
) -> tuple[Skip, tuple[Reason, ...], frozenset[str]] | None:
    """Why `experience` may not apply to this subject now; None when it may."""
    if not experience.live:
        return Skip.NOT_LIVE, (), frozenset()
    if (experience.starts_at and at < experience.starts_at) or (
        experience.ends_at and at >= experience.ends_at
    ):
        return Skip.NOT_SCHEDULED, (), frozenset()
    if experience.level > allowance.ceiling:
        reason = allowance.level_reasons.get(experience.level)
        return Skip.ABOVE_CEILING, (reason,) if reason else (), frozenset()
    withheld = experience.atoms - allowance.decide_atoms
    if withheld:
        reasons = tuple(r for atom in sorted(withheld) if (r := allowance.reason_for(atom)) is not None)
        return Skip.ATOMS_WITHHELD, reasons, frozenset(withheld)
    if channel is Channel.EMAIL:
        email = allowance.purposes.get(Purpose.MARKETING_EMAIL)
        if email is None or not email.allowed:
            return Skip.CHANNEL_CONSENT, () if email is None else (email.reason,), frozenset()
    if experience.significant:
        if allowance.minor or not allowance.significant_decisions.allowed:
            return Skip.SIGNIFICANT_EFFECT, (allowance.significant_decisions.reason,), frozenset()
        if experience.reads_special:
            return Skip.SIGNIFICANT_SPECIAL, (), frozenset()
    if not experience.audience_served:
        return Skip.AUDIENCE_NOT_SERVED, (), frozenset()
    return None


def refusal(experience: Experience, *, allowance: Allowance, channel: Channel, at: datetime) -> Skip | None:
    """Why `experience` may not apply to this subject now, or None (audience size counting asks
    which shadow audiences belong to experiences that would otherwise be candidates)."""
    refused = _may_apply(experience, allowance=allowance, channel=channel, at=at)
    return None if refused is None else refused[0]


_NOT_CANDIDATE = {
    AssignmentCode.DEVICE_IDENTIFIER: Skip.DEVICE_IDENTIFIER,
    AssignmentCode.NO_UNIT: Skip.NO_UNIT,
}


def _skip_of(outcome: Outcome) -> Skip:
    if isinstance(outcome, HeldOut):
        return Skip.HELD_OUT
    if isinstance(outcome, NotInNamespace):
        return Skip.NOT_IN_NAMESPACE
    if isinstance(outcome, NotCandidate):
        return _NOT_CANDIDATE.get(outcome.code, Skip.NO_MATCH)
    return Skip.NO_MATCH  # assigned, with no variation to show: a bug in the steps, never shown


def walk(
    placement: Placement,
    *,
    allowance: Allowance,
    view: Mapping[str, object],
    at: datetime,
    steps: Steps,
    overturned: frozenset[str] = frozenset(),
) -> Answer:
    """The answer for `placement`: always one, never above the Allowance's ceiling; never from an
    experience in `overturned` (the keys a person's review overturned for this subject)."""
    passed: list[Passed] = []
    read: set[str] = set()
    held_out: list[str] = []
    path = Path()
    fallen = False  # a significant experience matched and was passed over: what follows replaces it
    for experience in placement.ordered:
        refused = _may_apply(experience, allowance=allowance, channel=placement.channel, at=at)
        if refused is None and experience.key in overturned:
            # It would apply: the review's answer stands instead, and the default it named is
            # what replaces it, so nothing significant below answers in its place.
            refused = _OVERTURNED
            fallen = fallen or experience.significant
        elif refused is None and fallen and experience.significant:
            refused = _FALLBACK
        if refused is not None:
            passed.append(Passed(experience.key, experience.level, *refused))
            continue
        match = steps.matches(experience, view)
        read |= match.atoms_read
        if match.withheld or not match.matched:
            passed.append(Passed(experience.key, experience.level, Skip.NO_MATCH))
            continue
        drawn = steps.assign(experience, view)
        outcome = drawn.outcome
        if not isinstance(outcome, Assigned) or drawn.variation is None:
            if isinstance(outcome, HeldOut):
                held_out.append(experience.key)
            if isinstance(outcome, HeldOut | NotInNamespace):
                path = path.passing(drawn.allocation)
            passed.append(Passed(experience.key, experience.level, _skip_of(outcome)))
            fallen = fallen or experience.significant
            continue
        rendered = steps.render(drawn.variation, view)
        read |= rendered.atoms_read
        if rendered.content is None:
            passed.append(Passed(experience.key, experience.level, Skip.NOT_RENDERED))
            fallen = fallen or experience.significant
            continue
        strategy = outcome.strategy if outcome.forced else experience.strategy
        return Answer(
            placement=placement.key,
            experience=experience.key,
            experience_version=experience.version,
            variation=drawn.variation.key,
            content=rendered.content,
            level=experience.level,
            strategy=Strategy.HOLDOUT if held_out else strategy,
            propensity=path.propensity(outcome, drawn.allocation),
            atoms_read=frozenset(read),
            passed=tuple(passed),
            ceiling=allowance.ceiling,
            held_out_of=tuple(held_out),
            experience_atoms=experience.atoms,
            significant=experience.significant,
        )
    default = placement.default
    rendered = steps.render(default, _NOTHING)  # the default reads nothing about the subject
    return Answer(
        placement=placement.key,
        experience=None,
        experience_version=None,
        variation=default.key,
        content=rendered.content if rendered.content is not None else default.content,
        level=Level.ALL,
        strategy=Strategy.HOLDOUT if held_out else Strategy.DEFAULT,
        propensity=path.propensity(),
        atoms_read=frozenset(read),
        passed=tuple(passed),
        ceiling=allowance.ceiling,
        held_out_of=tuple(held_out),
    )
