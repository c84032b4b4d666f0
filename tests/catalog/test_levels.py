"""The level derivation table, retention periods, and what computed atoms inherit from their inputs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tactful.catalog.categories import KNOWN, closest, strictest
from tactful.catalog.levels import derive_level, highest
from tactful.catalog.model import Source
from tactful.catalog.retention import RetentionError, format_retention, parse_retention
from tactful.types import Level
from tests.catalog.builders import atom, build

CONTEXT, TRAIT, EVENT, COMPUTED = Source.CONTEXT, Source.TRAIT, Source.EVENT, Source.COMPUTED


@pytest.mark.parametrize(
    ("category", "source", "level"),
    [
        # request context, coarse: 1:many
        ("user.location.imprecise", CONTEXT, Level.MANY),
        ("user.preference.language", CONTEXT, Level.MANY),
        ("user.device", CONTEXT, Level.MANY),
        ("system.operations", CONTEXT, Level.MANY),
        # a stored age range: 1:many
        ("user.demographic.age_range", TRAIT, Level.MANY),
        # in-session behaviour: 1:some
        ("user.behavior.browsing", EVENT, Level.SOME),
        ("user.behavior.search", EVENT, Level.SOME),
        ("user.behavior.purchase", EVENT, Level.SOME),
        ("user.behavior.browsing", CONTEXT, Level.SOME),
        # cross-session profiles: at least 1:few
        ("user.derived.inference", COMPUTED, Level.FEW),
        ("user.behavior.browsing", COMPUTED, Level.FEW),
        ("user.location.imprecise", COMPUTED, Level.FEW),
        # identified traits, purchase history, special categories: 1:1
        ("user.name", TRAIT, Level.ONE),
        ("user.contact.email", TRAIT, Level.ONE),
        ("user.behavior.purchase", TRAIT, Level.ONE),
        ("user.behavior.purchase", COMPUTED, Level.ONE),
        ("user.location.precise", CONTEXT, Level.ONE),
        ("user.sensitive.health", TRAIT, Level.ONE),
        ("user.sensitive.religion", EVENT, Level.ONE),
    ],
)
def test_level_derivation_table(category: str, source: Source, level: Level) -> None:
    assert derive_level(KNOWN[category], source) is level


def test_identifiers_are_one_to_one_and_inputs_raise_the_level() -> None:
    assert derive_level(KNOWN["user.account"], TRAIT, identifier=True) is Level.ONE
    assert derive_level(KNOWN["user.derived.inference"], COMPUTED, inputs=[Level.ONE]) is Level.ONE
    assert highest([Level.SOME, Level.ONE, Level.MANY]) is Level.ONE


def test_the_taxonomy_has_the_design_categories() -> None:
    for name in (
        "user.name",
        "user.contact.email",
        "user.location.imprecise",
        "user.location.precise",
        "user.device",
        "user.demographic.age_range",
        "user.behavior.browsing",
        "user.behavior.purchase",
        "user.derived.inference",
        "user.device.ip_address",
        "user.device.cookie_id",
        "user.contact.phone_number",
        "user.financial",
        "user.behavior.search",
    ):
        assert name in KNOWN
    special = (
        "health",
        "religion",
        "ethnicity",
        "sexual_orientation",
        "political_opinion",
        "biometric",
        "genetic",
        "union_membership",
    )
    for name in special:
        category = KNOWN[f"user.sensitive.{name}"]
        assert category.special
        assert category.cpra_sensitive
        assert category.floor is Level.ONE
    assert KNOWN["user.location.precise"].cpra_sensitive
    assert not KNOWN["user.location.precise"].special
    assert closest("user.sensitive.helth", KNOWN) == "user.sensitive.health"
    assert (
        strictest([KNOWN["user.behavior.browsing"], KNOWN["user.sensitive.health"]])
        == KNOWN["user.sensitive.health"]
    )


@pytest.mark.parametrize(
    ("text", "days"),
    [("30d", 30), ("26w", 182), ("13mo", 390), ("2y", 730), ("P30D", 30), ("P1Y6M", 545), ("p2w", 14)],
)
def test_retention_periods(text: str, days: int) -> None:
    assert parse_retention(text) == timedelta(days=days)


def test_retention_edge_cases() -> None:
    assert parse_retention("36h") == timedelta(hours=36)
    assert parse_retention("PT12H") == timedelta(hours=12)
    assert parse_retention("request") == timedelta(0)
    for bad in ("", "30", "30 days", "P", "PT", "-1d", "0d", "200y", None, 30):
        with pytest.raises(RetentionError):
            parse_retention(bad)
    assert format_retention(timedelta(days=730)) == "2 years"
    assert format_retention(timedelta(days=390)) == "13 months"
    assert format_retention(timedelta(days=1)) == "1 day"
    assert format_retention(timedelta(hours=36)) == "36 hours"
    assert format_retention(timedelta(0)).startswith("request only")


# -- computed atoms --------------------------------------------------------------------------------


def test_a_computed_atom_inherits_category_level_and_retention(tmp_path: Path) -> None:
    catalog = build(
        tmp_path,
        {
            "events.order_completed": atom("user.behavior.purchase", retention="6y", properties=["revenue"]),
            "events.product_viewed": atom(retention="13mo", properties=["category"]),
            "computed.spend": {"inputs": ["events.order_completed.revenue"], "purposes": ["analytics"]},
            "computed.taste": {
                "inputs": ["events.product_viewed.category", "events.order_completed"],
                "purposes": ["analytics"],
            },
        },
    )
    spend = catalog.atom("computed.spend")
    assert spend.category == "user.behavior.purchase"
    assert spend.level is Level.ONE  # purchase history
    assert spend.retention == timedelta(days=6 * 365)
    taste = catalog.atom("computed.taste")
    assert taste.retention == timedelta(days=390)  # the shortest input
    assert taste.level is Level.ONE  # strictest category among the inputs is purchase
    assert [str(i) for i in taste.inputs] == ["events.product_viewed.category", "events.order_completed"]


def test_a_computed_atom_reads_other_computed_atoms_and_globs(tmp_path: Path) -> None:
    catalog = build(
        tmp_path,
        {
            "computed.b": atom("user.derived.inference", inputs=["computed.a"], retention="6mo"),
            "computed.a": atom(
                "user.derived.inference", inputs=["events.*"], retention="1y", device_identifier=None
            ),
            "events.page_viewed": atom(device_identifier=True),
            "events.signed_in": atom("user.account"),
        },
    )
    a = catalog.atom("computed.a")
    assert {i.atom for i in a.inputs} == {"events.page_viewed", "events.signed_in"}
    assert a.device_identifier  # derived from cookie-linked events
    assert catalog.atom("computed.b").level is Level.FEW


def test_a_special_input_makes_the_computed_atom_special(tmp_path: Path) -> None:
    catalog = build(
        tmp_path,
        {
            "traits.health_interest": atom(
                "user.sensitive.health", explicit_consent=True, purposes=["personalization.individual"]
            ),
            "computed.wellness": {"inputs": ["traits.health_interest"], "purposes": ["analytics"]},
        },
    )
    wellness = catalog.atom("computed.wellness")
    assert wellness.special
    assert wellness.category == "user.sensitive.health"
    assert wellness.level is Level.ONE
