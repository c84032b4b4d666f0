"""Outcomes: track events that name the decision they follow (`properties.decision_id`), handed to
whoever measures them through a hook (DESIGN §6: `main` wires `measure`'s; collection imports
nothing above it).

    stored event with properties.decision_id
        │ a track event, its atom declares `decision_id`, it is stored for `analytics`,
        │ and the id has a decision id's shape? ──no──▶ the id is left out of the stored event
        │                                              (counted `withheld:properties.decision_id`)
        ▼ yes, or a track event refused for one of those reasons (the refusal goes along)
    Outcome (subject, id, event atom, value, times, what the Allowance lets be learned)
        ──OutcomeHook, in the request's unit of work, inside a savepoint──▶ measure

The hook runs inside the request's transaction, before the commit that precedes the 2xx: the
outcome is recorded in the same commit as its event, so there is no moment at which an event is
stored and answered while its outcome is not yet recorded (after the commit, a crash between the
two would lose the outcome while the client, answered 2xx, never sends it again). It runs in a
savepoint: a hook that fails rolls back its own work only, the events commit as they would have,
and the failure is counted (`outcomes:failed`), never an event lost.

A business declares which events are outcomes in its catalog, among the event's properties:

    events.order_completed:
      properties:
        decision_id: {category: user.behavior.outcome, description: the decision the order followed}

The id is a pseudonymous reference to a served decision, not an identifier of the person; it is
kept, and measured, only for `analytics` (measuring content and outcomes, DESIGN §1).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tactful.catalog.filtering import DECISION_ID, is_decision_id
from tactful.catalog.model import Atom
from tactful.collect.message import MessageType
from tactful.collect.validate import ValidEvent
from tactful.policy import Allowance
from tactful.types import Level, Purpose

log = logging.getLogger(__name__)

OUTCOME_PURPOSE = Purpose.ANALYTICS
"""The purpose an outcome serves: the id is stored, and the outcome measured, only for it."""

VALUE_PROPERTIES: tuple[str, ...] = ("revenue", "value", "total")
"""The properties an outcome's value is read from, the first declared one holding a number."""

FAILED = "outcomes:failed"
"""The ingestion counter of outcomes whose hook failed (their events were stored)."""

WITHHELD_PATH = f"properties.{DECISION_ID}"


class Refusal(StrEnum):
    """Why a track event's decision id is not measured (and not stored)."""

    MALFORMED = "malformed"
    """Not a decision id's shape: it cannot name a decision."""
    UNDECLARED = "undeclared"
    """The event's atom does not declare `decision_id`: the business did not make it an outcome."""
    NO_ANALYTICS = "no_analytics"
    """The event is not stored for `analytics`: nothing may be measured from it."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What one stored event says about a decision, before the request's subjects are final."""

    decision_id: str | None
    """None when refused as malformed (the value sent is neither stored nor passed on)."""
    refusal: Refusal | None
    value: float | None
    event: str
    """The event atom's name."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """One stored track event naming a decision, as the hook receives it."""

    subject_id: uuid.UUID
    """The event's subject, after the request's merges."""
    decision_id: str | None
    event: str
    """The event atom (`events.order_completed`): a catalog name, never a sender's text."""
    value: float | None
    occurred_at: datetime
    received_at: datetime
    refusal: Refusal | None
    may_learn: bool
    """Whether the subject's Allowance at receipt lets anything be learned from them."""
    learn_ceiling: Level
    """The highest level whose decisions the Allowance at receipt lets be learned from."""


class OutcomeHook(Protocol):
    """What collection calls with a request's outcomes, inside its unit of work."""

    def __call__(self, session: Session, *, outcomes: Sequence[Outcome], at: datetime) -> None: ...


def ignore_outcomes(session: Session, *, outcomes: Sequence[Outcome], at: datetime) -> None:
    """The default hook: outcomes are stored as events and measured by nobody."""
    del session, outcomes, at


def _value(properties: Mapping[str, Any], atom: Atom | None) -> float | None:
    for name in VALUE_PROPERTIES:
        found = properties.get(name)
        if atom is None or atom.find_property(name) is None:
            continue
        if isinstance(found, int | float) and not isinstance(found, bool) and math.isfinite(found):
            return float(found)
    return None


def claim(
    kind: MessageType, atom: Atom | None, purposes: frozenset[Purpose], properties: dict[str, Any]
) -> tuple[dict[str, Any], Claim | None]:
    """The properties to store, and the event's claim to be an outcome (None if it is no track
    event). The id stays in the stored event only when the claim is measured."""
    sent = properties.get(DECISION_ID)
    if kind is not MessageType.TRACK:
        return _without_id(properties), None
    refusal: Refusal | None = None
    if not is_decision_id(sent):
        refusal = Refusal.MALFORMED
    elif atom is None or atom.find_property(DECISION_ID) is None:
        refusal = Refusal.UNDECLARED
    elif OUTCOME_PURPOSE not in purposes:
        refusal = Refusal.NO_ANALYTICS
    decision_id = sent if isinstance(sent, str) and refusal is not Refusal.MALFORMED else None
    stored = properties if refusal is None else _without_id(properties)
    value = _value(properties, atom) if refusal is None else None
    return stored, Claim(decision_id, refusal, value, atom.name if atom is not None else "")


def outcomes_of(
    claims: Iterable[tuple[uuid.UUID | None, Claim | None, ValidEvent | None]],
    allowances: Mapping[uuid.UUID, Allowance],
    *,
    at: datetime,
) -> list[Outcome]:
    """The outcomes of a request's stored events (subject, claim, event), each with what its
    subject's Allowance at receipt lets be learned."""
    found = []
    for subject_id, made, event in claims:
        if made is None or subject_id is None or event is None:
            continue
        allowance = allowances[subject_id]
        found.append(
            Outcome(
                subject_id=subject_id,
                decision_id=made.decision_id,
                event=made.event,
                value=made.value,
                occurred_at=event.timestamp,
                received_at=at,
                refusal=made.refusal,
                may_learn=allowance.may_learn,
                learn_ceiling=allowance.learn_ceiling,
            )
        )
    return found


def _without_id(properties: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in properties.items() if key != DECISION_ID}


def report(
    session: Session, hook: OutcomeHook, outcomes: Sequence[Outcome], *, at: datetime, counts: Counter[str]
) -> None:
    """Call `hook` in a savepoint: a failure rolls back the hook's work alone and is counted in
    `counts` (the request's ingestion counters); the events stay in the transaction."""
    if not outcomes:
        return
    savepoint = session.begin_nested()
    try:
        hook(session, outcomes=outcomes, at=at)
    except Exception as error:
        savepoint.rollback()
        # Only the type: a driver's message can quote the rows' values.
        log.error(
            "measuring %d outcomes failed (%s); their events are stored", len(outcomes), type(error).__name__
        )
        counts[FAILED] += len(outcomes)
        return
    savepoint.commit()
