"""No return of the erased: messages naming an identifier the keystore's erasure log holds.

    new messages ─ their identifiers ─ all held by live subjects? ─ yes ─▶ nothing to check (one read
        │                                                                 of the identities, shared)
        ▼ no: the message's identifiers (with an identify's e-mail) ─▶ one erasure-log read per request
    sent before the erasure (its own earliest time: `timestamp`/`originalTimestamp`, or the
        time corrected by `sentAt`) ─▶ suppressed (`erased_subject`): a replay does not re-create them
    sent after ─▶ goes on as anyone new: a new, empty subject, with no consent carried over;
        counted as `after_erasure`

Only identifiers no live subject holds are looked up: while an erasure runs, its subject's own
identifiers are still live, and what arrives for them then is deleted with the rest. A message's
own time, not its receipt, decides: a device whose clock runs behind is suppressed, the safe side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from tactful.collect.message import MessageType
from tactful.collect.plans import Plan, identifiers
from tactful.collect.schemas import Status
from tactful.collect.validate import Reason, ValidEvent
from tactful.crypto import Keystore
from tactful.crypto.erasure_log import EMAIL, Identifier
from tactful.profiles import service as profiles_service
from tactful.profiles.schemas import IdentityKind

AFTER_ERASURE = "after_erasure"
"""The counter of messages naming an erased identifier, sent after the erasure: new subjects."""


def _emails(plan: Plan) -> list[Identifier]:
    message = plan.message if isinstance(plan.message, Mapping) else {}
    found: list[Identifier] = []
    context = message.get("context")
    for traits in (message.get("traits"), context.get("traits") if isinstance(context, Mapping) else None):
        if isinstance(traits, Mapping) and isinstance(email := traits.get("email"), str) and email.strip():
            found.append((EMAIL, email))
    return found


def own_time(event: ValidEvent) -> datetime:
    """When the message says it happened: the earlier of its time as sent and as corrected."""
    if event.original_timestamp is None:
        return event.timestamp
    return min(event.timestamp, event.original_timestamp)


@dataclass(frozen=True)
class Checked:
    after_erasure: int
    """Messages naming an erased identifier, sent after its erasure: they go on, as someone new."""
    known: frozenset[tuple[IdentityKind, str]]
    """Which identifiers of the new messages live subjects hold (`plans.suppress_unheard` reuses it)."""


def check(session: Session, plans: list[Plan], *, keystore: Keystore, at: datetime) -> Checked:
    """Suppress the new messages that replay an erased subject's earlier ones."""
    named: list[tuple[Plan, set[tuple[IdentityKind, str]]]] = [
        (plan, identifiers(plan.event)) for plan in plans if plan.status is None and plan.event is not None
    ]
    wanted = {name for _, names in named for name in names}
    if not wanted:
        return Checked(0, frozenset())
    known = profiles_service.known_identifiers(session, keystore=keystore, identifiers=sorted(wanted))
    asking: list[tuple[Plan, list[Identifier]]] = []
    for plan, names in named:
        if names <= known:
            continue
        assert plan.event is not None
        found: list[Identifier] = [(str(kind), value) for kind, value in sorted(names)]
        if plan.event.type is MessageType.IDENTIFY:
            found.extend(_emails(plan))
        asking.append((plan, found))
    if not asking:
        return Checked(0, known)
    erased = keystore.erasure_log.erased((name for _, found in asking for name in found), at=at)
    if not erased:
        return Checked(0, known)
    after = 0
    for plan, found in asking:
        times = [erased[name] for name in found if name in erased]
        if not times:
            continue
        assert plan.event is not None
        if own_time(plan.event) < max(times):
            plan.status, plan.reason = Status.SUPPRESSED, Reason.ERASED_SUBJECT
        else:
            after += 1
    return Checked(after, known)
