"""The first look at a request's messages: each validated (or quarantined with its reason), given
its message id and fingerprint, and classified against what was received before; and the events the
catalog does not declare, which are dropped whatever consent says.

    message ── validate ──▶ event, message id (a fresh `tf-` id when it has none), fingerprint
            └─ rejected ──▶ quarantined with the reason
    digests ── seen before? ──▶ duplicate, conflict (quarantined), replay of an erased subject
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from tactful.catalog.filtering import event_atom_name
from tactful.collect import store
from tactful.collect.message import MessageType, canonical
from tactful.collect.plans import Plan
from tactful.collect.schemas import Source, Status
from tactful.collect.validate import Reason, Rejection, validate
from tactful.config import Limits
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore

ASSIGNED_PREFIX = "tf-"
"""The start of the id given to a message that came without one (as Segment's libraries do)."""


def message_id_of(message: object) -> str | None:
    value = message.get("messageId") if isinstance(message, Mapping) else None
    return value if isinstance(value, str) and 0 < len(value) <= 255 and value.isprintable() else None


def check(plans: list[Plan], *, keystore: Keystore, source: Source, at: datetime, limits: Limits) -> None:
    scope = str(source.write_key_id or "")
    for plan in plans:
        checked = validate(plan.message, at=at, max_event_bytes=limits.max_event_bytes)
        if isinstance(checked, Rejection):
            plan.message_id = message_id_of(plan.message)
            plan.quarantine(checked.reason, checked.detail)
            continue
        assert isinstance(plan.message, dict)
        plan.event = checked
        plan.fingerprint = keystore.digest("event_content", canonical(plan.message))
        plan.message_id = checked.message_id or f"{ASSIGNED_PREFIX}{uuid.uuid4()}"
        plan.digest = keystore.digest("message_id", f"{scope}\x00{plan.message_id}")


def undeclared(policy: PolicyContext, plan: Plan) -> bool:
    """Whether the plan's event is one the catalog does not declare (by its name for a track call,
    by its type for page, screen and group). Identify and alias link identities and carry traits,
    which the catalog declares field by field."""
    event = plan.event
    if event is None or event.type in (MessageType.IDENTIFY, MessageType.ALIAS):
        return False
    name = event_atom_name(event.type.value, event.name)
    return name is None or name not in policy.catalog.atoms


def drop_undeclared(plans: list[Plan], policy: PolicyContext) -> None:
    """Note of every plan whether the catalog declares its event (whatever becomes of it: a public
    answer shows this fact of the message). Events of strangers suppressed before anyone was created
    are dropped when undeclared: it is the catalog, not consent, that leaves them out."""
    for plan in plans:
        plan.undeclared = undeclared(policy, plan)
        if plan.unlinked and plan.status is Status.SUPPRESSED and plan.undeclared:
            plan.status, plan.reason = Status.DROPPED, Reason.UNDECLARED_EVENT


def classify(plans: list[Plan], seen: Mapping[str, store.SeenMessage], fresh: dict[str, str | None]) -> None:
    """Mark duplicates, conflicts and replays of erased subjects; collect first sightings in `fresh`."""
    for plan in plans:
        if plan.status is not None or plan.digest is None:
            continue
        if plan.digest in fresh:
            earlier: store.SeenMessage | None = store.SeenMessage(fresh[plan.digest], erased=False)
        else:
            earlier = seen.get(plan.digest)
        if earlier is None:
            fresh[plan.digest] = plan.fingerprint
        elif earlier.erased:
            plan.status, plan.reason = Status.SUPPRESSED, Reason.ERASED_SUBJECT
        elif earlier.fingerprint == plan.fingerprint:
            plan.status = Status.DUPLICATE
        else:
            plan.quarantine(
                Reason.DUPLICATE_CONFLICT, "this messageId was first received with another payload"
            )
