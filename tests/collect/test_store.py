"""Stored events after a consent withdrawal (`store.forget_withdrawn_purposes`, consent's withdrawal
hook): each event keeps only the purposes still storable, an event left with none is deleted, and
events stored before consent was applied (no list) are left alone. Both backends."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import null, select, update
from sqlalchemy.orm import Session

from tactful.collect import store
from tactful.collect.models import Event
from tactful.consent.gatekeeper import RecordsPurged
from tactful.types import Purpose, new_id
from tests.profiles.builders import T0

NOT_APPLIED = ("json null", "sql null")
"""Two ways an event stored before consent was applied can hold no list."""

Listed = list[str] | str  # a sorted purpose list, or one of NOT_APPLIED


def add_events(session: Session, subject: uuid.UUID, lists: list[Listed]) -> list[uuid.UUID]:
    ids = []
    for index, purposes in enumerate(lists):
        event = Event(
            id=new_id(), subject_id=subject, message_id=f"msg-{index}", type="track",
            event="Product Viewed", timestamp=T0, received_at=T0 + timedelta(seconds=index),
            properties={}, traits={}, context={},
            purposes=purposes if isinstance(purposes, list) else None,
        )  # fmt: skip
        session.add(event)
        ids.append(event.id)
    session.flush()
    for event_id, purposes in zip(ids, lists, strict=True):
        if purposes == "sql null":
            session.execute(update(Event).where(Event.id == event_id).values(purposes=null()))
    return ids


def stored(session: Session, subject: uuid.UUID) -> dict[uuid.UUID, Any]:
    rows = session.execute(select(Event.id, Event.purposes).where(Event.subject_id == subject))
    return {row.id: row.purposes for row in rows}


def forget(session: Session, subject: uuid.UUID, keep: set[Purpose]) -> RecordsPurged:
    return store.forget_withdrawn_purposes(
        session, subject_id=subject, purposes=frozenset(keep), at=T0 + timedelta(days=1)
    )


def test_events_lose_withdrawn_purposes_and_go_when_none_is_left(session: Session) -> None:
    subject = new_id()
    viewed, _signed_up, ordered, before_consent, listed_null = add_events(
        session,
        subject,
        [
            ["analytics", "personalization.behavioral"],
            ["analytics"],
            ["analytics", "essential", "personalization.predictive"],
            "sql null",
            "json null",
        ],
    )

    purged = forget(session, subject, {Purpose.ESSENTIAL, Purpose.BEHAVIORAL})

    assert purged == RecordsPurged(removed=1, narrowed=2)
    assert stored(session, subject) == {
        viewed: ["personalization.behavioral"],
        ordered: ["essential"],
        before_consent: None,
        listed_null: None,
    }
    # Nothing left to do: a second call changes nothing.
    assert forget(session, subject, {Purpose.ESSENTIAL, Purpose.BEHAVIORAL}) == RecordsPurged()


def test_only_the_subjects_own_events_change(session: Session) -> None:
    subject, other = new_id(), new_id()
    add_events(session, subject, [["analytics"]])
    [theirs] = add_events(session, other, [["analytics"]])
    assert forget(session, subject, {Purpose.ESSENTIAL}) == RecordsPurged(removed=1, narrowed=0)
    assert stored(session, subject) == {}
    assert stored(session, other) == {theirs: ["analytics"]}


PURPOSE_NAMES = sorted(p.value for p in Purpose)
LISTS: st.SearchStrategy[Listed] = st.one_of(
    st.lists(st.sampled_from(PURPOSE_NAMES), unique=True).map(sorted),
    st.sampled_from(NOT_APPLIED),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(lists=st.lists(LISTS, max_size=12), keep=st.sets(st.sampled_from(list(Purpose))))
def test_each_event_keeps_exactly_its_purposes_still_allowed(
    session: Session, lists: list[Listed], keep: set[Purpose]
) -> None:
    subject = new_id()
    ids = add_events(session, subject, lists)
    kept_names = {p.value for p in keep}
    expected: dict[uuid.UUID, Any] = {}
    removed = narrowed = 0
    for event_id, purposes in zip(ids, lists, strict=True):
        if not isinstance(purposes, list):
            expected[event_id] = None
            continue
        remaining = [p for p in purposes if p in kept_names]  # in stored (sorted) order
        if not remaining:
            removed += 1
            continue
        narrowed += remaining != purposes
        expected[event_id] = remaining

    assert forget(session, subject, keep) == RecordsPurged(removed=removed, narrowed=narrowed)
    assert stored(session, subject) == expected
