"""Everything the policy gate needs about one subject, read from the stores, and the gate's answer.

    ledger ──fold──▶ ConsentState ─┐
    ledger ──────▶ flags ──────────┤   (objection, restriction, limit on sensitive data)
    profile ──▶ facts (age, place) ┼──▶ Gate.evaluate(at) ──▶ Allowance
    settings ──▶ regimes ──────────┘   (the process's compiled gate, `PolicyContext.gate`)

The one place that turns stored data into gate inputs, so that consent reads and (later) decisions
see a subject the same way. `PolicyContext` also carries the withdrawal hook: what a refusal does to
records that layers above consent keep per purpose (collection's events; `main` wires it).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Protocol

from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.config import PolicySettings
from tactful.consent import ledger
from tactful.consent.schemas import SubjectFlags
from tactful.crypto import Keystore
from tactful.policy import (
    AgePolicy,
    Allowance,
    Gate,
    ProfileSnapshot,
    Regime,
    RequestSignals,
    compile_gate,
    facts_from_profile,
    lifts_age_protection,
)
from tactful.policy.state import ConsentState
from tactful.profiles import service as profiles_service
from tactful.types import Purpose


@dataclass(frozen=True)
class RecordsPurged:
    """What a withdrawal hook did: records deleted (no purpose left) and records that lost purposes."""

    removed: int = 0
    narrowed: int = 0


class WithdrawalHook(Protocol):
    """After a refusal, in its transaction: keep the subject's records only for `purposes`, the
    purposes its data may still be stored for (`essential` always among them). A record left with no
    purpose goes; the others lose the purposes not in `purposes`. `at` is the refusal's time.

    Implemented above consent (consent may not import those layers) and wired by `main`."""

    def __call__(
        self, session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
    ) -> RecordsPurged: ...


def keep_records(
    session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
) -> RecordsPurged:
    """The do-nothing hook: for contexts without stores above consent (tests of consent alone)."""
    return RecordsPurged()


@dataclass(frozen=True)
class PolicyContext:
    """What the gate needs besides the subject: the process's catalog, policy settings and regimes
    (built once per process), and the gate compiled from them. The ledger service takes it to purge
    after a refusal, through the stored atoms and then `on_withdrawal` for the records above consent.

    The application passes the gate it holds (`compiled`); a context made without one (a tool, a
    test) compiles its own on first use."""

    catalog: Catalog
    policy: PolicySettings
    regimes: tuple[Regime, ...]
    on_withdrawal: WithdrawalHook = keep_records
    compiled: Gate | None = None

    @cached_property
    def gate(self) -> Gate:
        if self.compiled is not None:
            return self.compiled
        age_policy = AgePolicy(self.policy.minor_age, self.policy.assume_minor_when_age_unknown)
        return compile_gate(self.catalog, regimes=self.regimes, age_policy=age_policy)

    def lifts_age_protection(
        self, before: Mapping[str, object], after: Mapping[str, object], *, at: datetime
    ) -> bool:
        """Whether age atoms going from `before` to `after` lift a protection of age in any configured
        regime (the minors' cap, a consent or opt-in age): proof is needed for that (DESIGN §4)."""
        limits = sorted(
            {r.consent_age for r in self.regimes}
            | {r.opt_in_age for r in self.regimes if r.opt_in_age is not None}
        )
        policy = AgePolicy(self.policy.minor_age, self.policy.assume_minor_when_age_unknown)
        return lifts_age_protection(before, after, at=at, limits=tuple(limits), age_policy=policy)


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
    context: PolicyContext,
    subject_id: uuid.UUID,
    at: datetime,
    signals: RequestSignals | None = None,
) -> SubjectAllowance:
    """The gate's answer for `subject_id` at `at`, and the inputs it was computed from."""
    return _evaluate(session, keystore, context, subject_id, at, signals, with_restriction=True)


def storage_allowance(
    session: Session, *, keystore: Keystore, context: PolicyContext, subject_id: uuid.UUID, at: datetime
) -> Allowance:
    """The gate's answer for what may stay stored: a restriction (Art. 18) and the CPRA limit on
    sensitive data keep data stored but unused, so they are left out here; everything else (consent,
    objection, age, GPC) counts."""
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
    traits (only the age atoms and the place are read). Collection reads these for a whole batch.

    Without `with_restriction`, the flags that limit use but keep data (restriction, the limit on
    sensitive data) are left out: the answer is then about storage (`storage_allowance`)."""
    gate, policy = context.gate, context.policy
    country = _place(traits.get("traits.country"))
    region = _place(traits.get("traits.region"))
    facts = facts_from_profile(
        ProfileSnapshot(values=traits),
        restriction=flags.restriction and with_restriction,
        limit_sensitive=flags.limit_sensitive and with_restriction,
        country=country,
        region=region,
    )
    establishment = policy.establishment_country or gate.catalog.controller.establishment
    return gate.evaluate(
        consent=consent,
        regimes=gate.applicable(establishment, country, region),
        facts=facts,
        signals=signals or RequestSignals(),
        at=at,
    )
