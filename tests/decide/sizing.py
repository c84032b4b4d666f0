"""Builders for audience size tests: the demo catalog's policy, a lineup whose one placement has a
1:many experience over the request (Sweden) and one over the stored profile (a Swedish address), and
a sketch store that keeps what it was given."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.config import PolicySettings
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.decide import lineup
from tactful.decide.audience_size import AudienceSizes, Batch
from tactful.decide.audience_store import window
from tactful.decide.sketch import Sketch, sketch_key
from tactful.decide.walk import Channel, Placement, Variation
from tactful.main import default_catalog_path

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DEMO: Catalog = load_catalog(default_catalog_path())
FROM_SWEDEN = {"context.location.country": "SE"}
"""Read from the request: counted from decisions only (`audience_count` cannot evaluate it)."""
LIVES_IN_SWEDEN = {"traits.country": "SE"}
"""Read from the stored profile: counted from decisions and from the stored profiles."""
AUDIENCES: Mapping[str, Mapping[str, Any]] = {"from_sweden": FROM_SWEDEN, "lives_in_sweden": LIVES_IN_SWEDEN}
REQUEST_KEY = sketch_key("from_sweden", FROM_SWEDEN)
STORED_KEY = sketch_key("lives_in_sweden", LIVES_IN_SWEDEN)
PLACEMENT = "home_hero"


def policy() -> PolicyContext:
    """The demo catalog under the default regimes (GDPR for everyone: the controller is in DE)."""
    settings = PolicySettings()
    return PolicyContext(DEMO, settings, configured_regimes(settings))


def _published(key: str, audience: str) -> lineup.Published:
    snapshot = {
        "placement": PLACEMENT, "description": "", "priority": 1, "status": "live",
        "starts_at": None, "ends_at": None, "holdout": 0.0, "strategy": "rule",
        "significant_effect": False, "namespace": None, "audience": audience,
        "variations": [{"key": "hej", "content": {"headline": "Hej!"}, "weight": 1.0}],
        "seed": f"seed-{key}",
    }  # fmt: skip
    return lineup.Published(key, AT - timedelta(days=30), 1, snapshot)


def built() -> lineup.Lineup:
    """What a process serves after a reload: both 1:many audiences held to k, in shadow."""
    placements = {PLACEMENT: Placement(PLACEMENT, Channel.WEB, Variation("default", {"headline": "Hi"}))}
    published = [
        _published("swedish_visitors", "from_sweden"),
        _published("swedish_customers", "lives_in_sweden"),
    ]
    return lineup.build(
        placements, published, AUDIENCES, catalog=DEMO, catalog_version="test", mark=(0, None)
    )


class Kept:
    """A `SizeStore` in memory that keeps every digest it was given, by sketch key and day."""

    def __init__(self) -> None:
        self.added: dict[tuple[str, date], set[bytes]] = defaultdict(set)

    def add(self, session: Session, batch: Batch) -> None:
        for where, digests in batch.items():
            self.added[where].update(digests)

    def count(self, session: Session, keys: Collection[str], *, today: date) -> dict[str, float]:
        days = set(window(today))
        counted = {}
        for key in keys:
            sketch = Sketch()
            for (sketch_key_, day), digests in self.added.items():
                if sketch_key_ == key and day in days:
                    sketch.update(digests)
            counted[key] = sketch.estimate()
        return counted

    def digests(self, key: str) -> set[bytes]:
        """Every digest added under `key`, whatever the day."""
        return set().union(*(d for (k, _), d in self.added.items() if k == key))


def sizes(store: Kept | None = None, *, k: int = 3) -> AudienceSizes:
    return AudienceSizes(store or Kept(), k=k, secret=lambda: b"audience-size-test-key-0123456789")
