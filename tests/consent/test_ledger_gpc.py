"""Global Privacy Control in the ledger: recorded once as an opt-out of `sale_or_share`, lifted only
by an explicit grant, and never undone by a request that lacks the signal (DESIGN §1, invariant 4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.consent import gpc
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import ConsentChange
from tactful.crypto import Keystore
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.types import Purpose, new_id

T0 = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
SALE = Purpose.SALE_OR_SHARE


def signal(session: Session, keystore: Keystore, subject: uuid.UUID, at: datetime) -> bool:
    entry = consent_service.record_gpc(
        session, keystore=keystore, subject_id=subject, at=at, proof={"request_id": "r"}
    )
    return entry is not None


def grant(
    session: Session,
    keystore: Keystore,
    subject: uuid.UUID,
    at: datetime,
    source: ConsentSource,
    **proof: str,
) -> None:
    change = ConsentChange.for_purpose(SALE, ConsentAction.GRANTED, source, proof=proof)
    consent_service.record(
        session, keystore=keystore, subject_id=subject, changes=[change], at=at, actor="tests"
    )


def opted_out(session: Session, subject: uuid.UUID, at: datetime) -> bool:
    return consent_service.state(session, subject_id=subject).sale_or_share_opted_out(at=at)


SIGNALS = [("1", True), (" 1 ", True), ("0", False), ("", False), (None, False), ("true", False),
           (True, True), (1, True), (2, False)]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), SIGNALS)
def test_only_the_defined_value_is_a_signal(value: object, expected: bool) -> None:
    assert gpc.gpc_signal(value) is expected


def test_the_signal_is_recorded_once_as_an_opt_out(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    assert signal(session, keystore, subject, T0)
    assert not signal(session, keystore, subject, T0 + timedelta(minutes=1))
    entries = consent_service.history(session, subject_id=subject)
    assert [(e.target, e.action, e.source, e.proof["gpc"]) for e in entries] == [
        ("sale_or_share", ConsentAction.DENIED, ConsentSource.GPC, "1")
    ]
    state = consent_service.state(session, subject_id=subject)
    assert state.gpc_first_at == T0
    assert state.state(SALE, at=T0).status is ConsentStatus.DENIED


def test_a_grant_replayed_from_event_context_or_tcf_does_not_lift_it(
    session: Session, keystore: Keystore
) -> None:
    subject = new_id()
    signal(session, keystore, subject, T0)
    grant(session, keystore, subject, T0 + timedelta(minutes=1), ConsentSource.SEGMENT_CONTEXT)
    grant(session, keystore, subject, T0 + timedelta(minutes=2), ConsentSource.TCF)
    assert opted_out(session, subject, T0 + timedelta(minutes=3))
    assert not signal(session, keystore, subject, T0 + timedelta(minutes=4))  # still in force


def test_an_explicit_grant_lifts_it_and_the_next_signal_sets_it_again(
    session: Session, keystore: Keystore
) -> None:
    subject = new_id()
    signal(session, keystore, subject, T0)
    grant(session, keystore, subject, T0 + timedelta(minutes=1), ConsentSource.BANNER)
    assert not opted_out(session, subject, T0 + timedelta(minutes=1))
    assert signal(session, keystore, subject, T0 + timedelta(minutes=2))
    assert opted_out(session, subject, T0 + timedelta(minutes=2))


def test_a_grant_made_with_the_signal_on_is_not_undone_by_it(session: Session, keystore: Keystore) -> None:
    subject = new_id()
    signal(session, keystore, subject, T0)
    grant(session, keystore, subject, T0 + timedelta(minutes=1), ConsentSource.API, gpc="1")
    assert not signal(session, keystore, subject, T0 + timedelta(minutes=2))
    assert not opted_out(session, subject, T0 + timedelta(minutes=2))


# Each step: a request with the signal, one without it, a grant replayed from event context, or an
# explicit grant (made with or without the signal on).
STEPS = st.lists(st.sampled_from(["signal", "nothing", "context", "explicit", "explicit+gpc"]), max_size=8)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_no_signal_is_never_an_opt_in(session: Session, keystore: Keystore, steps: list[str]) -> None:
    subject = new_id()
    model_out = False  # what the law requires: out after a signal until an explicit grant
    for i, step in enumerate(steps):
        at = T0 + timedelta(minutes=i)
        if step == "signal":
            recorded = signal(session, keystore, subject, at)
            assert recorded or model_out or "explicit+gpc" in steps[:i]
            model_out = model_out or recorded
        elif step == "context":
            grant(session, keystore, subject, at, ConsentSource.SEGMENT_CONTEXT)
        elif step.startswith("explicit"):
            grant(
                session, keystore, subject, at, ConsentSource.API, **({"gpc": "1"} if "gpc" in step else {})
            )
            model_out = False
        # "nothing": a request without the signal records nothing and changes nothing.
        if model_out:
            assert opted_out(session, subject, at), steps[: i + 1]
    if "signal" in steps:
        assert consent_service.state(session, subject_id=subject).gpc_first_at is not None
