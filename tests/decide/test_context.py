"""A decision's request context: declared atoms at their paths, scalars only, nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog, Source
from tactful.decide.context import request_atoms
from tactful.main import default_catalog_path
from tests.policy.builders import catalog_from

DEMO = load_catalog(default_catalog_path())
NESTED = catalog_from(
    {
        "atoms": {
            "context.page": {
                "category": "user.behavior.browsing",
                "purposes": ["analytics"],
                "retention": "30d",
            },
            "context.page.path": {
                "category": "user.behavior.browsing",
                "purposes": ["analytics"],
                "retention": "30d",
            },
            "context.a.b.c": {"category": "user.device", "purposes": ["analytics"], "retention": "30d"},
        }
    }
)


def test_declared_paths_are_read_and_the_rest_left() -> None:
    context = {
        "locale": "sv-SE",
        "device": {"type": "mobile", "id": "device-123"},
        "location": {"country": "SE", "city": {"nested": "object"}},
        "traits": {"email": "anna@example.com"},
        "page": {"path": ""},
    }
    assert request_atoms(DEMO, context) == {
        "context.locale": "sv-SE",
        "context.device.type": "mobile",
        "context.location.country": "SE",
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(("location", "device", "page", "locale", "x", "traits")), json_values))
def test_only_declared_context_atoms_with_scalar_values_come_out(context: dict[str, Any]) -> None:
    declared = {a.name for a in DEMO.by_source(Source.CONTEXT)}
    found = request_atoms(DEMO, context)
    assert set(found) <= declared
    assert all(isinstance(v, str | int | float | bool) for v in found.values())


def one_path_at_a_time(catalog: Catalog, context: dict[str, Any]) -> dict[str, object]:
    """The rule as written: each declared atom looked up along its own path."""
    found: dict[str, object] = {}
    for atom in catalog.by_source(Source.CONTEXT):
        value: object = context
        for part in atom.name.split(".")[1:]:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            if isinstance(value, str | int | float | bool) and value != "":
                found[atom.name] = value
    return found


keys = st.sampled_from(
    ("location", "country", "device", "type", "page", "path", "locale", "a", "b", "c", "x")
)
contexts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(("", "SE", "/shoes")),
    lambda inner: st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@given(st.dictionaries(keys, contexts, max_size=6), st.sampled_from((DEMO, NESTED)))
def test_one_walk_along_the_tree_finds_what_each_path_finds(
    context: dict[str, Any], catalog: Catalog
) -> None:
    assert request_atoms(catalog, context) == one_path_at_a_time(catalog, context)
