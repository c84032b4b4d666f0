"""Collection feeds the session counters (`collect.realtime`): only events stored for
personalization.behavioral, only the session atoms the subject's storage Allowance keeps, only values
of declared properties, nothing from before the session; merges carry the session over; a refusal
purges through the withdrawal hook."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.collect import realtime
from tactful.collect import service as collect_service
from tactful.collect.schemas import Source, Status
from tactful.config import PolicySettings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.consent.schemas import ConsentChange, TargetKind
from tactful.crypto import Keystore
from tactful.main import default_catalog_path
from tactful.policy.state import ConsentSource
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import InProcessCounters
from tactful.types import Purpose
from tests.collect.builders import LIMITS, T0, identify, track, uid

SOURCE = Source(write_key_id=uuid.UUID(int=3), request_id="req-realtime", trusted=True)
EVERYTHING = {"analytics": True, "personalization": True}


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(default_catalog_path())


def gdpr(catalog: Catalog, counters: InProcessCounters | None = None) -> PolicyContext:
    policy = PolicySettings()
    return PolicyContext(
        catalog, policy, configured_regimes(policy), on_withdrawal=realtime.withdrawal_hook(catalog, counters)
    )


def consent(preferences: dict[str, bool]) -> dict[str, Any]:
    return {"consent": {"categoryPreferences": preferences}}


def ingest(
    session: Session,
    keystore: Keystore,
    policy: PolicyContext,
    messages: list[dict[str, Any]],
    *,
    minutes: int = 0,
) -> tuple[list[Status], realtime.Behaviour]:
    behaviour = realtime.Behaviour(policy.catalog)
    results = collect_service.ingest(
        session,
        keystore=keystore,
        messages=messages,
        source=SOURCE,
        at=T0 + timedelta(minutes=minutes),
        limits=LIMITS,
        policy=policy,
        behaviour=behaviour,
    )
    return [r.status for r in results], behaviour


def viewed(
    anon: str,
    category: object = "outdoor",
    *,
    at_minutes: int = 0,
    context: dict[str, Any] | None = None,
    user_id: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    properties = {"product_id": uid("p"), "category": category, **more}
    at = (T0 + timedelta(minutes=at_minutes)).isoformat()
    message = track("Product Viewed", anonymousId=anon, properties=properties, timestamp=at)
    if context is not None:
        message["context"] = context
    if user_id is not None:
        message["userId"] = user_id
    return message


def subject_of(session: Session, keystore: Keystore, anon: str) -> uuid.UUID:
    found = profiles_service.find_subject(session, keystore=keystore, anonymous_id=anon)
    assert found is not None
    return found


def test_values_at_reads_declared_paths_and_arrays() -> None:
    properties = {
        "category": "outdoor",
        "products": [{"category": "books"}, {"sku": "x"}, "odd", {"category": 3}],
    }
    assert realtime.values_at(properties, "category") == ["outdoor"]
    assert realtime.values_at(properties, "products[].category") == ["books", 3]
    assert realtime.values_at(properties, "missing") == []
    assert realtime.values_at({"products": "not a list"}, "products[].category") == []


def test_events_stored_for_behaviour_are_observed_with_their_declared_values(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    messages = [
        viewed(anon, "outdoor", context=consent(EVERYTHING)),
        viewed(anon, "outdoor", name="Trail Tent 2", brand="Northpine"),
        viewed(anon, {"not": "a value"}),
        {**track(anonymousId=anon), "type": "page", "messageId": uid("msg"), "properties": {"path": "/c/x"}},
    ]
    statuses, behaviour = ingest(session, keystore, gdpr(demo), messages)
    assert set(statuses) == {Status.STORED}
    subject = subject_of(session, keystore, anon)
    seen = behaviour.observed[subject]
    assert [o.event for o in seen] == ["events.product_viewed"] * 3 + ["events.page_viewed"]
    # Only the category is counted by (declared and followed): never a name, a brand, or a value
    # that is not a short scalar.
    assert [o.values for o in seen] == [(("category", '"outdoor"'),), (("category", '"outdoor"'),), (), ()]
    assert behaviour.versions[subject] == "0"


def test_without_the_behavioral_purpose_nothing_is_observed(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    statuses, behaviour = ingest(
        session, keystore, gdpr(demo), [viewed(anon, context=consent({"analytics": True})), viewed(anon)]
    )
    assert statuses == [Status.STORED, Status.STORED]  # for analytics
    assert behaviour.observed == {}
    # And with nothing at all allowed the events are not even stored.
    other = uid("anon")
    statuses, behaviour = ingest(session, keystore, gdpr(demo), [viewed(other)])
    assert statuses == [Status.SUPPRESSED]
    assert behaviour.observed == {}


def test_events_from_before_the_session_do_not_count(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    anon = uid("anon")
    messages = [viewed(anon, context=consent(EVERYTHING), at_minutes=-45), viewed(anon, at_minutes=-5)]
    statuses, behaviour = ingest(session, keystore, gdpr(demo), messages)
    assert statuses == [Status.STORED, Status.STORED]
    assert len(behaviour.observed[subject_of(session, keystore, anon)]) == 1


def test_the_version_follows_refusals_not_grants(session: Session, keystore: Keystore, demo: Catalog) -> None:
    anon = uid("anon")
    _, first = ingest(session, keystore, gdpr(demo), [viewed(anon, context=consent(EVERYTHING))])
    subject = subject_of(session, keystore, anon)
    _, again = ingest(
        session, keystore, gdpr(demo), [viewed(anon, context=consent(EVERYTHING | {"marketing": True}))]
    )
    assert first.versions[subject] == again.versions[subject] == "0"
    _, refused = ingest(
        session, keystore, gdpr(demo), [viewed(anon, context=consent(EVERYTHING | {"marketing": False}))]
    )
    assert refused.versions[subject] != "0"


def test_feeding_counts_and_a_merge_carries_the_visitors_session_to_the_login(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    counters = InProcessCounters()
    policy = gdpr(demo, counters)
    anon = uid("anon")
    _, behaviour = ingest(
        session, keystore, policy, [viewed(anon, context=consent(EVERYTHING)), viewed(anon)]
    )
    behaviour.feed(counters, at=T0)
    visitor = subject_of(session, keystore, anon)
    assert counters.snapshot(visitor, at=T0).counts["events.product_viewed"] == 2
    # A login that proves the user (a server key): the visitor's profile merges into the user's.
    user_id = uid("user")
    _, other = ingest(
        session, keystore, policy, [identify(userId=user_id, context=consent(EVERYTHING))], minutes=1
    )
    other.feed(counters, at=T0 + timedelta(minutes=1))
    _, login = ingest(
        session,
        keystore,
        policy,
        [identify(userId=user_id, anonymousId=anon), viewed(anon, user_id=user_id, at_minutes=2)],
        minutes=2,
    )
    assert login.merges, "the login merged the two profiles"
    login.feed(counters, at=T0 + timedelta(minutes=2))
    survivor = profiles_service.find_subject(session, keystore=keystore, user_id=user_id)
    assert survivor is not None
    ids = {visitor, survivor}
    totals = {
        s: counters.snapshot(s, at=T0 + timedelta(minutes=2)).counts.get("events.product_viewed", 0)
        for s in ids
    }
    assert totals[survivor] == 3
    assert len(ids) == 1 or totals[visitor] == 0


def test_a_refusal_of_behaviour_purges_the_counters_through_the_withdrawal_hook(
    session: Session, keystore: Keystore, demo: Catalog
) -> None:
    counters = InProcessCounters()
    policy = gdpr(demo, counters)
    anon = uid("anon")
    _, behaviour = ingest(session, keystore, policy, [viewed(anon, context=consent(EVERYTHING))])
    behaviour.feed(counters, at=T0)
    subject = subject_of(session, keystore, anon)
    other = uid("anon")
    _, kept = ingest(session, keystore, policy, [viewed(other, context=consent(EVERYTHING))])
    kept.feed(counters, at=T0)
    # Refusing something else leaves the session alone.
    refuse = ConsentChange(
        TargetKind.PURPOSE, ConsentAction.WITHDRAWN, ConsentSource.API, target="marketing.email"
    )
    consent_service.record(
        session, keystore=keystore, subject_id=subject, changes=[refuse], at=T0, actor="t", policy=policy
    )
    assert counters.export(subject) != {}
    withdraw = ConsentChange(
        TargetKind.PURPOSE, ConsentAction.WITHDRAWN, ConsentSource.API, target=Purpose.BEHAVIORAL.value
    )
    consent_service.record(
        session, keystore=keystore, subject_id=subject, changes=[withdraw], at=T0, actor="t", policy=policy
    )
    assert counters.export(subject) == {}
    assert counters.export(subject_of(session, keystore, other)) != {}
