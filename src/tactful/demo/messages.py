"""Builders of Segment-spec messages (https://segment.com/docs/connections/spec/) for one customer.

A `Writer` holds the customer, a seeded RNG and the clock of one visit; each method appends one
message and returns it. Only fields the demo catalog declares are written, apart from the
deliberate noise in `NOISE_FIELDS`, which shows data minimisation at work.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tactful.demo.people import Customer

Message = dict[str, Any]

SHOP_URL = "https://shop.example.com"
SHOP_TITLE = "Tactful Demo Shop"
BROWSER_LIBRARY = {"name": "analytics.js", "version": "next-1.72.0"}
SERVER_LIBRARY = {"name": "analytics-python", "version": "2.3.3"}

NOISE_FIELDS: frozenset[str] = frozenset({"properties.color", "properties.size", "traits.favorite_color"})
"""Fields the catalog does not declare, sent on purpose by a small share of messages."""


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, as analytics.js writes it (sortable as text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    source: str
    medium: str
    term: str | None = None
    content: str | None = None

    def as_context(self) -> dict[str, str]:
        fields = {"name": self.name, "source": self.source, "medium": self.medium}
        if self.term:
            fields["term"] = self.term
        if self.content:
            fields["content"] = self.content
        return fields

    def query(self) -> str:
        return f"?utm_source={self.source}&utm_medium={self.medium}&utm_campaign={self.name}"


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    name: str
    category: str | None = None
    search: str = ""


@dataclass(slots=True)
class Writer:
    """Writes the messages of one visit, advancing its clock."""

    customer: Customer
    rng: random.Random
    clock: datetime
    until: datetime
    logged_in: bool = False
    campaign: Campaign | None = None
    referrer: str = ""
    page: Page = field(default_factory=lambda: Page("/", SHOP_TITLE, "Home"))
    out: list[Message] = field(default_factory=list)

    def tick(self, low: float = 2.0, high: float = 60.0) -> None:
        self.clock += timedelta(seconds=self.rng.uniform(low, high))

    def _message(self, kind: str, *, browser: bool = True) -> Message:
        c = self.customer
        message: Message = {
            "type": kind,
            "messageId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "timestamp": iso(self.clock),
        }
        if browser:
            message["anonymousId"] = c.anonymous_id
        if c.user_id is not None and (self.logged_in or not browser):
            message["userId"] = c.user_id
        if not browser:
            message["context"] = {"library": dict(SERVER_LIBRARY)}
            return message
        context: dict[str, Any] = {
            "ip": c.ip,
            "locale": c.locale,
            "timezone": c.timezone,
            "userAgent": c.user_agent,
            "location": {"country": c.country, "region": c.region, "city": c.city},
            "device": {"type": c.device_type},
            "os": {"name": c.os_name},
            "page": {
                "url": SHOP_URL + self.page.path + self.page.search,
                "path": self.page.path,
                "title": self.page.title,
                "referrer": self.referrer,
                "search": self.page.search,
            },
            "library": dict(BROWSER_LIBRARY),
        }
        if self.campaign is not None:
            context["campaign"] = self.campaign.as_context()
        if c.consent is not None:
            context["consent"] = {"categoryPreferences": dict(c.consent)}
        if c.gpc:
            context["gpc"] = True
        message["context"] = context
        return message

    def _emit(self, message: Message) -> Message | None:
        # Visits that would run past "now" are cut there: the window ends at `until`.
        if self.clock > self.until:
            return None
        self.out.append(message)
        return message

    def page_view(self, page: Page) -> None:
        if self.out:
            self.referrer = SHOP_URL + self.page.path + self.page.search
        self.page = page
        message = self._message("page")
        properties: dict[str, Any] = {
            "url": SHOP_URL + page.path + page.search,
            "path": page.path,
            "title": page.title,
            "referrer": self.referrer,
            "search": page.search,
            "name": page.name,
        }
        if page.category:
            properties["category"] = page.category
        message["properties"] = properties
        self._emit(message)

    def track(self, event: str, properties: dict[str, Any], *, browser: bool = True) -> None:
        message = self._message("track", browser=browser)
        message["event"] = event
        message["properties"] = properties
        self._emit(message)

    def identify(self, traits: dict[str, Any]) -> None:
        message = self._message("identify")
        message["traits"] = traits
        self._emit(message)

    def alias(self) -> None:
        assert self.customer.user_id is not None
        message = self._message("alias")
        message.pop("anonymousId", None)
        message["previousId"] = self.customer.anonymous_id
        message["userId"] = self.customer.user_id
        self._emit(message)


def full_traits(customer: Customer, *, created_at: datetime, rng: random.Random) -> dict[str, Any]:
    """The traits a sign-up form or a first sign-in sends."""
    traits: dict[str, Any] = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "age_range": customer.age_range,
        "country": customer.country,
        "city": customer.city,
        "newsletter_opt_in": customer.newsletter_opt_in,
        "created_at": iso(created_at),
    }
    if rng.random() < 0.4:
        traits["phone"] = customer.phone
    if customer.birthdate is not None:
        traits["birthdate"] = customer.birthdate.isoformat()
    if customer.loyalty_tier is not None:
        traits["loyalty_tier"] = customer.loyalty_tier
    if customer.health_interest is not None and customer.newsletter_opt_in:
        # Chosen in the wellness newsletter's preferences: stored, but unusable without explicit consent.
        traits["health_interest"] = customer.health_interest
    if rng.random() < 0.02:
        traits["favorite_color"] = rng.choice(("teal", "amber", "navy"))
    return traits
