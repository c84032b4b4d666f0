"""Session atoms in the catalog (`catalog.session`): what they derive from their event, and every
check, with the atom and the fix; a window longer than the session is refused as a 1:few profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tactful.catalog.loader import check_catalog_file
from tactful.catalog.model import SESSION_TIMEOUT, Measure, SessionSpec, Source
from tactful.catalog.report import records_of_processing
from tactful.types import Level, Purpose
from tests.catalog.builders import atom, build, demo, write_catalog

EVENTS = {
    "events.product_viewed": atom(
        purposes=["analytics", "personalization.behavioral"],
        device_identifier=True,
        properties={
            "category": None,
            "name": {"text": "free"},
            "url": {"text": "url"},
            "products[].category": None,
        },
    ),
    "events.order_completed": atom("user.behavior.purchase", retention="6y", properties=["category"]),
}


def problem(tmp_path: Path, name: str, spec: dict[str, Any]) -> str:
    found = check_catalog_file(write_catalog(tmp_path, {**EVENTS, name: spec}))
    assert len(found) == 1, [str(p) for p in found]
    assert found[0].atom == name
    return str(found[0])


def test_a_session_atom_follows_its_event(tmp_path: Path) -> None:
    catalog = build(
        tmp_path,
        {
            **EVENTS,
            "session.views": {"session": {"event": "events.product_viewed"}},
            "session.views_by_category": {"session": {"event": "events.product_viewed", "by": "category"}},
            "session.last_category": {
                "session": {"event": "events.product_viewed", "measure": "last", "by": "products[].category"},
                "purposes": ["personalization.behavioral"],
            },
            "session.since_view": {
                "session": {"event": "events.product_viewed", "measure": "since", "window": "session"}
            },
        },
    )
    views = catalog.atom("session.views")
    assert views.source is Source.SESSION
    assert views.level is Level.SOME
    assert views.purposes == {Purpose.BEHAVIORAL}
    assert views.retention == SESSION_TIMEOUT
    assert views.device_identifier  # reading it reads what a device identifier collected
    assert views.category == "user.behavior.browsing"
    assert views.session == SessionSpec("events.product_viewed", Measure.COUNT)
    assert catalog.atom("session.last_category").session == SessionSpec(
        "events.product_viewed", Measure.LAST, "products[].category"
    )
    assert [a.name for a in catalog.session_atoms] == [
        "session.views",
        "session.views_by_category",
        "session.last_category",
        "session.since_view",
    ]


def test_a_window_longer_than_the_session_is_a_1_few_profile_not_a_session_atom(tmp_path: Path) -> None:
    text = problem(
        tmp_path, "session.weekly", {"session": {"event": "events.product_viewed", "window": "7d"}}
    )
    assert "a window of 7d is longer than the session (30 minutes without an event)" in text
    assert "behaviour across sessions is a 1:few profile atom, not a 1:some session atom" in text
    assert "declare a computed atom" in text
    shorter = problem(
        tmp_path, "session.recent", {"session": {"event": "events.product_viewed", "window": "PT10M"}}
    )
    assert "shorter than the session" in shorter
    assert "'since' atom" in shorter


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"event": "events.nothing"}, "'events.nothing' is not a declared event atom"),
        ({"event": "events.order_completed"}, "is not collected for personalization.behavioral"),
        ({"event": "events.product_viewed", "by": "colour"}, "declares no property 'colour'"),
        (
            {"event": "events.product_viewed", "by": "name"},
            "property 'name' is free text: its values are never counted",
        ),
        ({"event": "events.product_viewed", "by": "url"}, "property 'url' is url text"),
        ({"event": "events.product_viewed", "measure": "last"}, "'last' keeps a property's value"),
        ({"event": "events.product_viewed", "measure": "since", "by": "category"}, "remove 'by'"),
    ],
)
def test_what_a_session_atom_may_not_follow(tmp_path: Path, spec: dict[str, Any], expected: str) -> None:
    assert expected in problem(tmp_path, "session.x", {"session": spec})


def test_a_session_atom_serves_behaviour_only_and_lives_as_long_as_the_session(tmp_path: Path) -> None:
    spec = {"event": "events.product_viewed"}
    assert "serves personalization.behavioral only" in problem(
        tmp_path, "session.x", {"session": spec, "purposes": ["personalization.predictive"]}
    )
    assert "'retention' does not apply to a session atom" in problem(
        tmp_path, "session.x", {"session": spec, "retention": "13mo"}
    )
    assert "says which event it follows" in problem(tmp_path, "session.x", {"description": "nothing"})
    assert "'session' applies only to session atoms" in problem(
        tmp_path, "traits.x", atom(session={"event": "events.product_viewed"})
    )


def test_the_demo_declares_session_atoms_in_its_records_of_processing() -> None:
    catalog = demo()
    names = {a.name for a in catalog.session_atoms}
    assert {
        "session.product_views",
        "session.product_views_by_category",
        "session.last_viewed_category",
    } <= names
    assert all(a.level is Level.SOME for a in catalog.session_atoms)
    assert "30 minutes" in repr(records_of_processing(catalog))
