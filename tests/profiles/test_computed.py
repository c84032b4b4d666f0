from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.profiles import computed
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Computed
from tests.profiles.builders import T0, catalog, page, statements, track, unique

CATEGORY_EVENTS = ("Product Viewed", "Product Added", "Cart Viewed", "Order Completed")
OTHER_EVENTS = ("Product Removed", "Signed In")
CATEGORIES = ("books", "outdoor", "kitchen", "home")

amounts = st.none() | st.decimals(min_value=0, max_value=10_000, places=2).map(float)


@st.composite
def events(draw: st.DrawFn) -> dict[str, object]:
    at = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
    if draw(st.booleans()):
        return page(at)
    name = draw(st.sampled_from(CATEGORY_EVENTS + OTHER_EVENTS))
    properties: dict[str, object] = {}
    category = draw(st.none() | st.sampled_from(CATEGORIES))
    if category is not None:
        properties["category"] = category
    products = draw(st.lists(st.sampled_from(CATEGORIES), max_size=3))
    if products:
        properties["products"] = [{"category": c, "price": 1} for c in products]
    for field in ("revenue", "total"):
        amount = draw(amounts)
        if amount is not None:
            properties[field] = amount
    return track(name, at, **properties)


def recompute(messages: list[dict[str, object]]) -> dict[str, object]:
    """The computed atoms from the whole event list at once: what the incremental path must equal."""
    counts: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    total = Decimal(0)
    orders = 0
    for message in messages:
        counts[str(message["event"] if message["type"] == "track" else message["type"])] += 1
        properties = message["properties"]
        assert isinstance(properties, dict)
        if message.get("event") in CATEGORY_EVENTS:
            if "category" in properties:
                categories[properties["category"]] += 1
            categories.update(p["category"] for p in properties.get("products", []))
        if message.get("event") == "Order Completed":
            amount = properties.get("revenue", properties.get("total"))
            if amount is not None:
                total += Decimal(str(amount))
                orders += 1
    expected: dict[str, object] = {}
    if messages:
        expected[computed.LAST_SEEN] = max(
            datetime.fromisoformat(str(m["timestamp"])) for m in messages
        ).isoformat()
        expected[computed.EVENT_COUNTS] = dict(counts)
    if categories:
        expected[computed.FAVORITE_CATEGORY] = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[0][
            0
        ]
    if orders:
        expected[computed.LIFETIME_VALUE] = float(total)
    return expected


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    before=st.lists(st.tuples(st.integers(0, 2), events()), max_size=25),
    after=st.lists(events(), max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_incremental_atoms_equal_a_recomputation_across_merges(
    session: Session,
    keystore: Keystore,
    before: list[tuple[int, dict[str, object]]],
    after: list[dict[str, object]],
    order: object,
) -> None:
    cat = catalog()
    a, b, user = unique("anon"), unique("anon"), unique("user")
    owners = [
        profiles_service.resolve(session, keystore=keystore, anonymous_id=a, user_id=None, at=T0).subject_id,
        profiles_service.resolve(session, keystore=keystore, anonymous_id=b, user_id=None, at=T0).subject_id,
        profiles_service.resolve(
            session, keystore=keystore, anonymous_id=None, user_id=user, at=T0
        ).subject_id,
    ]
    shuffled = list(before)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    for owner, message in shuffled:
        profiles_service.record_event(session, catalog=cat, subject_id=owners[owner], message=message, at=T0)
    # A chain of merges: b is an alias of a, then a logs in as the user.
    profiles_service.resolve(session, keystore=keystore, anonymous_id=b, user_id=None, previous_id=a, at=T0)
    survivor = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=a, user_id=user, at=T0
    ).subject_id
    assert survivor == owners[2]
    for message in after:
        profiles_service.record_event(session, catalog=cat, subject_id=survivor, message=message, at=T0)
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=owners[0])
    assert dict(profile.computed) == recompute([m for _, m in before] + after)


def test_favourite_category_ties_go_to_the_alphabetically_first() -> None:
    assert computed.favorite({"outdoor": 2, "books": 2, "home": 1}) == "books"
    assert computed.favorite({"outdoor": 3, "books": 2}) == "outdoor"
    assert computed.favorite({}) is None


def test_signal_reads_categories_and_revenue_defensively() -> None:
    signal = computed.read_signal(
        track(
            "Order Completed",
            category=" books ",
            products=[{"category": "home"}, {"category": ""}, "junk", {"category": 7}],
            revenue=True,
            total=12.5,
        ),
        T0,
    )
    assert signal.key == "Order Completed"
    assert signal.categories == ("books", "home")
    assert signal.revenue == Decimal("12.5")
    removal = computed.read_signal(track("Product Removed", category="books"), T0)
    assert removal.categories == ()
    unparseable = computed.read_signal({"type": "page", "timestamp": "yesterday"}, T0)
    assert unparseable.seen_at == T0
    assert unparseable.key == "page"


def test_only_atoms_the_catalog_declares_are_computed(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    ).subject_id
    cat = catalog(without=(computed.LIFETIME_VALUE, computed.FAVORITE_CATEGORY))
    message = track("Order Completed", revenue=10.0, products=[{"category": "books"}])
    profiles_service.record_event(session, catalog=cat, subject_id=subject_id, message=message, at=T0)
    profile = profiles_service.get_profile(session, keystore=keystore, subject_id=subject_id)
    assert set(profile.computed) == {computed.LAST_SEEN, computed.EVENT_COUNTS}


def test_an_expired_aggregate_starts_over(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    ).subject_id
    cat = catalog()
    message = track("Product Viewed", category="books")
    profiles_service.record_event(session, catalog=cat, subject_id=subject_id, message=message, at=T0)
    later = T0 + timedelta(days=400)  # past the 365-day retention of the builder's atoms
    profiles_service.record_event(session, catalog=cat, subject_id=subject_id, message=message, at=later)
    row = session.get(Computed, (subject_id, computed.EVENT_COUNTS))
    assert row is not None
    assert row.value == {"Product Viewed": 1}
    assert row.expires_at == later + timedelta(days=365)


def test_recording_an_event_is_one_read_and_one_write_per_atom(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    ).subject_id
    cat = catalog()
    message = track("Order Completed", revenue=5.0, category="books")
    profiles_service.record_event(session, catalog=cat, subject_id=subject_id, message=message, at=T0)
    session.flush()
    with statements(session) as seen:
        profiles_service.record_event(session, catalog=cat, subject_id=subject_id, message=message, at=T0)
        session.flush()
    assert seen.count("SELECT") == 1
    assert seen.count("UPDATE") <= 4
    assert len(seen) <= 5


def test_clients_cannot_grow_a_profile_without_bound(session: Session, keystore: Keystore) -> None:
    subject_id = profiles_service.resolve(
        session, keystore=keystore, anonymous_id=unique("anon"), user_id=None, at=T0
    ).subject_id
    cat = catalog()
    for n in range(computed.MAX_KEYS + 5):
        message = track(f"Event {n}")
        profiles_service.record_event(session, catalog=cat, subject_id=subject_id, message=message, at=T0)
    profiles_service.record_event(
        session, catalog=cat, subject_id=subject_id, message=track("Event 0"), at=T0
    )
    row = session.get(Computed, (subject_id, computed.EVENT_COUNTS))
    assert row is not None
    assert len(row.value) == computed.MAX_KEYS
    assert row.value["Event 0"] == 2
    assert "Event 504" not in row.value


signals = st.builds(
    computed.Signal,
    key=st.none() | st.sampled_from(CATEGORY_EVENTS + OTHER_EVENTS),
    seen_at=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.timezones()
    ),
    categories=st.lists(st.sampled_from(CATEGORIES), max_size=3).map(tuple),
    revenue=st.none() | st.decimals(min_value=0, max_value=1000, places=2),
)
STORED: dict[str, list[computed.Pair | None]] = {
    computed.LAST_SEEN: [
        None,
        ("2026-01-01T00:00:00+00:00", None),
        ("2026-01-01T01:00:00+01:00", None),
        ("not a time", None),
        (None, None),
    ],
    computed.EVENT_COUNTS: [None, ({"Signed In": 3, "page": 2}, None), ("garbage", None)],
    computed.FAVORITE_CATEGORY: [None, ("books", {"books": 2, "home": 2}), (None, "garbage")],
    computed.LIFETIME_VALUE: [None, (1.5, {"sum": "1.50"}), (0.0, None)],
}


@given(data=st.data(), sequence=st.lists(signals, min_size=1, max_size=12))
def test_a_running_fold_equals_adding_event_by_event(
    data: st.DataObject, sequence: list[computed.Signal]
) -> None:
    for name, aggregate in computed.AGGREGATES.items():
        applied = [s for s in sequence if aggregate.applies(s)]
        if not applied:
            continue
        stored = data.draw(st.sampled_from(STORED[name]), label=name)
        expected = stored
        running = aggregate.start(stored)
        for signal in applied:
            expected = aggregate.add(expected, signal)
            running.add(signal)
        assert running.pair() == expected


def test_a_running_count_stops_at_the_cap_like_the_event_by_event_one() -> None:
    full = {f"e{n}": 1 for n in range(computed.MAX_KEYS - 1)}
    aggregate = computed.AGGREGATES[computed.FAVORITE_CATEGORY]
    signal = computed.Signal(key="x", seen_at=T0, categories=("new", "new", "other"))
    running = aggregate.start(("e0", full))
    running.add(signal)
    assert running.pair() == aggregate.add(("e0", full), signal)
    assert running.pair()[1] == full | {"new": 2}
    assert len(full) == computed.MAX_KEYS - 1  # the stored counts are not changed in place
