"""Batched profile work equals the same work item by item: identity resolution, computed atoms and
traits, with a number of statements that does not grow with the batch."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.profiles import computed
from tactful.profiles import service as profiles_service
from tactful.profiles.lookup import IdentityRequest
from tactful.profiles.models import Computed, Subject
from tactful.profiles.schemas import Resolution
from tests.profiles.builders import T0, Atom, Catalog, catalog, page, statements, track, unique
from tests.profiles.test_computed import events as computed_events

# -- identity ----------------------------------------------------------------------------------

# Identifiers are small numbers so that a short list often repeats, links and merges them.
_ids = st.none() | st.integers(0, 5)
requests = st.lists(
    st.tuples(_ids, _ids, _ids).filter(lambda t: any(x is not None for x in t)), min_size=1, max_size=14
)
Raw = tuple[int | None, int | None, int | None]


def _named(raw: list[Raw], run: str) -> list[IdentityRequest]:
    def name(kind: str, n: int | None) -> str | None:
        return None if n is None else f"{run}-{kind}{n}"

    # A previous id is sometimes a known anonymous id, sometimes a known user id.
    return [
        (name("a", a), name("u", u), None if p is None else name("a" if p % 2 else "u", p // 2))
        for a, u, p in raw
    ]


def _shape(
    session: Session, keystore: Keystore, run: str, resolutions: list[Resolution]
) -> tuple[object, ...]:
    """What resolving did, with subject ids replaced by the order in which they first appear.

    Merges count but do not name their survivor: subjects created at the same time rank equal, and
    the tie goes to the smaller (random) id, which differs from one run to the other."""
    labels: dict[uuid.UUID | None, int] = {}

    def label(subject_id: uuid.UUID | None) -> int:
        return labels.setdefault(subject_id, len(labels))

    per_item = [
        (
            label(profiles_service.canonical(session, r.subject_id)),
            r.created,
            len(r.merges),
        )
        for r in resolutions
    ]
    finds = tuple(
        (
            label(profiles_service.find_subject(session, keystore=keystore, anonymous_id=f"{run}-a{n}")),
            label(profiles_service.find_subject(session, keystore=keystore, user_id=f"{run}-u{n}")),
        )
        for n in range(6)
    )
    return (*per_item, finds)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(raw=requests)
def test_a_batch_resolves_exactly_as_its_items_one_by_one(
    session: Session, keystore: Keystore, raw: list[Raw]
) -> None:
    one, many = unique("one"), unique("many")
    singles = [
        profiles_service.resolve(session, keystore=keystore, anonymous_id=a, user_id=u, previous_id=p, at=T0)
        for a, u, p in _named(raw, one)
    ]
    batch = profiles_service.resolve_many(session, keystore=keystore, identities=_named(raw, many), at=T0)
    assert _shape(session, keystore, many, batch) == _shape(session, keystore, one, singles)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(before=requests, raw=requests)
def test_a_batch_given_what_was_read_of_its_identities_resolves_as_one_that_reads_them(
    session: Session, keystore: Keystore, before: list[Raw], raw: list[Raw]
) -> None:
    reads, given_known = unique("reads"), unique("known")
    for run in (reads, given_known):
        profiles_service.resolve_many(session, keystore=keystore, identities=_named(before, run), at=T0)
    read = profiles_service.resolve_many(session, keystore=keystore, identities=_named(raw, reads), at=T0)
    known = profiles_service.read_known(session, keystore=keystore, identities=_named(raw, given_known))
    given = profiles_service.resolve_many(
        session, keystore=keystore, identities=_named(raw, given_known), at=T0, known=known
    )
    assert _shape(session, keystore, given_known, given) == _shape(session, keystore, reads, read)


def test_a_batch_given_what_was_read_of_its_identities_reads_none_again(
    session: Session, keystore: Keystore
) -> None:
    known_ids: list[IdentityRequest] = [(unique("anon"), None, None) for _ in range(5)]
    profiles_service.resolve_many(session, keystore=keystore, identities=known_ids, at=T0)
    wanted = [*known_ids, (unique("anon"), unique("user"), None)]
    known = profiles_service.read_known(session, keystore=keystore, identities=wanted)
    with statements(session) as seen:
        resolutions = profiles_service.resolve_many(
            session, keystore=keystore, identities=wanted, at=T0, known=known
        )
    assert "SELECT" not in seen
    assert [r.created for r in resolutions] == [False] * 5 + [True]


def test_resolving_a_batch_costs_the_same_statements_for_ten_or_two_hundred(
    session: Session, keystore: Keystore
) -> None:
    def batch(size: int) -> list[IdentityRequest]:
        known = [(unique("anon"), None, None) for _ in range(size // 2)]
        profiles_service.resolve_many(session, keystore=keystore, identities=known, at=T0)
        fresh: list[IdentityRequest] = [(None, unique("user"), None) for _ in range(size // 2)]
        return known + fresh  # half known, half new

    small, large = batch(10), batch(200)
    with statements(session) as seen_small:
        profiles_service.resolve_many(
            session, keystore=keystore, identities=small, at=T0 + timedelta(hours=1)
        )
    with statements(session) as seen_large:
        resolutions = profiles_service.resolve_many(
            session, keystore=keystore, identities=large, at=T0 + timedelta(hours=1)
        )
    assert len(seen_large) == len(seen_small) <= 8
    assert sum(r.created for r in resolutions) == 100
    touched = session.get(Subject, resolutions[0].subject_id)
    assert touched is not None
    assert touched.last_seen_at == T0 + timedelta(hours=1)


def test_a_batch_creates_the_keys_of_its_new_subjects_in_one_keystore_transaction(
    session: Session, keystore: Keystore
) -> None:
    commits: list[object] = []

    def counted(_conn: object) -> None:
        commits.append(_conn)

    event.listen(keystore.engine, "commit", counted)
    try:
        resolutions = profiles_service.resolve_many(
            session,
            keystore=keystore,
            identities=[(unique("a"), unique("u"), None) for _ in range(30)],
            at=T0,
        )
    finally:
        event.remove(keystore.engine, "commit", counted)
    assert all(r.created for r in resolutions)
    assert len(commits) == 1
    assert all(keystore.has_subject(r.subject_id) for r in resolutions)


# -- computed atoms ------------------------------------------------------------------------------

_SHORT = timedelta(days=10)  # shorter than the events' spread, so aggregates expire and start over
_SHORT_CATALOG = Catalog(
    atoms={
        name: Atom(name, "user.behavior.browsing", retention=_SHORT)
        for name in (
            computed.LAST_SEEN,
            computed.EVENT_COUNTS,
            computed.FAVORITE_CATEGORY,
            computed.LIFETIME_VALUE,
        )
    }
)


def _rows(session: Session, subjects: list[uuid.UUID]) -> list[tuple[object, ...]]:
    index = {subject: n for n, subject in enumerate(subjects)}
    rows = session.execute(
        select(
            Computed.subject_id,
            Computed.atom,
            Computed.value,
            Computed.state,
            Computed.updated_at,
            Computed.expires_at,
        ).where(Computed.subject_id.in_(subjects))
    )
    return sorted((index[r.subject_id], r.atom, r.value, r.state, r.updated_at, r.expires_at) for r in rows)


def _subjects(session: Session, keystore: Keystore, count: int) -> list[uuid.UUID]:
    return [
        r.subject_id
        for r in profiles_service.resolve_many(
            session, keystore=keystore, identities=[(unique("anon"), None, None) for _ in range(count)], at=T0
        )
    ]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    earlier=st.lists(st.tuples(st.integers(0, 2), computed_events(), st.integers(0, 40)), max_size=8),
    batch=st.lists(st.tuples(st.integers(0, 2), computed_events(), st.integers(0, 40)), max_size=25),
)
def test_recording_a_batch_equals_recording_its_events_one_by_one(
    session: Session,
    keystore: Keystore,
    earlier: list[tuple[int, dict[str, object], int]],
    batch: list[tuple[int, dict[str, object], int]],
) -> None:
    one, many = _subjects(session, keystore, 3), _subjects(session, keystore, 3)
    for owner, message, day in earlier:  # both start from the same stored rows
        for subjects in (one, many):
            profiles_service.record_event(
                session,
                catalog=_SHORT_CATALOG,
                subject_id=subjects[owner],
                message=message,
                at=T0 + timedelta(days=day),
            )
    for owner, message, day in batch:
        profiles_service.record_event(
            session,
            catalog=_SHORT_CATALOG,
            subject_id=one[owner],
            message=message,
            at=T0 + timedelta(days=day),
        )
    profiles_service.record_events(
        session,
        catalog=_SHORT_CATALOG,
        events=[(many[owner], message, T0 + timedelta(days=day)) for owner, message, day in batch],
    )
    assert _rows(session, many) == _rows(session, one)


def test_recording_a_batch_is_one_read_and_one_write(session: Session, keystore: Keystore) -> None:
    subjects = _subjects(session, keystore, 20)
    cat = catalog()
    first = [(s, track("Order Completed", revenue=5.0, category="books"), T0) for s in subjects]
    profiles_service.record_events(session, catalog=cat, events=first)
    session.flush()
    batch = [
        (s, m, T0 + timedelta(minutes=n))
        for n, s in enumerate(subjects * 5)
        for m in (page(), track("Cart Viewed", category="home"))
    ]
    with statements(session) as seen:
        profiles_service.record_events(session, catalog=cat, events=batch)
    assert seen == ["SELECT", "INSERT"]
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subjects[0])
    assert profile.computed[computed.EVENT_COUNTS] == {"Order Completed": 1, "page": 5, "Cart Viewed": 5}
    assert profile.computed[computed.FAVORITE_CATEGORY] == "home"


def test_an_orm_copy_of_a_computed_row_is_not_left_stale(session: Session, keystore: Keystore) -> None:
    [subject] = _subjects(session, keystore, 1)
    cat = catalog()
    profiles_service.record_event(session, catalog=cat, subject_id=subject, message=page(), at=T0)
    row = session.get(Computed, (subject, computed.EVENT_COUNTS))
    assert row is not None
    assert row.value == {"page": 1}
    profiles_service.record_event(session, catalog=cat, subject_id=subject, message=page(), at=T0)
    assert row.value == {"page": 2}


# -- traits --------------------------------------------------------------------------------------


def test_a_batch_of_trait_updates_equals_them_one_by_one(session: Session, keystore: Keystore) -> None:
    cat = catalog()
    one, many = _subjects(session, keystore, 2), _subjects(session, keystore, 2)
    email = lambda run: f"{run}@example.com"  # noqa: E731 - one line, read once
    run_one, run_many = unique("one"), unique("many")
    updates = [
        (0, {"age_range": "25-34", "first_name": "Ada", "email": "{run}"}, T0),
        (1, {"age_range": "35-44"}, T0),
        (0, {"age_range": None, "loyalty_tier": "gold"}, T0 + timedelta(hours=1)),
        (0, {"age_range": "45-54", "shoe": 42}, T0 + timedelta(hours=2)),
        (1, {"email": "{run}"}, T0 + timedelta(hours=3)),  # the address moves to the other subject
    ]

    def concrete(traits: dict[str, object], run: str) -> dict[str, object]:
        return {k: email(run) if v == "{run}" else v for k, v in traits.items()}

    singles = [
        profiles_service.apply_traits(
            session, keystore=keystore, catalog=cat, subject_id=one[n], traits=concrete(t, run_one), at=at
        )
        for n, t, at in updates
    ]
    batched = profiles_service.apply_traits_many(
        session,
        keystore=keystore,
        catalog=cat,
        updates=[(many[n], concrete(t, run_many), at) for n, t, at in updates],
    )
    assert batched == singles
    for a, b in zip(one, many, strict=True):
        mine = profiles_service.get_profile(session, keystore=keystore, subject_id=a).traits
        theirs = profiles_service.get_profile(session, keystore=keystore, subject_id=b).traits
        assert {k: v for k, v in theirs.items() if k != "traits.email"} == {
            k: v for k, v in mine.items() if k != "traits.email"
        }
        assert ("traits.email" in theirs) == ("traits.email" in mine)
    assert profiles_service.find_subject(session, keystore=keystore, email=email(run_many)) == many[1]
    assert profiles_service.find_subject(session, keystore=keystore, email=email(run_one)) == one[1]
