"""The level of a condition follows from the catalog: the highest level among the atoms it can
read, whether evaluation reaches them or not; an atom the catalog does not declare blocks it."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.decide import conditions
from tactful.decide.conditions import Compiled
from tactful.decide.levels import condition_reach, reach
from tactful.types import Level
from tests.catalog.builders import DEMO_PATH


@cache
def demo() -> Catalog:
    return load_catalog(DEMO_PATH)


def level_of(document: object) -> tuple[Level, set[str], set[str]]:
    condition = conditions.compile(document)
    assert isinstance(condition, Compiled), str(condition)
    found = condition_reach(demo(), condition)
    return found.level, set(found.top), set(found.undeclared)


@pytest.mark.parametrize(
    ("document", "level", "top"),
    [
        ({}, Level.ALL, set()),
        (
            {"context.location.country": "SE", "context.device.type": "mobile"},
            Level.MANY,
            {"context.location.country", "context.device.type"},
        ),
        (
            {"context.location.country": "SE", "$or": [{"events.product_viewed": {"$size": {"$gte": 3}}}]},
            Level.SOME,
            {"events.product_viewed"},
        ),
        ({"computed.favorite_category": "running"}, Level.FEW, {"computed.favorite_category"}),
        ({"traits.loyalty_tier": "gold"}, Level.FEW, {"traits.loyalty_tier"}),
        ({"traits.first_name": {"$exists": True}}, Level.ONE, {"traits.first_name"}),
        ({"context.location.latitude": {"$gt": 55}}, Level.ONE, {"context.location.latitude"}),
    ],
)
def test_the_level_is_the_highest_among_the_atoms_read(document: object, level: Level, top: set[str]) -> None:
    assert level_of(document) == (level, top, set())


def test_a_branch_never_taken_still_counts() -> None:
    # `$or` stops at its first holding branch, but what the condition *can* read sets its level.
    document = {"$or": [{"context.location.country": "SE"}, {"$not": {"traits.first_name": "Ada"}}]}
    assert level_of(document)[0] is Level.ONE


def test_an_undeclared_atom_cannot_be_published() -> None:
    level, top, undeclared = level_of({"traits.shoe_size": 44, "context.device.type": "mobile"})
    assert undeclared == {"traits.shoe_size"}
    assert (level, top) == (Level.MANY, {"context.device.type"})
    condition = conditions.compile({"traits.shoe_size": 44})
    assert isinstance(condition, Compiled)
    found = condition_reach(demo(), condition)
    assert not found.publishable
    assert found.level is Level.ALL
    assert condition_reach(demo(), compiled_ok({"context.device.type": "mobile"})).publishable


def compiled_ok(document: object) -> Compiled:
    condition = conditions.compile(document)
    assert isinstance(condition, Compiled)
    return condition


@given(st.data())
def test_reach_agrees_with_each_atoms_own_level(data: st.DataObject) -> None:
    catalog = demo()
    names = sorted(catalog.atoms)
    chosen = data.draw(st.sets(st.sampled_from([*names, "traits.unknown", "events.unknown"]), max_size=6))
    found = reach(catalog, chosen)
    declared = [catalog.atoms[n] for n in chosen if n in catalog.atoms]
    assert found.undeclared == {n for n in chosen if n not in catalog.atoms}
    assert found.publishable is not bool(found.undeclared)
    assert all(atom.level <= found.level for atom in declared)
    assert found.top == {a.name for a in declared if a.level is found.level and a.level is not Level.ALL}
    if declared:
        assert found.level in {atom.level for atom in declared}
    else:
        assert found.level is Level.ALL
