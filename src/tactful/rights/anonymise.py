"""What an anonymised event row keeps: enough to count, nothing that leads back to the person.

    stored row                                  anonymised row
    subject_id                          ──►     ANONYMISED (the same for every such row)
    message_id, group_id, request_id    ──►     "" / None  (the dedup ledger keeps its own copy
                                                 under its own retention)
    timestamp, received_at              ──►     the start of their day (UTC); original_timestamp None
    traits, consent, gpc                ──►     {} / None
    properties                          ──►     the declared ones without text (free text, URLs),
                                                 `reference` numbers (order, cart ids) or a
                                                 category at 1:1 (precise location, special)
    context                             ──►     the stored context atoms without text and below
                                                 1:1 (country, language, device type, campaign)
    type, event, purposes, write_key_id         kept: what the row counts as, and which site sent it

An anonymised row belongs to no subject: export and erasure no longer find it, and the retention
sweep leaves it alone. Special categories are never anonymised (`Catalog.expiry_of_atom`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tactful.catalog.model import Atom, Catalog
from tactful.types import Level

ANONYMISED = uuid.UUID(int=0)
"""The subject id of every anonymised row: no person's (subject ids are random version 4 UUIDs)."""

Path = tuple[str, ...]


def kept_properties(atom: Atom | None) -> list[Path]:
    """The property paths an anonymised row of `atom` keeps: not text, not a reference, and of no
    category that singles a person out on its own (precise location, special categories)."""
    if atom is None:
        return []
    return [
        tuple(p.name.split("."))
        for p in atom.properties
        if p.text is None and not p.reference and p.category.floor is not Level.ONE
    ]


def kept_context(catalog: Catalog) -> list[Path]:
    """The context paths an anonymised row keeps: stored context atoms that are not text and not
    at `1:1` (a precise location, an identifier)."""
    return [
        path for path, atom in catalog.stored_context if atom.text is None and atom.level is not Level.ONE
    ]


def pick(value: Mapping[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """The parts of `value` at `paths` (`("products[]", "category")` reaches into each element of
    the array `products`), in the same shape; everything else is left out."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        if path:
            groups.setdefault(path[0], []).append(path[1:])
    found: dict[str, Any] = {}
    for key, rests in groups.items():
        array = key.endswith("[]")
        name = key[:-2] if array else key
        if name not in value:
            continue
        item = value[name]
        below = [rest for rest in rests if rest]
        if array:
            if isinstance(item, list):
                found[name] = [pick(element, below) for element in item if isinstance(element, Mapping)]
        elif len(below) < len(rests):
            found[name] = item  # declared whole
        elif isinstance(item, Mapping):
            found[name] = pick(item, below)
    return found


def day_of(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def anonymised(
    row: Mapping[str, Any], *, properties: Iterable[Path], context: Iterable[Path]
) -> dict[str, Any]:
    """The new values of an event row's columns (`id` kept, to update it by)."""
    return {
        "id": row["id"],
        "subject_id": ANONYMISED,
        "message_id": "",
        "group_id": None,
        "request_id": None,
        "timestamp": day_of(row["timestamp"]),
        "received_at": day_of(row["received_at"]),
        "original_timestamp": None,
        "traits": {},
        "consent": None,
        "gpc": None,
        "properties": pick(row["properties"] or {}, properties),
        "context": pick(row["context"] or {}, context),
    }
