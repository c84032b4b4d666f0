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

from tactful.catalog.model import Catalog

_SCALARS = (str, int, float, bool)


def request_atoms(catalog: Catalog, context: Mapping[str, object]) -> dict[str, object]:
    """The declared context atoms present in `context`, by atom name."""
    found: dict[str, object] = {}
    for path, atom in catalog.context_atoms:
        value: object = context
        for part in path:
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            if isinstance(value, _SCALARS) and value != "":
                found[atom.name] = value
    return found
