"""The retention sweep drops each kind of data after its own period, and nothing earlier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event
from tactful.collect.schemas import Source
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.profiles.models import Computed
from tactful.rights.retention import run_retention
from tests.collect.builders import LIMITS, policy_context

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _track(event: str, anonymous_id: str, at: datetime, **properties: object) -> dict[str, object]:
    return {
        "type": "track",
        "event": event,
        "anonymousId": anonymous_id,
        "messageId": uuid.uuid4().hex,
        "timestamp": at.isoformat(),
        "properties": properties,
        # A consent banner's choice: without it a GDPR visitor's browsing is not stored at all.
        "context": {"consent": {"categoryPreferences": {"analytics": True}}},
    }


def _count(session: Session, subject_ids: set[uuid.UUID], event: str) -> int:
    query = (
        select(func.count()).select_from(Event).where(Event.subject_id.in_(subject_ids), Event.event == event)
    )
    return int(session.scalar(query) or 0)


def test_each_event_expires_with_its_atom_and_nothing_earlier(session: Session, keystore: Keystore) -> None:
    catalog = load_catalog(default_catalog_path())
    viewed = catalog.event_atom({"type": "track", "event": "Product Viewed"})
    ordered = catalog.event_atom({"type": "track", "event": "Order Completed"})
    assert viewed is not None
    assert ordered is not None
    assert viewed.retention < ordered.retention, "the demo keeps orders longer than browsing"
    anon = f"anon-{uuid.uuid4().hex}"
    old = NOW - viewed.retention - timedelta(days=2)
    recent = NOW - viewed.retention + timedelta(days=2)
    messages = [
        _track("Product Viewed", anon, old, product_id="p-1", category="books"),
        _track("Product Viewed", anon, recent, product_id="p-2", category="books"),
        _track("Order Completed", anon, old, order_id="o-1", total=12.5, currency="EUR"),
    ]
    results = collect_service.ingest(
        session, keystore=keystore, messages=messages, source=Source(), at=NOW, limits=LIMITS,
        policy=policy_context(catalog),
    )  # fmt: skip
    assert [r.status for r in results] == ["stored"] * 3
    subjects = set(
        session.scalars(
            select(Event.subject_id).where(Event.message_id.in_([m["messageId"] for m in messages]))
        )
    )

    removed = run_retention(session, catalog=catalog, settings=Settings(), at=NOW)
    assert removed["events"] >= 1
    assert _count(session, subjects, "Product Viewed") == 1, "only the view past 13 months goes"
    assert _count(session, subjects, "Order Completed") == 1, "orders are kept for accounting"
    assert run_retention(session, catalog=catalog, settings=Settings(), at=NOW)["events"] == 0, "idempotent"

    later = NOW + ordered.retention + timedelta(days=3)
    run_retention(session, catalog=catalog, settings=Settings(), at=later)
    assert _count(session, subjects, "Product Viewed") == 0
    assert _count(session, subjects, "Order Completed") == 0
    remaining = session.scalar(
        select(func.count()).select_from(Computed).where(Computed.subject_id.in_(subjects))
    )
    assert remaining == 0, "computed atoms expire too"
