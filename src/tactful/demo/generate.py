"""The synthetic demo shop: products, customers and a few weeks of traffic ending at `now`.

Pure and deterministic: the same `DemoConfig` and `now` give the same messages, byte for byte.
Traffic is produced lazily, visit by visit in time order, so memory holds the customers, their
planned visits (a few small records each) and one batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from tactful.demo.messages import NOISE_FIELDS, Message, iso
from tactful.demo.people import Customer, make_customer
from tactful.demo.shop import CATEGORIES, Product, by_category, make_products
from tactful.demo.traffic import Visit, VisitWalker, plan_visits

__all__ = [
    "NOISE_FIELDS",
    "DemoConfig",
    "DemoShop",
    "Message",
    "generate",
    "iso",
]


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """How big the demo is. The defaults give about 3,000 customers and 100k messages over three weeks."""

    seed: int = 7
    customers: int = 3000
    products: int = 120
    days: int = 21

    def __post_init__(self) -> None:
        if self.customers < 1 or self.products < len(CATEGORIES) or self.days < 1:
            raise ValueError("a demo needs a customer, a product per category and a day")


class DemoShop:
    """The shop for one configuration, with its traffic in the window (now - days, now]."""

    def __init__(self, config: DemoConfig, *, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.config = config
        self.end = now
        self.start = now - timedelta(days=config.days)
        self.products: tuple[Product, ...] = make_products(config.seed, config.products)
        self.customers: tuple[Customer, ...] = tuple(
            make_customer(config.seed, i, window_start=self.start, categories=CATEGORIES)
            for i in range(config.customers)
        )
        visits = [v for c in self.customers for v in plan_visits(config.seed, c, start=self.start, end=now)]
        visits.sort(key=lambda v: (v.at, v.customer, v.number))
        self.visits: tuple[Visit, ...] = tuple(visits)
        self._walker = VisitWalker(config.seed, by_category(self.products), now)

    def messages(self) -> Iterator[Message]:
        """Every message, visit by visit in the order the visits start."""
        for visit in self.visits:
            yield from self._walker.messages(self.customers[visit.customer], visit)

    def batches(self, size: int = 500) -> Iterator[list[Message]]:
        """The messages in lists of at most `size`."""
        if size < 1:
            raise ValueError("batch size must be positive")
        batch: list[Message] = []
        for message in self.messages():
            batch.append(message)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    def count(self) -> int:
        """How many messages `messages()` yields (it walks them once without keeping them)."""
        return sum(1 for _ in self.messages())


def generate(
    *, now: datetime, config: DemoConfig | None = None, batch_size: int = 500
) -> Iterator[list[Message]]:
    """The demo traffic for `config` ending at `now`, in batches of `batch_size` messages."""
    return DemoShop(config or DemoConfig(), now=now).batches(batch_size)
