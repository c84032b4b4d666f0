"""The policy gate: (catalog, consent at T, regimes, facts, signals) → Allowance → SubjectView.

An answer depends on a handful of discrete inputs (the consent snapshot's key, the regimes, the
subject's age and flags, whether GPC applies), so it is memoised per catalog on exactly those: the
common call is one snapshot lookup, one key and one dictionary hit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from tactful.catalog.model import Catalog
from tactful.policy.allowance import Allowance, SubjectView, Verdict
from tactful.policy.index import MEMO_LIMIT, PERSONALIZATION, PURPOSE_LEVEL, CatalogIndex, index_of
from tactful.policy.inputs import AgePolicy, ProfileSnapshot, RequestSignals, SubjectFacts
from tactful.policy.purposes import (
    MINOR_NOT_PROFILED,
    RESTRICTED,
    Evaluation,
    Subject,
    evaluate_purposes,
)
from tactful.policy.regimes import Regime
from tactful.policy.state import SIGNIFICANT_DECISIONS, SPECIAL_FEATURE_1, ConsentSnapshot, ConsentState
from tactful.types import Level, Purpose

DEFAULT_AGE_POLICY = AgePolicy()
_GPC_RECORDED, _GPC_NOW = 1, 2
_LEVELS = tuple(Level)
_NO_ATOMS: frozenset[str] = frozenset()


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
    snapshot = consent.snapshot(at=at)
    age = facts.lowest_age(at) if facts.age is not None or facts.birthdate or facts.age_range else None
    if facts.minor is not None:
        minor = facts.minor
    elif age is None:
        minor = age_policy.assume_minor_when_age_unknown
    else:
        minor = age < age_policy.minor_age
    gpc = _GPC_RECORDED if snapshot.gpc_at is not None else (_GPC_NOW if signals.gpc else 0)
    objected = facts.objection or snapshot.objected
    key = (snapshot.key, tuple(regimes), age, minor, objected, facts.restriction, facts.limit_sensitive, gpc)
    memo = index.memo
    found = memo.get(key)
    if found is not None:
        return found  # type: ignore[return-value]
    subject = Subject(
        age=age,
        minor=minor,
        objected=objected,
        restricted=facts.restriction,
        gpc=gpc != 0,
        explicit_after_gpc=snapshot.explicit_after_gpc if gpc == _GPC_RECORDED else frozenset(),
    )
    allowance = _allowance(index, snapshot, regimes, subject, limit_sensitive=facts.limit_sensitive)
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = allowance
    return allowance


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


class _Atoms:
    """The atom-level rules, over one evaluation of the purposes."""

    def __init__(
        self,
        index: CatalogIndex,
        snapshot: ConsentSnapshot,
        evals: Mapping[Purpose, Evaluation],
        ceiling: int,
        *,
        limit_sensitive: bool,
        restricted: bool,
    ) -> None:
        self.index, self.snapshot, self.evals, self.ceiling = index, snapshot, evals, ceiling
        self.limit_sensitive, self.restricted = limit_sensitive, restricted
        self.blocker = evals[PERSONALIZATION[ceiling]].reason if ceiling < len(PERSONALIZATION) else ""
        self._usable: dict[tuple[Purpose, ...], tuple[tuple[Purpose, ...], bool]] = {}

    def usable(self, routes: tuple[Purpose, ...]) -> tuple[tuple[Purpose, ...], bool]:
        """The routes that hold at this ceiling, and whether all of them hold for request context only
        (few distinct route tuples exist, so each is worked out once per evaluation)."""
        found = self._usable.get(routes)
        if found is None:
            evals, ceiling = self.evals, self.ceiling
            usable = tuple(p for p in routes if evals[p].allowed and PURPOSE_LEVEL[p] <= ceiling)
            found = (usable, bool(usable) and all(evals[p].request_only for p in usable))
            self._usable[routes] = found
        return found

    def decide_refusal(self, name: str) -> tuple[str | None, bool]:
        """Why `name` may not be read to decide (None: it may), and whether only from the request."""
        if self.restricted:
            return RESTRICTED, False
        routes = self.index.routes[name]
        if not routes:
            return f"purpose:{name} serves no personalization purpose", False
        if self.index.rank[name] > self.ceiling:
            return self.blocker, False
        usable, request_only = self.usable(routes)
        if not usable:
            first = self.evals[routes[0]]
            return (first.reason if not first.allowed else self.blocker), False
        if request_only and name not in self.index.request_context:
            return f"{self.evals[usable[0]].reason}: storing or profiling needs consent", False
        return self.atom_refusal(name, usable), request_only

    def atom_refusal(self, name: str, usable: Sequence[Purpose]) -> str | None:
        """The rules of one atom whatever its level: explicit consent for special categories,
        device identifiers, CPRA limits, and TCF special feature 1 for precise location."""
        index, snapshot = self.index, self.snapshot
        for category, covering in index.explicit_needed.get(name, ()):
            if not any(c in snapshot.explicit_given for c in covering):
                return f"explicit:{category} not given"
        if name in index.device and not any(self.evals[p].device_ok for p in usable):
            return f"eprivacy:{name} depends on a device identifier and needs consent"
        if self.limit_sensitive and name in index.sensitive:
            return "limit:use of sensitive personal information limited on request (CPRA)"
        if name in index.precise:
            refused = SPECIAL_FEATURE_1 in snapshot.explicit_refused
            from_tcf = all(p in snapshot.tcf for p in usable)
            if refused or (from_tcf and SPECIAL_FEATURE_1 not in snapshot.explicit_given):
                return "special_feature_1 not opted in"
        return None


def _allowance(
    index: CatalogIndex,
    snapshot: ConsentSnapshot,
    regimes: Sequence[Regime],
    subject: Subject,
    *,
    limit_sensitive: bool,
) -> Allowance:
    evals = evaluate_purposes(snapshot, regimes, subject)
    ceiling = 0
    for purpose in PERSONALIZATION:
        if not evals[purpose].allowed:
            break
        ceiling += 1
    rules = _Atoms(
        index, snapshot, evals, ceiling, limit_sensitive=limit_sensitive, restricted=subject.restricted
    )
    decide: set[str] = set()
    from_request: set[str] = set()
    refusals: dict[str, str] = {}
    for name in index.names:
        reason, only_request = rules.decide_refusal(name)
        if reason is not None:
            refusals[name] = reason
            continue
        decide.add(name)
        if only_request:
            from_request.add(name)
    request_only = frozenset(from_request)

    learn_ceiling = 0
    for purpose in PERSONALIZATION[:ceiling]:
        if evals[purpose].request_only:
            break
        learn_ceiling += 1
    learn_reason: str | None = None
    if subject.restricted:
        learn_reason = RESTRICTED
    elif subject.minor:
        learn_reason = MINOR_NOT_PROFILED
    elif not evals[Purpose.ANALYTICS].allowed:
        learn_reason = evals[Purpose.ANALYTICS].reason
    may_learn = learn_reason is None
    learn = (
        frozenset(n for n in decide if index.rank[n] <= learn_ceiling) - request_only
        if may_learn
        else _NO_ATOMS
    )

    purpose_atoms: dict[Purpose, frozenset[str]] = {}
    for purpose, verdict in evals.items():
        if not verdict.allowed:
            continue
        declared = index.declaring[purpose]
        if purpose in PURPOSE_LEVEL:
            purpose_atoms[purpose] = frozenset(declared & decide)
        elif purpose is Purpose.ESSENTIAL:
            purpose_atoms[purpose] = declared
        else:
            purpose_atoms[purpose] = frozenset(
                n for n in declared if rules.atom_refusal(n, (purpose,)) is None
            )

    return Allowance(
        ceiling=_LEVELS[ceiling],
        decide_atoms=frozenset(decide),
        learn_atoms=learn,
        purposes=MappingProxyType(
            {p: Verdict(e.allowed, e.reason, e.basis.value if e.basis else None) for p, e in evals.items()}
        ),
        refusals=MappingProxyType(refusals),
        level_reasons=MappingProxyType(_level_reasons(evals, ceiling)),
        may_learn=may_learn,
        learn_ceiling=_LEVELS[learn_ceiling if may_learn else 0],
        request_only=request_only,
        purpose_atoms=MappingProxyType(purpose_atoms),
        significant_decisions=_significant(snapshot, subject),
        regimes=tuple(r.name for r in regimes),
        minor=subject.minor,
        learn_reason=learn_reason,
    )


def _level_reasons(evals: Mapping[Purpose, Evaluation], ceiling: int) -> dict[Level, str]:
    reasons: dict[Level, str] = {}
    if ceiling == len(PERSONALIZATION):
        return reasons
    first = _LEVELS[ceiling + 1]
    for rank in range(ceiling + 1, len(_LEVELS)):
        own = evals[PERSONALIZATION[rank - 1]]
        if not own.allowed:
            reasons[_LEVELS[rank]] = own.reason
        else:
            reasons[_LEVELS[rank]] = f"levels are cumulative and {first} is not allowed"
    return reasons


def _significant(snapshot: ConsentSnapshot, subject: Subject) -> Verdict:
    if subject.restricted:
        return Verdict(False, RESTRICTED)
    if subject.minor:
        return Verdict(False, "age:significant decisions never serve minors")
    if SIGNIFICANT_DECISIONS in snapshot.explicit_given:
        return Verdict(True, "explicit:significant_decisions given", "consent")
    return Verdict(False, "explicit:significant_decisions not given")
