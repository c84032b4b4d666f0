"""Which atom each new event is, and what collection asks consent about a request's events (issue 3,
part 7): what may be stored for which purpose is consent's answer (`consent.storage`).

    new events ─▶ Arrival (consent context, GPC, proof: key, request, message) ─┐
               └▶ Item (subject, the atom it is, user traits, may widen) ───────┼─▶ consent.storage
                                                                                ▼
    Decision per event ─ purposes: some ─▶ stored with them (`events.purposes`)
                       │           none ─▶ suppressed, reason `no_purpose`
                       └ needs_proof ────▶ refused claims (`Refusal` codes)

Which atom an event is:
- track, page, screen, group: its event atom; an event type the catalog does not declare has no
  purpose, and `essential` counts only for the event types the catalog marks essential;
- identify: linking identities is `essential`; each trait it carries is kept only for its own
  atom's purposes (the others are left out of the event and of the profile);
- the user traits any call repeats in `context.traits` (analytics.js does) follow the same rule;
- alias: linking identities, `essential`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

from tactful.catalog.filtering import event_atom_name
from tactful.collect.message import MessageType
from tactful.collect.schemas import Refusal, Source
from tactful.collect.validate import ValidEvent
from tactful.consent import intake, storage
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.profiles import service as profiles_service
from tactful.types import Purpose

_LINKING = (MessageType.ALIAS, MessageType.IDENTIFY)
_REFUSALS = {
    storage.NeedsProof.IDENTIFIER: Refusal.IDENTIFIER_TRAIT,
    storage.NeedsProof.AGE: Refusal.AGE_CLAIM,
    storage.NeedsProof.PLACE: Refusal.PLACE_CLAIM,
}


def atom_of(event: ValidEvent) -> str | None:
    """The name of the event atom a track, page, screen or group event is (None when it has none)."""
    return event_atom_name(event.type.value, event.name)


@dataclass(frozen=True)
class Arriving:
    """One new event on its way in: its subject, what validation read, its message id, and the user
    traits it carries (an identify's own, and those repeated in `context.traits`)."""

    subject_id: uuid.UUID
    event: ValidEvent
    message_id: str
    traits: Mapping[str, Any]
    may_grant: bool = True
    """Whether its consent context may grant (see `intake.Arrival.may_grant`)."""
    may_widen: bool = True
    """Whether it may write an identified person's identifiers or lift their age protections: the
    person is anonymous, or the message proves who they are (DESIGN §4)."""

    @cached_property
    def item(self) -> storage.Item:
        """The event as consent sees it."""
        links = self.event.type in _LINKING
        return storage.Item(
            self.subject_id,
            None if links else atom_of(self.event),
            self.traits,
            links=links,
            may_widen=self.may_widen,
        )


def refusals(decision: storage.Decision) -> tuple[Refusal, ...]:
    """The reason codes of what an event carried and may not do without proof."""
    return tuple(_REFUSALS[n] for n in decision.needs_proof)


def newcomer(policy: PolicyContext, at: datetime) -> Callable[[ValidEvent], frozenset[Purpose]]:
    """The purposes a track, page, screen or group event may serve when it comes from someone never
    seen before and says nothing about consent (`storage.newcomer`)."""
    purposes = storage.newcomer(policy, at)
    return lambda event: purposes(atom_of(event))


def decide(
    session: Session,
    *,
    keystore: Keystore,
    policy: PolicyContext,
    items: Sequence[Arriving],
    source: Source,
    at: datetime,
    nothing_stored: frozenset[uuid.UUID] = frozenset(),
) -> tuple[storage.Decisions, frozenset[str]]:
    """Consent's decisions for the items (the consent they carry recorded first, each with the proof
    of where it came from), and the message ids whose grants were not recorded for want of proof.
    `nothing_stored`: subjects this request created, which no earlier event or atom can belong to."""
    base = {"request_id": source.request_id or ""}
    if source.write_key_id is not None:
        base["key_id"] = str(source.write_key_id)
    arrivals = [
        intake.Arrival(
            subject_id=item.subject_id,
            consent=item.event.consent,
            gpc=source.gpc or item.event.gpc is True,
            proof={**base, "message_id": item.message_id},
            may_grant=item.may_grant,
        )
        for item in items
    ]
    actor = f"collect:key:{source.write_key_id}" if source.write_key_id else "collect"
    decisions = storage.receive(
        session, keystore=keystore, policy=policy, arrivals=arrivals, at=at, actor=actor,
        nothing_stored=nothing_stored,
    )  # fmt: skip
    return decisions, frozenset(items[i].message_id for i in decisions.refused_grants)


def purge_computed(session: Session, withheld: Mapping[uuid.UUID, frozenset[str]]) -> None:
    """Remove withheld computed atoms stored before (say, before an identify told the subject's age
    and made it a minor, who is not profiled): one statement per distinct set of atoms."""
    groups: dict[frozenset[str], list[uuid.UUID]] = {}
    for subject, atoms in withheld.items():
        groups.setdefault(atoms, []).append(subject)
    for atoms, subjects in groups.items():
        profiles_service.purge_atoms_many(session, subject_ids=subjects, atoms=atoms, computed_only=True)
