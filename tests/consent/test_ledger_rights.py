"""The ledger through profile merges (the stricter choice wins, GPC carries over) and through the
rights registry (export returns the history; erasure keeps pseudonymised proof that nothing links
back to the person once the key is gone)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.config import Settings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction, merge_states
from tactful.consent.models import ConsentEventRow
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.crypto import Keystore
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.profiles.counters import InProcessCounters
from tactful.rights.registry import RightsContext, erase_all, export_all
from tactful.types import Purpose, new_id

T0 = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
END = T0 + timedelta(days=1)
PURPOSES = [Purpose.ANALYTICS, Purpose.SEGMENTS, Purpose.SALE_OR_SHARE]
SOURCES = [ConsentSource.API, ConsentSource.BANNER, ConsentSource.TCF, ConsentSource.GPC]

Choice = tuple[Purpose, ConsentAction, int, ConsentSource]
CHOICES = st.lists(
    st.tuples(
        st.sampled_from(PURPOSES),
        st.sampled_from(list(ConsentAction)),
        st.integers(0, 30),
        st.sampled_from(SOURCES),
    ),
    max_size=6,
)


def write(session: Session, keystore: Keystore, subject: uuid.UUID, choices: list[Choice]) -> None:
    for purpose, action, minute, source in choices:
        if source is ConsentSource.GPC:
            purpose, action = Purpose.SALE_OR_SHARE, ConsentAction.DENIED
        change = ConsentChange.for_purpose(purpose, action, source)
        at = T0 + timedelta(minutes=minute)
        consent_service.record(
            session, keystore=keystore, subject_id=subject, changes=[change], at=at, actor="tests"
        )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=CHOICES, b=CHOICES)
def test_after_a_merge_the_stricter_choice_wins(
    session: Session, keystore: Keystore, a: list[Choice], b: list[Choice]
) -> None:
    source, target = new_id(), new_id()
    write(session, keystore, source, a)
    write(session, keystore, target, b)
    expected = merge_states(
        consent_service.state(session, subject_id=source), consent_service.state(session, subject_id=target)
    )

    moved = consent_service.merge_ledgers(session, keystore=keystore, source=source, target=target, at=END)

    assert moved == len(a)
    assert consent_service.history(session, subject_id=source) == []
    merged = consent_service.state(session, subject_id=target)
    for purpose in Purpose:
        if expected.state(purpose, at=END).status.refused:
            assert merged.state(purpose, at=END).status.refused, purpose
    assert merged.gpc_first_at == expected.gpc_first_at
    # Nothing was lost: every choice of both profiles is in the survivor's ledger.
    assert len(consent_service.history(session, subject_id=target)) >= len(a) + len(b)


def test_a_merge_records_the_stricter_choice_as_an_import(session: Session, keystore: Keystore) -> None:
    source, target = new_id(), new_id()
    write(session, keystore, source, [(Purpose.ANALYTICS, ConsentAction.DENIED, 0, ConsentSource.BANNER)])
    write(session, keystore, target, [(Purpose.ANALYTICS, ConsentAction.GRANTED, 10, ConsentSource.BANNER)])
    consent_service.merge_ledgers(session, keystore=keystore, source=source, target=target, at=END)

    state = consent_service.state(session, subject_id=target)
    assert state.state(Purpose.ANALYTICS, at=END).status is ConsentStatus.DENIED
    last = consent_service.history(session, subject_id=target)[-1]
    assert (last.target, last.action, last.source, last.at) == (
        "analytics",
        ConsentAction.DENIED,
        ConsentSource.IMPORT,
        END,
    )


@pytest.mark.parametrize("kind", [TargetKind.RESTRICTION, TargetKind.LIMIT_SENSITIVE])
def test_a_flag_outside_the_fold_carries_over_a_merge(
    session: Session, keystore: Keystore, kind: TargetKind
) -> None:
    source, target = new_id(), new_id()
    flag = ConsentChange(kind, ConsentAction.DENIED, ConsentSource.API)
    consent_service.record(session, keystore=keystore, subject_id=source, changes=[flag], at=T0, actor="t")
    lift = ConsentChange(kind, ConsentAction.GRANTED, ConsentSource.API)
    consent_service.record(
        session, keystore=keystore, subject_id=target, changes=[lift], at=T0 + timedelta(hours=1), actor="t"
    )
    consent_service.merge_ledgers(session, keystore=keystore, source=source, target=target, at=END)
    flags = consent_service.flags(session, subject_id=target, at=END)
    assert getattr(flags, kind.value)
    other = "limit_sensitive" if kind is TargetKind.RESTRICTION else "restriction"
    assert not getattr(flags, other)  # only the flag that was set carries over


def _context(session: Session, keystore: Keystore) -> RightsContext:
    return RightsContext(
        session=session, keystore=keystore, settings=Settings(), counters=InProcessCounters()
    )


def test_export_returns_the_history(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    change = ConsentChange.for_purpose(
        Purpose.ANALYTICS,
        ConsentAction.GRANTED,
        ConsentSource.BANNER,
        notice_version="v3",
        proof={"request_id": "r9"},
    )
    consent_service.record(
        session, keystore=keystore, subject_id=subject, changes=[change], at=T0, actor="tests"
    )
    exported = export_all(_context(session, keystore), subject)["consent"]
    assert exported == {
        "events": [
            {
                "at": T0.isoformat(),
                "target": "analytics",
                "action": "granted",
                "source": "banner",
                "notice_version": "v3",
                "method": None,
                "proof": {"request_id": "r9"},
            }
        ]
    }
    keystore.destroy(subject)


def test_erasure_keeps_the_proof_pseudonymised_and_unlinkable(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    write(
        session,
        keystore,
        subject,
        [
            (Purpose.ANALYTICS, ConsentAction.GRANTED, 0, ConsentSource.BANNER),
            (Purpose.SEGMENTS, ConsentAction.WITHDRAWN, 5, ConsentSource.API),
        ],
    )
    ref = keystore.subject_ref(subject)
    ctx = _context(session, keystore)

    removed = erase_all(ctx, subject)

    assert removed["consent"] == 2
    assert not keystore.has_subject(subject)
    assert consent_service.history(session, subject_id=subject) == []
    assert export_all(ctx, subject)["consent"] == {}
    kept = session.scalars(select(ConsentEventRow).where(ConsentEventRow.subject_ref == ref)).all()
    assert [(row.target, row.action) for row in sorted(kept, key=lambda r: r.sequence)] == [
        ("analytics", "granted"),
        ("personalization.segments", "withdrawn"),
    ]
    assert len({row.subject_id for row in kept}) == 1
    assert kept[0].subject_id != subject
    assert all(row.erased_at is not None for row in kept)
    # The proof still matches the audit log's entries for the same person...
    audited = session.scalars(select(AuditEntry).where(AuditEntry.subject_ref == ref)).all()
    assert {entry.action for entry in audited} == {"consent.changed"}
    # ...but with the salt gone, nobody can compute that reference from the subject any more.
    assert keystore.subject_ref(subject) != ref
    keystore.destroy(subject)
    assert erase_all(ctx, subject)["consent"] == 0
