"""The retention sweep: each shipped default at its own period and no earlier, anonymised rows that
still count but lead to no one, a dry run that changes nothing, and the audit entry of a real run."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.catalog.loader import load_catalog, parse_catalog
from tactful.catalog.model import Catalog
from tactful.catalog.retention import Expiry
from tactful.collect import service as collect_service
from tactful.collect.models import Event, MessageId, Quarantine
from tactful.collect.schemas import Source
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.keys import service as keys_service
from tactful.main import default_catalog_path
from tactful.profiles.models import Computed, Trait
from tactful.rights import anonymise, retention
from tactful.rights.retention import SWEPT, SweepReport, run_retention
from tests.collect.builders import LIMITS, policy_context

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO = load_catalog(default_catalog_path())
DAY = timedelta(days=1)


def _event(
    session: Session,
    subject: uuid.UUID,
    event: str,
    at: datetime,
    *,
    properties: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    kind: str = "track",
    write_key_id: uuid.UUID | None = None,
) -> uuid.UUID:
    row = Event(
        id=uuid.uuid4(), subject_id=subject, message_id=f"m-{uuid.uuid4().hex}", type=kind,
        event=event, group_id=None, timestamp=at, original_timestamp=at,
        received_at=at + timedelta(seconds=2),
        properties=dict(properties or {}), traits={}, context=dict(context or {}),
        consent={"categoryPreferences": {"analytics": True}}, gpc=False, purposes=["analytics"],
        write_key_id=write_key_id, request_id=f"req-{uuid.uuid4().hex[:12]}",
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row.id


def _sweep(session: Session, keystore: Keystore, at: datetime, **kwargs: Any) -> SweepReport:
    return run_retention(session, catalog=DEMO, settings=Settings(), at=at, keystore=keystore, **kwargs)


def _row(session: Session, row_id: uuid.UUID) -> Event | None:
    session.expire_all()
    return session.get(Event, row_id)


def _linked(session: Session, row_id: uuid.UUID) -> bool:
    row = _row(session, row_id)
    assert row is not None, "the row is still there"
    return row.subject_id != anonymise.ANONYMISED


# -- each shipped default ---------------------------------------------------------------------------


def test_session_behaviour_goes_after_30_days_and_no_earlier(session: Session, keystore: Keystore) -> None:
    subject = uuid.uuid4()
    seen = NOW - 10 * DAY
    viewed = _event(session, subject, "Product Viewed", seen, properties={"product_id": "p-1"})
    searched = _event(session, subject, "Products Searched", seen, properties={"query": "rain jacket"})

    _sweep(session, keystore, seen + 30 * DAY - timedelta(minutes=1))
    assert _linked(session, viewed)
    assert _linked(session, searched)

    report = _sweep(session, keystore, seen + 30 * DAY + timedelta(minutes=1))
    assert not _linked(session, viewed), "browsing is anonymised at 30 days"
    assert _row(session, searched) is None, "searches are deleted: what people type is theirs"
    assert report.total("events", action=Expiry.ANONYMISE) >= 1
    assert report.total("events", action=Expiry.DELETE) >= 1


def test_identified_events_go_after_13_months(session: Session, keystore: Keystore) -> None:
    subject = uuid.uuid4()
    signed_in = _event(session, subject, "Signed In", NOW, properties={"method": "password"})
    _sweep(session, keystore, NOW + 389 * DAY)
    assert _linked(session, signed_in)
    _sweep(session, keystore, NOW + 391 * DAY)
    assert _row(session, signed_in) is None


def test_purchases_stay_until_24_months_after_the_subjects_latest(
    session: Session, keystore: Keystore
) -> None:
    loyal, lapsed = uuid.uuid4(), uuid.uuid4()
    first = _event(
        session, loyal, "Order Completed", NOW - 700 * DAY, properties={"order_id": "o-1", "total": 10}
    )
    latest = _event(
        session, loyal, "Order Completed", NOW - 30 * DAY, properties={"order_id": "o-2", "total": 20}
    )
    gone = _event(
        session, lapsed, "Order Completed", NOW - 721 * DAY, properties={"order_id": "o-3", "total": 5}
    )

    _sweep(session, keystore, NOW)
    assert _linked(session, first), "an order older than 24 months stays while the customer keeps buying"
    assert _linked(session, latest)
    assert not _linked(session, gone), "the lapsed customer's history goes 24 months after their last order"

    _sweep(session, keystore, NOW - 30 * DAY + 720 * DAY + DAY)
    assert not _linked(session, first)
    assert not _linked(session, latest), "the whole history goes together"


@pytest.mark.parametrize("scope", ["write", "server"])
def test_only_an_order_sent_with_more_than_the_public_key_keeps_the_history(
    session: Session, keystore: Keystore, scope: str
) -> None:
    key, _ = keys_service.create_key(
        session, keystore=keystore, name=f"{scope} key", scope=scope, at=NOW, actor="test"
    )
    customer = uuid.uuid4()
    old = _event(session, customer, "Order Completed", NOW - 721 * DAY, properties={"total": 10})
    fresh = _event(
        session, customer, "Order Completed", NOW - DAY, properties={"total": 1}, write_key_id=key.id
    )
    _sweep(session, keystore, NOW)
    assert _linked(session, fresh)
    if scope == "write":
        assert not _linked(session, old), "anyone can send an order from a web page: it renews nothing"
    else:
        assert _linked(session, old), "the shop's backend vouches for the order"


def test_a_precise_location_is_taken_out_of_events_after_24_hours(
    session: Session, keystore: Keystore
) -> None:
    text = (
        Path(default_catalog_path())
        .read_text(encoding="utf-8")
        .replace(
            "context.location.latitude:\n    category: user.location.precise\n"
            "    purposes: [personalization.individual]\n    retention: request",
            "context.location.latitude:\n    category: user.location.precise\n"
            "    purposes: [personalization.individual]\n    retention: 24h",
        )
    )
    catalog, problems = parse_catalog(text)
    assert catalog is not None, problems
    assert catalog.atom("context.location.latitude").stored
    subject = uuid.uuid4()
    where = {"location": {"latitude": 59.33, "country": "SE"}, "locale": "sv-SE"}
    row_id = _event(session, subject, "Signed In", NOW, context=where)
    settings = Settings()

    run_retention(
        session, catalog=catalog, settings=settings, at=NOW + 23 * timedelta(hours=1), keystore=keystore
    )
    row = _row(session, row_id)
    assert row is not None
    assert row.context["location"]["latitude"] == 59.33

    report = run_retention(session, catalog=catalog, settings=settings, at=NOW + 25 * timedelta(hours=1),
                           keystore=keystore)  # fmt: skip
    row = _row(session, row_id)
    assert row is not None, "the sign-in itself is kept 13 months"
    assert row.subject_id == subject
    assert row.context == {"location": {"country": "SE"}, "locale": "sv-SE"}
    assert report.total("event fields") == 1

    ordered = _event(
        session, subject, "Order Completed", NOW - 800 * DAY, context=where, properties={"total": 5}
    )
    run_retention(session, catalog=catalog, settings=settings, at=NOW, keystore=keystore)
    row = _row(session, ordered)
    assert row is not None
    assert row.subject_id == anonymise.ANONYMISED
    assert row.context == {"location": {"country": "SE"}, "locale": "sv-SE"}, (
        "an anonymised row keeps no place"
    )


def test_the_shipped_periods_are_the_minimisation_defaults() -> None:
    periods = {name: atom.retention for name, atom in DEMO.atoms.items()}
    assert periods["events.page_viewed"] == 30 * DAY
    assert periods["events.signed_in"] == 390 * DAY
    assert periods["events.order_completed"] == 720 * DAY
    assert DEMO.atom("events.order_completed").retention_anchor == "latest"
    assert not DEMO.atom("context.location.latitude").stored, "precise location is used for the request only"
    assert Settings().decision_log_retention_days == 395, "13 calendar months"


# -- anonymisation ----------------------------------------------------------------------------------


def test_anonymised_orders_still_add_up_but_lead_to_no_one(
    session: Session, keystore: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 2)  # more rows than one batch
    ada, bob = uuid.uuid4(), uuid.uuid4()
    at = NOW - 800 * DAY

    def order(subject: uuid.UUID, number: str, total: float, category: str) -> uuid.UUID:
        return _event(session, subject, "Order Completed", at, properties={
            "order_id": number, "total": total, "currency": "EUR",
            "products": [{"product_id": "p-9", "category": category, "price": total, "quantity": 1}],
        }, context={"page": {"url": f"https://shop.example.com/orders/{number}"},
                    "location": {"country": "SE"}})  # fmt: skip

    ids = [order(ada, "o-ada-1", 30.0, "books"), order(ada, "o-ada-2", 12.5, "outdoor"),
           order(bob, "o-bob-1", 7.5, "books")]  # fmt: skip
    before = _figures(session, ids)

    _sweep(session, keystore, NOW)

    assert _figures(session, ids) == before, "the same orders, revenue and categories per day"
    for row_id in ids:
        row = _row(session, row_id)
        assert row is not None
        assert row.subject_id == anonymise.ANONYMISED
        assert row.message_id == ""
        assert row.request_id is None
        assert row.consent is None
        assert row.original_timestamp is None
        assert "order_id" not in row.properties, "an order number leads back to the customer"
        assert row.context == {"location": {"country": "SE"}}, "no URL, whatever it holds"
        assert row.timestamp == at.replace(hour=0, minute=0, second=0, microsecond=0)
    linked = session.scalar(select(func.count()).select_from(Event).where(Event.subject_id.in_([ada, bob])))
    assert linked == 0, "neither customer's export nor erasure finds the rows any more"
    assert _sweep(session, keystore, NOW + 1000 * DAY).total("events") == 0, (
        "an anonymised row stays as it is"
    )


def _figures(session: Session, ids: list[uuid.UUID]) -> tuple[int, float, list[str], set[str]]:
    session.expire_all()
    rows = [session.get(Event, i) for i in ids]
    present = [r for r in rows if r is not None]
    categories = sorted(p["category"] for r in present for p in r.properties["products"])
    days = {r.timestamp.date().isoformat() for r in present}
    return len(present), sum(r.properties["total"] for r in present), categories, days


JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@given(JSON)
def test_pick_keeps_nothing_outside_the_paths(value: object) -> None:
    message = {
        "order_id": value,
        "note": value,
        "products": [{"sku": value, "category": "books"}],
        "total": 3,
    }
    paths = anonymise.kept_properties(DEMO.atom("events.order_completed"))
    kept = anonymise.pick(message, paths)
    assert "order_id" not in kept
    assert "note" not in kept
    assert kept["total"] == 3
    assert kept["products"] == [{"sku": value, "category": "books"}]


def test_a_special_category_is_deleted_even_under_an_anonymise_entry() -> None:
    # The loader refuses such an entry; a catalog built some other way is held to it all the same.
    catalog = replace(DEMO, expiry={"user.sensitive": Expiry.ANONYMISE, "user.account": Expiry.ANONYMISE})
    assert catalog.expiry_of_atom(catalog.atom("traits.health_interest")) is Expiry.DELETE
    assert catalog.expiry_of_atom(catalog.atom("events.signed_in")) is Expiry.ANONYMISE
    assert DEMO.expiry_of("user.behavior.search.query") is Expiry.DELETE, "the closest entry wins"
    assert DEMO.expiry_of("user.behavior.browsing.page") is Expiry.ANONYMISE


# -- dry run and audit ------------------------------------------------------------------------------


def _every_table(session: Session) -> dict[str, list[tuple[object, ...]]]:
    session.expire_all()
    tables = {"events": Event, "traits": Trait, "computed": Computed, "quarantine": Quarantine,
              "message_ids": MessageId}  # fmt: skip
    found: dict[str, list[tuple[object, ...]]] = {}
    for name, table in tables.items():
        columns = list(table.__table__.columns)  # type: ignore[attr-defined]
        found[name] = sorted(tuple(map(str, row)) for row in session.execute(select(*columns)).all())
    return found


def _seed(session: Session, keystore: Keystore, catalog: Catalog) -> None:
    anon = f"anon-{uuid.uuid4().hex}"
    old = NOW - 400 * DAY

    def track(event: str, at: datetime, **properties: object) -> dict[str, object]:
        return {"type": "track", "event": event, "anonymousId": anon, "messageId": uuid.uuid4().hex,
                "timestamp": at.isoformat(), "properties": properties,
                "context": {"consent": {"categoryPreferences": {"analytics": True}}}}  # fmt: skip

    messages = [
        track("Product Viewed", old, product_id="p-1", category="books"),
        track("Product Viewed", NOW - DAY, product_id="p-2", category="books"),
        track("Products Searched", old, query="boots"),
        track("Order Completed", old, order_id="o-1", total=12.5, currency="EUR"),
    ]
    results = collect_service.ingest(
        session, keystore=keystore, messages=messages, source=Source(), at=NOW, limits=LIMITS,
        policy=policy_context(catalog),
    )  # fmt: skip
    assert [r.status for r in results] == ["stored"] * 4


def test_a_dry_run_counts_what_the_run_then_does_and_changes_nothing(
    session: Session, keystore: Keystore
) -> None:
    _seed(session, keystore, DEMO)
    page = {"page": {"url": "https://shop.example.com/account"}, "location": {"country": "SE"}}
    subject = uuid.uuid4()
    _event(session, subject, "Signed In", NOW - 100 * DAY, context=page)  # loses its page, stays
    _event(session, subject, "Signed In", NOW - 400 * DAY, context=page)  # goes whole: no field counted
    _event(session, subject, "Product Viewed", NOW - 40 * DAY, context=page)  # anonymised, page and all
    before = _every_table(session)
    audited = session.scalar(select(func.count()).select_from(AuditEntry))

    dry = _sweep(session, keystore, NOW, dry_run=True)

    assert _every_table(session) == before, "not a row changed"
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == audited, "nothing audited"
    assert dry.dry_run
    assert dry.total() > 0
    real = _sweep(session, keystore, NOW)
    assert [(r.store, r.category, r.action, r.count) for r in real.rows] == [
        (r.store, r.category, r.action, r.count) for r in dry.rows
    ], "the dry run said exactly what the run did"
    assert _every_table(session) != before


def test_a_run_leaves_its_counts_in_the_audit_trail(session: Session, keystore: Keystore) -> None:
    _seed(session, keystore, DEMO)
    report = _sweep(session, keystore, NOW, actor="retention:test")
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == SWEPT).order_by(AuditEntry.seq.desc())
    ).first()
    assert entry is not None
    assert entry.actor == "retention:test"
    assert entry.details["total"] == report.total() > 0
    assert entry.details == {"total": report.total(), **report.details()}
    assert entry.details["events/user.behavior.browsing/anonymise"] == 1
    assert entry.details["events/user.behavior.search/delete"] == 1
    assert entry.subject_ref is None, "a sweep is about no one"


@pytest.mark.parametrize("at", [NOW, NOW + 400 * DAY, NOW + 2000 * DAY])
def test_the_sweep_is_idempotent(session: Session, keystore: Keystore, at: datetime) -> None:
    _seed(session, keystore, DEMO)
    _sweep(session, keystore, at)
    assert _sweep(session, keystore, at).total() == 0


KINDS = ("Product Viewed", "Products Searched", "Signed In", "Order Completed")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(
    st.lists(
        st.tuples(st.sampled_from(KINDS), st.integers(0, 900), st.integers(0, 2)), min_size=1, max_size=12
    )
)
def test_after_a_sweep_nothing_linked_is_past_its_period_and_anonymised_rows_still_count(
    session: Session, keystore: Keystore, rows: list[tuple[str, int, int]]
) -> None:
    nested = session.begin_nested()
    subjects = [uuid.uuid4() for _ in range(3)]
    made = {_event(session, subjects[who], kind, NOW - age * DAY - timedelta(hours=1)): (kind, who, age)
            for kind, age, who in rows}  # fmt: skip
    _sweep(session, keystore, NOW)
    session.expire_all()
    for row_id, (kind, who, age) in made.items():
        atom = DEMO.event_atom({"type": "track", "event": kind})
        assert atom is not None
        row = session.get(Event, row_id)
        latest = min(a for k, w, a in made.values() if k == kind and w == who)
        due = (latest if atom.retention_anchor == "latest" else age) * DAY + timedelta(
            hours=1
        ) > atom.retention
        if not due:
            assert row is not None
            assert row.subject_id == subjects[who], "nothing goes before its time"
        elif DEMO.expiry_of_atom(atom) is Expiry.ANONYMISE:
            assert row is not None, "it still counts"
            assert row.subject_id == anonymise.ANONYMISED
        else:
            assert row is None
    nested.rollback()
