"""The consent ledger store: append-only with an audit entry per change, answers for any moment,
objection, restriction and the limit on sensitive data, and the customer's consent categories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.models import ConsentEventRow
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.crypto import Keystore
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.types import Purpose, new_id

T0 = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
API = ConsentSource.API
GRANTED, DENIED, WITHDRAWN = ConsentAction.GRANTED, ConsentAction.DENIED, ConsentAction.WITHDRAWN


def change(
    purpose: Purpose, action: ConsentAction, source: ConsentSource = API, **kw: object
) -> ConsentChange:
    return ConsentChange.for_purpose(purpose, action, source, **kw)  # type: ignore[arg-type]


def limit(action: ConsentAction) -> ConsentChange:
    return ConsentChange(TargetKind.LIMIT_SENSITIVE, action, API)


def record(
    session: Session, keystore: Keystore, subject: uuid.UUID, at: datetime, *changes: ConsentChange
) -> None:
    consent_service.record(
        session, keystore=keystore, subject_id=subject, changes=changes, at=at, actor="tests"
    )


def test_choices_are_appended_never_edited(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    record(session, keystore, subject, T0, change(Purpose.ANALYTICS, GRANTED, proof={"request_id": "r1"}))
    record(session, keystore, subject, T0 + timedelta(hours=1), change(Purpose.ANALYTICS, WITHDRAWN))
    record(session, keystore, subject, T0 + timedelta(hours=2), change(Purpose.ANALYTICS, WITHDRAWN))

    entries = consent_service.history(session, subject_id=subject)
    assert [(e.sequence, e.action, e.target) for e in entries] == [
        (1, GRANTED, "analytics"),
        (2, WITHDRAWN, "analytics"),
        (3, WITHDRAWN, "analytics"),
    ]
    assert entries[0].proof == {"request_id": "r1"}
    assert entries[0].at == T0
    rows = session.scalar(select(func.count()).where(ConsentEventRow.subject_id == subject))
    assert rows == 3


def test_every_change_is_audited_with_purposes_and_actions_only(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    record(
        session,
        keystore,
        subject,
        T0,
        change(Purpose.ANALYTICS, GRANTED, proof={"request_id": "secret-ish"}),
        ConsentChange.for_explicit("user.sensitive.health", DENIED, ConsentSource.BANNER),
        ConsentChange(TargetKind.PARENTAL, GRANTED, API, method="credit_card", proof={"reference": "tx-1"}),
    )
    ref = keystore.subject_ref(subject)
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "consent.changed", AuditEntry.subject_ref == ref)
    ).all()
    assert len(entries) == 1
    assert entries[0].details == {
        "analytics": "granted",
        "explicit:user.sensitive.health": "denied",
        "parental": "granted",
        "source": "api,banner",
        "count": 3,
    }
    assert entries[0].actor == "tests"


def test_many_changes_split_over_several_audit_entries(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    changes = [change(Purpose.ANALYTICS, GRANTED if i % 2 else DENIED) for i in range(65)]
    record(session, keystore, subject, T0, *changes)
    ref = keystore.subject_ref(subject)
    counts = session.scalars(
        select(AuditEntry.details).where(
            AuditEntry.action == "consent.changed", AuditEntry.subject_ref == ref
        )
    ).all()
    assert sorted(d["count"] for d in counts) == [5, 30, 30]


def test_the_state_answers_for_any_moment(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    t1, t2 = T0, T0 + timedelta(days=2)
    record(
        session, keystore, subject, t1, change(Purpose.SEGMENTS, GRANTED), change(Purpose.ANALYTICS, GRANTED)
    )
    record(session, keystore, subject, t2, change(Purpose.SEGMENTS, WITHDRAWN))
    state = consent_service.state(session, subject_id=subject)

    assert state.state(Purpose.SEGMENTS, at=t1 - timedelta(seconds=1)).status is ConsentStatus.NOT_SET
    assert state.granted(Purpose.SEGMENTS, at=t1)
    assert state.granted(Purpose.SEGMENTS, at=t2 - timedelta(microseconds=1))
    assert state.state(Purpose.SEGMENTS, at=t2).status is ConsentStatus.WITHDRAWN
    assert state.granted(Purpose.ANALYTICS, at=t2 + timedelta(days=365))
    assert [e.target for e in consent_service.history(session, subject_id=subject, until=t1)] == [
        "personalization.segments",
        "analytics",
    ]


def test_states_folds_many_subjects_at_once(session: Session, keystore: Keystore) -> None:
    a, b, nobody = new_id(), new_id(), new_id()
    record(session, keystore, a, T0, change(Purpose.ANALYTICS, GRANTED))
    record(session, keystore, b, T0, change(Purpose.ANALYTICS, DENIED))
    states = consent_service.states(session, subject_ids=[a, b, nobody])
    assert states[a].granted(Purpose.ANALYTICS, at=T0)
    assert states[b].state(Purpose.ANALYTICS, at=T0).status is ConsentStatus.DENIED
    assert not states[nobody].purposes


def test_objection_and_restriction_flags_over_time(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    objection = ConsentChange(TargetKind.LEGITIMATE_INTEREST, DENIED, API)
    restriction = ConsentChange(TargetKind.RESTRICTION, DENIED, API)
    lift = ConsentChange(TargetKind.RESTRICTION, GRANTED, API)
    record(session, keystore, subject, T0, objection, restriction)
    record(session, keystore, subject, T0 + timedelta(days=1), lift)

    before = consent_service.flags(session, subject_id=subject, at=T0 - timedelta(seconds=1))
    during = consent_service.flags(session, subject_id=subject, at=T0)
    after = consent_service.flags(session, subject_id=subject, at=T0 + timedelta(days=2))
    assert (before.objection, before.restriction) == (False, False)
    assert (during.objection, during.restriction) == (True, True)
    assert (after.objection, after.restriction) == (True, False)
    # The fold carries the objection; a restriction is not a consent event and stays out of it.
    state = consent_service.state(session, subject_id=subject)
    assert state.objected(at=T0)


def test_the_limit_on_sensitive_data_is_a_flag_set_by_refusing_and_lifted_by_granting(
    session: Session, keystore: Keystore
) -> None:
    subject = new_id()
    day = timedelta(days=1)
    record(session, keystore, subject, T0, change(Purpose.ANALYTICS, GRANTED), limit(DENIED))
    record(session, keystore, subject, T0 + day, limit(GRANTED))
    record(session, keystore, subject, T0 + 2 * day, limit(WITHDRAWN))

    def limited(at: datetime) -> bool:
        return consent_service.flags(session, subject_id=subject, at=at).limit_sensitive

    moments = [T0 - timedelta(seconds=1), T0, T0 + day, T0 + 2 * day]
    assert [limited(at) for at in moments] == [False, True, False, True]  # a withdrawal refuses too
    flags = consent_service.flags(session, subject_id=subject, at=T0)
    assert (flags.objection, flags.restriction) == (False, False)  # the flags stay apart
    # Outside the fold, like a restriction: consent to purposes is untouched.
    state = consent_service.state(session, subject_id=subject)
    assert state.granted(Purpose.ANALYTICS, at=T0 + 3 * day)
    assert [e.label for e in consent_service.history(session, subject_id=subject)][1] == "limit_sensitive"
    audited = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.action == "consent.changed", AuditEntry.subject_ref == keystore.subject_ref(subject)
        )
        .order_by(AuditEntry.seq)
    ).all()
    assert [e.details.get("limit_sensitive") for e in audited] == ["denied", "granted", "withdrawn"]


def test_a_change_names_exactly_what_it_targets() -> None:
    with pytest.raises(ValueError, match="needs"):
        ConsentChange(TargetKind.PURPOSE, GRANTED, API)
    with pytest.raises(ValueError, match="takes no"):
        ConsentChange(TargetKind.PARENTAL, GRANTED, API, target="analytics")
    with pytest.raises(ValueError, match="explicit"):
        ConsentChange.for_explicit("user.name", GRANTED, API)
    with pytest.raises(ValueError, match="advertising"):
        ConsentChange(TargetKind.PURPOSE, GRANTED, API, target="advertising")


def test_naive_times_are_refused(session: Session, keystore: Keystore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        record(session, keystore, new_id(), T0.replace(tzinfo=None), change(Purpose.ANALYTICS, GRANTED))


def test_customer_categories_map_to_purposes_and_a_refusal_wins() -> None:
    mapping = {
        "necessary": ["essential"],
        "analytics": ["analytics"],
        "stats": ["analytics"],
        "ads": ["sale_or_share", "not-a-purpose"],
    }
    changes = consent_service.changes_from_categories(
        {"necessary": True, "analytics": True, "stats": False, "ads": True, "unknown": False},
        mapping=mapping,
        source=ConsentSource.SEGMENT_CONTEXT,
    )
    assert [(c.target, c.action, c.source) for c in changes] == [
        ("analytics", DENIED, ConsentSource.SEGMENT_CONTEXT),
        ("sale_or_share", GRANTED, ConsentSource.SEGMENT_CONTEXT),
    ]
