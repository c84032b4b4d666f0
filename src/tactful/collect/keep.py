"""What of one event is stored, once its subject and purposes are known (`service.ingest` calls it
for every event it stores).

    message ─▶ catalog filter (undeclared fields dropped; free text, and every declared string but an
               identifier, without e-mail addresses, phone or card numbers: counted)
            ─▶ user traits its purposes keep (the rest neither stored nor profiled)
            ─▶ fields its purposes keep (`fields`), a decision id only on an outcome (`outcomes`)
            ─▶ the event row: identifiers never in clear (the profile holds them, sealed)
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from tactful.catalog.filtering import DECISION_ID
from tactful.catalog.model import Atom
from tactful.collect import fields as collect_fields
from tactful.collect import outcomes as collect_outcomes
from tactful.collect import store
from tactful.collect.message import MessageType, for_catalog
from tactful.collect.plans import Plan
from tactful.collect.schemas import CollectCatalog, Source, Status
from tactful.consent import storage
from tactful.profiles import service as profiles_service
from tactful.types import new_row_id


def as_object(value: object) -> dict[str, Any]:
    """A message field that should be an object, or an empty one (validation let other shapes by)."""
    return value if isinstance(value, dict) else {}


def _without_identifiers(traits: dict[str, Any], catalog: CollectCatalog) -> dict[str, Any]:
    """Traits minus direct identifiers: those are kept only in the profile, encrypted under the
    subject's key (DESIGN §1), never in clear in the event store."""
    atoms = catalog.trait_atoms
    if not any((atom := atoms.get(name)) is not None and atom.identifier for name in traits):
        return traits
    return {name: value for name, value in traits.items() if not ((a := atoms.get(name)) and a.identifier)}


def _stored_context(context: dict[str, Any], catalog: CollectCatalog) -> dict[str, Any]:
    traits = context.get("traits")  # analytics.js repeats the user's traits here on every call
    if not isinstance(traits, dict):
        return context
    return {**context, "traits": _without_identifiers(traits, catalog)}


def event(
    plan: Plan,
    *,
    catalog: CollectCatalog,
    source: Source,
    at: datetime,
    dropped: Counter[str],
    recorded: list[profiles_service.EventRecord],
    identified: list[profiles_service.TraitUpdate],
    decision: storage.Decision,
    fields: collect_fields.FieldPurposes,
    counts: Counter[str] | None = None,
) -> None:
    """Keep what of one event may be stored (`plan` gets its row and the status `stored`): the catalog's
    filter, the traits and fields its purposes allow, a decision id only on an outcome, identifiers
    only in the profile; the profile's trait updates and computed-atom records are gathered."""
    event, subject_id = plan.event, plan.subject_id
    assert event is not None
    assert subject_id is not None
    assert plan.message_id is not None
    assert isinstance(plan.message, dict)
    filtered = catalog.filter_message(for_catalog(plan.message))
    dropped.update(filtered.dropped)
    if counts is not None and filtered.redacted:
        # `<what>:<path>`: a long path loses its start, never what was removed.
        counts.update(
            store.counter_name(f"redacted:{what}:", path)
            for what, _, path in (entry.partition(":") for entry in filtered.redacted)
        )
    kept = filtered.kept
    traits = as_object(kept.get("traits"))
    # Only the user traits some allowed purpose keeps: the others are neither stored nor profiled.
    # They are an identify's own traits, and on every call the copy analytics.js repeats in
    # `context.traits`. (A group's traits describe the group: its event atom's purposes cover them.)
    if event.type is MessageType.IDENTIFY and traits:
        traits = {k: v for k, v in traits.items() if k in decision.traits}
        kept = {**kept, "traits": traits}
    context = as_object(kept.get("context"))
    carried = context.get("traits")
    if isinstance(carried, dict) and carried:
        atoms = catalog.trait_atoms
        allowed = {k: v for k, v in carried.items() if k in decision.traits or k not in atoms}
        kept = {**kept, "context": {**context, "traits": allowed}}
    if event.type is MessageType.IDENTIFY and traits:
        identified.append((subject_id, traits, event.timestamp))
    # The profile has its traits; the event keeps only the fields its own purposes allow.
    kept, withheld = fields.keep(subject_id, decision, kept, user_traits=event.type is MessageType.IDENTIFY)
    properties = as_object(kept.get("properties"))
    if DECISION_ID in properties:
        found = catalog.atoms.get(filtered.atom) if filtered.atom else None
        atom = found if isinstance(found, Atom) else None
        properties, plan.outcome = collect_outcomes.claim(event.type, atom, decision.purposes, properties)
        kept = {**kept, "properties": properties}
        if DECISION_ID not in properties:
            withheld = [*withheld, collect_outcomes.WITHHELD_PATH]
    if counts is not None and withheld:
        counts.update(store.counter_name("withheld:", path) for path in withheld)
    traits = as_object(kept.get("traits"))
    stored = {
        **kept,
        "type": event.type.value,
        "messageId": plan.message_id,
        "timestamp": event.timestamp.isoformat(),
    }
    recorded.append((subject_id, stored, event.timestamp))
    plan.status = Status.STORED
    plan.row = {
        "id": new_row_id(),
        "subject_id": subject_id,
        "message_id": plan.message_id,
        "type": event.type.value,
        "event": event.name,
        "group_id": event.group_id,
        "timestamp": event.timestamp,
        "original_timestamp": event.original_timestamp,
        "received_at": at,
        "properties": as_object(kept.get("properties")),
        "traits": _without_identifiers(traits, catalog),
        "context": _stored_context(as_object(kept.get("context")), catalog),
        "consent": event.consent,
        "gpc": True if source.gpc else event.gpc,
        "purposes": sorted(decision.purposes),
        "write_key_id": source.write_key_id,
        "request_id": source.request_id,
    }
