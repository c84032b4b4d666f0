"""The shipped demo catalog: valid, packaged, and declaring what the rest of the engine relies on."""

from __future__ import annotations

import importlib.resources
from datetime import timedelta

import pytest

from tactful.catalog.loader import check_catalog_file
from tactful.catalog.model import Source
from tactful.types import Level, Purpose
from tests.catalog.builders import DEMO_PATH, demo


def test_the_demo_catalog_is_valid_and_packaged() -> None:
    resource = importlib.resources.files("tactful.catalog") / "data" / "demo_shop.yaml"
    assert resource.is_file()
    assert check_catalog_file(DEMO_PATH) == []


def test_identify_traits_map_to_atoms_and_identifiers_are_marked() -> None:
    catalog = demo()
    for trait in (
        "first_name",
        "last_name",
        "email",
        "phone",
        "age_range",
        "birthdate",
        "country",
        "city",
        "loyalty_tier",
        "newsletter_opt_in",
        "created_at",
    ):
        assert catalog.trait_atoms[trait].name == f"traits.{trait}"
    assert catalog.identifier_traits == {"first_name", "last_name", "email", "phone"}
    assert {"traits.birthdate", "traits.phone"} <= catalog.copy_forbidden


def test_essential_events_and_event_names() -> None:
    catalog = demo()
    assert catalog.essential_events == {"events.order_completed", "events.signed_in"}
    assert catalog.atom("events.order_completed").event == "Order Completed"
    assert catalog.event_atom({"type": "track", "event": "Email Link Clicked"}) is not None
    assert catalog.event_atom({"type": "page"}) == catalog.atom("events.page_viewed")
    assert catalog.event_atom({"type": "track", "event": "Unknown Thing"}) is None


def test_favorite_category_reads_product_categories() -> None:
    catalog = demo()
    favourite = catalog.atom("computed.favorite_category")
    assert favourite.category == "user.derived.inference"
    assert favourite.level is Level.FEW
    assert {str(i) for i in favourite.inputs} >= {
        "events.product_viewed.category",
        "events.product_added.category",
        "events.order_completed.products[].category",
    }
    assert {"Product Viewed", "Product Added", "Order Completed"} <= catalog.input_events(favourite.name)


def test_the_special_category_atom_needs_explicit_consent() -> None:
    health = demo().atom("traits.health_interest")
    assert health.special
    assert health.explicit_consent
    assert health.level is Level.ONE


def test_retentions_are_sensible() -> None:
    catalog = demo()
    assert not catalog.atom("context.ip").stored
    assert catalog.atom("events.order_completed").retention == timedelta(days=720), "after the latest order"
    assert catalog.atom("events.product_viewed").retention == timedelta(days=30), "in-session behaviour"
    assert catalog.atom("computed.favorite_category").retention == timedelta(days=30), "as its inputs"
    assert Purpose.ESSENTIAL in catalog.atom("events.order_completed").purposes


def test_lookups() -> None:
    catalog = demo()
    assert catalog.atoms["traits.email"].source is Source.TRAIT
    assert all(a.source is Source.COMPUTED for a in catalog.by_source(Source.COMPUTED))
    assert catalog.atom("traits.email") in catalog.for_purpose(Purpose.MARKETING_EMAIL)
    with pytest.raises(KeyError, match=r"traits\.nickname"):
        catalog.atom("traits.nickname")
