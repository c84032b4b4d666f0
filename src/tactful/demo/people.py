"""The demo shop's customers: invented people in several markets, deterministic from a seed.

Every name is drawn from short lists of common given and family names and every address is at
`example.com`/`example.org` (reserved for documentation), so no record describes a real person. IP
addresses come from the documentation ranges (RFC 5737, RFC 3849) for the same reason.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")

EU_COUNTRIES = frozenset({"DE", "FR", "NL", "ES", "IT", "IE"})


@dataclass(frozen=True, slots=True)
class Market:
    country: str
    region_cities: tuple[tuple[str, str], ...]  # (region, city)
    locale: str
    timezone: str
    currency: str
    weight: int
    given: tuple[str, ...]
    family: tuple[str, ...]


_EN_GIVEN = ("Olivia", "Liam", "Emma", "Noah", "Ava", "James", "Mia", "Lucas", "Grace", "Ethan", "Chloe")
_EN_FAMILY = ("Smith", "Johnson", "Brown", "Taylor", "Walker", "Clarke", "Wright", "Hughes", "Lee", "Martin")

MARKETS: tuple[Market, ...] = (
    Market("DE", (("Berlin", "Berlin"), ("Bavaria", "Munich"), ("Hamburg", "Hamburg"),
                  ("North Rhine-Westphalia", "Cologne")),
           "de-DE", "Europe/Berlin", "EUR", 14,
           ("Lena", "Jonas", "Mia", "Felix", "Hannah", "Paul", "Lea", "Lukas"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Wagner")),
    Market("FR", (("Île-de-France", "Paris"), ("Auvergne-Rhône-Alpes", "Lyon"),
                  ("Provence-Alpes-Côte d'Azur", "Marseille")),
           "fr-FR", "Europe/Paris", "EUR", 10,
           ("Camille", "Louis", "Chloé", "Hugo", "Manon", "Jules", "Inès", "Arthur"),
           ("Martin", "Bernard", "Dubois", "Moreau", "Laurent", "Simon", "Michel")),
    Market("NL", (("North Holland", "Amsterdam"), ("South Holland", "Rotterdam"), ("Utrecht", "Utrecht")),
           "nl-NL", "Europe/Amsterdam", "EUR", 6,
           ("Sanne", "Daan", "Fleur", "Sem", "Lotte", "Bram", "Eva", "Thijs"),
           ("de Jong", "Jansen", "de Vries", "Bakker", "Visser", "Smit", "Meijer")),
    Market("ES", (("Community of Madrid", "Madrid"), ("Catalonia", "Barcelona"),
                  ("Valencian Community", "Valencia")),
           "es-ES", "Europe/Madrid", "EUR", 7,
           ("Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Pablo", "Carmen", "Diego"),
           ("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez")),
    Market("IT", (("Lazio", "Rome"), ("Lombardy", "Milan"), ("Campania", "Naples"), ("Tuscany", "Florence")),
           "it-IT", "Europe/Rome", "EUR", 7,
           ("Giulia", "Leonardo", "Sofia", "Francesco", "Aurora", "Lorenzo", "Alice", "Matteo"),
           ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo")),
    Market("IE", (("Leinster", "Dublin"), ("Munster", "Cork"), ("Connacht", "Galway")),
           "en-IE", "Europe/Dublin", "EUR", 3,
           ("Aoife", "Seán", "Niamh", "Cian", "Saoirse", "Oisín", "Ciara", "Conor"),
           ("Murphy", "Kelly", "O'Sullivan", "Walsh", "O'Brien", "Byrne", "Ryan")),
    Market("US", (("California", "Los Angeles"), ("California", "San Francisco"), ("California", "San Diego"),
                  ("California", "Sacramento"), ("California", "Oakland")),
           "en-US", "America/Los_Angeles", "USD", 18, _EN_GIVEN, _EN_FAMILY),
    Market("US", (("New York", "New York"), ("Texas", "Austin"), ("Washington", "Seattle"),
                  ("Illinois", "Chicago"), ("Florida", "Miami")),
           "en-US", "America/New_York", "USD", 15, _EN_GIVEN, _EN_FAMILY),
    Market("GB", (("England", "London"), ("England", "Manchester"), ("Scotland", "Edinburgh"),
                  ("Wales", "Cardiff")),
           "en-GB", "Europe/London", "GBP", 12, _EN_GIVEN, _EN_FAMILY),
    Market("CA", (("Ontario", "Toronto"), ("British Columbia", "Vancouver"), ("Quebec", "Montreal")),
           "en-CA", "America/Toronto", "CAD", 8, _EN_GIVEN, _EN_FAMILY),
)  # fmt: skip

AGE_RANGES: tuple[tuple[str, int, int, int], ...] = (
    # (range, youngest, oldest, weight)
    ("18-24", 18, 24, 14),
    ("25-34", 25, 34, 27),
    ("35-44", 35, 44, 23),
    ("45-54", 45, 54, 17),
    ("55-64", 55, 64, 11),
    ("65+", 65, 80, 8),
)
MINOR_RANGE = ("13-17", 13, 17)
LOYALTY_TIERS: tuple[tuple[str, int], ...] = (("bronze", 45), ("silver", 30), ("gold", 18), ("platinum", 7))
DEVICES: tuple[tuple[str, str, str, int], ...] = (
    # (device type, os name, user agent, weight)
    ("mobile", "iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", 30),
    ("mobile", "Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0.0.0 Mobile Safari/537.36", 25),
    ("desktop", "Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0.0.0 Safari/537.36", 20),
    ("desktop", "Mac OS X", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.5 Safari/605.1.15", 14),
    ("desktop", "Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", 4),
    ("tablet", "iPadOS", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", 7),
)  # fmt: skip
HEALTH_TOPICS = ("back pain", "sleep", "allergies", "pregnancy")
_DOC_NETS = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True, slots=True)
class Customer:
    """One invented person and the habits that drive their traffic."""

    index: int
    anonymous_id: str
    user_id: str | None  # None: never signs up (anonymous only)
    account_before_window: bool
    first_name: str
    last_name: str
    email: str
    phone: str
    country: str
    region: str
    city: str
    locale: str
    timezone: str
    currency: str
    age_range: str
    birthdate: date | None
    minor: bool
    loyalty_tier: str | None
    newsletter_opt_in: bool
    created_at: datetime | None  # accounts opened before the window
    consent: dict[str, bool] | None  # Segment `context.consent.categoryPreferences`, when a banner ran
    gpc: bool
    device_type: str
    os_name: str
    user_agent: str
    ip: str
    favourite_categories: tuple[str, ...]
    engagement: float  # mean number of visits over three weeks
    health_interest: str | None  # special-category data (GDPR Art. 9), sent by a few wellness fans

    @property
    def regime(self) -> str | None:
        """The privacy regime the engine's defaults apply to this person (for tests and reports)."""
        if self.country in EU_COUNTRIES:
            return "gdpr"
        if self.country == "US" and self.region == "California":
            return "ccpa"
        return None


def _weighted(rng: random.Random, items: tuple[T, ...], weights: list[int]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]


def _consent_preferences(rng: random.Random, *, eu: bool) -> dict[str, bool] | None:
    # Most EU visitors answered a banner; elsewhere few did. Acceptance rates differ by category.
    if rng.random() > (0.7 if eu else 0.2):
        return None
    if rng.random() < 0.45:
        return {"Analytics": True, "Personalization": True, "Advertising": True}
    if rng.random() < 0.4:
        return {"Analytics": False, "Personalization": False, "Advertising": False}
    return {
        "Analytics": rng.random() < 0.7,
        "Personalization": rng.random() < 0.6,
        "Advertising": rng.random() < 0.3,
    }


def make_customer(seed: int, index: int, *, window_start: datetime, categories: tuple[str, ...]) -> Customer:
    """Customer number `index` of the shop for `seed`: independent of every other customer."""
    rng = random.Random(f"tactful-demo:{seed}:customer:{index}")
    market = _weighted(rng, MARKETS, [m.weight for m in MARKETS])
    region, city = rng.choice(market.region_cities)
    first, last = rng.choice(market.given), rng.choice(market.family)
    minor = rng.random() < 0.025
    if minor:
        age_range, youngest, oldest = MINOR_RANGE
    else:
        age_range, youngest, oldest, _ = _weighted(rng, AGE_RANGES, [a[3] for a in AGE_RANGES])
    has_account = rng.random() < 0.65
    account_before = has_account and rng.random() < 0.6
    birthdate = None
    if has_account and rng.random() < 0.3:
        age_days = rng.randint(youngest * 365 + 1, oldest * 365 + 360)
        birthdate = window_start.date() - timedelta(days=age_days)
    device_type, os_name, user_agent, _ = _weighted(rng, DEVICES, [d[3] for d in DEVICES])
    favourites = tuple(rng.sample(categories, k=rng.choice((1, 2, 2, 3))))
    local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and (ch.isalnum() or ch == "."))
    return Customer(
        index=index,
        anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        user_id=f"u{seed % 1000:03d}{index:06d}" if has_account else None,
        account_before_window=account_before,
        first_name=first,
        last_name=last,
        email=f"{local}.{index}@{rng.choice(('example.com', 'example.org'))}",
        phone=f"+1-202-555-{rng.randint(100, 199):04d}",  # the 555-01xx block is reserved for fiction
        country=market.country,
        region=region,
        city=city,
        locale=market.locale,
        timezone=market.timezone,
        currency=market.currency,
        age_range=age_range,
        birthdate=birthdate,
        minor=minor,
        loyalty_tier=_weighted(rng, tuple(t for t, _ in LOYALTY_TIERS), [w for _, w in LOYALTY_TIERS])
        if account_before and rng.random() < 0.8
        else None,
        newsletter_opt_in=has_account and not minor and rng.random() < 0.45,
        created_at=window_start - timedelta(days=rng.randint(20, 1200), seconds=rng.randint(0, 86399))
        if account_before
        else None,
        consent=_consent_preferences(rng, eu=market.country in EU_COUNTRIES),
        gpc=rng.random() < (0.3 if region == "California" else 0.03),
        device_type=device_type,
        os_name=os_name,
        user_agent=user_agent,
        ip=f"{rng.choice(_DOC_NETS)}.{rng.randint(1, 254)}",
        favourite_categories=favourites,
        engagement=rng.choice((0.7, 1.0, 1.5, 2.0, 3.0, 5.0)),
        health_interest=rng.choice(HEALTH_TOPICS)
        if "wellness" in favourites and rng.random() < 0.3
        else None,
    )
