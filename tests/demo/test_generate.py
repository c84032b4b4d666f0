"""The synthetic shop: deterministic, inside its window, varied enough to exercise every regime."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.demo.generate import DemoConfig, DemoShop, Message, generate
from tactful.demo.messages import iso
from tactful.demo.people import EU_COUNTRIES

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
SMALL = DemoConfig(seed=11, customers=300, days=14)


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    return DemoShop(SMALL, now=NOW)


@pytest.fixture(scope="module")
def messages(shop: DemoShop) -> list[Message]:
    return list(shop.messages())


def test_the_same_seed_gives_the_same_messages() -> None:
    first = json.dumps([m for batch in generate(now=NOW, config=SMALL, batch_size=97) for m in batch])
    second = json.dumps(list(DemoShop(SMALL, now=NOW).messages()))
    assert first == second


def test_another_seed_gives_other_messages(messages: list[Message]) -> None:
    other = list(DemoShop(DemoConfig(seed=12, customers=300, days=14), now=NOW).messages())
    assert {m["messageId"] for m in other}.isdisjoint({m["messageId"] for m in messages})


def test_batches_are_bounded_and_cover_every_message(shop: DemoShop, messages: list[Message]) -> None:
    batches = list(shop.batches(500))
    assert all(len(b) <= 500 for b in batches)
    assert all(len(b) == 500 for b in batches[:-1])
    assert sum(len(b) for b in batches) == len(messages) == shop.count()


def test_message_ids_are_unique(messages: list[Message]) -> None:
    ids = [m["messageId"] for m in messages]
    assert len(ids) == len(set(ids))


def test_timestamps_fall_inside_the_window(messages: list[Message]) -> None:
    stamps = [str(m["timestamp"]) for m in messages]
    assert min(stamps) >= iso(NOW - timedelta(days=SMALL.days))
    assert max(stamps) <= iso(NOW)


def test_every_message_names_a_subject(messages: list[Message]) -> None:
    for m in messages:
        assert m.get("userId") or m.get("anonymousId"), m


def test_both_regimes_minors_and_signals_are_present(shop: DemoShop, messages: list[Message]) -> None:
    regimes = Counter(c.regime for c in shop.customers)
    assert regimes["gdpr"] > 0
    assert regimes["ccpa"] > 0
    assert regimes[None] > 0
    contexts = [m["context"] for m in messages if isinstance(m.get("context"), dict)]
    countries = {c["location"]["country"] for c in contexts if "location" in c}
    assert countries & EU_COUNTRIES
    assert {"US", "GB", "CA"} <= countries
    assert any(c["location"]["region"] == "California" for c in contexts if "location" in c)
    assert any(c.get("gpc") is True for c in contexts)
    assert any("consent" in c for c in contexts)
    assert any(c.minor for c in shop.customers)
    minor_traits = [
        m for m in messages if m["type"] == "identify" and m["traits"].get("age_range") == "13-17"
    ]
    assert minor_traits, "some minors sign up or sign in and say their age range"


def test_every_kind_of_message_appears(messages: list[Message]) -> None:
    kinds = Counter(str(m.get("event") or m["type"]) for m in messages)
    expected = {
        "page",
        "identify",
        "alias",
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
        "Signed Up",
        "Signed In",
        "Email Opened",
        "Email Link Clicked",
    }
    assert expected <= set(kinds)


def test_an_alias_links_the_anonymous_visitor_who_signs_up(messages: list[Message]) -> None:
    aliases = [m for m in messages if m["type"] == "alias"]
    anonymous = {m["anonymousId"] for m in messages if "anonymousId" in m and "userId" not in m}
    assert aliases
    assert all(a["previousId"] in anonymous for a in aliases)


def test_addresses_are_reserved_for_documentation(messages: list[Message]) -> None:
    for m in messages:
        traits = m.get("traits")
        if isinstance(traits, dict) and "email" in traits:
            assert str(traits["email"]).endswith(("@example.com", "@example.org"))
        context = m.get("context")
        if isinstance(context, dict) and "ip" in context:
            assert str(context["ip"]).startswith(("192.0.2.", "198.51.100.", "203.0.113."))


def test_orders_add_up(messages: list[Message]) -> None:
    orders = [m["properties"] for m in messages if m.get("event") == "Order Completed"]
    assert orders
    for order in orders:
        assert isinstance(order, dict)
        subtotal = sum(p["price"] * p["quantity"] for p in order["products"])
        assert order["revenue"] == pytest.approx(subtotal - order["discount"], abs=0.011)
        assert order["total"] == pytest.approx(order["revenue"] + order["shipping"] + order["tax"], abs=0.011)


def test_the_default_size_is_in_the_intended_range() -> None:
    # Counted, not kept: the full demo is about 100k messages.
    total = DemoShop(DemoConfig(), now=NOW).count()
    assert 50_000 <= total <= 150_000


@given(seed=st.integers(0, 2**32), customers=st.integers(1, 12), days=st.integers(1, 30))
def test_any_configuration_stays_in_its_window(seed: int, customers: int, days: int) -> None:
    config = DemoConfig(seed=seed, customers=customers, days=days)
    shop = DemoShop(config, now=NOW)
    low, high = iso(NOW - timedelta(days=days)), iso(NOW)
    ids = set()
    for message in shop.messages():
        assert low <= message["timestamp"] <= high
        assert message["messageId"] not in ids
        ids.add(message["messageId"])


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        DemoShop(SMALL, now=datetime(2026, 1, 1))


def test_a_few_customers_send_special_category_data(messages: list[Message]) -> None:
    identifies = [m for m in messages if m["type"] == "identify"]
    sensitive = [m for m in identifies if "health_interest" in m["traits"]]
    assert sensitive
    assert len(sensitive) < 0.1 * len(identifies)
