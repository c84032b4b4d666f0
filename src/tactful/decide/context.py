"""The request-context atoms of a decision: what the site says about this request (Segment's
`context` object: locale, device, page, campaign...), read for this decision and never stored.

Only atoms the catalog declares are read, each at its path below `context`
(`context.location.country` is `context["location"]["country"]`), and only scalar values: an object
or a list where the catalog expects a value is not a value. Nothing is looked up from the caller's
IP address: the request comes from the site's backend, not from the person (issue of decisions,
"Decide API").
"""

from __future__ import annotations

from collections.abc import Mapping

from tactful.catalog.model import Catalog, PathNode

_SCALARS = (str, int, float, bool)


def request_atoms(catalog: Catalog, context: Mapping[str, object]) -> dict[str, object]:
    """The declared context atoms present in `context`, by atom name."""
    found: dict[str, object] = {}
    _read(catalog.context_tree.below, context, found)
    return found


def _read(below: Mapping[str, PathNode], value: Mapping[str, object], found: dict[str, object]) -> None:
    # Along the declared paths only: keys of `context` that no atom names are never looked at.
    for part, node in below.items():
        if part not in value:
            continue
        inner = value[part]
        if node.atom is not None and isinstance(inner, _SCALARS) and inner != "":
            found[node.atom.name] = inner
        elif node.below and isinstance(inner, Mapping):
            _read(node.below, inner, found)
