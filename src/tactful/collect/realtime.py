"""What a collection request leaves for the session counters (`1:some`), fed once it has committed.

    ingest ── merges of the request (links) ──────────────────────────▶ Behaviour.merged
           ── each stored event, in the one pass over the batch ──────▶ Behaviour.see
                (only when it is stored for personalization.behavioral, only the session atoms
                 the subject's storage Allowance keeps, only values of their declared properties)
    the HTTP layer commits ──▶ Behaviour.feed(counters): merges first, then one `record` per subject,
                               under the version of the subject's refusals read with its Allowance

    consent refusal ──withdrawal_hook──▶ collection's events (collect.store) and, when
                                          personalization.behavioral is gone, the subject's counters

Counting after the commit means that a request that fails counts nothing. A refusal committed in
between purges the counters through the hook; what this request then records carries the version
read before it, which the next decision reads as stale.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from redis import RedisError
from sqlalchemy.orm import Session

from tactful.catalog.filtering import event_atom_name
from tactful.catalog.model import Catalog
from tactful.collect import store
from tactful.consent import storage
from tactful.consent.gatekeeper import RecordsPurged, WithdrawalHook
from tactful.profiles.counters import DEFAULT_WINDOW, Observation, RealtimeCounters, value_text
from tactful.types import Purpose

log = logging.getLogger("tactful.collect")


def values_at(properties: Mapping[str, object], path: str) -> list[object]:
    """The values at a declared property path of stored properties: `category`, or one per element
    for `products[].category`. Missing fields and other shapes give nothing."""
    found: list[object] = [properties]
    for part in path.split("."):
        many = part.endswith("[]")
        name = part[:-2] if many else part
        step: list[object] = []
        for node in found:
            value = node.get(name) if isinstance(node, Mapping) else None
            if many:
                step.extend(value if isinstance(value, list) else ())
            elif value is not None:
                step.append(value)
        found = step
    return found


class Behaviour:
    """One request's observations for the session counters, per subject, and its merges."""

    def __init__(self, catalog: Catalog, *, window: float = DEFAULT_WINDOW.total_seconds()) -> None:
        self.window = window
        # By event atom: the session atoms that follow it, and the property each counts by.
        self._follow: dict[str, list[tuple[str, str | None]]] = {}
        for atom in catalog.session_atoms:
            assert atom.session is not None
            self._follow.setdefault(atom.session.event, []).append((atom.name, atom.session.by))
        self.observed: dict[uuid.UUID, list[Observation]] = {}
        self.versions: dict[uuid.UUID, str] = {}
        self.merges: list[tuple[uuid.UUID, uuid.UUID]] = []

    def merged(self, merges: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
        self.merges.extend(merges)

    def stored(
        self, row: Mapping[str, Any], *, purposes: frozenset[Purpose], under: storage.Decisions, at: datetime
    ) -> None:
        """An event row about to be stored for `purposes`, under the request's storage answers."""
        event = event_atom_name(row["type"], row["event"])
        if event is None or event not in self._follow:
            return
        subject_id = row["subject_id"]
        self.see(
            subject_id,
            event=event,
            properties=row["properties"],
            purposes=purposes,
            allowed=under.session_atoms(subject_id),
            version=under.version(subject_id),
            timestamp=row["timestamp"],
            at=at,
        )

    def see(
        self,
        subject_id: uuid.UUID,
        *,
        event: str,
        properties: Mapping[str, object],
        purposes: frozenset[Purpose],
        allowed: frozenset[str],
        version: str,
        timestamp: datetime,
        at: datetime,
    ) -> None:
        """One stored event: `purposes` it is stored for, `allowed` the session atoms the subject's
        storage Allowance keeps, `version` its refusals' version. An event from before the session
        (its time further back than the session's window) does not count."""
        following = self._follow.get(event)
        if not following or Purpose.BEHAVIORAL not in purposes:
            return
        if (at - timestamp).total_seconds() > self.window:
            return
        kept = [(name, by) for name, by in following if name in allowed]
        if not kept:
            return
        values: list[tuple[str, str]] = []
        for by in dict.fromkeys(by for _, by in kept if by is not None):
            for value in values_at(properties, by):
                text = value_text(value)
                if text is not None:
                    values.append((by, text))
        self.observed.setdefault(subject_id, []).append(Observation(event, tuple(values)))
        self.versions[subject_id] = version

    def feed(self, counters: RealtimeCounters | None, *, at: datetime) -> None:
        """Apply the merges, then record each subject's observations. Called after the commit; a
        counter store that does not answer loses this request's counts, never its events."""
        if counters is None or not (self.merges or self.observed):
            return
        try:
            for source, target in self.merges:
                counters.merge(source=source, target=target, at=at)
            for subject_id, observations in self.observed.items():
                counters.record(subject_id, observations, at=at, version=self.versions[subject_id])
        except RedisError as exc:
            # Only the type: the counters are behaviour, and logs never carry personal data.
            log.warning("session counters not updated (%s)", type(exc).__name__)


def withdrawal_hook(catalog: Catalog, counters: RealtimeCounters | None) -> WithdrawalHook:
    """Consent's withdrawal hook: collection's events (`store.withdrawal_hook`), and the session
    counters when `personalization.behavioral` may no longer be stored for (wired by `main`)."""
    events = store.withdrawal_hook(catalog)

    def forget(
        session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
    ) -> RecordsPurged:
        purged = events(session, subject_id=subject_id, purposes=purposes, at=at)
        if counters is not None and Purpose.BEHAVIORAL not in purposes:
            # Before the refusal commits: should it not, the counts were only lost early. Should
            # Redis not answer, the refusal still stands: it changed the version the counts carry,
            # so the next decision finds them stale.
            try:
                counters.erase(subject_id)
            except RedisError as exc:
                log.warning("session counters not purged (%s); they are stale", type(exc).__name__)
        return purged

    return forget
