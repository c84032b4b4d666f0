"""The look-up over the stores themselves: merged profiles, quarantined messages sealed under a
merged profile's key or naming the subject's e-mail, the bounds, and a miss."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.bulk import insert_rows
from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.collect import quarantine
from tactful.collect.models import Quarantine
from tactful.config import PolicySettings
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.profiles.counters import InProcessCounters
from tactful.rights import lookup
from tactful.rights.lookup import FoundBy, LinkStatus
from tests.profiles.builders import T0
from tests.rights.builders import Person, person

KEY = uuid.UUID(int=7)


@pytest.fixture(scope="module")
def policy() -> PolicyContext:
    catalog: Catalog = load_catalog(default_catalog_path())
    settings = PolicySettings()
    return PolicyContext(catalog, settings, configured_regimes(settings))


def quarantined(
    session: Session,
    keystore: Keystore,
    message: dict[str, object],
    sealed_for: uuid.UUID | None,
    minute: int,
) -> str:
    message_id = f"msg-{uuid.uuid4().hex}"
    row = quarantine.row(
        {"messageId": message_id, **message},
        keystore=keystore,
        subject_id=sealed_for,
        reason="invalid_field",
        detail="for the look-up test",
        message_id=message_id,
        received_at=T0.replace(minute=minute),
        write_key_id=None,
        request_id=None,
        limit=10_000,
    )
    insert_rows(session, Quarantine.__table__, [row])  # type: ignore[arg-type]
    return message_id


def look(
    session: Session, keystore: Keystore, policy: PolicyContext, subject: uuid.UUID | None, **bounds: int
) -> lookup.SubjectRecord | None:
    return lookup.look_up(
        session,
        keystore=keystore,
        policy=policy,
        subject_id=subject,
        found_by=FoundBy.SUBJECT_ID,
        key_id=KEY,
        at=T0,
        events_limit=bounds.get("events", 50),
        quarantine_limit=bounds.get("quarantine", 50),
    )


@pytest.fixture
def ada(session: Session, keystore: Keystore) -> Person:
    return person(session, keystore, InProcessCounters())


def test_a_merged_profiles_id_and_its_sealed_messages_lead_to_the_survivor(
    session: Session, keystore: Keystore, policy: PolicyContext, ada: Person
) -> None:
    under_merged = quarantined(session, keystore, {"anonymousId": ada.anonymous_id}, ada.merged, 1)
    by_email = quarantined(session, keystore, {"traits": {"email": ada.email.upper()}}, None, 2)
    elsewhere = quarantined(session, keystore, {"anonymousId": "someone-else"}, None, 3)
    record = look(session, keystore, policy, ada.merged)
    assert record is not None
    assert record.subject_id == ada.survivor
    assert record.merged == (ada.merged,)
    held = {q["message_id"]: q for q in record.quarantine}
    assert set(held) == {under_merged, by_email}  # and not the one naming someone else
    assert ada.anonymous_id in str(held[under_merged]["raw"])  # opened under the merged profile's key
    assert [q["message_id"] for q in record.quarantine] == [by_email, under_merged]  # newest first
    assert elsewhere not in held
    linked = {(i.kind, i.value) for i in record.identities if i.status is LinkStatus.LINKED}
    assert linked == {("user_id", ada.user_id), ("anonymous_id", ada.anonymous_id), ("email", ada.email)}
    assert record.consent.regimes  # the gate answered for the survivor


def test_the_quarantine_is_bounded(
    session: Session, keystore: Keystore, policy: PolicyContext, ada: Person
) -> None:
    ids = [quarantined(session, keystore, {"userId": ada.user_id}, ada.survivor, m) for m in range(1, 4)]
    bounded = look(session, keystore, policy, ada.survivor, quarantine=2)
    assert bounded is not None
    assert [q["message_id"] for q in bounded.quarantine] == ids[:0:-1]  # the two newest
    assert bounded.quarantine_more is True
    whole = look(session, keystore, policy, ada.survivor, quarantine=3)
    assert whole is not None
    assert whole.quarantine_more is False


def test_a_miss_is_audited_and_names_no_one(
    session: Session, keystore: Keystore, policy: PolicyContext
) -> None:
    for subject in (None, uuid.uuid4()):
        assert look(session, keystore, policy, subject) is None
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).one()
        assert entry.action == lookup.MISSED
        assert entry.subject_ref is None
        assert entry.details == {"key_id": str(KEY), "found_by": "subject_id"}
