"""Everything the policy gate needs about one subject, read from the stores, and the gate's answer.

    ledger ──fold──▶ ConsentState ─┐
    ledger ──────▶ flags ──────────┤
    profile ──▶ facts (age, place) ┼──▶ policy.evaluate(at) ──▶ Allowance
    settings ──▶ regimes ──────────┘

The one place that turns stored data into gate inputs, so that consent reads and (later) decisions
see a subject the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.config import PolicySettings
from tactful.consent import ledger
from tactful.consent.schemas import SubjectFlags
from tactful.crypto import Keystore
from tactful.policy import (
    AgePolicy,
    Allowance,
    ProfileSnapshot,
    Regime,
    RequestSignals,
    applicable_regimes,
    evaluate,
    facts_from_profile,
)
from tactful.policy.state import ConsentState
from tactful.profiles import service as profiles_service


@dataclass(frozen=True)
class PolicyContext:
    """What the gate needs besides the subject: the process's catalog, policy settings and regimes
    (built once per process). The ledger service takes it to purge after a refusal."""

    catalog: Catalog
    policy: PolicySettings
    regimes: tuple[Regime, ...]


@dataclass(frozen=True)
class SubjectAllowance:
    allowance: Allowance
    consent: ConsentState
    flags: SubjectFlags
    profile: ProfileSnapshot


def _place(value: object) -> str | None:
    # Only short codes are places; anything else in a trait is not trusted as one.
    return value if isinstance(value, str) and 0 < len(value) <= 16 else None


def subject_allowance(
    session: Session,
    *,
    keystore: Keystore,
    catalog: Catalog,
    policy: PolicySettings,
    regimes: Sequence[Regime],
    subject_id: uuid.UUID,
    at: datetime,
    signals: RequestSignals | None = None,
) -> SubjectAllowance:
    """The gate's answer for `subject_id` at `at`, and the inputs it was computed from."""
    context = PolicyContext(catalog, policy, tuple(regimes))
    return _evaluate(session, keystore, context, subject_id, at, signals, with_restriction=True)


def storage_allowance(
    session: Session, *, keystore: Keystore, context: PolicyContext, subject_id: uuid.UUID, at: datetime
) -> Allowance:
    """The gate's answer for what may stay stored: a restriction (Art. 18) keeps data stored but
    unused, so it is left out here; everything else (consent, objection, age, GPC) counts."""
    return _evaluate(session, keystore, context, subject_id, at, None, with_restriction=False).allowance


def _evaluate(
    session: Session,
    keystore: Keystore,
    context: PolicyContext,
    subject_id: uuid.UUID,
    at: datetime,
    signals: RequestSignals | None,
    *,
    with_restriction: bool,
) -> SubjectAllowance:
    entries = ledger.history(session, subject_id=subject_id)
    consent = ledger.fold_entries(entries)
    flags = ledger.flags_at([e for e in entries if e.at <= at], at)
    stored = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id, at=at)
    profile = ProfileSnapshot(values={**stored.traits, **stored.computed})
    allowance = allowance_from(
        context,
        consent=consent,
        flags=flags,
        traits=stored.traits,
        at=at,
        signals=signals,
        with_restriction=with_restriction,
    )
    return SubjectAllowance(allowance=allowance, consent=consent, flags=flags, profile=profile)


def allowance_from(
    context: PolicyContext,
    *,
    consent: ConsentState,
    flags: SubjectFlags,
    traits: Mapping[str, object],
    at: datetime,
    signals: RequestSignals | None = None,
    with_restriction: bool = True,
) -> Allowance:
    """The gate's answer from inputs already read: the folded ledger, its flags and the subject's
    traits (only the age atoms and the place are read). Collection reads these for a whole batch."""
    catalog, policy = context.catalog, context.policy
    country = _place(traits.get("traits.country"))
    region = _place(traits.get("traits.region"))
    restriction = flags.restriction and with_restriction
    facts = facts_from_profile(
        ProfileSnapshot(values=traits), restriction=restriction, country=country, region=region
    )
    establishment = policy.establishment_country or catalog.controller.establishment
    return evaluate(
        catalog=catalog,
        consent=consent,
        regimes=applicable_regimes(establishment, country, region, regimes=context.regimes),
        facts=facts,
        signals=signals or RequestSignals(),
        at=at,
        age_policy=AgePolicy(policy.minor_age, policy.assume_minor_when_age_unknown),
    )
