"""The policy gate: (catalog, consent at T, regimes, facts, signals) → Allowance → SubjectView.

Everything that does not depend on the subject is worked out once, when the gate is compiled
(`compiled.py`): per catalog, the atoms grouped by level, purpose and category as integer masks
(`index.py`); per set of regimes, every purpose's evaluation for every kind of subject
(`purposes.py`). A call then reads one row of the purpose table, assembles the atom sets with a
few integer operations over tables per ceiling, and leaves the reasons (why each atom is refused, as
a code and its parameters) and which atoms serve which purpose to be worked out when asked.
Nothing is kept between calls that depends on a subject (a consent state keeps only its own reading
of the present), so a subject never seen before costs about what a known one does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import compress
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple

from tactful.policy.allowance import Allowance, Lazy, SubjectView
from tactful.policy.index import (
    PERSONALIZATION,
    PURPOSE_LEVEL,
    PYRAMID_SETS,
    PYRAMID_SHIFT,
    CatalogIndex,
)
from tactful.policy.inputs import AgePolicy, ProfileSnapshot, RequestSignals, SubjectFacts
from tactful.policy.purposes import (
    MINOR_NOT_PROFILED,
    PURPOSES,
    RESTRICTED,
    Evaluation,
    PurposeTable,
    Subject,
    evaluate_purposes,
)
from tactful.policy.reasons import AtomRules
from tactful.policy.state import (
    PURPOSE_BIT,
    SIGNIFICANT_DECISIONS,
    SPECIAL_FEATURE_1,
    ConsentSnapshot,
    ConsentState,
)
from tactful.policy.verdicts import Code, Reason, Verdict
from tactful.types import Level, Purpose

DEFAULT_AGE_POLICY = AgePolicy()
_LEVELS = tuple(Level)
_CUMULATIVE = tuple(Reason.of(Code.LEVEL_BELOW_REFUSED, level=level) for level in _LEVELS)
_SIGNIFICANT = (("category", SIGNIFICANT_DECISIONS),)
_SIGNIFICANT_RESTRICTED = Verdict(False, RESTRICTED.code)
_SIGNIFICANT_MINOR = Verdict(False, Code.MINOR_SIGNIFICANT)
_SIGNIFICANT_GIVEN = Verdict(True, Code.EXPLICIT_GIVEN, _SIGNIFICANT, "consent")
_SIGNIFICANT_MISSING = Verdict(False, Code.EXPLICIT_MISSING, _SIGNIFICANT)
_PYRAMID = tuple(PURPOSES.index(p) for p in PERSONALIZATION)
"""Where each pyramid purpose sits among the evaluations, lowest level first."""
_P1, _P2, _P3, _P4 = _PYRAMID  # four levels above 1:all, as `_CLIMB` reads them
_ALLOWED_FLAG, _REQUEST_ONLY_FLAG, _DEVICE_OK_FLAG = 1, 2, 4  # `Evaluation.flags`
_TOP = len(PERSONALIZATION)
_PYRAMID_SETS = PYRAMID_SETS - 1
_NO_ATOMS: frozenset[str] = frozenset()
_ANALYTICS = PURPOSES.index(Purpose.ANALYTICS)
_NO_LEVEL_REASONS: Mapping[Level, Reason] = MappingProxyType({})
_POSITION: Mapping[Purpose, int] = MappingProxyType({p: i for i, p in enumerate(PURPOSES)})
_ALLOWED = attrgetter("allowed")
_new_tuple = tuple.__new__
"""Makes the gate's small named tuples (`Subject`, `_Later`) from their fields in order: a named
tuple's own constructor is a Python function, and costs twice as much on every call."""


def allowance_of(
    index: CatalogIndex,
    table: PurposeTable,
    *,
    consent: ConsentState,
    facts: SubjectFacts,
    signals: RequestSignals,
    at: datetime,
    age_policy: AgePolicy = DEFAULT_AGE_POLICY,
) -> Allowance:
    """What may be read about the subject at `at`, and why nothing more, from a compiled catalog
    index and the purpose table of the regimes that apply (`Gate.evaluate` picks them).

    A GPC signal on this request counts from now if the ledger has not recorded one yet.
    """
    snapshot = consent.snapshot(at=at)
    # Most subjects give an age or nothing; a birthdate or a range needs the date at `at`.
    age = facts.age if facts.birthdate is None and facts.age_range is None else facts.lowest_age(at)
    if facts.minor is not None:
        minor = facts.minor
    elif age is None:
        minor = age_policy.assume_minor_when_age_unknown
    else:
        minor = age < age_policy.minor_age
    objected = facts.objection or snapshot.objected
    recorded = snapshot.gpc_at is not None
    gpc = recorded or signals.gpc
    lifted = snapshot.explicit_after_gpc if recorded else 0
    subject = _new_tuple(Subject, (age, minor, objected, facts.restriction, gpc, lifted))
    outcomes = evaluate_purposes(snapshot, table, subject)
    return _allowance(index, snapshot, outcomes, subject, table.names, facts.limit_sensitive)


def build_view(allowance: Allowance, profile: ProfileSnapshot, *, learning: bool = False) -> SubjectView:
    """The view a decision (or, with `learning`, a model update) receives: only allowed atoms."""
    allowed = allowance.learn_atoms if learning else allowance.decide_atoms
    return SubjectView(allowance, _Readable(profile, allowed, allowance.request_only), allowed)


class _Readable(Mapping[str, object]):
    """The atoms of `profile` a view may hold: from this request's context, else as stored (an atom
    allowed from the request only is never read from the store). Names are worked out now; values
    are read when asked for, so that a sealed value is opened only when a decision uses it."""

    __slots__ = ("_names", "_profile", "_request", "_session")

    def __init__(
        self, profile: ProfileSnapshot, allowed: frozenset[str], request_only: frozenset[str]
    ) -> None:
        self._profile = profile
        self._request = frozenset(n for n in profile.request if n in allowed)
        stored = (n for n in profile.values if n in allowed and n not in request_only)
        # Session atoms' names are known without reading the counters; their values are not.
        self._session = frozenset(n for n in profile.session if n in allowed and n not in request_only)
        self._names = self._request.union(stored, self._session)

    def __getitem__(self, name: str) -> object:
        if name in self._request:
            return self._profile.request[name]
        if name in self._session:
            return self._profile.session[name]
        if name in self._names:
            return self._profile.values[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


# -- computing an answer -------------------------------------------------------------------------


def _climb(flags: Sequence[int]) -> tuple[int, int, int, int]:
    """How far up the pyramid the evaluations of its purposes (their `flags`, lowest level first)
    let a subject go: the ceiling and the learning ceiling (ranks), and the purposes below the
    ceiling that hold for the request only or let device identifiers be read (as small masks, bit
    k for the purpose of level k + 1)."""
    ceiling = learn_ceiling = request_only = device_ok = 0
    for own in flags:
        if not own & _ALLOWED_FLAG:
            break
        bit = 1 << ceiling
        ceiling += 1
        if own & _REQUEST_ONLY_FLAG:
            request_only |= bit
        elif learn_ceiling == ceiling - 1:
            learn_ceiling = ceiling  # learning climbs only as far as stored data may be read
        if own & _DEVICE_OK_FLAG:
            device_ok |= bit
    return ceiling, learn_ceiling, request_only, device_ok


def _climb_table() -> tuple[tuple[int, int, int, int], ...]:
    # Every combination of the four pyramid purposes' flags (3 bits each); equal answers shared.
    answers: dict[tuple[int, int, int, int], tuple[int, int, int, int]] = {}
    table = []
    for key in range(1 << 3 * len(_PYRAMID)):
        answer = _climb([key >> 3 * k & 7 for k in range(len(_PYRAMID))])
        table.append(answers.setdefault(answer, answer))
    return tuple(table)


_CLIMB = _climb_table()
"""`_climb` for every combination of flags: the gate reads one entry a call instead of walking the
pyramid (a fifth of the time)."""


def _allowance(
    index: CatalogIndex,
    snapshot: ConsentSnapshot,
    outcomes: list[Evaluation],
    subject: Subject,
    regime_names: tuple[str, ...],
    limit_sensitive: bool,
) -> Allowance:
    # How far up the pyramid, read from the table of `_climb` by the pyramid purposes' flags.
    ceiling, learn_ceiling, request_only, device_ok = _CLIMB[
        outcomes[_P1].flags | outcomes[_P2].flags << 3 | outcomes[_P3].flags << 6 | outcomes[_P4].flags << 9
    ]

    given = snapshot.explicit_given
    uncovered = 0
    for group in index.special:
        if given.isdisjoint(group.covering):
            uncovered |= group.atoms

    # The atoms readable at this ceiling, less those whose every usable purpose holds for the
    # request only (unless the request may tell them), the device-identifier atoms no usable
    # purpose lets be read, and the special ones not covered. (Under restriction the ceiling is 0:
    # nothing.)
    masks = index.ceilings[ceiling]
    decide = masks.atoms & ~(masks.stored_only[request_only] | masks.no_device[device_ok] | uncovered)
    if SPECIAL_FEATURE_1 in snapshot.explicit_refused:
        decide &= ~index.precise
    elif SPECIAL_FEATURE_1 not in given:
        decide &= ~masks.tcf_precise[snapshot.tcf >> PYRAMID_SHIFT & _PYRAMID_SETS]
    if limit_sensitive:
        decide &= ~index.sensitive
    from_request = masks.from_request[request_only] & decide

    # Learning, and decisions with a significant effect (Art. 22), which never serve minors.
    learn_reason: Reason | None
    if subject.restricted:
        learn_reason, significant = RESTRICTED, _SIGNIFICANT_RESTRICTED
    elif subject.minor:
        learn_reason, significant = MINOR_NOT_PROFILED, _SIGNIFICANT_MINOR
    else:
        analytics = outcomes[_ANALYTICS]
        learn_reason = None if analytics.allowed else analytics.reason
        significant = _SIGNIFICANT_GIVEN if SIGNIFICANT_DECISIONS in given else _SIGNIFICANT_MISSING
    may_learn = learn_reason is None
    learn = decide & index.upto[learn_ceiling] & ~from_request if may_learn else 0

    later = _new_tuple(
        _Later, (index, snapshot, outcomes, ceiling, decide, uncovered, limit_sensitive, subject.restricted)
    )
    decide_atoms = index.atoms(decide)
    return Allowance(
        ceiling=_LEVELS[ceiling],
        decide_atoms=decide_atoms,
        learn_atoms=decide_atoms if learn == decide else index.atoms(learn),
        purposes=_Verdicts(outcomes),
        refusals=_Refusals(later),
        level_reasons=_NO_LEVEL_REASONS if ceiling == _TOP else _level_reasons(outcomes, ceiling),
        may_learn=may_learn,
        learn_ceiling=_LEVELS[learn_ceiling if may_learn else 0],
        request_only=index.atoms(from_request) if from_request else _NO_ATOMS,
        purpose_atoms=_PurposeAtoms(later),
        significant_decisions=significant,
        regimes=regime_names,
        minor=subject.minor,
        learn_reason=learn_reason,
        device_identifiers=device_ok != 0,
    )


class _Verdicts(Mapping[Purpose, Verdict]):
    """`Allowance.purposes`: each purpose's verdict, read from its evaluation when asked (every
    evaluation carries its verdict, so there is nothing to work out or keep)."""

    __slots__ = ("_outcomes",)

    def __init__(self, outcomes: list[Evaluation]) -> None:
        self._outcomes = outcomes

    def __getitem__(self, purpose: Purpose) -> Verdict:
        return self._outcomes[_POSITION[purpose]].verdict

    def __iter__(self) -> Iterator[Purpose]:
        return iter(PURPOSES)

    def __len__(self) -> int:
        return len(PURPOSES)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class _Later(NamedTuple):
    """What the parts of an Allowance that are worked out only when asked need."""

    atom_index: CatalogIndex
    snapshot: ConsentSnapshot
    outcomes: list[Evaluation]
    ceiling: int
    decide: int
    uncovered: int
    limit_sensitive: bool
    restricted: bool


class _Refusals(Lazy[str, Reason]):
    """`Allowance.refusals`: every atom outside the Allowance, with the reason the atom rules give."""

    __slots__ = ("_later", "_rules")
    _rules: AtomRules | None

    def __init__(self, later: _Later) -> None:
        self._later = later
        self._keys = self._done = self._rules = None

    def _work_keys(self) -> Collection[str]:
        index = self._later.atom_index
        return index.named(index.everything & ~self._later.decide)

    def _work(self, name: str) -> Reason:
        rules = self._rules
        if rules is None:
            later = self._later
            evals = dict(zip(PURPOSES, later.outcomes, strict=True))
            rules = self._rules = AtomRules(
                later.atom_index,
                later.snapshot,
                evals,
                later.ceiling,
                limit_sensitive=later.limit_sensitive,
                restricted=later.restricted,
            )
        return rules.refusal(name)


class _PurposeAtoms(Lazy[Purpose, frozenset[str]]):
    """`Allowance.purpose_atoms`: for each purpose that holds, the atoms it may process."""

    __slots__ = ("_later",)

    def __init__(self, later: _Later) -> None:
        self._later = later
        self._keys = self._done = None

    def _work_keys(self) -> Collection[Purpose]:
        return list(compress(PURPOSES, map(_ALLOWED, self._later.outcomes)))

    def _work(self, purpose: Purpose) -> frozenset[str]:
        later = self._later
        index = later.atom_index
        if purpose in PURPOSE_LEVEL:
            return index.atoms(index.declaring[purpose] & later.decide)
        if purpose is Purpose.ESSENTIAL:
            return index.essential
        # The atom rules with this purpose as the only route (analytics, e-mail, sale or share).
        atoms = index.declaring[purpose] & ~later.uncovered
        if not later.outcomes[_POSITION[purpose]].device_ok:
            atoms &= ~index.device
        if later.limit_sensitive:
            atoms &= ~index.sensitive
        snapshot = later.snapshot
        if SPECIAL_FEATURE_1 in snapshot.explicit_refused or (
            snapshot.tcf & PURPOSE_BIT[purpose] and SPECIAL_FEATURE_1 not in snapshot.explicit_given
        ):
            atoms &= ~index.precise
        return index.atoms(atoms)


def _level_reasons(outcomes: list[Evaluation], ceiling: int) -> Mapping[Level, Reason]:
    reasons: dict[Level, Reason] = {}
    for rank in range(ceiling + 1, len(_LEVELS)):
        own = outcomes[_PYRAMID[rank - 1]]
        reasons[_LEVELS[rank]] = own.reason if not own.allowed else _CUMULATIVE[ceiling + 1]
    return MappingProxyType(reasons)
