"""The policy gate: (catalog, consent at T, regimes, facts, signals) → Allowance → SubjectView.

Everything that does not depend on the subject is worked out once: per catalog, the atoms grouped
by level, purpose and category as integer masks (`index.py`); per set of regimes, every purpose's
evaluation for every kind of subject (`purposes.py`). A call then reads one row of the purpose
table, assembles the atom sets from a handful of groups with integer operations, and leaves the
words (why each atom is refused, which atoms serve which purpose) to be worked out when asked.
Nothing is kept between calls that depends on a subject (a consent state keeps only its own reading
of the present), so a subject never seen before costs about what a known one does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from itertools import compress
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple

from tactful.catalog.model import Catalog
from tactful.policy.allowance import Allowance, Deferred, SubjectView, Verdict
from tactful.policy.index import PERSONALIZATION, PURPOSE_LEVEL, CatalogIndex, index_of
from tactful.policy.inputs import AgePolicy, ProfileSnapshot, RequestSignals, SubjectFacts
from tactful.policy.purposes import (
    MINOR_NOT_PROFILED,
    PURPOSES,
    RESTRICTED,
    Evaluation,
    Subject,
    evaluate_purposes,
    table_of,
)
from tactful.policy.reasons import AtomRules
from tactful.policy.regimes import Regime
from tactful.policy.state import (
    PURPOSE_BIT,
    SIGNIFICANT_DECISIONS,
    SPECIAL_FEATURE_1,
    ConsentSnapshot,
    ConsentState,
)
from tactful.types import Level, Purpose

DEFAULT_AGE_POLICY = AgePolicy()
_LEVELS = tuple(Level)
_CUMULATIVE = tuple(f"levels are cumulative and {level} is not allowed" for level in _LEVELS)
_SIGNIFICANT_RESTRICTED = Verdict(False, RESTRICTED)
_SIGNIFICANT_MINOR = Verdict(False, "age:significant decisions never serve minors")
_SIGNIFICANT_GIVEN = Verdict(True, "explicit:significant_decisions given", "consent")
_SIGNIFICANT_MISSING = Verdict(False, "explicit:significant_decisions not given")
_PYRAMID = tuple((PURPOSES.index(p), PURPOSE_BIT[p]) for p in PERSONALIZATION)
"""Where each pyramid purpose sits among the evaluations, lowest level first, and its bit."""
_ANALYTICS = PURPOSES.index(Purpose.ANALYTICS)
_NO_LEVEL_REASONS: Mapping[Level, str] = MappingProxyType({})
_POSITION: Mapping[Purpose, int] = MappingProxyType({p: i for i, p in enumerate(PURPOSES)})
_ALLOWED = attrgetter("allowed")


def _every_purpose() -> Mapping[Purpose, int]:
    return _POSITION


def evaluate(
    *,
    catalog: Catalog,
    consent: ConsentState,
    regimes: Sequence[Regime],
    facts: SubjectFacts,
    signals: RequestSignals,
    at: datetime,
    age_policy: AgePolicy = DEFAULT_AGE_POLICY,
) -> Allowance:
    """What may be read about the subject at `at`, and why nothing more.

    `regimes` are those that apply (see `applicable_regimes`); it may not be empty. A GPC signal on
    this request counts from now if the ledger has not recorded one yet.
    """
    if not regimes:
        raise ValueError("evaluate needs at least one regime (applicable_regimes never returns none)")
    index = index_of(catalog)
    table = table_of(regimes)
    snapshot = consent.snapshot(at=at)
    # Most subjects give an age or nothing; a birthdate or a range needs the date at `at`.
    age = facts.age if facts.birthdate is None and facts.age_range is None else facts.lowest_age(at)
    if facts.minor is not None:
        minor = facts.minor
    elif age is None:
        minor = age_policy.assume_minor_when_age_unknown
    else:
        minor = age < age_policy.minor_age
    recorded = snapshot.gpc_at is not None
    subject = Subject(
        age=age,
        minor=minor,
        objected=facts.objection or snapshot.objected,
        restricted=facts.restriction,
        gpc=recorded or signals.gpc,
        explicit_after_gpc=snapshot.explicit_after_gpc if recorded else 0,
    )
    outcomes = evaluate_purposes(snapshot, table, subject)
    return _allowance(index, snapshot, outcomes, subject, table.names, limit_sensitive=facts.limit_sensitive)


def build_view(allowance: Allowance, profile: ProfileSnapshot, *, learning: bool = False) -> SubjectView:
    """The view a decision (or, with `learning`, a model update) receives: only allowed atoms."""
    allowed = allowance.learn_atoms if learning else allowance.decide_atoms
    request_only = allowance.request_only
    values: dict[str, object] = {}
    for name, value in profile.values.items():
        if name in allowed and name not in request_only:
            values[name] = value
    for name, value in profile.request.items():
        if name in allowed:
            values[name] = value
    return SubjectView(allowance, values, allowed)


# -- computing an answer -------------------------------------------------------------------------


def _allowance(
    index: CatalogIndex,
    snapshot: ConsentSnapshot,
    outcomes: list[Evaluation],
    subject: Subject,
    regime_names: tuple[str, ...],
    *,
    limit_sensitive: bool,
) -> Allowance:
    # The ceiling, and the pyramid purposes below it that hold for the request only or let
    # device identifiers be read (as bit sets of purposes).
    ceiling = learn_ceiling = 0
    request_only = device_ok = 0
    for position, purpose_bit in _PYRAMID:
        verdict = outcomes[position]
        if not verdict.allowed:
            break
        ceiling += 1
        if verdict.request_only:
            request_only |= purpose_bit
        elif learn_ceiling == ceiling - 1:
            learn_ceiling = ceiling  # learning climbs only as far as stored data may be read
        if verdict.device_ok:
            device_ok |= purpose_bit

    given = snapshot.explicit_given
    uncovered = 0
    for group in index.special:
        if given.isdisjoint(group.covering):
            uncovered |= group.atoms
    tcf = snapshot.tcf
    precise_refused = SPECIAL_FEATURE_1 in snapshot.explicit_refused
    precise_given = SPECIAL_FEATURE_1 in given

    # Atoms grouped by the purposes they may be read through at this ceiling; each group is
    # kept, narrowed or dropped as a whole. (Under restriction the ceiling is 0: no group.)
    decide = from_request = 0
    for usable, atoms in index.groups[ceiling]:
        if usable & request_only == usable:
            atoms &= index.request_context
            from_request |= atoms
        if not usable & device_ok:
            atoms &= ~index.device
        if precise_refused or (usable & tcf == usable and not precise_given):
            atoms &= ~index.precise
        decide |= atoms
    decide &= ~uncovered
    if limit_sensitive:
        decide &= ~index.sensitive
    from_request &= decide

    analytics = outcomes[_ANALYTICS]
    learn_reason: str | None = None
    if subject.restricted:
        learn_reason = RESTRICTED
    elif subject.minor:
        learn_reason = MINOR_NOT_PROFILED
    elif not analytics.allowed:
        learn_reason = analytics.reason
    may_learn = learn_reason is None
    learn = decide & index.upto[learn_ceiling] & ~from_request if may_learn else 0

    later = _Later(index, snapshot, outcomes, ceiling, decide, uncovered, limit_sensitive, subject.restricted)
    decide_atoms = index.atoms(decide)
    return Allowance(
        ceiling=_LEVELS[ceiling],
        decide_atoms=decide_atoms,
        learn_atoms=decide_atoms if learn == decide else index.atoms(learn),
        purposes=Deferred(_every_purpose, later.verdict),
        refusals=Deferred(later.refused, later.refusal),
        level_reasons=_level_reasons(outcomes, ceiling),
        may_learn=may_learn,
        learn_ceiling=_LEVELS[learn_ceiling if may_learn else 0],
        request_only=index.atoms(from_request),
        purpose_atoms=Deferred(later.allowed, later.atoms_for),
        significant_decisions=_significant(snapshot, subject),
        regimes=regime_names,
        minor=subject.minor,
        learn_reason=learn_reason,
    )


class _Later(NamedTuple):
    """What the parts of an Allowance that are worked out only when asked need: why an atom was
    refused, and which atoms a purpose that holds may process."""

    atoms: CatalogIndex
    snapshot: ConsentSnapshot
    outcomes: list[Evaluation]
    ceiling: int
    decide: int
    uncovered: int
    limit_sensitive: bool
    restricted: bool

    def allowed(self) -> list[Purpose]:
        return list(compress(PURPOSES, map(_ALLOWED, self.outcomes)))

    def refused(self) -> Collection[str]:
        return self.atoms.named(self.atoms.everything & ~self.decide)

    def verdict(self, purpose: Purpose) -> Verdict:
        return self.outcomes[_POSITION[purpose]].verdict

    def refusal(self, name: str) -> str:
        evals = dict(zip(PURPOSES, self.outcomes, strict=True))
        rules = AtomRules(
            self.atoms,
            self.snapshot,
            evals,
            self.ceiling,
            limit_sensitive=self.limit_sensitive,
            restricted=self.restricted,
        )
        return rules.refusal(name)

    def atoms_for(self, purpose: Purpose) -> frozenset[str]:
        index = self.atoms
        if purpose in PURPOSE_LEVEL:
            return index.atoms(index.declaring[purpose] & self.decide)
        if purpose is Purpose.ESSENTIAL:
            return index.essential
        # The atom rules with this purpose as the only route (analytics, e-mail, sale or share).
        atoms = index.declaring[purpose] & ~self.uncovered
        if not self.outcomes[PURPOSES.index(purpose)].device_ok:
            atoms &= ~index.device
        if self.limit_sensitive:
            atoms &= ~index.sensitive
        snapshot = self.snapshot
        if SPECIAL_FEATURE_1 in snapshot.explicit_refused or (
            snapshot.tcf & PURPOSE_BIT[purpose] and SPECIAL_FEATURE_1 not in snapshot.explicit_given
        ):
            atoms &= ~index.precise
        return index.atoms(atoms)


def _level_reasons(outcomes: list[Evaluation], ceiling: int) -> Mapping[Level, str]:
    if ceiling == len(PERSONALIZATION):
        return _NO_LEVEL_REASONS
    reasons: dict[Level, str] = {}
    for rank in range(ceiling + 1, len(_LEVELS)):
        own = outcomes[_PYRAMID[rank - 1][0]]
        reasons[_LEVELS[rank]] = own.reason if not own.allowed else _CUMULATIVE[ceiling + 1]
    return MappingProxyType(reasons)


def _significant(snapshot: ConsentSnapshot, subject: Subject) -> Verdict:
    if subject.restricted:
        return _SIGNIFICANT_RESTRICTED
    if subject.minor:
        return _SIGNIFICANT_MINOR
    if SIGNIFICANT_DECISIONS in snapshot.explicit_given:
        return _SIGNIFICANT_GIVEN
    return _SIGNIFICANT_MISSING
