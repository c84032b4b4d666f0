"""A decision's request context: declared atoms at their paths, scalars only, nothing else."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Source
from tactful.decide.context import request_atoms
from tactful.main import default_catalog_path

DEMO = load_catalog(default_catalog_path())


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
