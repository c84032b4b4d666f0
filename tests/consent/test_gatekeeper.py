"""The gatekeeper turns the stored CPRA limit on sensitive personal information into the gate's
`SubjectFacts.limit_sensitive`: while it stands, sensitive atoms are neither decided on nor learned
from nor newly collected; stored ones stay (the limit is on use); lifting it restores them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tactful.consent import ledger
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import allowance_from, subject_allowance
from tactful.consent.intake import Purposes
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.crypto import Keystore
from tactful.policy import Allowance, Code, Reason
from tactful.policy.state import ConsentSource
from tactful.types import Level, Purpose
from tests.consent.test_withdrawal import (
    DENIED,
    GRANTED,
    T0,
    WITHDRAWN,
    choose,
    demo_catalog,
    new_subject,
    policy_context,
    purpose,
    store,
    stored,
)

SENSITIVE = frozenset({"traits.health_interest", "context.location.latitude", "context.location.longitude"})
LIMITED = Reason(Code.LIMIT_SENSITIVE)
MINUTE = timedelta(minutes=1)


def limit(action: ConsentAction) -> ConsentChange:
    return ConsentChange(TargetKind.LIMIT_SENSITIVE, action, ConsentSource.API)


def gate(session: Session, keystore: Keystore, subject: uuid.UUID, at: datetime) -> Allowance:
    return subject_allowance(
        session, keystore=keystore, context=policy_context(), subject_id=subject, at=at
    ).allowance


def everything_allowed(session: Session, keystore: Keystore) -> uuid.UUID:
    """A subject who granted every purpose and explicit consent for health data."""
    subject = new_subject(session, keystore)
    grants = [purpose(p, GRANTED) for p in Purpose if p is not Purpose.ESSENTIAL]
    health = ConsentChange.for_explicit("user.sensitive.health", GRANTED, ConsentSource.API)
    choose(session, keystore, subject, T0, *grants, health)
    return subject


def test_a_stored_limit_keeps_sensitive_atoms_out_of_decisions_and_learning(
    session: Session, keystore: Keystore
) -> None:
    subject = everything_allowed(session, keystore)
    before = gate(session, keystore, subject, T0)
    assert before.learn_atoms >= SENSITIVE  # the demo catalog's sensitive atoms, all allowed

    choose(session, keystore, subject, T0 + MINUTE, limit(DENIED))
    limited = gate(session, keystore, subject, T0 + MINUTE)
    assert not limited.decide_atoms & SENSITIVE
    assert not limited.learn_atoms & SENSITIVE
    assert {name: limited.refusals.get(name) for name in SENSITIVE} == dict.fromkeys(SENSITIVE, LIMITED)
    # Only sensitive atoms go: the level and everything else stay as they were.
    assert limited.ceiling == before.ceiling == Level("1:1")
    assert limited.decide_atoms == before.decide_atoms - SENSITIVE
    # The ledger answers for any moment: before the limit, nothing was limited.
    assert gate(session, keystore, subject, T0).decide_atoms == before.decide_atoms

    choose(session, keystore, subject, T0 + 2 * MINUTE, limit(GRANTED))
    assert gate(session, keystore, subject, T0 + 2 * MINUTE).decide_atoms == before.decide_atoms


def test_a_limit_keeps_stored_sensitive_data_and_a_later_refusal_does_not_count_it(
    session: Session, keystore: Keystore
) -> None:
    subject = everything_allowed(session, keystore)
    store(session, keystore, subject, ["traits.health_interest", "computed.favorite_category"], T0)

    choose(session, keystore, subject, T0 + MINUTE, limit(DENIED))
    assert stored(session, subject) == {"traits.health_interest", "computed.favorite_category"}
    # What may stay stored is still a matter of purposes alone: the health trait keeps
    # personalization.individual, the favorite category loses both of its purposes.
    withdrawn = [purpose(p, WITHDRAWN) for p in (Purpose.PREDICTIVE, Purpose.MARKETING_EMAIL)]
    choose(session, keystore, subject, T0 + 2 * MINUTE, *withdrawn)
    assert stored(session, subject) == {"traits.health_interest"}


def test_while_limited_collection_stores_no_new_sensitive_data(session: Session, keystore: Keystore) -> None:
    subject = everything_allowed(session, keystore)
    choose(session, keystore, subject, T0 + MINUTE, limit(DENIED))
    entries = ledger.history(session, subject_id=subject)
    health = demo_catalog().atoms["traits.health_interest"]

    def storable_for(at: datetime) -> frozenset[Purpose]:
        # As collection's intake asks the gate, for a whole batch, from the ledger it read.
        allowance = allowance_from(
            policy_context(),
            consent=ledger.fold_entries(entries),
            flags=ledger.flags_at([e for e in entries if e.at <= at], at),
            traits={},
            at=at,
        )
        return Purposes(allowance).of(health)

    assert storable_for(T0) == {Purpose.INDIVIDUAL, Purpose.MARKETING_EMAIL}
    assert storable_for(T0 + MINUTE) == frozenset()
