"""The collection filter: declared fields kept, undeclared dropped and named, system fields always kept."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.filtering import SYSTEM_FIELDS, event_atom_name, snake_case
from tests.catalog.builders import demo


def track(event: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": "m-1",
        "anonymousId": "a-1",
        "userId": "u-1",
        "timestamp": "2026-03-01T12:00:00.000Z",
        "properties": properties,
        **extra,
    }


def test_declared_properties_are_kept_and_undeclared_named() -> None:
    message = track(
        "Product Viewed", {"product_id": "p-1", "category": "books", "color": "teal", "size": "M"}
    )
    result = demo().filter_message(message)
    assert result.kept["properties"] == {"product_id": "p-1", "category": "books"}
    assert result.dropped == ("properties.color", "properties.size")
    assert result.atom == "events.product_viewed"


def test_system_fields_are_always_kept() -> None:
    message = track(
        "Product Viewed",
        {"decision_id": "d-1"},
        previousId="a-0",
        groupId="g-1",
        context={
            "consent": {"categoryPreferences": {"ads": False}},
            "consentManagement": {"x": 1},
            "gpc": True,
        },
    )
    kept = demo().filter_message(message).kept
    for name in SYSTEM_FIELDS:
        assert kept[name] == message[name]
    assert kept["properties"] == {"decision_id": "d-1"}
    assert kept["context"] == message["context"]


def test_an_undeclared_event_keeps_only_system_fields() -> None:
    result = demo().filter_message(
        track("Wishlist Shared", {"product_id": "p", "decision_id": "d", "to": "x"})
    )
    assert result.kept["properties"] == {"decision_id": "d"}
    assert result.dropped == ("properties.product_id", "properties.to")
    assert result.atom is None


def test_arrays_of_objects_are_filtered_per_element() -> None:
    products = [
        {"product_id": "p-1", "category": "books", "price": 9.5, "quantity": 1, "color": "red"},
        {"product_id": "p-2", "sku": "S-2", "gift_note": "for you"},
        "stray",
    ]
    result = demo().filter_message(track("Order Completed", {"order_id": "o-1", "products": products}))
    assert result.kept["properties"]["products"] == [
        {"product_id": "p-1", "category": "books", "price": 9.5, "quantity": 1},
        {"product_id": "p-2", "sku": "S-2"},
    ]
    assert result.dropped == (
        "properties.products[].color",
        "properties.products[].gift_note",
        "properties.products[]",
    )


def test_an_object_where_a_leaf_is_declared_is_dropped() -> None:
    # A declared scalar field cannot smuggle a nested object in.
    result = demo().filter_message(track("Product Viewed", {"category": {"secret": 1}, "price": [1, 2]}))
    assert result.kept["properties"] == {"price": [1, 2]}
    assert result.dropped == ("properties.category.secret",)


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=5),
        st.lists(st.integers() | st.text(max_size=3), max_size=3),
    )
)
def test_a_declared_leaf_keeps_any_scalar_or_array_of_scalars(value: object) -> None:
    result = demo().filter_message(track("Product Viewed", {"category": value, "price": [{"n": 1}]}))
    assert result.kept["properties"] == {"category": value, "price": []}
    assert result.dropped == ("properties.price[].n",)


def test_context_is_filtered_and_request_only_fields_are_not_kept() -> None:
    context = {
        "ip": "203.0.113.9",
        "userAgent": "Mozilla/5.0",
        "locale": "de-DE",
        "location": {"country": "DE", "latitude": 52.5, "longitude": 13.4},
        "app": {"build": "3.1", "name": "Shop"},
        "library": {"name": "analytics.js", "version": "1"},
    }
    result = demo().filter_message({"type": "page", "messageId": "m", "anonymousId": "a", "context": context})
    assert result.kept["context"] == {
        "locale": "de-DE",
        "location": {"country": "DE"},
        "library": {"name": "analytics.js", "version": "1"},
    }
    assert result.dropped == ("context.app.build", "context.app.name")
    assert set(result.transient) == {
        "context.ip",
        "context.userAgent",
        "context.location.latitude",
        "context.location.longitude",
    }


def test_identify_traits_follow_the_trait_atoms() -> None:
    message = {
        "type": "identify",
        "userId": "u",
        "messageId": "m",
        "traits": {"first_name": "Ada", "email": "ada@example.com", "favorite_color": "teal"},
    }
    result = demo().filter_message(message)
    assert result.kept["traits"] == {"first_name": "Ada", "email": "ada@example.com"}
    assert result.dropped == ("traits.favorite_color",)
    assert result.atom is None


def test_page_screen_and_group_calls() -> None:
    catalog = demo()
    page = {
        "type": "page",
        "name": "Home",
        "category": "Shop",
        "version": 2,
        "properties": {"path": "/", "title": "Home", "scroll": 0.4},
    }
    result = catalog.filter_message(page)
    assert result.kept == {
        "type": "page",
        "name": "Home",
        "category": "Shop",
        "properties": {"path": "/", "title": "Home"},
    }
    assert result.dropped == ("version", "properties.scroll")
    assert result.atom == "events.page_viewed"
    screen = catalog.filter_message(
        {"type": "screen", "name": "Cart", "properties": {"name": "Cart", "x": 1}}
    )
    assert screen.kept["properties"] == {"name": "Cart"}
    assert screen.atom == "events.screen_viewed"
    group = catalog.filter_message(
        {"type": "group", "groupId": "g", "traits": {"name": "Acme", "plan": "pro"}}
    )
    assert group.kept == {"type": "group", "groupId": "g", "traits": {"name": "Acme"}}
    assert group.dropped == ("traits.plan",)


def test_alias_and_unknown_types_keep_only_system_fields() -> None:
    alias = {"type": "alias", "previousId": "a", "userId": "u", "traits": {"first_name": "Ada"}}
    assert demo().filter_message(alias).kept == {"type": "alias", "previousId": "a", "userId": "u"}
    odd = demo().filter_message(
        {"type": "weird", "messageId": "m", "properties": {"decision_id": "d", "x": 1}}
    )
    assert odd.kept == {"type": "weird", "messageId": "m", "properties": {"decision_id": "d"}}


def test_event_names_map_to_snake_case_atoms() -> None:
    assert snake_case("Product Viewed") == "product_viewed"
    assert snake_case("orderCompleted") == "order_completed"
    assert snake_case("  email-link clicked! ") == "email_link_clicked"
    assert event_atom_name("track", "Products Searched") == "events.products_searched"
    assert event_atom_name("page") == "events.page_viewed"
    assert event_atom_name("screen") == "events.screen_viewed"
    assert event_atom_name("group") == "events.group"
    assert event_atom_name("track", "!!!") is None
    assert event_atom_name("identify") is None


# -- properties over random messages -----------------------------------------------------------

KEYS = [
    "product_id",
    "category",
    "products",
    "price",
    "location",
    "country",
    "latitude",
    "page",
    "url",
    "ip",
    "consent",
    "gpc",
    "app",
    "build",
    "decision_id",
    "first_name",
    "email",
    "name",
    "x",
    "traits",
    "properties",
    "context",
]
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
keys = st.sampled_from(KEYS) | st.text(max_size=4)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
messages = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["identify", "track", "page", "screen", "group", "alias", "other"]),
        "event": st.sampled_from(["Product Viewed", "Order Completed", "Cart Viewed", "Nope"])
        | st.text(max_size=6),
        "messageId": scalars,
    },
    optional={
        "userId": values,
        "anonymousId": scalars,
        "timestamp": scalars,
        "properties": values,
        "traits": values,
        "context": values,
        "extra": values,
    },
)


def paths(value: object, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{prefix}{key}"
            yield from paths(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            yield f"{prefix}[]"
            yield from paths(item, f"{prefix}[].")


@given(messages)
def test_filtering_is_idempotent_and_only_removes(message: dict[str, Any]) -> None:
    original = copy.deepcopy(message)
    first = demo().filter_message(message)
    assert message == original, "the filter must not change its input"
    second = demo().filter_message(first.kept)
    assert second.kept == first.kept
    assert second.dropped == ()
    assert second.transient == ()
    assert set(paths(first.kept)) <= set(paths(message))


@given(messages)
def test_system_fields_survive_any_message(message: dict[str, Any]) -> None:
    kept = demo().filter_message(message).kept
    for name in SYSTEM_FIELDS:
        if name in message:
            assert kept[name] == message[name]
    properties = message.get("properties")
    if isinstance(properties, dict) and "decision_id" in properties:
        assert kept["properties"]["decision_id"] == properties["decision_id"]
    context = message.get("context")
    if isinstance(context, dict):
        for name in ("consent", "consentManagement", "gpc"):
            if name in context:
                assert kept["context"][name] == context[name]


def test_filtering_a_realistic_message_is_fast() -> None:
    import time

    message = track(
        "Order Completed",
        {
            "order_id": "o",
            "total": 10.0,
            "revenue": 9.0,
            "shipping": 1.0,
            "tax": 1.9,
            "currency": "EUR",
            "color": "x",
            "products": [{"product_id": "p", "sku": "s", "category": "c", "price": 1.0, "quantity": 1}] * 2,
        },
        context={
            "ip": "1.2.3.4",
            "locale": "de-DE",
            "userAgent": "UA",
            "timezone": "Europe/Berlin",
            "location": {"country": "DE", "region": "BE", "city": "Berlin"},
            "device": {"type": "mobile"},
            "page": {"url": "u", "path": "/", "title": "t", "referrer": "r", "search": ""},
            "library": {"name": "analytics.js", "version": "1"},
        },
    )
    catalog = demo()
    runs = 2000
    started = time.perf_counter()
    for _ in range(runs):
        catalog.filter_message(message)
    per_message = (time.perf_counter() - started) / runs
    assert per_message < 200e-6  # a generous bound for slow CI machines; locally it is a few microseconds
