"""Storing computed atoms: a batch of events folded in memory, then one read and one upsert.

    events ─ read_signal ─▶ (subject, atom) slots ◀── one SELECT of the rows concerned (locked)
                              │ each event in order: an expired aggregate starts over
                              ▼
                            one INSERT … ON CONFLICT DO UPDATE for every slot that changed

The result equals folding the events one at a time (`record_event`), which the tests check.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from tactful.bulk import one_of, upsert_rows
from tactful.profiles.computed import AGGREGATES, Pair, Running, Signal, read_signal
from tactful.profiles.models import Computed
from tactful.profiles.schemas import CatalogView

_CHUNK = 500
_KEY = ("subject_id", "atom")


EventRecord = tuple[uuid.UUID, Mapping[str, object], datetime]
"""(subject_id, stored message, event time) of one event for `record_events`."""


@dataclass
class _Slot:
    """One computed row as the batch leaves it."""

    pair: Pair | None
    updated_at: datetime | None
    expires_at: datetime | None
    running: Running | None = None
    """The fold of this batch's events so far; `pair` is the stored row until the end."""


_COMPUTED = cast(Table, Computed.__table__)
_ROWS = (
    select(
        *(_COMPUTED.c[name] for name in ("subject_id", "atom", "value", "state", "updated_at", "expires_at"))
    )
    .where(
        one_of(_COMPUTED.c.subject_id, "subjects"),
        one_of(_COMPUTED.c.atom, "atoms"),
    )
    .order_by(_COMPUTED.c.subject_id, _COMPUTED.c.atom)
    # Locked in key order on PostgreSQL: a concurrent batch on the same profile waits for this one
    # instead of losing its update.
    .with_for_update()
)
"""The stored rows of some subjects' atoms: built once, of plain table columns (no ORM work per
call), lists bound as expanding parameters."""


def _read(session: Session, keys: set[tuple[uuid.UUID, str]]) -> dict[tuple[uuid.UUID, str], _Slot]:
    subjects = sorted({s for s, _ in keys}, key=str)
    atoms = sorted({a for _, a in keys})
    found: dict[tuple[uuid.UUID, str], _Slot] = {}
    for start in range(0, len(subjects), _CHUNK):
        for row in session.connection().execute(
            _ROWS, {"subjects": subjects[start : start + _CHUNK], "atoms": atoms}
        ):
            found[(row.subject_id, row.atom)] = _Slot((row.value, row.state), row.updated_at, row.expires_at)
    return found


def record_events(
    session: Session,
    *,
    catalog: CatalogView,
    events: Sequence[EventRecord],
    withheld: Mapping[uuid.UUID, frozenset[str]] | None = None,
) -> None:
    """Fold a batch of stored events into their subjects' computed atoms, in order: the result is the
    one `record_event` gives event by event, with one read of the rows concerned and one upsert.

    Only atoms the catalog declares are kept (data minimisation), and none of those `withheld`
    names for a subject (no purpose lets it be stored); an expired aggregate starts over.
    """
    declared = {name: catalog.atoms[name] for name in AGGREGATES if name in catalog.atoms}
    if not declared:
        return
    steps: list[tuple[uuid.UUID, Signal, datetime, list[str]]] = []
    withheld = withheld or {}
    for subject_id, message, at in events:
        signal = read_signal(message, at)
        held = withheld.get(subject_id, frozenset())
        names = [name for name in declared if name not in held and AGGREGATES[name].applies(signal)]
        if names:
            steps.append((subject_id, signal, at, names))
    if not steps:
        return
    keys = {(subject_id, name) for subject_id, _, _, names in steps for name in names}
    # Rows a merge in this transaction changed through the ORM are read below, so they go first.
    session.flush()
    slots = _read(session, keys)
    aggregates = {name: (AGGREGATES[name].start, atom.retention) for name, atom in declared.items()}
    for subject_id, signal, at, names in steps:
        for name in names:
            slot = slots.get((subject_id, name))
            if slot is None:
                slot = slots[(subject_id, name)] = _Slot(None, None, None)
            start, retention = aggregates[name]
            if slot.expires_at is None or slot.expires_at <= at:
                slot.running = start(None)  # nothing yet, or expired: it starts over
            elif slot.running is None:
                slot.running = start(slot.pair)
            slot.running.add(signal)
            slot.updated_at, slot.expires_at = at, at + retention
    # The read is a cross product of subjects and atoms: rows no event touched stay as they are.
    written = sorted((k for k, slot in slots.items() if slot.running), key=lambda k: (str(k[0]), k[1]))
    rows = [_row(key, slots[key]) for key in written]
    upsert_rows(session, _COMPUTED, rows, keys=_KEY, replace=("value", "state", "updated_at", "expires_at"))
    _forget(session, set(written))


def _row(key: tuple[uuid.UUID, str], slot: _Slot) -> dict[str, object]:
    assert slot.running is not None  # every slot has taken at least one event
    value, state = slot.running.pair()
    return {
        "subject_id": key[0],
        "atom": key[1],
        "value": value,
        "state": state,
        "updated_at": slot.updated_at,
        "expires_at": slot.expires_at,
    }


def _forget(session: Session, keys: set[tuple[uuid.UUID, str]]) -> None:
    """Expire ORM copies of rows just written with Core, so that later reads in this session see
    the new values."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Computed) and (obj.subject_id, obj.atom) in keys:
            session.expire(obj)


def record_event(
    session: Session,
    *,
    catalog: CatalogView,
    subject_id: uuid.UUID,
    message: Mapping[str, object],
    at: datetime,
) -> None:
    """Fold one stored event into the subject's computed atoms (`record_events` of one)."""
    record_events(session, catalog=catalog, events=[(subject_id, message, at)])
