"""A subject with data in every profile store, for export and erasure tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import Observation, RealtimeCounters
from tests.profiles.builders import T0, catalog, track, unique


@dataclass(frozen=True)
class Person:
    survivor: uuid.UUID
    merged: uuid.UUID
    user_id: str
    anonymous_id: str
    email: str


def person(session: Session, keystore: Keystore, counters: RealtimeCounters) -> Person:
    """A visitor who browsed anonymously, then logged in as a known user (one merge)."""
    anon, user, email = unique("anon"), unique("user"), f"{unique('ada')}@example.com"
    cat = catalog()
    known = profiles_service.resolve(session, keystore=keystore, anonymous_id=None, user_id=user, at=T0)
    visitor = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0)
    message = track("Product Viewed", category="books")
    profiles_service.record_event(session, catalog=cat, subject_id=visitor.subject_id, message=message, at=T0)
    viewed = Observation("events.product_viewed", (("category", '"books"'),))
    counters.record(visitor.subject_id, [viewed], at=T0, version="0")
    profiles_service.apply_traits(
        session,
        keystore=keystore,
        catalog=cat,
        subject_id=known.subject_id,
        traits={"email": email, "first_name": "Ada", "age_range": "25-34"},
        at=T0,
    )
    counters.record(known.subject_id, [Observation("events.page_viewed")], at=T0, version="0")
    login = profiles_service.resolve(session, keystore=keystore, anonymous_id=anon, user_id=user, at=T0)
    for merge in login.merges:  # what collection does with every merge it gets back
        counters.merge(source=merge.source, target=merge.target, at=T0)
    session.flush()
    return Person(known.subject_id, visitor.subject_id, user, anon, email)
