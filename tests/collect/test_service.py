"""The ingestion service against a database: storage, dedup, quarantine, identity, counters, erasure.
The small catalog, under a policy that needs no grant: these tests are not about consent."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.collect import checks, quarantine, store
from tactful.collect import service as collect_service
from tactful.collect.models import Event, MessageId, Quarantine
from tactful.collect.schemas import EventResult, Source, Status
from tactful.collect.validate import Reason
from tactful.config import Limits
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.profiles import service as profiles_service
from tests.collect.builders import LIMITS, T0, identify, open_policy, track, uid

SOURCE = Source(write_key_id=uuid.UUID(int=1), request_id="req-1", trusted=True)  # a server key


def ingest(
    session: Session,
    keystore: Keystore,
    messages: list[Any],
    *,
    source: Source = SOURCE,
    limits: Limits | None = None,
) -> list[EventResult]:
    return collect_service.ingest(
        session,
        keystore=keystore,
        messages=messages,
        source=source,
        at=T0,
        limits=limits or LIMITS,
        policy=open_policy(),
    )


def statuses(results: list[EventResult]) -> list[tuple[Status, Reason | None]]:
    return [(r.status, r.reason) for r in results]


def events_of(session: Session, message_id: str) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.message_id == message_id)))


def test_a_valid_track_is_stored_filtered_and_attached_to_its_subject(
    session: Session, keystore: Keystore
) -> None:
    message = track(properties={"product_id": "p-9", "category": "books", "color": "red"})
    message["context"] = {"locale": "de-DE", "ip": "203.0.113.9", "library": {"name": "analytics-python"}}
    [result] = ingest(session, keystore, [message])
    assert result == EventResult(message["messageId"], Status.STORED)
    [row] = events_of(session, message["messageId"])
    assert row.type == "track"
    assert row.event == "Product Viewed"
    assert row.properties == {"product_id": "p-9", "category": "books"}
    assert row.context == {"locale": "de-DE", "library": {"name": "analytics-python"}}
    assert row.timestamp == T0
    assert row.received_at == T0
    assert row.write_key_id == SOURCE.write_key_id
    assert row.request_id == "req-1"
    subject = profiles_service.find_subject(session, keystore=keystore, anonymous_id=message["anonymousId"])
    assert row.subject_id == subject
    stats = collect_service.ingest_stats(session)
    assert stats.dropped_fields == {"properties.color": 1, "context.ip": 1}


def test_identify_traits_reach_the_profile_and_identifiers_stay_out_of_the_event_store(
    session: Session, keystore: Keystore
) -> None:
    message = identify(
        traits={"first_name": "Ada", "email": "Ada@Example.com", "age_range": "25-34", "shoe": 38}
    )
    message["context"] = {"traits": {"email": "Ada@Example.com", "age_range": "25-34"}}
    [result] = ingest(session, keystore, [message])
    assert result.status is Status.STORED
    subject = profiles_service.find_subject(session, keystore=keystore, email="ada@example.com")
    assert subject is not None
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject)
    assert profile.traits["traits.first_name"] == "Ada"
    assert profile.traits["traits.age_range"] == "25-34"
    [row] = events_of(session, message["messageId"])
    assert row.traits == {"age_range": "25-34"}
    assert row.context == {"traits": {"age_range": "25-34"}}
    raw = session.execute(select(Event.__table__).where(Event.message_id == message["messageId"])).one()
    assert "Ada@Example.com" not in str(raw)
    assert "Ada" not in str(raw)


def test_same_id_same_payload_is_a_duplicate_even_with_new_transport_fields(
    session: Session, keystore: Keystore
) -> None:
    message = track()
    retry = {
        **message,
        "sentAt": "2026-03-01T12:00:05Z",
        "context": {"library": {"name": "x", "version": "9"}},
    }
    first = ingest(session, keystore, [message])
    second = ingest(session, keystore, [retry, message])
    assert statuses(first) == [(Status.STORED, None)]
    assert statuses(second) == [(Status.DUPLICATE, None), (Status.DUPLICATE, None)]
    assert len(events_of(session, message["messageId"])) == 1


def test_same_id_different_payload_is_a_conflict_and_the_first_version_is_kept(
    session: Session, keystore: Keystore
) -> None:
    message = track()
    changed = {**message, "properties": {"product_id": "p-2", "category": "books"}}
    results = ingest(session, keystore, [message, changed])
    later = ingest(session, keystore, [changed])
    assert statuses(results) == [(Status.STORED, None), (Status.QUARANTINED, Reason.DUPLICATE_CONFLICT)]
    assert statuses(later) == [(Status.QUARANTINED, Reason.DUPLICATE_CONFLICT)]
    [row] = events_of(session, message["messageId"])
    assert row.properties["product_id"] == "p-1"
    held = session.scalars(select(Quarantine).where(Quarantine.message_id == message["messageId"])).all()
    assert [q.reason for q in held] == ["duplicate_conflict", "duplicate_conflict"]
    assert all(q.subject_id == row.subject_id for q in held)


def test_message_ids_are_scoped_by_write_key(session: Session, keystore: Keystore) -> None:
    message = track()
    other = Source(write_key_id=uuid.UUID(int=2))
    assert statuses(ingest(session, keystore, [message])) == [(Status.STORED, None)]
    assert statuses(ingest(session, keystore, [message], source=other)) == [(Status.STORED, None)]


def test_message_ids_are_stored_hashed(session: Session, keystore: Keystore) -> None:
    message = track()
    ingest(session, keystore, [message])
    digests = session.scalars(select(MessageId.digest)).all()
    assert digests
    assert not any(message["messageId"] in digest for digest in digests)


def test_messages_without_ids_are_each_given_a_fresh_one_and_all_stored(
    session: Session, keystore: Keystore
) -> None:
    # Two identical actions sent without ids are two real actions (as Segment treats them).
    message = track()
    del message["messageId"]
    first, second = ingest(session, keystore, [message, dict(message)])
    [third] = ingest(session, keystore, [dict(message)])
    results = [first, second, third]
    assert [r.status for r in results] == [Status.STORED] * 3
    ids = [r.message_id for r in results]
    assert all(i is not None and i.startswith(checks.ASSIGNED_PREFIX) for i in ids)
    assert len(set(ids)) == 3
    for message_id in ids:
        assert message_id is not None
        uuid.UUID(message_id.removeprefix(checks.ASSIGNED_PREFIX))
        assert len(events_of(session, message_id)) == 1


def test_retries_of_a_message_with_an_id_are_still_deduplicated(session: Session, keystore: Keystore) -> None:
    message = track()
    first, again = ingest(session, keystore, [message, dict(message)])
    [later] = ingest(session, keystore, [dict(message)])
    assert first.status is Status.STORED
    assert again == later == EventResult(message["messageId"], Status.DUPLICATE)
    assert len(events_of(session, message["messageId"])) == 1


def test_an_oversize_event_inside_a_valid_batch_is_quarantined_and_the_rest_stored(
    session: Session, keystore: Keystore
) -> None:
    small, big, last = track(), track(), track()
    big["properties"]["blob"] = "x" * 40_000
    results = ingest(session, keystore, [small, big, last])
    assert statuses(results) == [
        (Status.STORED, None),
        (Status.QUARANTINED, Reason.EVENT_TOO_LARGE),
        (Status.STORED, None),
    ]
    [held] = session.scalars(select(Quarantine).where(Quarantine.message_id == big["messageId"]))
    assert held.truncated
    assert held.subject_id is not None
    assert len(quarantine.read_raw(keystore, held) or "") == Limits().max_event_bytes


def test_unstorable_values_are_quarantined_with_the_payload_escaped(
    session: Session, keystore: Keystore
) -> None:
    nul = track(properties={"product_id": "p\u0000"})
    lone = track(properties={"product_id": "\ud83d"})
    results = ingest(session, keystore, [nul, lone])
    assert statuses(results) == [(Status.QUARANTINED, Reason.UNSTORABLE_VALUE)] * 2
    held = {
        q.message_id: q for q in session.scalars(select(Quarantine).where(Quarantine.request_id == "req-1"))
    }
    assert "p\\u0000" in (quarantine.read_raw(keystore, held[nul["messageId"]]) or "")
    assert "\\ud83d" in (quarantine.read_raw(keystore, held[lone["messageId"]]) or "")


def test_invalid_events_are_quarantined_never_dropped(session: Session, keystore: Keystore) -> None:
    future = track(timestamp=(T0 + timedelta(days=400)).isoformat())
    nobody = track()
    del nobody["anonymousId"]
    results = ingest(session, keystore, [future, nobody, 7, {"type": "shout", "userId": "u"}])
    assert statuses(results) == [
        (Status.QUARANTINED, Reason.TIMESTAMP_OUT_OF_RANGE),
        (Status.QUARANTINED, Reason.MISSING_IDENTITY),
        (Status.QUARANTINED, Reason.INVALID_TYPE),
        (Status.QUARANTINED, Reason.INVALID_TYPE),
    ]
    held = session.scalars(select(Quarantine).order_by(Quarantine.raw)).all()
    assert sorted(q.reason for q in held) == sorted(str(r.reason) for r in results)
    by_id = {q.message_id: q for q in held}
    assert by_id[future["messageId"]].subject_id is not None  # identity valid: erasable with the subject
    assert by_id[nobody["messageId"]].subject_id is None
    assert all(q.raw is None for q in held)  # sealed, even when it names nobody
    assert any(quarantine.read_raw(keystore, q) == "7" for q in held)


def test_injection_strings_are_stored_verbatim(session: Session, keystore: Keystore) -> None:
    hostile = ["'; DROP TABLE events; --", "{{7*7}}", "<script>alert(1)</script>", "${jndi:ldap://x}", "%s%n"]
    messages = [track(properties={"product_id": text, "category": text}) for text in hostile]
    results = ingest(session, keystore, messages)
    assert {r.status for r in results} == {Status.STORED}
    for message, text in zip(messages, hostile, strict=True):
        [row] = events_of(session, message["messageId"])
        assert row.properties == {"product_id": text, "category": text}
    assert session.scalar(select(func.count()).select_from(Event)) >= len(hostile)


def test_consent_and_gpc_are_kept_with_the_event(session: Session, keystore: Keystore) -> None:
    carried = track(
        context={
            "consent": {"categoryPreferences": {"Analytics": True, "Advertising": False}},
            "consentManagement": {"cmp": "example"},
        }
    )
    signalled = track(context={"gpc": True})
    plain = track()
    ingest(session, keystore, [carried, signalled, plain])
    ingest(session, keystore, [track(messageId="from-a-gpc-browser")], source=Source(gpc=True))
    [row] = events_of(session, carried["messageId"])
    assert row.consent == {
        "categoryPreferences": {"Analytics": True, "Advertising": False},
        "consentManagement": {"cmp": "example"},
    }
    assert row.context == {}  # consent signals live in their own columns, not in the filtered context
    assert row.gpc is None
    assert events_of(session, signalled["messageId"])[0].gpc is True
    assert events_of(session, plain["messageId"])[0].consent is None
    assert events_of(session, "from-a-gpc-browser")[0].gpc is True


def test_counters_balance_and_count_reasons(session: Session, keystore: Keystore) -> None:
    message = track()
    ingest(session, keystore, [message, message, {**message, "event": "x"}, 1, track()])
    stats = collect_service.ingest_stats(session)
    assert (stats.received, stats.stored, stats.deduplicated, stats.quarantined, stats.suppressed) == (
        5,
        2,
        1,
        2,
        0,
    )
    assert stats.quarantined_by_reason == {"duplicate_conflict": 1, "invalid_type": 1}
    assert stats.balanced


def test_alias_merges_subjects_and_moves_collected_rows(session: Session, keystore: Keystore) -> None:
    anonymous, user = uid("anon"), uid("user")
    browsing = track(anonymousId=anonymous)
    signed_in = track(userId=user, anonymousId=None)
    ingest(session, keystore, [browsing, signed_in])
    before = {events_of(session, m["messageId"])[0].subject_id for m in (browsing, signed_in)}
    assert len(before) == 2
    alias = {"type": "alias", "previousId": anonymous, "userId": user, "messageId": uid("msg")}
    [result] = ingest(session, keystore, [alias])
    assert result.status is Status.STORED
    after = {events_of(session, m["messageId"])[0].subject_id for m in (browsing, signed_in, alias)}
    survivor = profiles_service.find_subject(session, keystore=keystore, user_id=user)
    assert after == {survivor}


def test_merges_inside_one_batch_attach_every_event_to_the_survivor(
    session: Session, keystore: Keystore
) -> None:
    anonymous, user = uid("anon"), uid("user")
    batch = [
        track(anonymousId=anonymous),
        track(userId=user, anonymousId=None),
        identify(userId=user, anonymousId=anonymous),
        track(anonymousId=anonymous),
    ]
    assert {r.status for r in ingest(session, keystore, batch)} == {Status.STORED}
    subjects = {events_of(session, m["messageId"])[0].subject_id for m in batch}
    assert subjects == {profiles_service.find_subject(session, keystore=keystore, anonymous_id=anonymous)}


def test_export_and_erase_a_subject(session: Session, keystore: Keystore) -> None:
    user = uid("user")
    stored, bad = identify(userId=user), track(userId=user, anonymousId=None, event=None)
    ingest(session, keystore, [stored, bad])
    subject = profiles_service.find_subject(session, keystore=keystore, user_id=user)
    assert subject is not None
    exported = collect_service.export_subject(session, subject_id=subject)
    assert [e["message_id"] for e in exported["events"]] == [stored["messageId"]]
    assert [q["reason"] for q in exported["quarantine"]] == ["invalid_field"]
    assert collect_service.erase_subject(session, subject_id=subject) == 3  # event, quarantine, dedup entry
    assert collect_service.export_subject(session, subject_id=subject) == {"events": [], "quarantine": []}
    assert (
        session.scalar(select(func.count()).select_from(MessageId).where(MessageId.subject_id == subject))
        == 0
    )
    # A replay of the erased subject's message does not bring it back.
    [replay] = ingest(session, keystore, [stored])
    assert replay == EventResult(stored["messageId"], Status.SUPPRESSED, Reason.ERASED_SUBJECT)
    assert events_of(session, stored["messageId"]) == []
    assert collect_service.ingest_stats(session).balanced


def test_old_message_ids_are_purged_after_retention(session: Session, keystore: Keystore) -> None:
    message = track()
    ingest(session, keystore, [message])
    assert collect_service.purge_message_ids(session, before=T0) == 0
    assert collect_service.purge_message_ids(session, before=T0 + timedelta(days=31)) >= 1
    [again] = ingest(session, keystore, [message])
    assert again.status is Status.STORED


def test_a_message_racing_another_transaction_is_stored_once(fresh_db: Database, keystore: Keystore) -> None:
    """The second transaction cannot see the first's uncommitted dedup entry; its reservation waits
    for the first to commit, loses, and turns the event into a duplicate."""
    message = track()

    def send() -> list[EventResult]:
        with fresh_db.session() as session:
            return ingest(session, keystore, [message])

    with fresh_db.session() as session, ThreadPoolExecutor(1) as pool:
        first = ingest(session, keystore, [message])
        second = pool.submit(send)
        time.sleep(0.3)  # let the second transaction reach its lookup while the first is open
        session.commit()
    assert statuses(first) == [(Status.STORED, None)]
    assert statuses(second.result(timeout=30)) == [(Status.DUPLICATE, None)]
    with fresh_db.session() as session:
        assert len(events_of(session, message["messageId"])) == 1
        assert collect_service.ingest_stats(session).balanced


def test_one_request_cannot_add_unbounded_dropped_field_names(session: Session, keystore: Keystore) -> None:
    message = track(properties={f"junk_{n}": n for n in range(300)})
    ingest(session, keystore, [message])
    dropped = collect_service.ingest_stats(session).dropped_fields
    assert len(dropped) == store.MAX_DROPPED_NAMES + 1
    assert sum(dropped.values()) == 300
    assert dropped[store.OTHER_FIELDS] == 300 - store.MAX_DROPPED_NAMES
