"""Computed atoms, maintained incrementally from each stored event and combined when profiles merge.

Pure (`recording` stores them). Each aggregate keeps a `state` from which its `value` follows,
chosen so that adding events one by one, in any order and across merges, gives the same result as
recomputing from the whole list: per-category counts rather than only their argmax, and an exact
decimal sum rather than a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from tactful.profiles.models import Computed

LAST_SEEN = "computed.last_seen"
EVENT_COUNTS = "computed.event_counts"
FAVORITE_CATEGORY = "computed.favorite_category"
LIFETIME_VALUE = "computed.lifetime_value"

CATEGORY_EVENTS = frozenset(
    {
        "Product Viewed",
        "Product Clicked",
        "Product Added",
        "Product Added to Wishlist",
        "Product List Viewed",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
    }
)
"""Events that show interest in a category. Removals and refunds are left out on purpose."""

ORDER_EVENT = "Order Completed"


@dataclass(frozen=True)
class Signal:
    """What one event contributes to the computed atoms."""

    key: str | None
    seen_at: datetime
    categories: tuple[str, ...] = ()
    revenue: Decimal | None = None


def _timestamp(raw: object, default: datetime) -> datetime:
    if isinstance(raw, datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return default
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return default


def _amount(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:  # pragma: no cover - str() of a finite number always parses
        return None


def _category(raw: object) -> str | None:
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    return None


def read_signal(message: Mapping[str, object], at: datetime) -> Signal:
    """Extract what the computed atoms need from one stored Segment message."""
    kind = message.get("type")
    name = message.get("event")
    key = name if kind == "track" and isinstance(name, str) else kind if isinstance(kind, str) else None
    seen_at = _timestamp(message.get("timestamp"), at)
    properties = message.get("properties")
    if kind != "track" or not isinstance(properties, Mapping):
        return Signal(key=key, seen_at=seen_at)
    categories: list[str] = []
    if name in CATEGORY_EVENTS:
        own = _category(properties.get("category"))
        if own:
            categories.append(own)
        products = properties.get("products")
        if isinstance(products, list):
            for product in products:
                found = _category(product.get("category")) if isinstance(product, Mapping) else None
                if found:
                    categories.append(found)
    revenue = None
    if name == ORDER_EVENT:
        revenue = _amount(properties.get("revenue"))
        if revenue is None:
            revenue = _amount(properties.get("total"))
    return Signal(key=key, seen_at=seen_at, categories=tuple(categories), revenue=revenue)


# -- aggregates: (value, state) pairs -------------------------------------------------------------

Pair = tuple[object, object]


def favorite(counts: Mapping[str, int]) -> str | None:
    """The most frequent category; ties go to the alphabetically first, so the answer is stable."""
    if not counts:
        return None
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


MAX_KEYS = 500
"""Distinct event names or categories one profile counts: clients choose these strings, so a row must
not grow without bound. Past the cap, new names are not counted (known ones still are)."""


def _add_counts(a: object, b: Mapping[str, int]) -> dict[str, int]:
    merged = dict(a) if isinstance(a, Mapping) else {}
    for name, count in b.items():
        if name in merged or len(merged) < MAX_KEYS:
            merged[name] = int(merged.get(name, 0)) + count
    return merged


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _later(a: object, b: object) -> object:
    if not isinstance(a, str):
        return b
    if not isinstance(b, str):
        return a
    return a if _timestamp(a, _EPOCH) >= _timestamp(b, _EPOCH) else b


def _decimal(state: object) -> Decimal:
    if isinstance(state, Mapping) and isinstance(state.get("sum"), str):
        return Decimal(state["sum"])
    return Decimal(0)


def _ltv(total: Decimal) -> Pair:
    return float(total), {"sum": str(total)}


class Running(Protocol):
    """An aggregate being folded over a batch: `add` after `add`, then one `pair`, equal to the
    pair that `Aggregate.add` gives event by event, without its per-event copies and re-ranking."""

    def add(self, signal: Signal) -> None: ...

    def pair(self) -> Pair: ...


@dataclass(frozen=True)
class Aggregate:
    """How one computed atom takes an event in and how two profiles' values combine."""

    applies: Callable[[Signal], bool]
    add: Callable[[Pair | None, Signal], Pair]
    combine: Callable[[Pair, Pair], Pair]
    start: Callable[[Pair | None], Running]
    """A running fold from a stored pair (None: from nothing)."""


def _counts_of(pair: Pair | None) -> Mapping[str, int]:
    if pair is None:
        return {}
    state = pair[1]
    return state if isinstance(state, Mapping) else {}


class _LastSeen:
    """The latest moment as a datetime, turned into text once, at the end."""

    def __init__(self, pair: Pair | None) -> None:
        value = None if pair is None else pair[0]
        self.value: object = value
        self.moment = _timestamp(value, _EPOCH) if isinstance(value, str) else None

    def add(self, signal: Signal) -> None:
        moment = signal.seen_at.astimezone(UTC)
        if self.moment is None or moment > self.moment:
            self.moment, self.value = moment, None  # the text of a moment of our own is made last

    def pair(self) -> Pair:
        if self.value is None and self.moment is not None:
            self.value = _iso(self.moment)
        return self.value, None


class _Counts:
    """Counts changed in place (a private copy), the favorite chosen once, at the end."""

    def __init__(self, counts: Mapping[str, int], names: Callable[[Signal], Iterable[str]], favorite: bool):
        self.counts, self.names, self.favorite = dict(counts), names, favorite

    def add(self, signal: Signal) -> None:
        counts = self.counts
        for name in self.names(signal):
            if name in counts or len(counts) < MAX_KEYS:
                counts[name] = int(counts.get(name, 0)) + 1

    def pair(self) -> Pair:
        return _with_favorite(self.counts) if self.favorite else (self.counts, None)


class _Sum:
    def __init__(self, pair: Pair | None) -> None:
        self.total = _decimal(None if pair is None else pair[1])

    def add(self, signal: Signal) -> None:
        self.total += signal.revenue or Decimal(0)

    def pair(self) -> Pair:
        return _ltv(self.total)


def _event_counts(pair: Pair | None) -> Mapping[str, int]:
    value = None if pair is None else pair[0]
    return value if isinstance(value, Mapping) else {}


AGGREGATES: Mapping[str, Aggregate] = {
    LAST_SEEN: Aggregate(
        applies=lambda s: True,
        add=lambda pair, s: (_later(None if pair is None else pair[0], _iso(s.seen_at)), None),
        combine=lambda a, b: (_later(a[0], b[0]), None),
        start=_LastSeen,
    ),
    EVENT_COUNTS: Aggregate(
        applies=lambda s: s.key is not None,
        add=lambda pair, s: (_add_counts(None if pair is None else pair[0], {str(s.key): 1}), None),
        combine=lambda a, b: (_add_counts(a[0], b[0] if isinstance(b[0], Mapping) else {}), None),
        start=lambda pair: _Counts(_event_counts(pair), lambda s: (str(s.key),), favorite=False),
    ),
    FAVORITE_CATEGORY: Aggregate(
        applies=lambda s: bool(s.categories),
        add=lambda pair, s: _with_favorite(_add_counts(_counts_of(pair), _tally(s.categories))),
        combine=lambda a, b: _with_favorite(_add_counts(_counts_of(a), _counts_of(b))),
        start=lambda pair: _Counts(_counts_of(pair), lambda s: s.categories, favorite=True),
    ),
    LIFETIME_VALUE: Aggregate(
        applies=lambda s: s.revenue is not None,
        add=lambda pair, s: _ltv(_decimal(None if pair is None else pair[1]) + (s.revenue or Decimal(0))),
        combine=lambda a, b: _ltv(_decimal(a[1]) + _decimal(b[1])),
        start=_Sum,
    ),
}


def _tally(categories: tuple[str, ...]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for name in categories:
        tally[name] = tally.get(name, 0) + 1
    return tally


def _with_favorite(counts: dict[str, int]) -> Pair:
    return favorite(counts), counts


def combine_rows(source: Computed, target: Computed) -> None:
    """Fold `source`'s aggregate into `target` (a merge). Atoms without a rule keep the newer row."""
    aggregate = AGGREGATES.get(target.atom)
    if aggregate is None:
        if source.updated_at > target.updated_at:
            target.value, target.state = source.value, source.state
    else:
        target.value, target.state = aggregate.combine(
            (target.value, target.state), (source.value, source.state)
        )
    target.updated_at = max(target.updated_at, source.updated_at)
    target.expires_at = max(target.expires_at, source.expires_at)
