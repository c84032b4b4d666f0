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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Protocol

from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.config import PolicySettings
from tactful.consent import ledger
from tactful.consent.schemas import LedgerEntry, SubjectFlags
from tactful.crypto import Keystore
from tactful.policy import (
    AGE_ATOMS,
    AgePolicy,
    Allowance,
    Gate,
    ProfileSnapshot,
    Regime,
    RequestSignals,
    SubjectView,
    build_view,
    compile_gate,
    facts_from_profile,
    lifts_age_protection,
)
from tactful.policy.state import ConsentState
from tactful.profiles import atoms as profile_atoms
from tactful.profiles.counters import RealtimeCounters
from tactful.profiles.session import SessionAtoms
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


COUNTRY, REGION = "traits.country", "traits.region"
PLACE_ATOMS = frozenset({COUNTRY, REGION})
"""The traits that say where a subject lives: they choose the regimes that cover them."""
GATE_TRAITS: tuple[str, ...] = (*AGE_ATOMS, COUNTRY, REGION)
"""The traits the gate reads about a subject (age assurance, where the subject lives)."""


@dataclass(frozen=True)
class GateInputs:
    """What the gate reads about one subject, read eagerly: its ledger (folded, and the flags in force
    at the moment asked about) and the few traits the gate itself reads."""

    entries: Sequence[LedgerEntry]
    consent: ConsentState
    flags: SubjectFlags
    traits: Mapping[str, object]

    @cached_property
    def version(self) -> str:
        """The version of the subject's refusals (`ledger.refusals_version`): what the session
        counters carry, so that counts made before a refusal are stale once it is read."""
        return ledger.refusals_version(self.entries)


@dataclass(frozen=True)
class SubjectAllowance:
    """The gate's answer for one subject, the inputs it came from, and its stored atoms as a lazy
    mapping: `view()` is the SubjectView a decision (or, learning, a model update) receives, and it
    opens a sealed atom only when that atom is read."""

    allowance: Allowance
    consent: ConsentState
    flags: SubjectFlags
    profile: ProfileSnapshot

    def view(self, *, learning: bool = False) -> SubjectView:
        return build_view(self.allowance, self.profile, learning=learning)


def _place(value: object) -> str | None:
    # Only short codes are places; anything else in a trait is not trusted as one.
    return value if isinstance(value, str) and 0 < len(value) <= 16 else None


def read_inputs(
    session: Session,
    *,
    keystore: Keystore,
    subject_ids: Sequence[uuid.UUID],
    at: datetime,
    histories: Mapping[uuid.UUID, Sequence[LedgerEntry]] | None = None,
) -> dict[uuid.UUID, GateInputs]:
    """The one reader of the gate's inputs, for many subjects at once (collection's batches) or one
    (a consent read, a decision): the ledgers (given `histories`, when the caller holds them already)
    and the gate's traits, one query each per 500 subjects; nothing decrypted that the gate does not
    read (no identity, no sealed trait but an age or a place that is sealed)."""
    wanted = list(dict.fromkeys(subject_ids))
    if histories is None:
        histories = ledger.histories(session, subject_ids=wanted)
    traits = profile_atoms.read_atoms(
        session, keystore=keystore, subject_ids=wanted, at=at, names=GATE_TRAITS, computed=False
    )
    return {
        s: GateInputs(
            entries=histories[s],
            consent=ledger.fold_entries(histories[s]),
            flags=ledger.flags_at(histories[s], at),  # entries received after `at` do not count
            traits=traits[s],
        )
        for s in wanted
    }


def allowances(
    context: PolicyContext,
    inputs: Mapping[uuid.UUID, GateInputs],
    *,
    at: datetime,
    gpc_subjects: frozenset[uuid.UUID] = frozenset(),
    with_restriction: bool = True,
) -> dict[uuid.UUID, Allowance]:
    """The gate's answer at `at` for every subject of `inputs` (`gpc_subjects`: those whose request
    carries a GPC signal)."""
    return {
        subject: allowance_from(
            context,
            consent=given.consent,
            flags=given.flags,
            traits=given.traits,
            at=at,
            signals=RequestSignals(gpc=subject in gpc_subjects),
            with_restriction=with_restriction,
        )
        for subject, given in inputs.items()
    }


def subject_allowance(
    session: Session,
    *,
    keystore: Keystore,
    context: PolicyContext,
    subject_id: uuid.UUID,
    at: datetime,
    signals: RequestSignals | None = None,
    request: Mapping[str, object] | None = None,
    counters: RealtimeCounters | None = None,
) -> SubjectAllowance:
    """The gate's answer for `subject_id` at `at`, its inputs, and the subject's stored atoms, still
    sealed, for `SubjectAllowance.view`; `request` holds this request's context atoms (read for this
    request, never stored; the view reads an atom allowed from the request only from here). With
    `counters`, the view holds the catalog's session atoms too, read from them when first used and
    only if counted under the subject's refusals as they are now."""
    return _evaluate(
        session, keystore, context, subject_id, at, signals, with_restriction=True, request=request,
        counters=counters,
    )  # fmt: skip


def stored_allowances(
    session: Session,
    *,
    keystore: Keystore,
    context: PolicyContext,
    subject_ids: Sequence[uuid.UUID],
    at: datetime,
    names: Collection[str],
) -> dict[uuid.UUID, SubjectAllowance]:
    """The gate's answer at `at` for many subjects at once, as a decision reads one
    (`subject_allowance`: a restriction applies) but with no request and no session: what a pass
    over stored profiles reads (audience sizes). Of the stored atoms only `names` are read, one query
    per table per 500 subjects, and a sealed one is opened only if a view reads it."""
    inputs = read_inputs(session, keystore=keystore, subject_ids=subject_ids, at=at)
    answers = allowances(context, inputs, at=at)
    stored = profile_atoms.read_atoms(
        session, keystore=keystore, subject_ids=list(inputs), at=at, names=names
    )
    return {
        s: SubjectAllowance(
            allowance=answers[s],
            consent=given.consent,
            flags=given.flags,
            profile=ProfileSnapshot(values=stored[s]),
        )
        for s, given in inputs.items()
    }


def stranger_allowance(
    context: PolicyContext,
    *,
    at: datetime,
    signals: RequestSignals | None = None,
    request: Mapping[str, object] | None = None,
) -> SubjectAllowance:
    """The gate's answer for someone Tactful holds nothing about (no ledger, no traits): what a
    decision for an unknown id reads, with this request's context atoms alone. Nothing is created."""
    entries: Sequence[LedgerEntry] = ()
    consent, flags = ledger.fold_entries(entries), ledger.flags_at(entries, at)
    allowance = allowance_from(context, consent=consent, flags=flags, traits={}, at=at, signals=signals)
    return SubjectAllowance(
        allowance=allowance, consent=consent, flags=flags, profile=ProfileSnapshot(request=request or {})
    )


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
    request: Mapping[str, object] | None = None,
    counters: RealtimeCounters | None = None,
) -> SubjectAllowance:
    given = read_inputs(session, keystore=keystore, subject_ids=[subject_id], at=at)[subject_id]
    live: Mapping[str, object] = {}
    if counters is not None and context.catalog.session_atoms:
        # The refusals' version (a scan of the ledger) only where session counts are read with it.
        live = SessionAtoms(
            counters, subject_id=subject_id, at=at, version=given.version, catalog=context.catalog
        )
    allowance = allowance_from(
        context,
        consent=given.consent,
        flags=given.flags,
        traits=given.traits,
        at=at,
        signals=signals,
        with_restriction=with_restriction,
    )
    stored = profile_atoms.read_atoms(session, keystore=keystore, subject_ids=[subject_id], at=at)[subject_id]
    return SubjectAllowance(
        allowance=allowance,
        consent=given.consent,
        flags=given.flags,
        profile=ProfileSnapshot(values=stored, request=request or {}, session=live),
    )


def applicable_regimes(context: PolicyContext, traits: Mapping[str, object]) -> tuple[Regime, ...]:
    """The regimes that cover a subject with these traits (only its place is read): the deployment's
    establishment, else the catalog's controller's, and where the subject lives. A subject Tactful
    does not hold has no traits: the establishment and the default decide."""
    return _regimes(context, _place(traits.get(COUNTRY)), _place(traits.get(REGION)))


def _regimes(context: PolicyContext, country: str | None, region: str | None) -> tuple[Regime, ...]:
    gate = context.gate
    establishment = context.policy.establishment_country or gate.catalog.controller.establishment
    return gate.applicable(establishment, country, region)


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
    country = _place(traits.get(COUNTRY))
    region = _place(traits.get(REGION))
    facts = facts_from_profile(
        ProfileSnapshot(values=traits),
        restriction=flags.restriction and with_restriction,
        limit_sensitive=flags.limit_sensitive and with_restriction,
        country=country,
        region=region,
    )
    return context.gate.evaluate(
        consent=consent,
        regimes=_regimes(context, country, region),
        facts=facts,
        signals=signals or RequestSignals(),
        at=at,
    )
