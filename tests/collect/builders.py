"""Builders for collection tests: a small real catalog and the policies to run it under, messages,
and a fresh database."""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cache
from typing import Any

from tactful.catalog.loader import parse_catalog
from tactful.catalog.model import Catalog
from tactful.collect import store
from tactful.config import Limits, PolicySettings
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tests.catalog.builders import demo
from tests.profiles.builders import T0

LIMITS = Limits()
"""The default limits, which a deployment that sets none runs under."""

SMALL_CATALOG = """
version: 1
controller: {name: Example Shop, contact: privacy@shop.example.com, establishment: "US"}
data_subjects: [{name: customers}]
atoms:
  context.page.url: {category: user.behavior.browsing, purposes: [analytics], retention: 13mo}
  context.locale: {category: user.preference.language, purposes: [essential, analytics], retention: 13mo}
  context.library.name: {category: system.operations, purposes: [essential, analytics], retention: 13mo}
  context.library.version: {category: system.operations, purposes: [essential, analytics], retention: 13mo}
  context.traits.email:
    {category: user.contact.email, identifier: true, purposes: [essential], retention: request}
  context.traits.age_range:
    {category: user.demographic.age_range, purposes: [essential, analytics], retention: 2y}
  traits.first_name:
    {category: user.name, identifier: true, purposes: [essential, personalization.individual], retention: 3y}
  traits.email: {category: user.contact.email, identifier: true, purposes: [essential], retention: 3y}
  traits.age_range: {category: user.demographic.age_range, purposes: [essential, analytics], retention: 2y}
  events.product_viewed:
    category: user.behavior.browsing
    purposes: [analytics]
    retention: 13mo
    properties: [product_id, category, price, query, path, url, title]
  events.page_viewed:
    {category: user.behavior.browsing, purposes: [analytics], retention: 13mo, properties: [name, path]}
  events.screen_viewed:
    {category: user.behavior.browsing, purposes: [analytics], retention: 13mo, properties: [name]}
  events.group: {category: user.workplace, purposes: [analytics], retention: 2y, properties: [name]}
"""
"""A handful of fields declared the way the demo catalog declares them, for tests of collection that
are not about the catalog: everything else is dropped. Its events: Product Viewed, page, screen and
group."""

OPEN = PolicySettings(establishment_country="US", regimes={"ccpa": {"establishments": ["US"]}})
"""A deployment whose every visitor falls under CCPA: nothing needs a grant before it is stored (an
opt-out still counts), for tests that are not about consent."""


@cache
def small_catalog() -> Catalog:
    catalog, problems = parse_catalog(SMALL_CATALOG, file="small.yaml")
    assert catalog is not None, problems
    return catalog


def policy_context(catalog: Catalog, settings: PolicySettings | None = None) -> PolicyContext:
    """The gate's inputs for `catalog` under `settings` (the defaults unless given), with collection's
    withdrawal hook, as the application wires them."""
    settings = settings or PolicySettings()
    return PolicyContext(
        catalog, settings, configured_regimes(settings), on_withdrawal=store.withdrawal_hook(catalog)
    )


@cache
def open_policy() -> PolicyContext:
    """The small catalog under `OPEN`, one context for every test (its gate compiled once)."""
    return policy_context(small_catalog(), OPEN)


@cache
def demo_policy() -> PolicyContext:
    """The demo catalog under the default policy (GDPR for a controller in Germany)."""
    return policy_context(demo())


def uid(label: str = "u") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def track(event: str = "Product Viewed", *, at: datetime = T0, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "anonymousId": uid("anon"),
        "messageId": uid("msg"),
        "timestamp": at.isoformat(),
        "properties": {"product_id": "p-1", "category": "books"},
    }
    message.update(extra)
    return message


def identify(*, at: datetime = T0, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "identify",
        "userId": uid("user"),
        "messageId": uid("msg"),
        "timestamp": at.isoformat(),
        "traits": {"first_name": "Ada", "age_range": "25-34"},
    }
    message.update(extra)
    return message
