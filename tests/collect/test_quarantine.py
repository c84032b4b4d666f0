"""Quarantined payloads: sealed with the subject's key when the event names one, kept in clear only
when it names nobody, and every row expires."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.collect import quarantine
from tactful.collect import service as collect_service
from tactful.collect.models import Quarantine
from tactful.collect.schemas import Source, Status
from tactful.crypto import Keystore
from tactful.errors import KeyDestroyed
from tactful.profiles import service as profiles_service
from tests.collect.builders import T0, StandInCatalog, identify, track, uid

SOURCE = Source(write_key_id=uuid.UUID(int=1), request_id="req-q")


def ingest(session: Session, keystore: Keystore, messages: list[Any], *, at: Any = T0) -> list[Status]:
    results = collect_service.ingest(
        session, keystore=keystore, catalog=StandInCatalog(), messages=messages, source=SOURCE, at=at
    )
    return [r.status for r in results]


def held(session: Session, message_id: str) -> Quarantine:
    return session.scalars(select(Quarantine).where(Quarantine.message_id == message_id)).one()


def test_a_rejected_identify_keeps_its_email_only_under_the_subjects_key(
    session: Session, keystore: Keystore
) -> None:
    email = f"{uid('ada')}@example.com"
    bad = identify(traits={"email": email, "first_name": "Ada"}, context="not an object")
    assert ingest(session, keystore, [bad]) == [Status.QUARANTINED]
    row = held(session, bad["messageId"])
    assert row.subject_id is not None
    assert row.raw is None
    assert row.raw_enc is not None
    assert email.encode() not in row.raw_enc
    assert email in (quarantine.read_raw(keystore, row) or "")
    exported = collect_service.export_subject(session, subject_id=row.subject_id, keystore=keystore)
    [item] = exported["quarantine"]
    assert email in item["raw"]
    assert "raw_enc" not in item
    keystore.destroy(row.subject_id)  # erasure: the payload is shredded with the key
    with pytest.raises(KeyDestroyed):
        quarantine.read_raw(keystore, row)


def test_a_payload_that_names_nobody_stays_in_clear_until_it_expires(
    session: Session, keystore: Keystore
) -> None:
    nobody = track(properties={"product_id": uid("p")})
    del nobody["anonymousId"]
    named = track(timestamp="not a time")
    assert ingest(session, keystore, [nobody, named]) == [Status.QUARANTINED, Status.QUARANTINED]
    anonymous, sealed = held(session, nobody["messageId"]), held(session, named["messageId"])
    assert anonymous.subject_id is None
    assert anonymous.raw is not None
    assert nobody["properties"]["product_id"] in anonymous.raw
    assert anonymous.raw_enc is None
    for row in (anonymous, sealed):
        assert row.expires_at == T0 + quarantine.RETENTION
    assert collect_service.purge_quarantine(session, at=T0 + quarantine.RETENTION - timedelta(seconds=1)) == 0
    assert collect_service.purge_quarantine(session, at=T0 + quarantine.RETENTION) >= 2
    session.expire_all()
    assert session.scalars(select(Quarantine).where(Quarantine.request_id == "req-q")).all() == []


def test_a_sealed_payload_stays_with_the_key_that_sealed_it_across_a_merge(
    session: Session, keystore: Keystore
) -> None:
    anonymous, user = uid("anon"), uid("user")
    visitor_bad = track(anonymousId=anonymous, timestamp="not a time")
    assert ingest(session, keystore, [track(userId=user, anonymousId=None), visitor_bad]) == [
        Status.STORED,
        Status.QUARANTINED,
    ]
    visitor = held(session, visitor_bad["messageId"]).subject_id
    assert visitor is not None
    assert ingest(session, keystore, [identify(userId=user, anonymousId=anonymous)]) == [Status.STORED]
    survivor = profiles_service.find_subject(session, keystore=keystore, user_id=user)
    assert survivor is not None
    assert survivor != visitor
    row = held(session, visitor_bad["messageId"])
    assert row.subject_id == visitor  # the merged profile's id, exported and erased with the survivor
    [item] = collect_service.export_subject(session, subject_id=visitor, keystore=keystore)["quarantine"]
    assert anonymous in item["raw"]
