"""The demo traffic speaks the demo catalog's vocabulary: only the deliberate noise is undeclared."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from tactful.catalog.loader import load_catalog
from tactful.collect.message import for_catalog
from tactful.demo.generate import NOISE_FIELDS, DemoConfig, DemoShop
from tactful.main import default_catalog_path

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def test_only_the_deliberate_noise_is_dropped() -> None:
    catalog = load_catalog(default_catalog_path())
    dropped: Counter[str] = Counter()
    messages = 0
    for message in DemoShop(DemoConfig(seed=21, customers=400, days=14), now=NOW).messages():
        dropped.update(catalog.filter_message(for_catalog(message)).dropped)
        messages += 1
    assert set(dropped) <= NOISE_FIELDS, set(dropped) - NOISE_FIELDS
    # Noise is there to be counted, and stays a small share.
    assert dropped
    assert sum(dropped.values()) < 0.05 * messages
