"""What a key's scope may see of what became of each collected message (DESIGN §4, invariant 16).

    EventResult ──┬── server or admin key ──▶ the engine's answer: stored, duplicate, quarantined,
                  │                           suppressed or dropped, its reason and detail, refusals
                  └── write key (public) ───▶ what the message alone determines:
                          undeclared event ─────────────────▶ dropped, `undeclared_event`
                          a fault of the message itself ────▶ quarantined, its reason and detail
                          anything else ────────────────────▶ accepted
                          refusals ─────────────────────────▶ only `subject_token_invalid`

A write key sits in every web page, so anyone can send messages naming any user id and read the
answers. Whether a message was stored, suppressed (no purpose, an erased subject's replay) or
deduplicated, and whether its claims about a user id were refused, depends on that person's stored
state: shown to a public key it would tell whether someone refused consent, was erased, is linked to
an anonymous id or is identified. The public answer is therefore a function of the message (and of
the catalog and the clock) alone: two senders of the same message read the same answer whatever is
stored. The engine's outcome is unchanged and exact in `/metrics` and the audit trail.
"""

from __future__ import annotations

from typing import Any

from tactful.collect import proof
from tactful.collect.schemas import EventResult, Status
from tactful.collect.validate import Reason

ACCEPTED = "accepted"
"""A public key's status of a message taken in: stored, suppressed or deduplicated by the engine."""

MESSAGE_FAULTS: frozenset[Reason] = frozenset(
    {
        Reason.MISSING_IDENTITY,
        Reason.INVALID_TYPE,
        Reason.INVALID_FIELD,
        Reason.EVENT_TOO_LARGE,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        Reason.UNSTORABLE_VALUE,
    }
)
"""Quarantine reasons found by validating the message alone (with the limits and the clock)."""

STATE_REASONS: frozenset[Reason] = frozenset(
    {Reason.DUPLICATE_CONFLICT, Reason.ERASED_SUBJECT, Reason.NO_PURPOSE, Reason.UNDECLARED_EVENT}
)
"""Reasons a public answer never shows as such: they follow from what was received or consented
before (`undeclared_event` is shown, but from the catalog, through `EventResult.undeclared`)."""

MESSAGE_REFUSALS: frozenset[str] = frozenset({proof.INVALID_TOKEN})
"""Refusals that follow from the message alone: a token it carried proves nothing (a bad signature,
expired, another user), whatever is stored."""


def full(result: EventResult) -> dict[str, Any]:
    """The engine's answer, for a server or admin key."""
    return {
        "messageId": result.message_id,
        "status": result.status.value,
        "reason": None if result.reason is None else result.reason.value,
        "detail": result.detail,
        "refused": list(result.refused),
    }


def public(result: EventResult) -> dict[str, Any]:
    """The answer a write key reads: determined by the message, the catalog and the clock."""
    refused = [code for code in result.refused if code in MESSAGE_REFUSALS]
    if result.undeclared:
        status, reason, detail = Status.DROPPED.value, Reason.UNDECLARED_EVENT.value, None
    elif result.status is Status.QUARANTINED and result.reason in MESSAGE_FAULTS:
        status, reason, detail = Status.QUARANTINED.value, result.reason.value, result.detail
    else:
        status, reason, detail = ACCEPTED, None, None
    return {
        "messageId": result.message_id,
        "status": status,
        "reason": reason,
        "detail": detail,
        "refused": refused,
    }


def results(found: list[EventResult], *, trusted: bool) -> list[dict[str, Any]]:
    """Each message's answer as the key's scope may see it (`trusted`: a server or admin key)."""
    view = full if trusted else public
    return [view(result) for result in found]
