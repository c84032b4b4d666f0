"""Each stored field kept only for its purposes (issue 8, part 6): an event keeps a context field or a
user trait only when one of the field's declared purposes holds for the person and the event is
stored for it; a withdrawal removes the fields left without one. The demo catalog, under GDPR, on
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.collect import service as collect_service
from tactful.collect import store
from tactful.collect.models import Event
from tactful.collect.schemas import EventResult, Source, Status
from tactful.config import PolicySettings
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
from tactful.types import Purpose
from tests.collect.builders import LIMITS, T0, identify, track, uid

SOURCE = Source(write_key_id=uuid.UUID(int=8), request_id="req-fields", trusted=True)  # a server key
CONTEXT = {
    "page": {"url": "https://shop.example/p/1?utm_source=nl&email=ada%40example.com", "title": "Boots"},
    "campaign": {"source": "newsletter"},
    "location": {"country": "DE", "city": "Berlin"},
    "library": {"name": "analytics.js", "version": "5.0"},
    "locale": "de-DE",
}


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(default_catalog_path())


def gdpr(catalog: Catalog) -> PolicyContext:
    policy = PolicySettings()
    return PolicyContext(catalog, policy, configured_regimes(policy), store.withdrawal_hook(catalog))


def ingest(
    session: Session, keystore: Keystore, catalog: Catalog, messages: list[dict[str, Any]], minutes: int = 0
) -> list[EventResult]:
    return collect_service.ingest(
        session,
        keystore=keystore,
        messages=messages,
        source=SOURCE,
        at=T0 + timedelta(minutes=minutes),
        limits=LIMITS,
        policy=gdpr(catalog),
    )


def stored(session: Session, message: dict[str, Any]) -> Event:
    return session.scalars(select(Event).where(Event.message_id == message["messageId"])).one()


def consent(**purposes: bool) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": purposes}}


def test_an_event_stored_as_essential_keeps_its_essential_fields_only(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    ordered = track("Order Completed", properties={"order_id": "o-1", "total": 9.5}, context=CONTEXT)
    [result] = ingest(session, keystore, demo, [ordered])
    assert result.status is Status.STORED
    row = stored(session, ordered)
    assert row.purposes == ["essential"]
    # Country, language and the SDK serve `essential`; the page, the campaign and the city do not.
    assert row.context == {
        "location": {"country": "DE"},
        "library": {"name": "analytics.js", "version": "5.0"},
        "locale": "de-DE",
    }
    assert row.properties == {"order_id": "o-1", "total": 9.5}  # the event atom's own fields
    withheld = collect_service.ingest_stats(session).withheld_fields
    assert {
        "context.page.url",
        "context.page.title",
        "context.campaign.source",
        "context.location.city",
    } <= set(withheld)


def test_with_consent_the_fields_of_the_granted_purposes_are_kept_and_cleaned(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    viewed = track("Product Viewed", anonymousId=anon, context={**CONTEXT, **consent(analytics=True)})
    [result] = ingest(session, keystore, demo, [viewed])
    assert result.status is Status.STORED
    row = stored(session, viewed)
    assert row.purposes == ["analytics"]
    assert row.context["page"] == {"url": "https://shop.example/p/1?utm_source=nl", "title": "Boots"}
    assert row.context["location"] == {"country": "DE", "city": "Berlin"}
    assert "library" not in row.context  # essential only, and a product view is not stored for it
    stats = collect_service.ingest_stats(session)
    assert stats.redacted.get("url_query:context.page.url", 0) >= 1


def test_an_identify_event_keeps_only_its_essential_traits_while_the_profile_keeps_the_rest(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    user = uid("user")
    message = identify(
        userId=user,
        traits={"first_name": "Ada", "city": "Berlin", "country": "DE"},
        context={"traits": {"city": "Berlin"}, **consent(analytics=True, personalization=True)},
    )
    [result] = ingest(session, keystore, demo, [message])
    assert result.status is Status.STORED
    row = stored(session, message)
    assert row.purposes == ["essential"]
    assert row.traits == {"country": "DE"}  # the name is sealed in the profile; the city is not essential
    assert "city" not in row.context.get("traits", {})
    subject = profiles_service.find_subject(session, keystore=keystore, user_id=user, anonymous_id=None)
    assert subject is not None
    traits = profiles_service.get_profile(session, keystore=keystore, subject_id=subject).traits
    assert traits.get("traits.city") == "Berlin"  # analytics and segments allow the profile to keep it


def test_a_withdrawal_removes_the_fields_whose_purposes_are_all_gone(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    granted = {**CONTEXT, **consent(analytics=True, personalization=True)}
    ordered = track("Order Completed", anonymousId=anon, properties={"order_id": "o-2"}, context=granted)
    viewed = track("Product Viewed", anonymousId=anon, context=granted)
    ingest(session, keystore, demo, [ordered, viewed])
    before = stored(session, ordered)
    assert before.context["page"]["title"] == "Boots"
    assert before.context["location"] == {"country": "DE", "city": "Berlin"}

    refusal = track(
        "Product Viewed", anonymousId=anon, context=consent(analytics=False, personalization=False)
    )
    ingest(session, keystore, demo, [refusal], minutes=5)
    session.expire_all()

    after = stored(session, ordered)
    assert after.purposes == ["essential"]
    assert "page" not in after.context
    assert "campaign" not in after.context
    assert after.context["location"] == {"country": "DE"}
    assert after.context["library"] == {"name": "analytics.js", "version": "5.0"}
    assert after.properties == {"order_id": "o-2"}
    assert session.scalars(select(Event).where(Event.message_id == viewed["messageId"])).first() is None


def test_a_withdrawal_removes_the_user_traits_an_identify_event_no_longer_may_keep(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    # Stored before consent decided fields: an identify event holding a trait of analytics alone.
    anon = uid("anon")
    message = identify(anonymousId=anon, traits={"country": "DE"}, context=consent(analytics=True))
    ingest(session, keystore, demo, [message])
    row = stored(session, message)
    subject = row.subject_id
    row.traits = {"country": "DE", "city": "Berlin"}
    row.context = {"traits": {"city": "Berlin", "country": "DE"}}
    session.flush()

    store.forget_withdrawn_purposes(
        session, subject_id=subject, purposes=frozenset({Purpose.ESSENTIAL}), at=T0, catalog=demo
    )
    session.expire_all()
    row = stored(session, message)
    assert row.traits == {"country": "DE"}
    assert row.context == {"traits": {"country": "DE"}}
