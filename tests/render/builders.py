"""Small builders for rendering tests: the demo catalog, a renderer for it, and SubjectViews."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from tactful.catalog.model import Catalog
from tactful.policy.allowance import Allowance, SubjectView
from tactful.render.renderer import Renderer
from tactful.types import Level
from tests.catalog.builders import demo


def catalog() -> Catalog:
    return demo()


@cache
def renderer() -> Renderer:
    return Renderer(demo().atoms.keys())


def view(
    values: Mapping[str, object] | None = None,
    *,
    withheld: Iterable[str] = (),
    allowed: Iterable[str] = (),
) -> SubjectView:
    """A real SubjectView: `values` are allowed and present, `withheld` atoms are held back by the
    Allowance (their values, if in `values`, stay out of reach), `allowed` adds atoms permitted but
    without a value."""
    values = dict(values or {})
    held = frozenset(withheld)
    permitted = frozenset(k for k in values if k not in held) | frozenset(allowed)
    allowance = Allowance(
        ceiling=Level.ONE,
        decide_atoms=permitted,
        learn_atoms=frozenset(),
        purposes={},
        refusals={},
        level_reasons={},
        may_learn=False,
    )
    return SubjectView(allowance, values, permitted)
