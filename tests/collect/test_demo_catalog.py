"""Collection with the real demo catalog: declared fields kept, request-only context never stored,
direct identifiers only in the (encrypted) profile, consent signals in their own columns, computed
atoms maintained."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event
from tactful.collect.schemas import Source, Status
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
from tests.collect.builders import LIMITS, T0, demo_policy, identify, track, uid


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(default_catalog_path())


def test_a_demo_track_is_filtered_by_the_catalog(session: Session, keystore: Keystore, demo: Catalog) -> None:
    message = track(
        "Product Viewed",
        properties={"product_id": "p-1", "sku": "SKU-1", "category": "books", "price": 12.5, "color": "red"},
        context={
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0",
            "locale": "de-DE",
            "location": {"country": "DE", "city": "Berlin"},
            "library": {"name": "analytics.js", "version": "5"},
            "consent": {"categoryPreferences": {"Analytics": True, "Personalization": True}},
            "gpc": False,
        },
    )
    [result] = collect_service.ingest(
        session, keystore=keystore, messages=[message], source=Source(trusted=True), at=T0, limits=LIMITS,
        policy=demo_policy(),
    )  # fmt: skip
    assert result.status is Status.STORED
    row = session.scalars(select(Event).where(Event.message_id == message["messageId"])).one()
    assert row.properties == {"product_id": "p-1", "sku": "SKU-1", "category": "books", "price": 12.5}
    assert "ip" not in row.context  # declared for the request only
    assert "userAgent" not in row.context
    assert row.context["location"] == {"country": "DE", "city": "Berlin"}
    assert row.consent == {"categoryPreferences": {"Analytics": True, "Personalization": True}}
    assert row.gpc is False
    stats = collect_service.ingest_stats(session)
    assert stats.dropped_fields == {"properties.color": 1}
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=row.subject_id)
    assert profile.computed.get("computed.favorite_category") == "books"


def test_demo_identifiers_are_only_in_the_profile(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    message = identify(
        userId=uid("user"), traits={"first_name": "Ada", "email": email, "loyalty_tier": "gold", "eye": "x"}
    )
    [result] = collect_service.ingest(
        session, keystore=keystore, messages=[message], source=Source(trusted=True), at=T0, limits=LIMITS,
        policy=demo_policy(),
    )  # fmt: skip
    assert result.status is Status.STORED
    raw = session.execute(select(Event.__table__).where(Event.message_id == message["messageId"])).one()
    assert email not in str(raw)
    assert raw.traits == {"loyalty_tier": "gold"}
    subject = profiles_service.find_subject(session, keystore=keystore, email=email)
    assert subject == raw.subject_id
    assert collect_service.ingest_stats(session).dropped_fields == {"traits.eye": 1}
