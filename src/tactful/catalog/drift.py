"""Catalog drift: the fields senders send that the catalog does not declare, most frequent first.

Collection drops such fields before storage and counts them per field name (a name that does not
look like a field name is counted as `(unnamed field)`, names past a request's first hundred as
`(other fields)`). This turns those counts into a report: what to declare, or to stop sending. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OTHER_FIELDS = "(other fields)"
"""Where collection counts the names past the first hundred of one request."""
UNNAMED_FIELD = "(unnamed field)"
"""Where collection counts a field whose name does not look like one (it could be personal data)."""
AGGREGATES = frozenset({OTHER_FIELDS, UNNAMED_FIELD})


@dataclass(frozen=True)
class FieldDrift:
    field: str
    count: int
    aggregate: bool = False
    """True for a count that stands for several fields whose names are not kept."""


@dataclass(frozen=True)
class Drift:
    fields: tuple[FieldDrift, ...]

    @property
    def total(self) -> int:
        return sum(f.count for f in self.fields)


def drift(counts: Mapping[str, int]) -> Drift:
    """The dropped-field counts as a report: most frequent first, then by name; zeros left out."""
    ranked = sorted(((name, n) for name, n in counts.items() if n > 0), key=lambda item: (-item[1], item[0]))
    return Drift(tuple(FieldDrift(name, n, name in AGGREGATES) for name, n in ranked))
