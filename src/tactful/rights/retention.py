"""The retention sweep (DESIGN invariant 12): every store drops what outlived its retention.

    profiles    traits and computed atoms past their atom's retention (their `expires_at`)
    events      each stored event past its event atom's retention; events of undeclared types keep
                only system fields and expire with the shortest event retention in the catalog
    quarantine  rows past the quarantine's own retention
    dedup       message ids older than `dedup_retention_days` (kept longer than events on purpose:
                a late retry must still be recognised)
    decisions   served decisions older than `decision_log_retention_days` (their explanations then
                answer 404, as for an unknown id)
    outcomes    linked outcomes as old as those decisions; pending ones that waited too long for
                their decision are settled as unknown (`measure.outcomes.sweep`)

`tactful retention run` calls `run_retention` on a schedule of the operator's choosing (daily is
typical); it is idempotent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event
from tactful.config import Settings
from tactful.decide import log as decision_log
from tactful.measure import outcomes as measure_outcomes
from tactful.profiles import service as profiles_service


def _event_retention(catalog: Catalog, kind: str, name: str | None, fallback: timedelta) -> timedelta:
    atom = catalog.event_atom({"type": kind, "event": name})
    return atom.retention if atom is not None else fallback


def expire_events(session: Session, *, catalog: Catalog, at: datetime) -> int:
    """Delete stored events older than their event atom's retention."""
    event_retentions = [atom.retention for atom in catalog.atoms.values() if atom.name.startswith("events.")]
    fallback = min(event_retentions, default=timedelta(0))
    removed = 0
    for kind, name in session.execute(select(Event.type, Event.event).distinct()).all():
        cutoff = at - _event_retention(catalog, kind, name, fallback)
        named = Event.event.is_(None) if name is None else Event.event == name
        result = session.execute(delete(Event).where(Event.type == kind, named, Event.timestamp < cutoff))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


def run_retention(session: Session, *, catalog: Catalog, settings: Settings, at: datetime) -> dict[str, int]:
    """Run every store's sweep at `at`; what each removed."""
    return {
        "profiles": profiles_service.expire(session, at=at),
        "events": expire_events(session, catalog=catalog, at=at),
        "quarantine": collect_service.purge_quarantine(session, at=at),
        "message_ids": collect_service.purge_message_ids(
            session, before=at - timedelta(days=settings.dedup_retention_days)
        ),
        "decisions": decision_log.expire(
            session, before=at - timedelta(days=settings.decision_log_retention_days)
        ),
        "outcomes": measure_outcomes.expire(
            session, at=at, before=at - timedelta(days=settings.decision_log_retention_days)
        ),
    }
