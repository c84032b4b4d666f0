"""Events the catalog does not declare: dropped (`undeclared_event`), never answered as if consent had
refused them, counted in the totals, and still deduplicated on retry; the consent they carry counts."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
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
from tactful.policy.state import ConsentStatus
from tactful.profiles import service as profiles_service
from tactful.types import Purpose
from tests.collect.builders import LIMITS, T0, track, uid

CATALOG = load_catalog(default_catalog_path())
SOURCE = Source(write_key_id=uuid.UUID(int=5), request_id="req-undeclared", trusted=True)
DROPPED = (Status.DROPPED, Reason.UNDECLARED_EVENT)


def policy() -> PolicyContext:
    settings = PolicySettings()
    return PolicyContext(CATALOG, settings, configured_regimes(settings))


def ingest(session: Session, keystore: Keystore, messages: list[dict[str, Any]]) -> list[EventResult]:
    return collect_service.ingest(
        session, keystore=keystore, messages=messages, source=SOURCE, at=T0, limits=LIMITS, policy=policy()
    )


def granted() -> dict[str, Any]:
    return {"consent": {"categoryPreferences": {"analytics": True, "personalization": True}}}


def events_named(session: Session, name: str) -> int:
    return session.scalar(select(func.count()).select_from(Event).where(Event.event == name)) or 0


def test_an_undeclared_event_of_a_consenting_visitor_is_dropped_not_suppressed(
    session: Session, keystore: Keystore
) -> None:
    anon = uid("anon")
    before = collect_service.ingest_stats(session)
    viewed = track("Product Viewed", anonymousId=anon, context=granted())
    shared = track("Wishlist Shared", anonymousId=anon, context=granted())
    results = ingest(session, keystore, [viewed, shared])
    assert [(r.status, r.reason) for r in results] == [(Status.STORED, None), DROPPED]
    assert results[1].message_id == shared["messageId"]
    assert events_named(session, "Wishlist Shared") == 0

    after = collect_service.ingest_stats(session)
    assert after.received - before.received == 2
    assert after.dropped - before.dropped == 1
    assert after.suppressed == before.suppressed
    dropped = after.dropped_by_reason.get("undeclared_event", 0) - before.dropped_by_reason.get(
        "undeclared_event", 0
    )
    assert dropped == 1
    assert after.balanced


def test_a_retry_of_a_dropped_event_is_a_duplicate(session: Session, keystore: Keystore) -> None:
    shared = track("Wishlist Shared", anonymousId=uid("anon"), context=granted())
    [first] = ingest(session, keystore, [shared])
    [again] = ingest(session, keystore, [dict(shared)])
    assert (first.status, first.reason) == DROPPED
    assert again == EventResult(shared["messageId"], Status.DUPLICATE, undeclared=True)


def test_a_strangers_undeclared_event_is_dropped_and_leaves_no_profile(
    session: Session, keystore: Keystore
) -> None:
    anon = uid("anon")
    results = ingest(session, keystore, [track("Wishlist Shared", anonymousId=anon)])
    assert [(r.status, r.reason) for r in results] == [DROPPED]
    assert profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon) is None
    assert collect_service.ingest_stats(session).balanced


def test_the_choice_an_undeclared_event_carries_is_still_recorded(
    session: Session, keystore: Keystore
) -> None:
    anon = uid("anon")
    [result] = ingest(session, keystore, [track("Cookie Banner Closed", anonymousId=anon, context=granted())])
    assert (result.status, result.reason) == DROPPED
    subject = profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon)
    assert subject is not None
    state = consent_service.state(session, subject_id=subject)
    assert state.state(Purpose.ANALYTICS, at=T0).status is ConsentStatus.GRANTED


def test_declared_events_are_not_dropped_whatever_the_consent(session: Session, keystore: Keystore) -> None:
    # Without a choice, a declared event is suppressed for lack of a purpose, as before.
    [result] = ingest(session, keystore, [track("Product Viewed", anonymousId=uid("anon"))])
    assert (result.status, result.reason) == (Status.SUPPRESSED, Reason.NO_PURPOSE)


def test_a_call_type_the_catalog_does_not_declare_is_dropped(
    session: Session, keystore: Keystore, tmp_path: Path
) -> None:
    text = yaml.safe_load(Path(default_catalog_path()).read_text())
    del text["atoms"]["events.page_viewed"]
    del text["atoms"]["session.page_views"]  # counted from it
    path = tmp_path / "no-pages.yaml"
    path.write_text(yaml.safe_dump(text))
    catalog = load_catalog(path)
    settings = PolicySettings()
    policy = PolicyContext(catalog, settings, configured_regimes(settings))
    anon = uid("anon")
    page = {**track(anonymousId=anon, context=granted()), "type": "page", "messageId": uid("msg")}
    screen = {**track(anonymousId=anon, context=granted()), "type": "screen", "messageId": uid("msg")}
    results = collect_service.ingest(
        session,
        keystore=keystore,
        messages=[page, screen],
        source=SOURCE,
        at=T0,
        limits=LIMITS,
        policy=policy,
    )
    assert [(r.status, r.reason) for r in results] == [DROPPED, (Status.STORED, None)]
