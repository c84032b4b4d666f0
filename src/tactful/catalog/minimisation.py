"""How long each kind of data should be kept at most: the shipped minimisation defaults, and the
warnings `tactful catalog check` and the server print for a catalog that keeps data longer.

| kind                | which atoms                                                         | at most   |
|---------------------|---------------------------------------------------------------------|-----------|
| precise location    | any stored atom of a category under `user.location.precise`         | 24 hours  |
| purchases           | event atoms of `user.behavior.purchase` kept across sessions (an    | 24 months |
|                     | essential event, or one serving a purpose above the session level)  | after the |
|                     |                                                                     | latest    |
| session behaviour   | event and stored context atoms of a `user.behavior` category whose  | 30 days   |
|                     | purposes reach no further than the session (`analytics`,            |           |
|                     | `essential`, `personalization.behavioral`)                          |           |
| identified events   | every other event atom                                              | 13 months |

Purchases are measured from the subject's latest purchase (`retention_anchor: latest`), not from
each row: a customer's order history stays whole while they keep buying and goes 24 months after
their last order. The decision log (13 months, `decision_log_retention_days`) and the quarantine
(its own period) are settings, not atoms. A catalog may anchor other event atoms on the latest row
only with a warning: that keeps every row as long as the person stays active.

Why warnings and not refusals: these periods are Tactful's minimisation defaults, not the law's
(a shop may have to keep order records for years under commercial law, and may document that in
its own catalog). Refusing would stop a deployment from starting on an upgrade over a judgement the
operator is entitled to make; a warning on every check and at every start keeps it in view. Each
warning names the atom, the period and the ceiling, so the operator can shorten it or document it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from tactful.catalog.model import Atom, Catalog, CatalogProblem, Source, covers
from tactful.catalog.retention import Anchor, format_retention
from tactful.types import Purpose


class Kind(StrEnum):
    """The kinds of data the minimisation defaults name."""

    PRECISE_LOCATION = "precise location"
    PURCHASES = "purchases"
    SESSION_BEHAVIOUR = "session behaviour"
    IDENTIFIED_EVENTS = "identified events"


CEILINGS: Mapping[Kind, timedelta] = MappingProxyType(
    {
        Kind.PRECISE_LOCATION: timedelta(hours=24),
        Kind.PURCHASES: timedelta(days=24 * 30),
        Kind.SESSION_BEHAVIOUR: timedelta(days=30),
        Kind.IDENTIFIED_EVENTS: timedelta(days=13 * 30),
    }
)
"""The longest retention each kind should have (months of 30 days, as `retention.py` counts)."""

SESSION_PURPOSES: frozenset[Purpose] = frozenset({Purpose.ESSENTIAL, Purpose.ANALYTICS, Purpose.BEHAVIORAL})
"""Purposes served within a session (or in aggregate): data serving only these is session behaviour."""


def kind_of(atom: Atom) -> Kind | None:
    """Which minimisation default applies to `atom`; None for atoms the defaults leave alone
    (request-only fields, traits and computed atoms apart from precise location)."""
    if not atom.stored:
        return None
    if any(covers("user.location.precise", c.name) for c in atom.categories):
        return Kind.PRECISE_LOCATION
    behaviour = covers("user.behavior", atom.category)
    within_session = atom.purposes <= SESSION_PURPOSES and not atom.essential
    if atom.source is Source.EVENT:
        if covers("user.behavior.purchase", atom.category) and not within_session:
            return Kind.PURCHASES
        if behaviour and within_session:
            return Kind.SESSION_BEHAVIOUR
        return Kind.IDENTIFIED_EVENTS
    if atom.source is Source.CONTEXT and behaviour and within_session:
        return Kind.SESSION_BEHAVIOUR
    return None


def retention_warnings(catalog: Catalog) -> list[CatalogProblem]:
    """A warning for each atom kept longer than the minimisation default of its kind, and for
    each atom anchored on the latest row that is not a purchase."""
    found: list[CatalogProblem] = []
    for atom in catalog.atom_list:
        kind = kind_of(atom)
        if kind is not None and atom.retention > CEILINGS[kind]:
            ceiling = format_retention(CEILINGS[kind])
            found.append(
                CatalogProblem(
                    catalog.source,
                    f"kept {format_retention(atom.retention)}, longer than the {ceiling} "
                    f"Tactful's minimisation defaults give {kind.value}",
                    f"shorten 'retention:' to at most {ceiling}, or record why it must be longer",
                    atom=atom.name,
                )
            )
        if atom.retention_anchor is Anchor.LATEST and kind is not Kind.PURCHASES:
            found.append(
                CatalogProblem(
                    catalog.source,
                    "'retention_anchor: latest' keeps every row as long as the person stays active; "
                    "the defaults anchor only purchases so",
                    "remove 'retention_anchor' to count from each row",
                    atom=atom.name,
                )
            )
    return found
