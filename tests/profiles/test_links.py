"""Pending links: claims of an anonymous id for a user, kept under keyed digests, with their own
retention, moved by merges and removed by the erasure of either side."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.profiles import links
from tactful.profiles import service as profiles_service
from tactful.profiles.models import PendingLink
from tactful.profiles.schemas import IdentityKind
from tests.profiles.builders import T0, unique


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingLink)) or 0


def test_a_claim_is_kept_as_a_keyed_digest_and_found_until_it_expires(
    session: Session, keystore: Keystore
) -> None:
    user, anon = unique("user"), unique("anon")
    subject = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=user, at=T0
    ).subject_id
    links.record(session, keystore=keystore, links=[(subject, anon), (subject, anon)], at=T0)
    [row] = session.scalars(select(PendingLink).where(PendingLink.subject_id == subject)).all()
    assert anon not in row.anonymous_digest
    assert row.anonymous_digest == keystore.digest(IdentityKind.ANONYMOUS_ID, anon)
    assert links.pending(session, keystore=keystore, anonymous_ids=[anon, unique("anon")], at=T0) == {anon}
    later = T0 + links.PENDING_RETENTION
    assert links.pending(session, keystore=keystore, anonymous_ids=[anon], at=later) == frozenset()
    assert profiles_service.export_subject(session, keystore=keystore, subject_id=subject)[
        "pending_links"
    ] == [{"created_at": T0.isoformat(), "expires_at": later.isoformat()}]
    # A repeated claim starts its retention anew; the sweep forgets an expired one.
    links.record(session, keystore=keystore, links=[(subject, anon)], at=T0 + timedelta(days=1))
    assert links.pending(session, keystore=keystore, anonymous_ids=[anon], at=later) == {anon}
    profiles_service.expire(session, at=later + timedelta(days=1))
    assert links.pending(session, keystore=keystore, anonymous_ids=[anon], at=T0) == frozenset()


def test_erasing_either_side_removes_the_claim(session: Session, keystore: Keystore) -> None:
    before = _count(session)
    user, anon, other_anon = unique("user"), unique("anon"), unique("anon")
    subject = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=user, at=T0
    ).subject_id
    visitor = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=anon, user_id=None, at=T0
    ).subject_id
    links.record(session, keystore=keystore, links=[(subject, anon), (subject, other_anon)], at=T0)
    assert _count(session) == before + 2

    profiles_service.erase_subject(session, keystore=keystore, subject_id=visitor)  # the anonymous side
    assert links.pending(session, keystore=keystore, anonymous_ids=[anon, other_anon], at=T0) == {other_anon}
    profiles_service.erase_subject(session, keystore=keystore, subject_id=subject)  # the user's side
    assert _count(session) == before


def test_a_merge_carries_the_claims_to_the_survivor(session: Session, keystore: Keystore) -> None:
    first, second, anon = unique("user"), unique("user"), unique("anon")
    a = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=first, at=T0
    ).subject_id
    b = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=second, at=T0
    ).subject_id
    links.record(session, keystore=keystore, links=[(a, anon), (b, anon)], at=T0)
    merged = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=second, previous_id=first, at=T0
    )
    survivor = merged.subject_id
    rows = session.scalars(
        select(PendingLink.subject_id).where(
            PendingLink.anonymous_digest == keystore.digest(IdentityKind.ANONYMOUS_ID, anon)
        )
    ).all()
    assert list(rows) == [survivor]


def test_identified_subjects_are_those_holding_a_user_id(session: Session, keystore: Keystore) -> None:
    user = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    )
    visitor = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    )
    found = links.identified(session, subject_ids=[user.subject_id, visitor.subject_id])
    assert found == {user.subject_id}


def test_one_read_of_what_a_request_speaks_for_equals_the_two_reads(
    session: Session, keystore: Keystore
) -> None:
    """`speaking` is `identified` and `pending` in one statement: it must answer as they do, for
    identified and anonymous subjects, claimed, unclaimed and expired anonymous ids alike."""
    user = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=None, user_id=unique("user"), at=T0
    ).subject_id
    visitor = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    ).subject_id
    claimed, expired, unclaimed = unique("anon"), unique("anon"), unique("anon")
    links.record(session, keystore=keystore, links=[(user, claimed)], at=T0)
    links.record(session, keystore=keystore, links=[(user, expired)], at=T0 - links.PENDING_RETENTION)
    stranger = uuid.uuid4()
    for subjects, anonymous in (
        ([user, visitor, stranger], [claimed, expired, unclaimed]),
        ([visitor], [claimed]),
        ([user], []),
        ([], [expired, unclaimed]),
        ([], []),
    ):
        found = links.speaking(
            session, keystore=keystore, subject_ids=subjects, anonymous_ids=anonymous, at=T0
        )
        assert found == (
            links.identified(session, subject_ids=subjects),
            links.pending(session, keystore=keystore, anonymous_ids=anonymous, at=T0),
        )
    assert links.speaking(
        session, keystore=keystore, subject_ids=[user, visitor], anonymous_ids=[claimed, unclaimed], at=T0
    ) == ({user}, {claimed})
