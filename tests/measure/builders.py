"""Builders for outcome tests: a small catalog whose events are outcomes or not, decisions in the
log, and track events that name them."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.catalog.loader import parse_catalog
from tactful.catalog.model import Catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event
from tactful.collect.schemas import EventResult, Source
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.decide import log as decision_log
from tactful.decide.logbook import Entry, Logbook
from tactful.measure import outcomes
from tactful.measure.models import DecisionOutcome
from tactful.profiles import service as profiles_service
from tests.collect.builders import LIMITS, OPEN, policy_context, uid
from tests.decide.test_logbook import entry
from tests.profiles.builders import T0

OUTCOME_CATALOG = """
version: 1
controller: {name: Example Shop, contact: privacy@shop.example.com, establishment: "US"}
data_subjects: [{name: customers}]
categories:
  user.behavior.outcome: {parent: user.behavior, description: the decision an action followed}
atoms:
  traits.first_name:
    {category: user.name, identifier: true, purposes: [essential, personalization.individual], retention: 3y}
  events.product_viewed:
    category: user.behavior.browsing
    purposes: [analytics]
    retention: 13mo
    properties:
      product_id:
      decision_id: {category: user.behavior.outcome}
  events.order_completed:
    category: user.behavior.purchase
    purposes: [essential, analytics]
    retention: 6y
    properties:
      order_id:
      revenue:
      decision_id: {category: user.behavior.outcome}
  events.page_viewed:
    {category: user.behavior.browsing, purposes: [analytics], retention: 13mo, properties: [name]}
  events.signed_in:
    {category: user.account, purposes: [essential, analytics], retention: 13mo, properties: [method]}
  events.password_reset:
    category: user.account
    essential: true
    purposes: [essential]
    retention: 13mo
    properties:
      decision_id: {category: user.behavior.outcome}
"""
"""Product Viewed and Order Completed (with its revenue) are outcomes; Signed In does not declare
`decision_id`; Password Reset does, but is stored for `essential` alone."""

SERVER = Source(write_key_id=uuid.UUID(int=1), request_id="req-1", trusted=True)
WRITE = Source(write_key_id=uuid.UUID(int=2), request_id="req-2", trusted=False)
"""A server key, and the public write key of a web page."""


@cache
def outcome_catalog() -> Catalog:
    catalog, problems = parse_catalog(OUTCOME_CATALOG, file="outcomes.yaml")
    assert catalog is not None, problems
    return catalog


@cache
def outcome_policy() -> PolicyContext:
    """The outcome catalog where nothing needs a grant (CCPA for everyone)."""
    return policy_context(outcome_catalog(), OPEN)


def decision_id() -> str:
    return "dc_" + secrets.token_urlsafe(16)


def decision(subject: uuid.UUID | None, **changes: Any) -> Entry:
    """A served decision for `subject`, not yet numbered."""
    return replace(
        entry(subject), **({"decision_id": decision_id(), "level": "1:some", "strategy": "rule"} | changes)
    )


def logged(session: Session, book: Logbook, made: Entry) -> Entry:
    """`made`, numbered by `book` and written to the log in `session`, as its writer would."""
    numbered = book.add(made)
    decision_log.write(session, entries=[numbered], at=T0)
    return numbered


def outcome(
    event: str = "Product Viewed",
    *,
    anonymous_id: str | None = None,
    decided: object = None,
    **properties: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "anonymousId": anonymous_id or uid("anon"),
        "messageId": uid("msg"),
        "timestamp": (T0 + timedelta(minutes=1)).isoformat(),
        "properties": {**properties, "decision_id": decided},
    }
    return message


def send(
    session: Session,
    keystore: Keystore,
    *messages: dict[str, Any],
    source: Source = WRITE,
    hook: Any = outcomes.record,
) -> list[EventResult]:
    return collect_service.ingest(
        session,
        keystore=keystore,
        messages=list(messages),
        source=source,
        at=T0 + timedelta(minutes=1),
        limits=LIMITS,
        policy=outcome_policy(),
        outcomes=hook,
    )


def subject_of(
    session: Session, keystore: Keystore, *, anonymous_id: str | None = None, user_id: str | None = None
) -> uuid.UUID:
    found = profiles_service.find_subject(
        session, keystore=keystore, anonymous_id=anonymous_id, user_id=user_id
    )
    assert found is not None
    return found


def visitor(session: Session, keystore: Keystore) -> tuple[str, uuid.UUID]:
    """A visitor who browsed once (so that they exist), and their subject."""
    anonymous_id = uid("anon")
    send(
        session,
        keystore,
        {**outcome(anonymous_id=anonymous_id, product_id="p-0"), "properties": {"product_id": "p-0"}},
    )
    return anonymous_id, subject_of(session, keystore, anonymous_id=anonymous_id)


def rows(session: Session, decided: str | None = None) -> list[DecisionOutcome]:
    query = select(DecisionOutcome)
    if decided is not None:
        query = query.where(DecisionOutcome.decision_id == decided)
    return list(session.scalars(query))


def stored_properties(session: Session, message_id: str) -> dict[str, Any]:
    event = session.scalar(select(Event).where(Event.message_id == message_id))
    assert event is not None
    return dict(event.properties)
