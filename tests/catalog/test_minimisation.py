"""Retention in the catalog: the minimisation defaults warn (never refuse), `expiry:` says what
expiry does per category, and `retention_anchor` is for event atoms."""

from __future__ import annotations

from pathlib import Path

import pytest

from tactful.catalog.loader import check_catalog_file, load_catalog
from tactful.catalog.minimisation import CEILINGS, Kind, kind_of, retention_warnings
from tactful.catalog.retention import Anchor, Expiry
from tactful.main import default_catalog_path
from tests.catalog.builders import atom, build, write_catalog


def test_the_shipped_catalog_keeps_within_every_default() -> None:
    assert retention_warnings(load_catalog(default_catalog_path())) == []


@pytest.mark.parametrize(
    ("name", "spec", "kind"),
    [
        ("events.page_viewed", atom(purposes=["analytics", "personalization.behavioral"], retention="31d"),
         Kind.SESSION_BEHAVIOUR),
        ("context.page.url", atom(purposes=["analytics"], retention="13mo"), Kind.SESSION_BEHAVIOUR),
        ("events.order_completed", atom("user.behavior.purchase", essential=True,
                                        purposes=["essential", "analytics"], retention="6y"), Kind.PURCHASES),
        ("events.signed_in", atom("user.account", purposes=["essential"], retention="2y"),
         Kind.IDENTIFIED_EVENTS),
        ("context.location.latitude", atom("user.location.precise", purposes=["personalization.individual"],
                                           retention="36h"), Kind.PRECISE_LOCATION),
    ],
)  # fmt: skip
def test_a_longer_retention_than_its_kinds_default_is_warned_not_refused(
    tmp_path: Path, name: str, spec: dict[str, object], kind: Kind
) -> None:
    path = write_catalog(tmp_path, {name: spec})
    assert check_catalog_file(path) == [], "a warning, not a refusal: the catalog loads"
    catalog = load_catalog(path)
    assert kind_of(catalog.atom(name)) is kind
    [warning] = retention_warnings(catalog)
    assert warning.atom == name
    assert kind.value in warning.message
    assert "at most" in warning.fix


def test_periods_within_the_defaults_are_not_warned(tmp_path: Path) -> None:
    catalog = build(tmp_path, {
        "events.page_viewed": atom(purposes=["analytics", "personalization.behavioral"], retention="30d"),
        "events.signed_in": atom("user.account", purposes=["essential"], retention="13mo"),
        "events.order_completed": atom("user.behavior.purchase", purposes=["personalization.individual"],
                                       retention="24mo", retention_anchor="latest"),
        "context.location.latitude": atom("user.location.precise", purposes=["personalization.individual"],
                                          retention="request"),
        "traits.city": atom("user.location.imprecise", purposes=["analytics"], retention="3y"),
    })  # fmt: skip
    assert retention_warnings(catalog) == []
    assert catalog.atom("events.order_completed").retention_anchor is Anchor.LATEST
    assert catalog.atom("events.page_viewed").retention_anchor is Anchor.EACH
    assert CEILINGS[Kind.PRECISE_LOCATION].total_seconds() == 24 * 3600


def test_anchoring_anything_but_purchases_on_the_latest_is_warned(tmp_path: Path) -> None:
    catalog = build(tmp_path, {"events.signed_in": atom("user.account", purposes=["essential"],
                                                       retention_anchor="latest")})  # fmt: skip
    [warning] = retention_warnings(catalog)
    assert "retention_anchor" in warning.message


@pytest.mark.parametrize(
    ("atoms", "sections", "says"),
    [
        (
            {"traits.city": atom("user.location.imprecise", retention_anchor="latest")},
            {},
            "only to event atoms",
        ),
        ({"events.signed_in": atom(retention_anchor="first")}, {}, "unknown retention_anchor"),
        ({"events.signed_in": atom()}, {"expiry": {"user.behavior": "forget"}}, "'delete' or 'anonymise'"),
        ({"events.signed_in": atom()}, {"expiry": {"user.behaviour": "delete"}}, "unknown category"),
        (
            {"events.signed_in": atom()},
            {"expiry": {"user.sensitive.health": "anonymise"}},
            "special category",
        ),
    ],
)
def test_retention_mistakes_are_refused_with_the_fix(
    tmp_path: Path, atoms: dict[str, object], sections: dict[str, object], says: str
) -> None:
    problems = check_catalog_file(write_catalog(tmp_path, atoms, **sections))
    assert any(says in str(p) for p in problems), problems
    assert all(p.fix for p in problems)


def test_expiry_follows_the_closest_entry_and_defaults_to_delete(tmp_path: Path) -> None:
    catalog = build(tmp_path, {
        "events.page_viewed": atom(),
        "events.products_searched": atom("user.behavior.search"),
        "events.signed_in": atom("user.account"),
    }, expiry={"user.behavior": "anonymise", "user.behavior.search": "delete"})  # fmt: skip
    assert catalog.expiry_of_atom(catalog.atom("events.page_viewed")) is Expiry.ANONYMISE
    assert catalog.expiry_of_atom(catalog.atom("events.products_searched")) is Expiry.DELETE
    assert catalog.expiry_of_atom(catalog.atom("events.signed_in")) is Expiry.DELETE


def test_a_property_can_be_marked_a_reference(tmp_path: Path) -> None:
    catalog = build(tmp_path, {"events.order_completed": atom(
        "user.behavior.purchase", properties={"order_id": {"reference": True}, "total": None})})  # fmt: skip
    order = catalog.atom("events.order_completed")
    assert [(p.name, p.reference) for p in order.properties] == [("order_id", True), ("total", False)]
