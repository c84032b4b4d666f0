"""The simulated visitors of `tactful simulate`: who arrives, from where, on what, with which consent
choice, and when they come back. Pure and deterministic from (seed, run, window).

Unlike the seeded customers (`demo.people`), these arrive new during the run: an anonymous id each,
a banner choice on their first visit, and for some an account opened on the first or second visit.
The markets include Sweden, so that the demo's `1:many` audience (Swedish visitors on a phone) can
reach its k. Names and addresses are invented; IP addresses are in the documentation ranges.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from tactful.demo.shop import CATEGORIES

T = TypeVar("T")


class Choice(StrEnum):
    """What a visitor answered on the shop's consent banner."""

    ACCEPT_ALL = "accept all"
    PARTIAL = "analytics and session only"
    NECESSARY_ONLY = "necessary only"
    NO_ANSWER = "no answer"


PERSONALIZATION = (
    "personalization.segments",
    "personalization.behavioral",
    "personalization.predictive",
    "personalization.individual",
)
PURPOSES: dict[Choice, dict[str, bool]] = {
    Choice.ACCEPT_ALL: {"analytics": True, **dict.fromkeys(PERSONALIZATION, True)},
    Choice.PARTIAL: {
        "analytics": True,
        "personalization.segments": True,
        "personalization.behavioral": True,
        "personalization.predictive": False,
        "personalization.individual": False,
    },
    Choice.NECESSARY_ONLY: {"analytics": False, **dict.fromkeys(PERSONALIZATION, False)},
    Choice.NO_ANSWER: {},
}
"""The purposes each banner answer records (`PUT /v1/consent`); no answer records nothing."""


@dataclass(frozen=True, slots=True)
class Market:
    country: str
    region: str
    locale: str
    weight: int
    given: tuple[str, ...]
    outdoor_lean: float = 1.0
    """How much more often than elsewhere people here favour the outdoor category."""


MARKETS: tuple[Market, ...] = (
    Market("SE", "Stockholm", "sv-SE", 18, ("Astrid", "Elias", "Maja", "Oskar", "Ebba", "Hugo"), 2.5),
    Market("DE", "Bavaria", "de-DE", 20, ("Lena", "Jonas", "Mia", "Felix", "Hannah", "Paul"), 1.3),
    Market("FR", "Île-de-France", "fr-FR", 10, ("Camille", "Louis", "Chloé", "Hugo", "Manon")),
    Market("NL", "Utrecht", "nl-NL", 7, ("Sanne", "Daan", "Fleur", "Sem", "Lotte")),
    Market("GB", "England", "en-GB", 12, ("Olivia", "Liam", "Emma", "Noah", "Grace")),
    Market("US", "California", "en-US", 12, ("Ava", "James", "Mia", "Lucas", "Ethan")),
    Market("US", "New York", "en-US", 11, ("Chloe", "Mason", "Ella", "Logan", "Zoe")),
    Market("ES", "Catalonia", "es-ES", 5, ("Lucía", "Mateo", "Martina", "Pablo", "Sofía")),
    Market("IT", "Lombardy", "it-IT", 5, ("Giulia", "Leonardo", "Aurora", "Matteo", "Alice")),
)
DEVICES: tuple[tuple[str, int], ...] = (("mobile", 56), ("desktop", 37), ("tablet", 7))
_DOC_NETS = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True, slots=True)
class Visitor:
    """One simulated person: the attributes that drive what they do and what they prefer."""

    index: int
    anonymous_id: str
    user_id: str | None
    """Set for those who open an account (on visit `signs_up_on`)."""
    signs_up_on: int | None
    first_name: str
    country: str
    region: str
    locale: str
    device: str
    ip: str
    favourite: str
    choice: Choice
    gpc: bool
    minor: bool
    visits: tuple[datetime, ...]

    @property
    def age_range(self) -> str:
        return "13-17" if self.minor else "25-34"

    def signed_up_by(self, visit: int) -> bool:
        """Whether the visitor has an account at the start of visit number `visit`."""
        return self.signs_up_on is not None and visit > self.signs_up_on


def _weighted(rng: random.Random, items: tuple[T, ...], weights: list[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]


def _choice(rng: random.Random, market: Market) -> Choice:
    eu = market.country not in ("US", "GB")
    weights = [45, 12, 28, 15] if eu else [30, 8, 12, 50]
    return _weighted(rng, tuple(Choice), [float(w) for w in weights])


def _visit_times(rng: random.Random, *, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """The first visit anywhere in the window but its last hour, then returns at most a few days apart."""
    span = max((end - start - timedelta(hours=1)).total_seconds(), 60.0)
    first = start + timedelta(seconds=rng.uniform(0, span))
    times = [first]
    returns = min(4, int(rng.expovariate(1 / 0.9)))
    for _ in range(returns):
        nxt = times[-1] + timedelta(hours=rng.uniform(2, 60))
        if nxt >= end - timedelta(minutes=30):
            break
        times.append(nxt)
    return tuple(times)


def make_visitor(seed: int, run: int, index: int, *, start: datetime, end: datetime) -> Visitor:
    """Visitor number `index` of simulation `run` for `seed`: independent of every other visitor."""
    rng = random.Random(f"tactful-simulate:{seed}:{run}:visitor:{index}")
    market = _weighted(rng, MARKETS, [float(m.weight) for m in MARKETS])
    device = _weighted(rng, tuple(d for d, _ in DEVICES), [float(w) for _, w in DEVICES])
    favourite = _weighted(
        rng, CATEGORIES, [market.outdoor_lean if c == "outdoor" else 1.0 for c in CATEGORIES]
    )
    visits = _visit_times(rng, start=start, end=end)
    signs_up_on = None
    if rng.random() < 0.35:
        signs_up_on = rng.choice((0, 0, 1)) if len(visits) > 1 else 0
    minor = rng.random() < 0.05
    gpc = rng.random() < (0.3 if market.region == "California" else 0.04)
    namespace = f"{seed % 1000:03d}{run:03d}{index:06d}"
    return Visitor(
        index=index,
        anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        user_id=f"s{namespace}" if signs_up_on is not None else None,
        signs_up_on=signs_up_on,
        first_name=rng.choice(market.given),
        country=market.country,
        region=market.region,
        locale=market.locale,
        device=device,
        ip=f"{rng.choice(_DOC_NETS)}.{rng.randint(1, 254)}",
        favourite=favourite,
        choice=_choice(rng, market),
        gpc=gpc,
        minor=minor,
        visits=visits,
    )


def make_visitors(seed: int, run: int, count: int, *, start: datetime, end: datetime) -> tuple[Visitor, ...]:
    return tuple(make_visitor(seed, run, i, start=start, end=end) for i in range(count))
