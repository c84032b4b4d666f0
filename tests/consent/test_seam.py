"""The one seam from a stored subject to its Allowance and SubjectView (`consent.gatekeeper`): gate
inputs read eagerly for many subjects at once, the same answer as for one; stored atoms opened
lazily, and only those a reader uses."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.consent import gatekeeper
from tactful.consent.schemas import ConsentChange
from tactful.crypto import Keystore
from tactful.policy import AtomNotAllowed
from tactful.profiles import service as profiles_service
from tactful.types import Purpose
from tests.consent.test_withdrawal import (
    DENIED,
    GRANTED,
    T0,
    choose,
    new_subject,
    policy_context,
    purpose,
    store,
)

PERSONAL = [p for p in Purpose if p is not Purpose.ESSENTIAL]


@pytest.fixture
def opened(keystore: Keystore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The encryption contexts of every value the keystore decrypts during the test."""
    contexts: list[str] = []
    decrypt = keystore.decrypt

    def spy(subject_id: uuid.UUID, token: bytes, *, context: str) -> str:
        contexts.append(context)
        return decrypt(subject_id, token, context=context)

    monkeypatch.setattr(keystore, "decrypt", spy)
    return contexts


def identified(session: Session, keystore: Keystore) -> uuid.UUID:
    """A signed-in adult with every purpose granted and sealed identifiers stored."""
    user = f"user-{uuid.uuid4().hex}"
    subject = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=f"anon-{uuid.uuid4().hex}", user_id=user, at=T0
    ).subject_id
    choose(session, keystore, subject, T0, *(purpose(p, GRANTED) for p in PERSONAL))
    store(session, keystore, subject, ["traits.first_name", "traits.email"], T0, value="Ada")
    store(session, keystore, subject, ["traits.age_range"], T0, value="25-34")
    return subject


def test_the_gate_opens_nothing_and_a_view_opens_only_what_is_read(
    session: Session, keystore: Keystore, opened: list[str]
) -> None:
    subject = identified(session, keystore)
    opened.clear()
    answer = gatekeeper.subject_allowance(
        session, keystore=keystore, context=policy_context(), subject_id=subject, at=T0 + timedelta(minutes=1)
    )
    assert answer.allowance.ceiling == "1:1"
    assert opened == []  # no identity, no sealed trait: the gate reads age and place only
    view = answer.view()
    assert "traits.first_name" in view  # the name is known, its value still sealed
    assert opened == []
    assert view["traits.first_name"] == "Ada"
    assert opened == ["traits.first_name"]  # a greeting by first name opens the first name alone
    assert view.atoms_read == {"traits.first_name"}


def test_a_view_refuses_what_the_allowance_refuses_without_opening_it(
    session: Session, keystore: Keystore, opened: list[str]
) -> None:
    subject = identified(session, keystore)
    at = T0 + timedelta(minutes=1)
    choose(session, keystore, subject, at, purpose(Purpose.INDIVIDUAL, DENIED))
    opened.clear()
    answer = gatekeeper.subject_allowance(
        session, keystore=keystore, context=policy_context(), subject_id=subject, at=at + timedelta(minutes=1)
    )
    view = answer.view()
    assert "traits.first_name" not in view
    with pytest.raises(AtomNotAllowed):
        view["traits.first_name"]
    assert opened == []


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    choices=st.lists(
        st.lists(st.tuples(st.sampled_from(PERSONAL), st.booleans()), max_size=4), min_size=1, max_size=5
    )
)
def test_many_subjects_at_once_get_the_answer_each_gets_alone(
    session: Session, keystore: Keystore, choices: list[list[tuple[Purpose, bool]]]
) -> None:
    context = policy_context()
    subjects = []
    for made in choices:
        subject = new_subject(session, keystore)
        changes: list[ConsentChange] = [purpose(p, GRANTED if given else DENIED) for p, given in made]
        if changes:
            choose(session, keystore, subject, T0, *changes)
        subjects.append(subject)
    at = T0 + timedelta(minutes=5)
    inputs = gatekeeper.read_inputs(session, keystore=keystore, subject_ids=subjects, at=at)
    together = gatekeeper.allowances(context, inputs, at=at)
    for subject in subjects:
        alone = gatekeeper.subject_allowance(
            session, keystore=keystore, context=context, subject_id=subject, at=at
        )
        assert together[subject] == alone.allowance
