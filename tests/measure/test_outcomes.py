"""Outcomes linked to their decisions through collection's hook: the same subject only (after
merges), never another's decision through the public write key, unknown and malformed ids counted
and not linked, whether each may be learned from, and the counts exact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tactful import main
from tactful.catalog.loader import load_catalog
from tactful.collect.outcomes import Outcome
from tactful.collect.schemas import Status
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.decide import log as decision_log
from tactful.decide.logbook import Logbook
from tactful.measure import outcomes
from tactful.measure.outcomes import Totals, Unattributed, record
from tactful.rights.registry import RightsContext, erase_all
from tactful.types import Purpose
from tests.collect.builders import identify, uid
from tests.measure.builders import (
    SERVER,
    decision,
    decision_id,
    logged,
    outcome,
    rows,
    send,
    stored_properties,
    subject_of,
    visitor,
)
from tests.profiles.builders import T0


def _delta(before: Totals, after: Totals) -> dict[str, int]:
    changed = {
        "received": after.received - before.received,
        "linked": after.linked - before.linked,
        "pending": after.pending - before.pending,
    }
    for reason in Unattributed:
        n = after.unattributed.get(reason, 0) - before.unattributed.get(reason, 0)
        if n:
            changed[reason.value] = n
    assert after.balanced
    return {name: n for name, n in changed.items() if n}


@pytest.fixture
def book() -> Logbook:
    return Logbook(lambda group: None)


def test_an_outcome_links_to_its_subjects_decision_with_its_value(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject))
    before = outcomes.totals(session)

    message = outcome("Order Completed", anonymous_id=anonymous_id, decided=served.decision_id, revenue=42.5)
    [result] = send(session, keystore, message)

    assert result.status is Status.STORED
    [row] = rows(session, served.decision_id)
    assert (row.subject_id, row.status, row.event, row.value) == (
        subject,
        "linked",
        "events.order_completed",
        42.5,
    )
    assert (row.level, row.learnable) == ("1:some", True)
    assert row.occurred_at == T0 + timedelta(minutes=1)
    assert stored_properties(session, message["messageId"])["decision_id"] == served.decision_id
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "linked": 1}


def test_the_write_key_cannot_link_an_outcome_to_someone_elses_decision(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    _, victim = visitor(session, keystore)
    theirs = logged(session, book, decision(victim))
    attacker, _ = visitor(session, keystore)
    own = logged(session, book, decision(subject_of(session, keystore, anonymous_id=attacker)))
    before = outcomes.totals(session)

    [stolen] = send(session, keystore, outcome(anonymous_id=attacker, decided=theirs.decision_id))
    [honest] = send(session, keystore, outcome(anonymous_id=attacker, decided=own.decision_id))

    assert rows(session, theirs.decision_id) == []
    assert len(rows(session, own.decision_id)) == 1
    # The answers say nothing of whose decision it was: each event is stored, alike.
    assert (stolen.status, stolen.reason, stolen.refused) == (honest.status, honest.reason, honest.refused)
    assert _delta(before, outcomes.totals(session)) == {"received": 2, "linked": 1, "other_subject": 1}


def test_a_decision_for_a_visitor_nobody_knew_links_to_nobody(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, _ = visitor(session, keystore)
    strangers = logged(session, book, decision(None))
    before = outcomes.totals(session)
    send(session, keystore, outcome(anonymous_id=anonymous_id, decided=strangers.decision_id))
    assert rows(session, strangers.decision_id) == []
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "other_subject": 1}


@pytest.mark.parametrize(
    "sent",
    [
        "not-a-decision",
        "dc_",
        "dc_with/slash",
        "dc_" + "x" * 62,
        12345,
        {"id": "dc_abc"},
        ["dc_abc"],
        "ada@example.com",
    ],
)
def test_a_malformed_id_is_counted_and_not_stored(session: Session, keystore: Keystore, sent: object) -> None:
    anonymous_id, _ = visitor(session, keystore)
    before = outcomes.totals(session)
    message = outcome(anonymous_id=anonymous_id, decided=sent, product_id="p-1")
    [result] = send(session, keystore, message)
    assert result.status is Status.STORED
    assert stored_properties(session, message["messageId"]) == {"product_id": "p-1"}
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "malformed": 1}


def test_an_event_that_does_not_declare_the_id_is_no_outcome_and_loses_it(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject))
    before = outcomes.totals(session)
    message = outcome("Signed In", anonymous_id=anonymous_id, decided=served.decision_id, method="password")
    send(session, keystore, message)
    assert stored_properties(session, message["messageId"]) == {"method": "password"}
    assert rows(session, served.decision_id) == []
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "undeclared": 1}


def test_only_track_events_are_outcomes_and_other_calls_lose_the_id(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject))
    before = outcomes.totals(session)
    page = {**outcome(anonymous_id=anonymous_id, decided=served.decision_id), "type": "page"}
    page.pop("event")
    [result] = send(session, keystore, page)
    assert result.status is Status.STORED
    assert "decision_id" not in stored_properties(session, page["messageId"])
    assert _delta(before, outcomes.totals(session)) == {}


def test_an_event_stored_without_analytics_measures_nothing(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject))
    before = outcomes.totals(session)
    message = outcome("Password Reset", anonymous_id=anonymous_id, decided=served.decision_id)
    send(session, keystore, message)
    assert stored_properties(session, message["messageId"]) == {}
    assert rows(session, served.decision_id) == []
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "no_analytics": 1}


def test_an_id_not_in_the_log_waits_and_counts_as_unknown_once_it_waited_too_long(
    session: Session, keystore: Keystore
) -> None:
    anonymous_id, _ = visitor(session, keystore)
    nowhere = decision_id()
    before = outcomes.totals(session)
    send(session, keystore, outcome(anonymous_id=anonymous_id, decided=nowhere))
    [row] = rows(session, nowhere)
    assert row.status == "pending"
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "pending": 1}

    received = T0 + timedelta(minutes=1)
    assert outcomes.sweep(session, at=received + outcomes.PENDING_FOR - timedelta(seconds=1)) == {}
    assert outcomes.sweep(session, at=received + outcomes.PENDING_FOR) == {"unattributed:unknown_decision": 1}
    assert rows(session, nowhere) == []
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "unknown_decision": 1}


def test_an_outcome_of_a_decision_not_yet_written_links_when_it_lands(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    buffered = book.add(decision(subject))  # served, in this process's buffer, not written
    before = outcomes.totals(session)
    send(session, keystore, outcome(anonymous_id=anonymous_id, decided=buffered.decision_id))
    assert [r.status for r in rows(session, buffered.decision_id)] == ["pending"]

    outcomes.landed(session, [buffered])  # the log's writer wrote its group

    [row] = rows(session, buffered.decision_id)
    assert (row.status, row.level, row.learnable) == ("linked", "1:some", True)
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "linked": 1}


def test_an_outcome_that_missed_its_groups_landing_links_at_the_next_one(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    """On PostgreSQL an outcome recorded while its decision's group is being written sees no
    decision, and that group's `landed` sees no outcome: the next landing settles it."""
    anonymous_id, subject = visitor(session, keystore)
    buffered = book.add(decision(subject))
    send(session, keystore, outcome(anonymous_id=anonymous_id, decided=buffered.decision_id))
    decision_log.write(session, entries=[buffered], at=T0)  # landed, its hook saw nothing waiting

    outcomes.landed(session, [logged(session, book, decision(None))])  # some later group

    assert [r.status for r in rows(session, buffered.decision_id)] == ["linked"]


def test_a_pending_outcome_of_another_subjects_decision_is_not_linked_when_it_lands(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    _, victim = visitor(session, keystore)
    attacker, _ = visitor(session, keystore)
    buffered = book.add(decision(victim))
    before = outcomes.totals(session)
    send(session, keystore, outcome(anonymous_id=attacker, decided=buffered.decision_id))
    outcomes.landed(session, [buffered])
    assert rows(session, buffered.decision_id) == []
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "other_subject": 1}


def test_an_outcome_links_to_a_decision_made_before_a_merge(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    user_id = uid("user")
    send(session, keystore, identify(userId=user_id, anonymousId=uid("anon")), source=SERVER)
    anonymous_id, before_login = visitor(session, keystore)
    served = logged(session, book, decision(before_login))
    # The visitor logs in (a server key vouches for it): their anonymous profile merges into the user's.
    send(session, keystore, identify(userId=user_id, anonymousId=anonymous_id), source=SERVER)
    survivor = subject_of(session, keystore, user_id=user_id)
    assert survivor != before_login
    assert subject_of(session, keystore, anonymous_id=anonymous_id) == survivor

    message = outcome(decided=served.decision_id)
    message.pop("anonymousId")
    message["userId"] = user_id
    send(session, keystore, message, source=SERVER)

    [row] = rows(session, served.decision_id)
    assert (row.subject_id, row.status) == (survivor, "linked")


@pytest.mark.parametrize(
    ("changes", "may_learn", "ceiling", "learnable"),
    [
        ({}, True, "1:1", True),
        ({"level": "1:1"}, True, "1:some", False),  # the Allowance learns up to 1:some only
        ({"level": "1:all"}, True, "1:all", True),
        ({"forced": True}, True, "1:1", False),  # never learn from forced answers
        ({}, False, "1:all", False),  # a minor, a restriction, no analytics
    ],
)
def test_whether_an_outcome_may_be_learned_from(
    session: Session,
    keystore: Keystore,
    book: Logbook,
    changes: dict[str, Any],
    may_learn: bool,
    ceiling: str,
    learnable: bool,
) -> None:
    _, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject, **changes))
    arriving = Outcome(
        subject_id=subject,
        decision_id=served.decision_id,
        event="events.product_viewed",
        value=None,
        occurred_at=T0,
        received_at=T0,
        refusal=None,
        may_learn=may_learn,
        learn_ceiling=outcomes.Level(ceiling),
    )
    outcomes.record(session, outcomes=[arriving], at=T0)
    [row] = rows(session, served.decision_id)
    assert row.learnable is learnable


def test_a_failing_hook_loses_no_event_and_is_counted(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject))
    before = outcomes.totals(session)

    def broken(session: Session, *, outcomes: Sequence[Outcome], at: datetime) -> None:
        record(session, outcomes=outcomes, at=at)  # it does its work...
        raise RuntimeError("measurement is down")  # ...then fails: all of it is rolled back

    message = outcome(anonymous_id=anonymous_id, decided=served.decision_id)
    [result] = send(session, keystore, message, hook=broken)

    assert result.status is Status.STORED
    assert stored_properties(session, message["messageId"])["decision_id"] == served.decision_id
    assert rows(session, served.decision_id) == []
    assert _delta(before, outcomes.totals(session)) == {"received": 1, "failed": 1}


def test_erasure_removes_the_subjects_outcomes_and_counts_the_pending_ones(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    anonymous_id, subject = visitor(session, keystore)
    served = logged(session, book, decision(subject))
    waiting = decision_id()
    send(
        session,
        keystore,
        outcome(anonymous_id=anonymous_id, decided=served.decision_id),
        outcome(anonymous_id=anonymous_id, decided=waiting),
    )
    someone, other = visitor(session, keystore)
    kept = logged(session, book, decision(other))
    send(session, keystore, outcome(anonymous_id=someone, decided=kept.decision_id))
    before = outcomes.totals(session)
    assert outcomes.export_subject(session, subject_id=subject)["outcomes"][0]["decision_id"] in (
        served.decision_id,
        waiting,
    )

    removed = erase_all(
        RightsContext(session=session, keystore=keystore, settings=Settings(), logbook=book), subject
    )

    assert removed["outcomes"] == 2
    assert rows(session, served.decision_id) == rows(session, waiting) == []
    assert len(rows(session, kept.decision_id)) == 1
    assert outcomes.export_subject(session, subject_id=subject) == {}
    assert _delta(before, outcomes.totals(session)) == {"pending": -1, "erased": 1}


def test_the_demo_shop_declares_its_outcomes_for_analytics() -> None:
    catalog = load_catalog(main.default_catalog_path())
    declaring = {
        atom.name: atom
        for atom in catalog.atom_list
        if (found := atom.find_property("decision_id")) is not None
        and found.category.name == "user.behavior.outcome"
    }
    assert set(declaring) >= {"events.product_viewed", "events.product_added", "events.order_completed"}
    assert all(Purpose.ANALYTICS in atom.purposes for atom in declaring.values())
    outcome_category = catalog.atoms["events.order_completed"].find_property("decision_id")
    assert outcome_category is not None
    assert not outcome_category.category.special
    assert not outcome_category.category.direct_identifier


def test_a_withdrawal_reaches_the_outcomes_of_profiles_merged_into_the_subject(
    session: Session, keystore: Keystore, book: Logbook
) -> None:
    user_id = uid("user")
    send(session, keystore, identify(userId=user_id, anonymousId=uid("anon")), source=SERVER)
    anonymous_id, before_login = visitor(session, keystore)
    served = logged(session, book, decision(before_login))
    send(session, keystore, outcome(anonymous_id=anonymous_id, decided=served.decision_id))
    send(session, keystore, identify(userId=user_id, anonymousId=anonymous_id), source=SERVER)
    survivor = subject_of(session, keystore, user_id=user_id)
    assert [r.subject_id for r in rows(session, served.decision_id)] == [before_login]

    kept = outcomes.forget_withdrawn(
        session, subject_id=survivor, purposes=frozenset({Purpose.ESSENTIAL, Purpose.ANALYTICS}), at=T0
    )
    assert kept == 0
    assert len(rows(session, served.decision_id)) == 1
    gone = outcomes.forget_withdrawn(
        session, subject_id=survivor, purposes=frozenset({Purpose.ESSENTIAL}), at=T0
    )
    assert gone == 1
    assert rows(session, served.decision_id) == []
