"""Evidence that an erasure is complete (issue 11, parts 4 and 7): a person seeded in every store is
found nowhere afterwards, not in any table or column, not in the bytes of either database or their
write-ahead logs, not in Redis or the export folder, neither as an identifier nor as its SHA-256 or
MD5; the audit chain still verifies; the receipt names the stores and the recipients; and the erasure
log then stops replays of earlier messages while a later return starts someone new."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ColumnElement, select

from tactful.audit import verification
from tactful.collect import service as collect_service
from tactful.collect.schemas import Status
from tactful.collect.validate import Reason
from tactful.consent import service as consent_service
from tactful.db import Base
from tactful.policy.state import ConsentStatus
from tactful.profiles import service as profiles_service
from tactful.rights import recipients as recipients_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.models import PrivacyRequest
from tactful.rights.schemas import RequestStatus
from tactful.tables import import_all_models
from tactful.types import Purpose, utcnow
from tests.rights.erasing import (
    POLICY,
    Place,
    count,
    export_files,
    found_in_files,
    found_in_redis,
    found_in_tables,
    ingest,
    place,
    redis_keys_of,
    seed,
    subject_of,
)
from tests.rights.requesting import file

NOW = utcnow().replace(microsecond=0)
BEFORE = NOW - timedelta(hours=2)


@pytest.fixture
def where(backend: str, tmp_path: Path) -> Iterator[Place]:
    with place(backend, tmp_path) as found:
        yield found


def erase(where: Place, user_id: str) -> str:
    with where.database.session() as session:
        record = file(session, where.keystore, POLICY, RequestType.ERASURE, at=NOW, user_id=user_id)
    assert JobRunner(where.jobs()).run(record.id) is RunOutcome.COMPLETED
    return record.public_id


def test_an_erased_person_is_found_nowhere(where: Place) -> None:
    ada = seed(where, at=BEFORE, tag="ada")
    bob = seed(where, at=BEFORE, tag="bob")  # someone else, who must stay whole
    with where.database.session() as session:  # an earlier request of hers, kept as proof
        access = file(session, where.keystore, POLICY, RequestType.ACCESS, at=NOW, user_id=ada.user_id)
    assert JobRunner(where.jobs()).run(access.id) is RunOutcome.COMPLETED
    needles = ada.needles()
    assert redis_keys_of(where, ada.subject_id) or where.redis is None
    assert export_files(where), "her access request left a sealed package in the export folder"

    public_id = erase(where, ada.user_id)

    assert found_in_tables(where, needles) == []
    assert found_in_files(where, needles) == []
    assert found_in_redis(where, needles) == []
    assert redis_keys_of(where, ada.subject_id) == []
    assert export_files(where) == []  # her package went with her
    with where.database.session() as session:
        for table in (
            "events", "quarantine", "decision_log", "decision_outcomes", "privacy_exports", "identities",
            "traits", "subjects",
        ):  # fmt: skip
            column = where_subject(table)
            assert session.execute(select(column).where(column == ada.subject_id)).first() is None, table
        assert verification.verify(session, keystore=where.keystore).ok
        assert not where.keystore.has_subject(ada.subject_id)
        # Bob is whole: the scan's zero is about her, not an empty database.
        assert (
            len(profiles_service.identities(session, keystore=where.keystore, subject_id=bob.subject_id)) == 3
        )
        # The requests stay as proof, linked to no one.
        rows = session.scalars(select(PrivacyRequest).where(PrivacyRequest.id == access.id)).all()
        assert [row.subject_id for row in rows] == [None]
        done = session.scalars(select(PrivacyRequest).where(PrivacyRequest.public_id == public_id)).one()
        receipt = done.receipt
        tasks = recipients_service.tasks(session, catalog=POLICY.catalog, request_id=done.id)
    assert subject_of(where, user_id=bob.user_id) == bob.subject_id
    assert count(where, "events") == 3  # bob's
    # The scans read what is there: bob's subject id is found in cells and, on SQLite, in the files.
    assert found_in_tables(where, {"bob": str(bob.subject_id).encode()})
    assert found_in_files(where, {"bob": bob.subject_id.hex.encode()}) or not where.files
    assert done.status == RequestStatus.COMPLETED.value
    steps = receipt["steps"]
    # (PostgreSQL keeps JSON objects in its own key order.)
    assert set(steps) == {"suppress", "erase_stores", "unlearn", "destroy_keys", "notify_recipients"}
    assert steps["suppress"]["identifiers_suppressed"] == 4  # a user id, two anonymous ids, the address
    assert steps["erase_stores"]["removed"]["collection"] >= 3 + 2  # events, quarantined messages
    assert steps["erase_stores"]["removed"]["decisions"] == 1
    assert steps["erase_stores"]["removed"]["outcomes"] == 1
    assert steps["erase_stores"]["removed"]["exports"] == 1
    assert (steps["erase_stores"]["removed"]["realtime_counters"] > 0) is (where.redis is not None)
    assert steps["destroy_keys"]["keys_destroyed"] == 1
    assert "beyond use" in steps["destroy_keys"]["backups"]
    named = steps["suppress"]["recipients"]
    assert "email_provider" in named  # the demo catalog sends the e-mail address there
    assert steps["notify_recipients"]["recipients"] == named
    assert [(t.recipient, t.status.value) for t in tasks] == [(r, "pending") for r in named]


def where_subject(table: str) -> ColumnElement[Any]:
    import_all_models()
    return Base.metadata.tables[table].c.subject_id


def test_no_return_of_the_erased(where: Place) -> None:
    ada = seed(where, at=BEFORE, tag="eve")
    erase(where, ada.user_id)
    first, second = ada.anonymous_ids
    with where.database.session() as session:
        start = collect_service.ingest_stats(session)

    # A replay of a message sent before the erasure, under a new message id: suppressed.
    replay = {"type": "track", "event": "Product Viewed", "userId": ada.user_id, "anonymousId": second,
              "timestamp": BEFORE.isoformat(), "messageId": "m-eve-replayed"}  # fmt: skip
    # An old message held back by a client and sent now: its own time still says before.
    held_back = {"type": "page", "anonymousId": first, "originalTimestamp": BEFORE.isoformat(),
                 "sentAt": BEFORE.isoformat(), "messageId": "m-eve-held", "name": "Home"}  # fmt: skip
    # The first message's own id again: the dedup ledger already knows it as erased.
    same_id = {"type": "identify", "userId": ada.user_id, "anonymousId": first, "messageId": "m-eve-1",
               "timestamp": BEFORE.isoformat(), "traits": {"email": ada.email}}  # fmt: skip
    # An identify by the erased e-mail address alone, for someone new, sent before: suppressed too.
    by_email = {"type": "identify", "anonymousId": "anon-new-visitor", "timestamp": BEFORE.isoformat(),
                "messageId": "m-eve-email", "traits": {"email": ada.email.upper()}}  # fmt: skip
    results = ingest(where, [replay, held_back, same_id, by_email], at=utcnow())
    assert [(r.status, r.reason) for r in results] == [(Status.SUPPRESSED, Reason.ERASED_SUBJECT)] * 4
    assert subject_of(where, user_id=ada.user_id) is None

    # The same user id, sent after the erasure: a new, empty subject, with no consent carried over.
    later = utcnow() + timedelta(seconds=1)
    back = {"type": "track", "event": "Product Viewed", "userId": ada.user_id, "timestamp": later.isoformat(),
            "messageId": "m-eve-back", "properties": {"product_id": "p-2"}}  # fmt: skip
    [result] = ingest(where, [back], at=later)
    assert result.status is Status.STORED
    reborn = subject_of(where, user_id=ada.user_id)
    assert reborn is not None
    assert reborn != ada.subject_id
    with where.database.session() as session:
        profile = profiles_service.get_profile(session, keystore=where.keystore, subject_id=reborn)
        ledger = consent_service.state(session, subject_id=reborn)
        stats = collect_service.ingest_stats(session)
    assert [i.value for i in profile.identities] == [ada.user_id]
    assert profile.traits == {}
    assert ledger.state(Purpose.ANALYTICS, at=utcnow()).status is not ConsentStatus.GRANTED
    # Both are counted, and the totals still balance.
    assert (
        stats.suppressed_by_reason.get("erased_subject", 0)
        - start.suppressed_by_reason.get("erased_subject", 0)
        == 4
    )
    assert stats.after_erasure - start.after_erasure == 1
    assert stats.balanced
