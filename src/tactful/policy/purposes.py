"""Per-purpose verdicts: the legal basis each regime gives, the consent state, and the caps that
come before any regime (restriction, age, objection, GPC). Several regimes: the first refusal wins;
when all allow, the strictest basis is the one reported.

    regimes ──build_table (when the gate is compiled)──▶ PurposeTable: a row per kind of subject,
                                          an evaluation per purpose and consent status
    snapshot + Subject ──evaluate_purposes──▶ row lookup, 8 statuses, then the caps
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations, product
from operator import getitem
from typing import NamedTuple

from tactful.policy.regimes import LegalBasis, Regime
from tactful.policy.state import PURPOSE_BIT, ConsentSnapshot, ConsentStatus
from tactful.policy.verdicts import Code, Reason, Verdict
from tactful.types import Purpose

RESTRICTED = Reason(Code.RESTRICTED)
MINOR_CAP = Reason(Code.MINOR_CAP)
MINOR_NOT_PROFILED = Reason(Code.MINOR_NOT_PROFILED)
GPC_CAP = Reason(Code.GPC_CAP)
GPC_SALE = Reason(Code.GPC_SALE)
OBJECTION_MARKETING = Reason(Code.OBJECTION_MARKETING)

ABOVE_SEGMENTS: frozenset[Purpose] = frozenset({Purpose.BEHAVIORAL, Purpose.PREDICTIVE, Purpose.INDIVIDUAL})
"""What the `1:many` caps (minors, GPC) refuse."""

MINOR_REFUSED: frozenset[Purpose] = ABOVE_SEGMENTS | {Purpose.MARKETING_EMAIL, Purpose.SALE_OR_SHARE}
"""Minors are capped at `1:many` and never profiled: no personalized messages, no sale or sharing."""

DIRECT_MARKETING: frozenset[Purpose] = frozenset(
    {Purpose.PREDICTIVE, Purpose.INDIVIDUAL, Purpose.MARKETING_EMAIL, Purpose.SALE_OR_SHARE}
)
"""What an objection stops whatever its basis (Art. 21(2)-(3)): direct marketing, and the
cross-session profiling that serves it. Purposes on legitimate interest stop as well."""


@dataclass(frozen=True, slots=True)
class Evaluation:
    allowed: bool
    reason: Reason
    basis: LegalBasis | None = None
    request_only: bool = False
    """Allowed for request-context atoms read from the request only (GDPR segments without a grant)."""
    device_ok: bool = True
    """Atoms that depend on a device identifier may be read (a grant where ePrivacy asks for one)."""
    parental: bool = False
    """Allowed with a parent's consent: the reason's parameters name its verification method, known
    per call."""
    verdict: Verdict = field(init=False, compare=False, repr=False)
    """The public face of this evaluation, made once (most evaluations live in a table)."""
    flags: int = field(init=False, compare=False, repr=False)
    """`allowed`, `request_only` and `device_ok` as bits 0, 1 and 2: for the gate's table of the
    pyramid (`gate._CLIMB`), which reads the four pyramid purposes' flags as one number."""

    def __post_init__(self) -> None:
        basis = self.basis.value if self.basis is not None else None
        verdict = Verdict(self.allowed, self.reason.code, self.reason.params, basis, self.request_only)
        object.__setattr__(self, "verdict", verdict)
        flags = self.allowed | self.request_only << 1 | self.device_ok << 2
        object.__setattr__(self, "flags", flags)


class Subject(NamedTuple):
    """The gate's reading of the subject, computed once per call (a tuple: made on every call,
    and cheaper to make than a frozen dataclass)."""

    age: int | None
    minor: bool
    objected: bool
    restricted: bool
    gpc: bool
    explicit_after_gpc: int
    """`PURPOSE_BIT` mask of the purposes granted by the subject's own act after GPC."""

    def below(self, age_limit: int) -> bool:
        # A minor of unknown age is read as below every age limit: the cautious side.
        return self.age < age_limit if self.age is not None else self.minor


PURPOSES: tuple[Purpose, ...] = tuple(Purpose)
_STATUSES: tuple[ConsentStatus, ...] = tuple(ConsentStatus)
_RESTRICTED = Evaluation(False, RESTRICTED)
_MINOR_CAP = Evaluation(False, MINOR_CAP)
_MINOR_NOT_PROFILED = Evaluation(False, MINOR_NOT_PROFILED)
_OBJECTION_MARKETING = Evaluation(False, OBJECTION_MARKETING)
_GPC_SALE = Evaluation(False, GPC_SALE)
_GPC_CAP = Evaluation(False, GPC_CAP)

Row = tuple[dict[ConsentStatus, Evaluation], ...]
"""For each purpose (in `Purpose` order), its evaluation under each consent status. (Plain dicts,
never changed once built: read through a mapping proxy, the 8 lookups of every call cost more.)"""


@dataclass(frozen=True, eq=False)
class PurposeTable:
    """Every purpose's evaluation under a set of regimes, for every kind of subject and every
    consent status, before the caps (restriction, age, objection, GPC).

    Under a set of regimes a subject differs only by a few facts: which of the regimes' age
    limits it is below, whether it objected, and whether a parent's consent is on record. So the
    table holds one row per combination of those, worked out once per set of regimes, and a call
    reads one row and looks up the 8 statuses in it.
    """

    regimes: tuple[Regime, ...]
    names: tuple[str, ...]
    thresholds: tuple[int, ...]
    """The ages at which some regime's rule changes (consent age, opt-in age), ascending."""
    caps_gpc: bool
    rows: tuple[tuple[Row, bool], ...]
    """Indexed by `_row_index`; each row says whether some evaluation in it awaits a parent's
    verification method."""


def _row_index(
    thresholds: tuple[int, ...], age: int | None, minor: bool, objected: bool, parent: bool
) -> int:
    # Ages fall into len(thresholds) + 1 intervals; unknown ages are two more kinds (minor or not).
    kind = bisect_right(thresholds, age) if age is not None else len(thresholds) + (1 if minor else 2)
    return kind * 4 + objected * 2 + parent


def build_table(regimes: tuple[Regime, ...]) -> PurposeTable:
    """Every purpose's evaluation under `regimes` (in the order given), from the plain rules
    (`_under`, `_combined`): done once, when the gate is compiled."""
    thresholds = tuple(
        sorted({r.consent_age for r in regimes} | {r.opt_in_age for r in regimes if r.opt_in_age is not None})
    )
    # One age for each interval between thresholds (the thresholds' own ages start an interval),
    # then the two kinds of unknown age.
    ages: list[tuple[int | None, bool]] = [((thresholds[0] - 1) if thresholds else 0, False)]
    ages += [(t, False) for t in thresholds]
    ages += [(None, True), (None, False)]
    rows: dict[int, tuple[Row, bool]] = {}
    for age, minor in ages:
        for objected in (False, True):
            for parent in (False, True):
                subject = Subject(age, minor, objected, False, False, 0)
                row = tuple(
                    {s: _combined(p, s, regimes, subject, parent) for s in _STATUSES} for p in PURPOSES
                )
                parental = any(e.parental for by_status in row for e in by_status.values())
                rows[_row_index(thresholds, age, minor, objected, parent)] = (row, parental)
    return PurposeTable(
        regimes=regimes,
        names=tuple(r.name for r in regimes),
        thresholds=thresholds,
        caps_gpc=any(r.gpc_caps_personalization for r in regimes),
        rows=tuple(rows[i] for i in range(len(rows))),
    )


def _combined(
    purpose: Purpose, status: ConsentStatus, regimes: Sequence[Regime], subject: Subject, parent: bool
) -> Evaluation:
    allowed: list[Evaluation] = []
    for regime in regimes:
        outcome = _under(regime, purpose, status, subject, parent=parent)
        if not outcome.allowed:
            return outcome
        allowed.append(outcome)
    strictest = max(allowed, key=lambda o: o.basis.strictness if o.basis else -1)
    return Evaluation(
        True,
        strictest.reason,
        strictest.basis,
        request_only=any(o.request_only for o in allowed),
        device_ok=all(o.device_ok for o in allowed),
        parental=strictest.parental,
    )


def evaluate_purposes(snapshot: ConsentSnapshot, table: PurposeTable, subject: Subject) -> list[Evaluation]:
    """Each purpose's evaluation for this subject, in `Purpose` order: one row of the table, then
    the caps."""
    method = snapshot.parental_method
    age, minor, objected = subject.age, subject.minor, subject.objected
    # `_row_index`, written out: this runs on every call of the gate.
    kind = bisect_right(table.thresholds, age) if age is not None else len(table.thresholds) + 1 + (not minor)
    row, parental = table.rows[kind * 4 + objected * 2 + (method is not None)]
    evals = list(map(getitem, row, snapshot.ordered))
    restricted, gpc = subject.restricted, subject.gpc
    if restricted or minor or objected or gpc:
        # `_caps_index`, written out as well.
        by_lift = _CAPS[restricted * 16 + minor * 8 + objected * 4 + gpc * 2 + (gpc and table.caps_gpc)]
        for i, cap in by_lift[subject.explicit_after_gpc & _LIFTABLE]:
            evals[i] = cap
    if parental and method is not None:
        for i, outcome in enumerate(evals):
            if outcome.parental:
                evals[i] = _with_parent(outcome, method)
    return evals


def _cap(purpose: Purpose, subject: Subject, caps_gpc: bool) -> Evaluation | None:
    """What refuses a purpose before any regime is asked (never `essential`)."""
    if purpose is Purpose.ESSENTIAL:
        return None
    if subject.restricted:
        return _RESTRICTED
    if subject.minor and purpose in MINOR_REFUSED:
        return _MINOR_CAP if purpose in ABOVE_SEGMENTS else _MINOR_NOT_PROFILED
    if subject.objected and purpose in DIRECT_MARKETING:
        return _OBJECTION_MARKETING
    lifted = bool(subject.explicit_after_gpc & PURPOSE_BIT[purpose])
    if subject.gpc and purpose is Purpose.SALE_OR_SHARE and not lifted:
        return _GPC_SALE
    if caps_gpc and purpose in ABOVE_SEGMENTS and not lifted:
        return _GPC_CAP
    return None


def _caps_index(restricted: bool, minor: bool, objected: bool, gpc: bool, caps_gpc: bool) -> int:
    return restricted * 16 + minor * 8 + objected * 4 + gpc * 2 + caps_gpc


def _caps_table() -> tuple[Mapping[int, tuple[tuple[int, Evaluation], ...]], ...]:
    # For every combination of the flags, and every set of purposes the subject granted by their
    # own act after a GPC signal (only those that a GPC cap could refuse matter): which purposes are
    # capped, and by what. (The GPC caps come last in `_cap`, so lifting one leaves the purpose to
    # its regimes.)
    flags = (False, True)
    liftable = [bit for bit in PURPOSE_BIT.values() if bit & _LIFTABLE]
    lifts = {sum(chosen) for n in range(len(liftable) + 1) for chosen in combinations(liftable, n)}
    table: dict[int, Mapping[int, tuple[tuple[int, Evaluation], ...]]] = {}
    for restricted, minor, objected, gpc, caps_gpc in product(flags, repeat=5):
        by_lift: dict[int, tuple[tuple[int, Evaluation], ...]] = {}
        for lifted in lifts:
            subject = Subject(None, minor, objected, restricted, gpc, lifted)
            caps = ((i, _cap(purpose, subject, caps_gpc)) for i, purpose in enumerate(PURPOSES))
            by_lift[lifted] = tuple((i, cap) for i, cap in caps if cap is not None)
        table[_caps_index(restricted, minor, objected, gpc, caps_gpc)] = by_lift
    return tuple(table[i] for i in range(len(table)))


_LIFTABLE = sum(PURPOSE_BIT[p] for p in ABOVE_SEGMENTS | {Purpose.SALE_OR_SHARE})
"""The purposes whose GPC cap the subject's own grant after the signal lifts (`_cap`)."""
_CAPS = _caps_table()


def _under(
    regime: Regime, purpose: Purpose, status: ConsentStatus, subject: Subject, *, parent: bool
) -> Evaluation:
    """One regime's evaluation; `parent`: a parent's consent (with its method) is on record."""
    name = regime.name
    basis = regime.basis(purpose, age=subject.age)
    if subject.minor and subject.age is None and purpose in regime.opt_in_purposes:
        basis = LegalBasis.CONSENT  # a minor of unknown age may be below the opt-in age
    if basis is LegalBasis.NOT_REQUIRED or purpose is Purpose.ESSENTIAL:
        return Evaluation(
            True, Reason.of(Code.NOT_REQUIRED, purpose=purpose, regime=name), LegalBasis.NOT_REQUIRED
        )
    below = subject.below(regime.consent_age)
    needs_parent = below and (regime.coppa or basis is LegalBasis.CONSENT)
    with_parent = needs_parent and parent
    parental_refusal = Evaluation(
        False, Reason.of(Code.PARENTAL_CONSENT_NEEDED, age=regime.consent_age, regime=name)
    )
    if basis is LegalBasis.CONSENT:
        if status is ConsentStatus.GRANTED and not (needs_parent and not parent):
            return Evaluation(
                True,
                Reason.of(Code.CONSENT_GRANTED, purpose=purpose, regime=name),
                basis,
                parental=with_parent,
            )
        if (
            purpose is Purpose.SEGMENTS
            and regime.li_segments_request_context_only
            and not status.refused
            and not subject.objected
            and not (regime.coppa and below and not parent)
        ):
            # A "no" in a banner is read as an objection too: no fallback after a refusal.
            return Evaluation(
                True,
                Reason.of(Code.REQUEST_CONTEXT_ONLY, purpose=purpose, regime=name),
                LegalBasis.LEGITIMATE_INTEREST,
                request_only=True,
                device_ok=False,
            )
        if status is ConsentStatus.GRANTED:
            return parental_refusal
        return Evaluation(False, Reason.of(Code.CONSENT_MISSING, purpose=purpose, status=status, regime=name))
    if needs_parent and not parent:
        return parental_refusal
    if basis is LegalBasis.CONTRACT:
        return Evaluation(
            True, Reason.of(Code.CONTRACT, purpose=purpose, regime=name), basis, parental=with_parent
        )
    if subject.objected:
        return Evaluation(False, Reason.of(Code.OBJECTION_LEGITIMATE_INTEREST, purpose=purpose, regime=name))
    if status.refused:
        return Evaluation(False, Reason.of(Code.OPTED_OUT, purpose=purpose, status=status, regime=name))
    return Evaluation(
        True,
        Reason.of(Code.LEGITIMATE_INTEREST, purpose=purpose, regime=name),
        basis,
        # Where reading a device identifier needs consent (ePrivacy), a grant of the purpose is
        # that consent, whatever the purpose's own basis.
        device_ok=not regime.device_identifier_needs_consent or status is ConsentStatus.GRANTED,
        parental=with_parent,
    )


def _with_parent(outcome: Evaluation, method: str) -> Evaluation:
    """The outcome with the parent's verification method among its reason's parameters."""
    return Evaluation(
        True,
        outcome.reason.with_params(parental_method=method),
        outcome.basis,
        request_only=outcome.request_only,
        device_ok=outcome.device_ok,
    )
