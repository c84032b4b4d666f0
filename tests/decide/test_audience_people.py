"""One person, one count (`decide.audience_size`): however a person's ids appear across decisions (a
stranger, then a stored subject, then subjects merged), a stranger adds nothing, a person stored as
one subject adds at most one, and in general a person adds at most one per stored subject their ids
were ever held under apart (a second device before signing in on it); a merge adds no new label."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.decide import decisions
from tactful.decide.audience_size import AudienceSizes
from tactful.profiles import identity
from tests.decide.sizing import AT, PLACEMENT, REQUEST_KEY, Kept, built, policy, sizes
from tests.profiles.builders import unique

POLICY = policy()
LINEUP = built()
SWEDEN = {"location": {"country": "SE"}}


@dataclass(frozen=True)
class Person:
    user_id: str
    anonymous_ids: tuple[str, str]

    @classmethod
    def new(cls) -> Person:
        return cls(unique("user"), (unique("anon"), unique("anon")))

    def ids(self, user: bool, device: int | None) -> tuple[str | None, str | None]:
        return (self.user_id if user else None), (None if device is None else self.anonymous_ids[device])


@dataclass(frozen=True)
class Step:
    kind: str
    """decide: a decision naming these ids; store: collection stores a message naming them (which
    may create a subject, attach an id or merge two); flush: the process stores its matches."""
    user: bool = False
    device: int | None = None


_IDS = st.tuples(st.booleans(), st.sampled_from([None, 0, 1])).filter(
    lambda ids: ids[0] or ids[1] is not None
)
STEPS = st.lists(
    st.one_of(
        _IDS.map(lambda ids: Step("decide", *ids)),
        _IDS.map(lambda ids: Step("store", *ids)),
        st.just(Step("flush")),
    ),
    max_size=12,
)


class Life:
    """A person's ids going through decisions and collection, with what the count saw."""

    def __init__(self, session: Session, keystore: Keystore, sizes: AudienceSizes) -> None:
        self.session, self.keystore, self.sizes = session, keystore, sizes
        self.person = Person.new()
        self.subjects: set[uuid.UUID] = set()
        """Every subject that ever held one of the person's ids (merged ones included)."""
        self.found: set[uuid.UUID] = set()
        """The subjects decisions found."""

    def step(self, step: Step) -> None:
        if step.kind == "flush":
            self.sizes.flush(self.session)
            return
        user_id, anonymous_id = self.person.ids(step.user, step.device)
        if step.kind == "store":
            resolution = identity.resolve(
                self.session, keystore=self.keystore, anonymous_id=anonymous_id, user_id=user_id, at=AT
            )
            self.subjects.add(resolution.subject_id)
            self.subjects.update(m.source for m in resolution.merges)
            return
        ask = decisions.Ask(
            placements=(PLACEMENT,), user_id=user_id, anonymous_id=anonymous_id, context=SWEDEN
        )
        decided = decisions.decide(
            self.session, keystore=self.keystore, policy=POLICY, lineup=LINEUP, ask=ask, at=AT,
            sizes=self.sizes,
        )  # fmt: skip
        if decided.subject_id is not None:
            self.found.add(decided.subject_id)


@pytest.fixture
def life(session: Session, keystore: Keystore) -> Life:
    return Life(session, keystore, sizes(Kept()))


def _labels(life: Life) -> set[bytes]:
    store = life.sizes.store
    assert isinstance(store, Kept)
    return store.digests(REQUEST_KEY)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(steps=STEPS)
def test_a_person_adds_at_most_one_per_subject_their_ids_were_held_under(
    session: Session, keystore: Keystore, steps: list[Step]
) -> None:
    with session.begin_nested() as example:  # each example's people are its own
        life = Life(session, keystore, sizes(Kept()))
        for step in steps:
            life.step(step)
        life.sizes.flush(session)
        labels = _labels(life)
        assert labels <= {life.sizes.digest(s) for s in life.found}, "a stranger's ids are never counted"
        assert len(labels) <= len(life.subjects)
        if len(life.subjects) <= 1:
            assert len(labels) <= 1, "stored as one subject: one count, whichever ids and how often"
        example.rollback()


def test_a_stranger_then_a_subject_then_more_ids_counts_once(life: Life) -> None:
    for step in (
        Step("decide", device=0),  # a stranger on their phone
        Step("decide", user=True, device=0),  # signed in, nothing stored yet
        Step("store", device=0),  # the first page view is stored: now a subject
        Step("decide", device=0),
        Step("flush"),
        Step("store", user=True, device=0),  # signs up on the phone: the user id joins the subject
        Step("decide", user=True),
        Step("store", user=True, device=1),  # signs in on a laptop never seen before
        Step("decide", device=1),
        Step("decide", user=True, device=1),
    ):
        life.step(step)
    life.sizes.flush(life.session)
    assert len(life.subjects) == 1
    assert len(_labels(life)) == 1


def test_two_devices_stored_apart_count_at_most_twice_and_the_merge_adds_nothing(life: Life) -> None:
    for step in (
        Step("store", user=True, device=0),
        Step("decide", user=True),
        Step("store", device=1),  # a laptop, browsed before signing in: a subject of its own
        Step("decide", device=1),
        Step("flush"),
        Step("store", user=True, device=1),  # signs in there: the laptop's subject merges in
        Step("decide", device=1),
        Step("decide", user=True, device=1),
    ):
        life.step(step)
    life.sizes.flush(life.session)
    assert len(life.subjects) == 2
    assert len(_labels(life)) == 2, "known as two people until the link: the residual case"
