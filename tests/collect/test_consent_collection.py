"""Consent at collection (issue 3, part 7): events are stored with the purposes they may serve at
receipt or suppressed (`no_purpose`); the consent they carry enters the ledger first, GPC before the
response; merges carry ledgers over. What a first-time visitor gets is the gate's answer per regime."""

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
from tactful.collect.models import Event
from tactful.collect.schemas import EventResult, Source, Status
from tactful.collect.validate import Reason
from tactful.config import PolicySettings
from tactful.consent import service as consent_service
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.policy.state import ConsentSource, ConsentStatus
from tactful.profiles import service as profiles_service
from tactful.types import Purpose
from tests.collect.builders import LIMITS, T0, identify, track, uid

# A server key: these tests are about consent at collection, not about what a public key may claim
# (tests/api/test_public_key_trust.py).
SOURCE = Source(write_key_id=uuid.UUID(int=3), request_id="req-consent", trusted=True)


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(default_catalog_path())


def gdpr(catalog: Catalog) -> PolicyContext:
    policy = PolicySettings()
    return PolicyContext(catalog, policy, configured_regimes(policy))


def us_only(catalog: Catalog) -> PolicyContext:
    # A US controller whose visitors all fall under CCPA.
    policy = PolicySettings(establishment_country="US", regimes={"ccpa": {"establishments": ["US"]}})
    return PolicyContext(catalog, policy, configured_regimes(policy))


def ingest(
    session: Session,
    keystore: Keystore,
    policy: PolicyContext,
    messages: list[dict[str, Any]],
    *,
    source: Source = SOURCE,
    minutes: int = 0,
) -> list[EventResult]:
    return collect_service.ingest(
        session,
        keystore=keystore,
        messages=messages,
        source=source,
        at=T0 + timedelta(minutes=minutes),
        limits=LIMITS,
        policy=policy,
    )


def row(session: Session, message: dict[str, Any]) -> Event | None:
    return session.scalars(select(Event).where(Event.message_id == message["messageId"])).one_or_none()


def subject_of(session: Session, keystore: Keystore, anonymous_id: str) -> uuid.UUID:
    found = profiles_service.find_subject(session, keystore=keystore, user_id=None, anonymous_id=anonymous_id)
    assert found is not None
    return found


def consent(preferences: dict[str, bool]) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": preferences}}


def test_under_gdpr_a_first_visit_without_a_choice_stores_only_what_essential_covers(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    viewed = track("Product Viewed", anonymousId=anon)
    page = {**track(anonymousId=anon), "type": "page", "messageId": uid("msg")}
    ordered = track("Order Completed", anonymousId=anon, properties={"order_id": "o-1", "total": 9.5})
    undeclared = track("Wishlist Shared", anonymousId=anon)
    results = ingest(session, keystore, gdpr(demo), [viewed, page, ordered, undeclared])

    assert [(r.status, r.reason) for r in results] == [
        (Status.SUPPRESSED, Reason.NO_PURPOSE),
        (Status.SUPPRESSED, Reason.NO_PURPOSE),
        (Status.STORED, None),
        (Status.DROPPED, Reason.UNDECLARED_EVENT),  # the catalog's doing, not consent's
    ]
    assert row(session, viewed) is None
    stored = row(session, ordered)
    assert stored is not None
    assert stored.purposes == ["essential"]  # the order record, kept for commercial and tax law
    stats = collect_service.ingest_stats(session)
    assert stats.suppressed_by_reason.get("no_purpose", 0) >= 2
    assert stats.dropped_by_reason.get("undeclared_event", 0) >= 1
    assert stats.balanced


def test_a_stranger_whose_events_no_purpose_allows_leaves_no_profile_behind(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    viewed = track("Product Viewed", anonymousId=anon)
    page = {**track(anonymousId=anon), "type": "page", "messageId": uid("msg")}
    results = ingest(session, keystore, gdpr(demo), [viewed, page])
    assert {(r.status, r.reason) for r in results} == {(Status.SUPPRESSED, Reason.NO_PURPOSE)}
    # Nothing about the visitor is kept: no subject, no identity, no key to erase later.
    assert profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon) is None
    # The message ids are still remembered: a retry is a duplicate, as anyone's is.
    [again] = ingest(session, keystore, gdpr(demo), [viewed])
    assert again.status is Status.DUPLICATE
    # The visitor's first choice creates the profile, with the choice on record.
    granted = track("Product Viewed", anonymousId=anon, context=consent({"analytics": True}))
    [result] = ingest(session, keystore, gdpr(demo), [granted])
    assert result.status is Status.STORED
    subject = subject_of(session, keystore, anon)
    state = consent_service.state(session, subject_id=subject)
    assert state.state(Purpose.ANALYTICS, at=T0).status is ConsentStatus.GRANTED


def test_a_stranger_is_created_when_the_request_says_something_about_them(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    # The same visitor's choice later in the batch applies to the whole batch, as before.
    anon = uid("anon")
    viewed = track("Product Viewed", anonymousId=anon)
    granted = track("Product Viewed", anonymousId=anon, context=consent({"analytics": True}))
    results = ingest(session, keystore, gdpr(demo), [viewed, granted])
    assert [r.status for r in results] == [Status.STORED, Status.STORED]
    # A GPC signal is recorded even for a visitor whose events are all suppressed.
    other = uid("anon")
    [gpc] = ingest(
        session, keystore, gdpr(demo), [track("Product Viewed", anonymousId=other)], source=Source(gpc=True)
    )
    assert (gpc.status, gpc.reason) == (Status.SUPPRESSED, Reason.NO_PURPOSE)
    ledger = consent_service.history(session, subject_id=subject_of(session, keystore, other))
    assert [(e.target, e.source) for e in ledger] == [("sale_or_share", ConsentSource.GPC)]


def test_under_ccpa_a_first_visit_is_stored_until_an_opt_out(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    policy = us_only(demo)
    anon = uid("anon")
    first = track("Product Viewed", anonymousId=anon)
    [result] = ingest(session, keystore, policy, [first])
    assert result.status is Status.STORED
    stored = row(session, first)
    assert stored is not None
    assert stored.purposes is not None
    assert {"analytics", "personalization.behavioral"} <= set(stored.purposes)

    opt_out = track(
        "Product Viewed", anonymousId=anon, context=consent({"analytics": False, "personalization": False})
    )
    [after] = ingest(session, keystore, policy, [opt_out], minutes=1)
    assert (after.status, after.reason) == (Status.SUPPRESSED, Reason.NO_PURPOSE)


def test_consent_carried_by_an_event_is_recorded_before_its_purposes_are_decided(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    policy = gdpr(demo)
    anon = uid("anon")
    granted = track("Product Viewed", anonymousId=anon, context=consent({"Analytics": True}))
    [result] = ingest(session, keystore, policy, [granted])
    assert result.status is Status.STORED
    stored = row(session, granted)
    assert stored is not None
    assert "analytics" in (stored.purposes or [])
    # Only analytics: behavioural personalisation was not granted, so the event does not serve it.
    assert "personalization.behavioral" not in (stored.purposes or [])

    subject = subject_of(session, keystore, anon)
    [entry] = consent_service.history(session, subject_id=subject)
    assert (entry.target, entry.action.value, entry.source) == (
        "analytics",
        "granted",
        ConsentSource.SEGMENT_CONTEXT,
    )
    assert entry.proof["message_id"] == granted["messageId"]

    # The same context on every later call adds nothing to the ledger.
    again = track("Product Viewed", anonymousId=anon, context=consent({"Analytics": True}))
    ingest(session, keystore, policy, [again, dict(again, messageId=uid("msg"))], minutes=1)
    assert len(consent_service.history(session, subject_id=subject)) == 1


def test_a_refusal_carried_by_an_event_withdraws_suppresses_and_purges(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    policy = gdpr(demo)
    anon = uid("anon")
    everything = consent({"analytics": True, "personalization": True})
    ingest(session, keystore, policy, [track("Product Viewed", anonymousId=anon, context=everything)])
    subject = subject_of(session, keystore, anon)
    before = profiles_service.stored_atoms(session, subject_id=subject)
    assert {"computed.favorite_category", "computed.event_counts"} <= before

    refused = track(
        "Product Viewed", anonymousId=anon, context=consent({"analytics": False, "personalization": False})
    )
    [result] = ingest(session, keystore, policy, [refused], minutes=5)

    assert (result.status, result.reason) == (Status.SUPPRESSED, Reason.NO_PURPOSE)
    state = consent_service.state(session, subject_id=subject)
    at = T0 + timedelta(minutes=5)
    assert state.state(Purpose.ANALYTICS, at=at).status is ConsentStatus.WITHDRAWN
    assert profiles_service.stored_atoms(session, subject_id=subject) == {"computed.last_seen"}


def test_rudderstack_consent_ids_are_read_too(session: Session, keystore: Keystore, demo: Catalog) -> None:
    anon = uid("anon")
    management = {"provider": "custom", "allowedConsentIds": ["analytics"], "deniedConsentIds": ["marketing"]}
    message = track("Product Viewed", anonymousId=anon, context={"consentManagement": management})
    [result] = ingest(session, keystore, gdpr(demo), [message])
    assert result.status is Status.STORED
    history = consent_service.history(session, subject_id=subject_of(session, keystore, anon))
    assert {e.source for e in history} == {ConsentSource.RUDDERSTACK_CONTEXT}
    assert ("analytics", "granted") in {(e.target, e.action.value) for e in history}


def test_only_the_computed_atoms_an_allowed_purpose_keeps_are_built(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    message = track("Product Viewed", anonymousId=anon, context=consent({"analytics": True}))
    ingest(session, keystore, gdpr(demo), [message])
    atoms = profiles_service.stored_atoms(session, subject_id=subject_of(session, keystore, anon))
    assert "computed.event_counts" in atoms  # analytics
    assert "computed.favorite_category" not in atoms  # predictive or e-mail marketing only


def test_identify_keeps_only_the_traits_an_allowed_purpose_keeps(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    user = uid("user")
    message = identify(userId=user, traits={"first_name": "Ada", "city": "Berlin", "age_range": "25-34"})
    [result] = ingest(session, keystore, gdpr(demo), [message])
    assert result.status is Status.STORED
    stored = row(session, message)
    assert stored is not None
    assert stored.purposes == ["essential"]
    assert "city" not in stored.traits  # analytics or segments: neither granted
    subject = profiles_service.find_subject(session, keystore=keystore, user_id=user, anonymous_id=None)
    assert subject is not None
    traits = profiles_service.get_profile(session, keystore=keystore, subject_id=subject).traits
    assert traits.get("traits.first_name") == "Ada"
    assert "traits.city" not in traits


def test_a_group_keeps_the_traits_its_event_atom_declares(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    # A group's traits describe the organisation: the purposes of `events.group` cover them, not
    # the per-trait rule of a person's identify.
    message = {
        "type": "group",
        "groupId": "acme",
        "anonymousId": uid("anon"),
        "messageId": uid("msg"),
        "timestamp": T0.isoformat(),
        "traits": {"name": "Acme Outdoor", "industry": "retail", "plan": "pro"},
        "context": consent({"analytics": True}),
    }
    [result] = ingest(session, keystore, gdpr(demo), [message])
    assert result.status is Status.STORED
    stored = row(session, message)
    assert stored is not None
    assert stored.purposes == ["analytics"]
    assert stored.traits == {"name": "Acme Outdoor", "industry": "retail"}  # `plan` is not declared


def test_gpc_is_recorded_once_before_the_response(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    policy = us_only(demo)
    anon, other = uid("anon"), uid("anon")
    signalled = Source(write_key_id=SOURCE.write_key_id, gpc=True, request_id="req-gpc")
    ingest(session, keystore, policy, [track(anonymousId=anon)], source=signalled)
    ingest(session, keystore, policy, [track(anonymousId=anon)], source=signalled, minutes=1)
    ingest(session, keystore, policy, [track(anonymousId=other, context={"gpc": True})])

    for who in (anon, other):
        history = consent_service.history(session, subject_id=subject_of(session, keystore, who))
        assert [(e.target, e.action.value, e.source) for e in history] == [
            ("sale_or_share", "denied", ConsentSource.GPC)
        ]


def test_a_merge_at_collection_carries_the_ledger_over(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    policy = gdpr(demo)
    anon, user = uid("anon"), uid("user")
    ingest(session, keystore, policy, [track(anonymousId=anon, context=consent({"analytics": True}))])
    ingest(session, keystore, policy, [identify(userId=user)])
    browsing = subject_of(session, keystore, anon)
    ingest(
        session,
        keystore,
        policy,
        [{"type": "alias", "userId": user, "previousId": anon, "messageId": uid("msg")}],
    )

    survivor = profiles_service.find_subject(session, keystore=keystore, user_id=user, anonymous_id=None)
    assert survivor is not None
    moved = consent_service.history(session, subject_id=survivor)
    assert ("analytics", "granted") in {(e.target, e.action.value) for e in moved}
    if survivor != browsing:
        assert consent_service.history(session, subject_id=browsing) == []
