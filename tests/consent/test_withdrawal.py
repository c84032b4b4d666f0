"""A refusal purges the stored atoms that no purpose still allowed keeps (issue 3, part 8): in the
same transaction, audited with a count, and never because of a restriction. The context's withdrawal
hook is then told the purposes still storable, for the records kept above consent (events)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful import main
from tactful.audit.models import AuditEntry
from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog, Source
from tactful.config import PolicySettings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext, RecordsPurged, subject_allowance
from tactful.consent.regimes import configured_regimes
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.crypto import Keystore
from tactful.policy import AGE_ATOMS
from tactful.policy.state import ConsentSource
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Computed, Trait
from tactful.profiles.traits import seal
from tactful.types import Purpose

T0 = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
GRANTED, DENIED, WITHDRAWN = ConsentAction.GRANTED, ConsentAction.DENIED, ConsentAction.WITHDRAWN
# Atoms that are gate inputs themselves (age, place) would change the regimes under test.
_GATE_INPUTS = frozenset(AGE_ATOMS) | {"traits.country", "traits.region"}


@cache
def demo_catalog() -> Catalog:
    return load_catalog(main.default_catalog_path())


def policy_context(establishment: str | None = None) -> PolicyContext:
    # The demo catalog stores a country but no region: CCPA is made to cover the whole US here.
    regimes = {"ccpa": {"countries": ["US"]}} if establishment == "US" else {}
    policy = PolicySettings(establishment_country=establishment, regimes=regimes)
    return PolicyContext(demo_catalog(), policy, configured_regimes(policy))


def storable_atoms() -> list[str]:
    return sorted(
        a.name
        for a in demo_catalog().atom_list
        if a.source in (Source.TRAIT, Source.COMPUTED) and a.stored and a.name not in _GATE_INPUTS
    )


def new_subject(session: Session, keystore: Keystore) -> uuid.UUID:
    resolution = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=f"anon-{uuid.uuid4()}", user_id=None, at=T0
    )
    return resolution.subject_id


def store(
    session: Session,
    keystore: Keystore,
    subject: uuid.UUID,
    atoms: list[str],
    at: datetime,
    value: object = "value",
) -> None:
    """Write these atoms as collection would (identifiers sealed), replacing what is there."""
    catalog = demo_catalog()
    expires = at + timedelta(days=365)
    for name in atoms:
        atom = catalog.atoms[name]
        row: Trait | Computed
        if atom.source is Source.TRAIT:
            trait = session.get(Trait, (subject, name)) or Trait(subject_id=subject, atom=name)
            sealed = seal(keystore, subject, name, value) if atom.identifier else None
            trait.value, trait.value_enc = (None, sealed) if sealed else (value, None)
            row = trait
        else:
            computed = session.get(Computed, (subject, name)) or Computed(subject_id=subject, atom=name)
            computed.value, computed.state = 1, None
            row = computed
        row.updated_at, row.expires_at = at, expires
        session.add(row)
    session.flush()


def choose(
    session: Session,
    keystore: Keystore,
    subject: uuid.UUID,
    at: datetime,
    *changes: ConsentChange,
    context: PolicyContext | None = None,
) -> None:
    consent_service.record(
        session,
        keystore=keystore,
        subject_id=subject,
        changes=changes,
        at=at,
        actor="tests",
        policy=context or policy_context(),
    )


def purpose(p: Purpose, action: ConsentAction) -> ConsentChange:
    return ConsentChange.for_purpose(p, action, ConsentSource.API)


def stored(session: Session, subject: uuid.UUID) -> frozenset[str]:
    return profiles_service.stored_atoms(session, subject_id=subject)


BEHAVIOUR = [
    "computed.event_counts",
    "computed.favorite_category",
    "computed.last_seen",
    "computed.lifetime_value",
]


def test_withdrawing_predictive_removes_what_only_it_kept(session: Session, keystore: Keystore) -> None:
    subject = new_subject(session, keystore)
    grants = [Purpose.ANALYTICS, Purpose.SEGMENTS, Purpose.BEHAVIORAL, Purpose.PREDICTIVE]
    choose(session, keystore, subject, T0, *(purpose(p, GRANTED) for p in grants))
    store(session, keystore, subject, BEHAVIOUR, T0)

    choose(session, keystore, subject, T0 + timedelta(minutes=1), purpose(Purpose.PREDICTIVE, WITHDRAWN))
    # favorite_category served predictive and marketing.email (never granted); the others keep a
    # purpose: analytics, or essential for last_seen.
    assert stored(session, subject) == {
        "computed.event_counts",
        "computed.last_seen",
        "computed.lifetime_value",
    }

    choose(session, keystore, subject, T0 + timedelta(minutes=2), purpose(Purpose.ANALYTICS, WITHDRAWN))
    assert stored(session, subject) == {"computed.last_seen"}


def test_a_purge_is_audited_with_a_count_only(session: Session, keystore: Keystore) -> None:
    subject = new_subject(session, keystore)
    grants = (Purpose.ANALYTICS, Purpose.PREDICTIVE)
    choose(session, keystore, subject, T0, *(purpose(p, GRANTED) for p in grants))
    atoms = ["computed.favorite_category", "computed.event_counts", "traits.city", "traits.first_name"]
    store(session, keystore, subject, atoms, T0)

    choose(session, keystore, subject, T0 + timedelta(minutes=1), *(purpose(p, WITHDRAWN) for p in grants))

    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "consent.purged")).all()
    [entry] = [e for e in entries if e.subject_ref == keystore.subject_ref(subject)]
    assert entry.details == {"count": 3, "events": 0, "events_narrowed": 0}  # no events hook here
    assert stored(session, subject) == {"traits.first_name"}  # essential: delivering the service


def test_a_grant_purges_nothing(session: Session, keystore: Keystore) -> None:
    subject = new_subject(session, keystore)
    store(session, keystore, subject, BEHAVIOUR, T0)
    choose(session, keystore, subject, T0, purpose(Purpose.MARKETING_EMAIL, GRANTED))
    assert stored(session, subject) == set(BEHAVIOUR)


def test_a_restriction_keeps_data_stored(session: Session, keystore: Keystore) -> None:
    subject = new_subject(session, keystore)
    choose(
        session,
        keystore,
        subject,
        T0,
        purpose(Purpose.ANALYTICS, GRANTED),
        purpose(Purpose.PREDICTIVE, GRANTED),
    )
    store(session, keystore, subject, BEHAVIOUR, T0)

    restrict = ConsentChange(TargetKind.RESTRICTION, DENIED, ConsentSource.API)
    choose(session, keystore, subject, T0 + timedelta(minutes=1), restrict)
    assert stored(session, subject) == set(BEHAVIOUR)
    # A withdrawal while restricted still removes what it leaves without a purpose, and only that.
    choose(session, keystore, subject, T0 + timedelta(minutes=2), purpose(Purpose.PREDICTIVE, WITHDRAWN))
    assert stored(session, subject) == {
        "computed.event_counts",
        "computed.last_seen",
        "computed.lifetime_value",
    }


class RecordingHook:
    """A withdrawal hook that remembers what it was told and reports a fixed purge."""

    def __init__(self, purged: RecordsPurged) -> None:
        self.purged = purged
        self.calls: list[tuple[uuid.UUID, frozenset[Purpose], datetime]] = []

    def __call__(
        self, session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
    ) -> RecordsPurged:
        self.calls.append((subject_id, purposes, at))
        return self.purged


def purge_entries(session: Session, keystore: Keystore, subject: uuid.UUID) -> list[object]:
    entries = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "consent.purged", AuditEntry.subject_ref == keystore.subject_ref(subject)
        )
    )
    return [entry.details for entry in entries]


def test_the_hook_learns_the_purposes_still_storable_and_its_purge_is_audited(
    session: Session, keystore: Keystore
) -> None:
    hook = RecordingHook(RecordsPurged(removed=2, narrowed=3))
    context = replace(policy_context(), on_withdrawal=hook)
    subject = new_subject(session, keystore)
    grants = (Purpose.ANALYTICS, Purpose.SEGMENTS, Purpose.BEHAVIORAL)
    choose(session, keystore, subject, T0, *(purpose(p, GRANTED) for p in grants), context=context)
    store(session, keystore, subject, ["computed.last_seen"], T0)
    assert hook.calls == []  # grants narrow nothing

    at = T0 + timedelta(minutes=1)
    choose(session, keystore, subject, at, purpose(Purpose.ANALYTICS, WITHDRAWN), context=context)
    assert hook.calls == [(subject, frozenset({Purpose.ESSENTIAL, Purpose.SEGMENTS, Purpose.BEHAVIORAL}), at)]
    # No atom went (last_seen is essential), but the hook's records did: one audit entry says so.
    assert purge_entries(session, keystore, subject) == [{"count": 0, "events": 2, "events_narrowed": 3}]


def test_nothing_purged_writes_no_audit_entry(session: Session, keystore: Keystore) -> None:
    hook = RecordingHook(RecordsPurged())
    context = replace(policy_context(), on_withdrawal=hook)
    subject = new_subject(session, keystore)
    store(session, keystore, subject, ["computed.last_seen"], T0)
    choose(session, keystore, subject, T0, purpose(Purpose.ANALYTICS, DENIED), context=context)
    assert len(hook.calls) == 1
    assert purge_entries(session, keystore, subject) == []


def test_gpc_purges_through_the_ledger(session: Session, keystore: Keystore) -> None:
    subject = new_subject(session, keystore)
    choose(
        session,
        keystore,
        subject,
        T0,
        *(purpose(p, GRANTED) for p in (Purpose.ANALYTICS, Purpose.PREDICTIVE)),
    )
    store(session, keystore, subject, ["computed.favorite_category", "computed.last_seen"], T0)
    consent_service.record_gpc(
        session, keystore=keystore, subject_id=subject, at=T0 + timedelta(minutes=1), proof={},
        policy=policy_context(),
    )  # fmt: skip
    after = stored(session, subject)
    gate = allowance(session, keystore, subject, T0 + timedelta(minutes=1))
    assert "computed.last_seen" in after
    # Whatever GPC caps (Tactful's policy), nothing stays that the gate no longer allows storing.
    assert all(keeps(gate, name) for name in after)


def test_under_ccpa_nothing_is_purged_until_an_opt_out(session: Session, keystore: Keystore) -> None:
    us = policy_context("US")
    subject = new_subject(session, keystore)
    store(session, keystore, subject, BEHAVIOUR, T0)
    store(session, keystore, subject, ["traits.country"], T0, value="US")

    choose(session, keystore, subject, T0, purpose(Purpose.MARKETING_EMAIL, DENIED), context=us)
    assert set(BEHAVIOUR) <= stored(session, subject)
    choose(session, keystore, subject, T0, purpose(Purpose.PREDICTIVE, DENIED), context=us)
    kept = stored(session, subject)
    assert "computed.favorite_category" not in kept
    assert {"computed.event_counts", "computed.lifetime_value", "traits.country"} <= kept


# -- the invariant ---------------------------------------------------------------------------------


def allowance(session: Session, keystore: Keystore, subject: uuid.UUID, at: datetime) -> object:
    return subject_allowance(
        session, keystore=keystore, context=policy_context(), subject_id=subject, at=at
    ).allowance


def keeps(gate: object, name: str) -> bool:
    """Whether some declared purpose of `name` holds for storage (not for the request alone)."""
    verdicts = gate.purposes  # type: ignore[attr-defined]
    return any(
        p is Purpose.ESSENTIAL or (verdicts[p].allowed and not verdicts[p].request_only)
        for p in demo_catalog().atoms[name].purposes
    )


STEP = st.tuples(
    st.sampled_from([p for p in Purpose if p is not Purpose.ESSENTIAL]),
    st.sampled_from([GRANTED, DENIED, WITHDRAWN]),
    st.booleans(),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(steps=st.lists(STEP, min_size=1, max_size=8))
def test_no_stored_atom_outlives_every_purpose(
    session: Session, keystore: Keystore, steps: list[tuple[Purpose, ConsentAction, bool]]
) -> None:
    subject = new_subject(session, keystore)
    at = T0
    # Everything granted, everything stored; from there on collection stores only what is allowed.
    choose(
        session, keystore, subject, at, *(purpose(p, GRANTED) for p in Purpose if p is not Purpose.ESSENTIAL)
    )
    store(session, keystore, subject, storable_atoms(), at)
    for target, action, restore in steps:
        at += timedelta(minutes=1)
        if restore:
            # Collection writes again, but only what the gate allows storing now.
            gate = allowance(session, keystore, subject, at)
            store(session, keystore, subject, [a for a in storable_atoms() if keeps(gate, a)], at)
        before = stored(session, subject)
        choose(session, keystore, subject, at, purpose(target, action))
        gate = allowance(session, keystore, subject, at)
        kept = stored(session, subject)
        assert all(keeps(gate, name) for name in kept)
        # Nothing that still has a purpose is removed.
        assert {a for a in before if keeps(gate, a)} <= kept
