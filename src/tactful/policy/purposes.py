"""Per-purpose verdicts: the legal basis each regime gives, the consent state, and the caps that
come before any regime (restriction, age, objection, GPC). Several regimes: the first refusal wins;
when all allow, the strictest basis is the one reported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tactful.policy.regimes import LegalBasis, Regime
from tactful.policy.state import ConsentSnapshot, ConsentStatus
from tactful.types import Purpose

RESTRICTED = "restriction:processing restricted (Art. 18): data kept but unused"
MINOR_CAP = "age:minor caps at 1:many"
MINOR_NOT_PROFILED = "age:minors are never profiled"
GPC_CAP = "policy:gpc caps at 1:many (Tactful policy, not the law)"
GPC_SALE = "gpc:Global Privacy Control opts out of sale_or_share (law)"
OBJECTION_MARKETING = "objection:direct marketing and profiling for it stopped (Art. 21(3))"

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
    reason: str
    basis: LegalBasis | None = None
    request_only: bool = False
    """Allowed for request-context atoms read from the request only (GDPR segments without a grant)."""
    device_ok: bool = True
    """Atoms that depend on a device identifier may be read (a grant where ePrivacy asks for one)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """The gate's reading of the subject, computed once per call."""

    age: int | None
    minor: bool
    objected: bool
    restricted: bool
    gpc: bool
    explicit_after_gpc: frozenset[Purpose]

    def below(self, age_limit: int) -> bool:
        # A minor of unknown age is read as below every age limit: the cautious side.
        return self.age < age_limit if self.age is not None else self.minor


def evaluate_purposes(
    snapshot: ConsentSnapshot, regimes: Sequence[Regime], subject: Subject
) -> Mapping[Purpose, Evaluation]:
    caps_gpc = subject.gpc and any(r.gpc_caps_personalization for r in regimes)
    return {p: _purpose(p, snapshot, regimes, subject, caps_gpc) for p in Purpose}


def _purpose(
    purpose: Purpose, snapshot: ConsentSnapshot, regimes: Sequence[Regime], subject: Subject, caps_gpc: bool
) -> Evaluation:
    if purpose is not Purpose.ESSENTIAL:
        if subject.restricted:
            return Evaluation(False, RESTRICTED)
        if subject.minor and purpose in MINOR_REFUSED:
            return Evaluation(False, MINOR_CAP if purpose in ABOVE_SEGMENTS else MINOR_NOT_PROFILED)
        if subject.objected and purpose in DIRECT_MARKETING:
            return Evaluation(False, OBJECTION_MARKETING)
        lifted = purpose in subject.explicit_after_gpc
        if subject.gpc and purpose is Purpose.SALE_OR_SHARE and not lifted:
            return Evaluation(False, GPC_SALE)
        if caps_gpc and purpose in ABOVE_SEGMENTS and not lifted:
            return Evaluation(False, GPC_CAP)
    status = snapshot.status[purpose]
    allowed: list[tuple[Evaluation, str]] = []
    for regime in regimes:
        outcome = _under(regime, purpose, status, snapshot, subject)
        if not outcome.allowed:
            return outcome
        allowed.append((outcome, regime.name))
    strictest = max(allowed, key=lambda pair: pair[0].basis.strictness if pair[0].basis else -1)[0]
    return Evaluation(
        True,
        strictest.reason,
        strictest.basis,
        request_only=any(o.request_only for o, _ in allowed),
        device_ok=all(o.device_ok for o, _ in allowed),
    )


def _under(
    regime: Regime, purpose: Purpose, status: ConsentStatus, snapshot: ConsentSnapshot, subject: Subject
) -> Evaluation:
    name = regime.name
    basis = regime.basis(purpose, age=subject.age)
    if subject.minor and subject.age is None and purpose in regime.opt_in_purposes:
        basis = LegalBasis.CONSENT  # a minor of unknown age may be below the opt-in age
    if basis is LegalBasis.NOT_REQUIRED or purpose is Purpose.ESSENTIAL:
        return Evaluation(True, f"not_required:{purpose} ({name})", LegalBasis.NOT_REQUIRED)
    parent = snapshot.parental_method
    below = subject.below(regime.consent_age)
    needs_parent = below and (regime.coppa or basis is LegalBasis.CONSENT)
    parental_refusal = Evaluation(
        False, f"parental:consent of a parent needed under {regime.consent_age} ({name})"
    )
    if basis is LegalBasis.CONSENT:
        if status is ConsentStatus.GRANTED and not (needs_parent and parent is None):
            return _with_parent(
                Evaluation(True, f"consent:{purpose} granted ({name})", basis), parent, needs_parent
            )
        if (
            purpose is Purpose.SEGMENTS
            and regime.li_segments_request_context_only
            and not status.refused
            and not subject.objected
            and not (regime.coppa and below and parent is None)
        ):
            # A "no" in a banner is read as an objection too: no fallback after a refusal.
            return Evaluation(
                True,
                f"legitimate_interest:{purpose} for request context only ({name})",
                LegalBasis.LEGITIMATE_INTEREST,
                request_only=True,
                device_ok=False,
            )
        if status is ConsentStatus.GRANTED:
            return parental_refusal
        word = "not granted" if status is ConsentStatus.NOT_SET else str(status)
        return Evaluation(False, f"consent:{purpose} {word} ({name})")
    if needs_parent and parent is None:
        return parental_refusal
    if basis is LegalBasis.CONTRACT:
        return _with_parent(Evaluation(True, f"contract:{purpose} ({name})", basis), parent, needs_parent)
    if subject.objected:
        return Evaluation(False, f"objection:{purpose} rests on legitimate interest ({name})")
    if status.refused:
        return Evaluation(False, f"opt-out:{purpose} {status} ({name})")
    outcome = Evaluation(
        True,
        f"legitimate_interest:{purpose}, no objection or opt-out ({name})",
        basis,
        device_ok=not regime.device_identifier_needs_consent,
    )
    return _with_parent(outcome, parent, needs_parent)


def _with_parent(outcome: Evaluation, parent: str | None, needed: bool) -> Evaluation:
    if not needed or parent is None:
        return outcome
    head, _, regime = outcome.reason.rpartition(" (")
    return Evaluation(
        True,
        f"{head}, with parental consent ({parent}) ({regime}",
        outcome.basis,
        device_ok=outcome.device_ok,
    )
