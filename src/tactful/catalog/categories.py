"""The taxonomy of data categories: fideslang-style dotted names, each with the pyramid level it
cannot fall below and its legal class.

A category has two floors: `floor` applies when the data is read from the request or a single event,
`stored_floor` when it is kept across sessions (a trait or a computed atom). The difference is the
one the pyramid draws: a product bought in this session is in-session behaviour (`1:some`), a
purchase history is `1:1`.

A catalog may add its own categories below a known parent (`categories:` in the YAML); they inherit
the parent's floors and class, so a custom `user.sensitive.health.mental` stays special.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tactful.types import Level


@dataclass(frozen=True, slots=True)
class Category:
    """One data category and what follows from it."""

    name: str
    description: str
    floor: Level
    stored_floor: Level
    special: bool = False
    """GDPR Art. 9 special category: needs explicit consent before any targeting use."""
    cpra_sensitive: bool = False
    """CPRA "sensitive personal information": the subject may limit its use."""
    direct_identifier: bool = False
    """Names, e-mail addresses, phone numbers: atoms of this category are encrypted at rest."""

    @property
    def strictness(self) -> tuple[bool, bool, int, int]:
        """An order on categories: special above sensitive above the rest, then by floors."""
        return (self.special, self.cpra_sensitive, self.stored_floor.rank, self.floor.rank)

    def is_laxer_than(self, other: Category) -> bool:
        """True when this category drops a legal class that `other` carries."""
        return (other.special and not self.special) or (other.cpra_sensitive and not self.cpra_sensitive)


_ALL, _MANY, _SOME, _FEW, _ONE = Level.ALL, Level.MANY, Level.SOME, Level.FEW, Level.ONE


def _c(
    name: str,
    description: str,
    floor: Level,
    stored_floor: Level | None = None,
    *,
    cpra_sensitive: bool = False,
    direct_identifier: bool = False,
) -> Category:
    return Category(
        name,
        description,
        floor,
        stored_floor or floor,
        cpra_sensitive=cpra_sensitive,
        direct_identifier=direct_identifier,
    )


def _special(name: str, description: str) -> Category:
    # Art. 9 data is also CPRA-sensitive, and nothing below 1:1 may read it.
    return Category(name, description, Level.ONE, Level.ONE, special=True, cpra_sensitive=True)


BUILTIN: tuple[Category, ...] = (
    _c("system.operations", "data about the software and its delivery, not about the person", _ALL),
    _c("user.name", "a person's name", _ONE, direct_identifier=True),
    _c("user.contact", "contact details", _ONE, direct_identifier=True),
    _c("user.contact.email", "an e-mail address", _ONE, direct_identifier=True),
    _c("user.contact.phone_number", "a telephone number", _ONE, direct_identifier=True),
    _c("user.contact.address", "a postal address", _ONE, direct_identifier=True),
    _c(
        "user.government_id",
        "a national or official identifier",
        _ONE,
        direct_identifier=True,
        cpra_sensitive=True,
    ),
    _c("user.account", "account facts: creation date, sign-in method, status", _SOME, _FEW),
    _c("user.workplace", "the organisation a person belongs to", _FEW),
    _c("user.preference", "stated preferences", _MANY),
    _c("user.preference.language", "language and locale", _MANY),
    _c("user.preference.communication", "channel subscriptions and opt-ins", _MANY),
    _c("user.location.imprecise", "country, region, city, time zone", _MANY),
    _c("user.location.precise", "coordinates or an address-level position", _ONE, cpra_sensitive=True),
    _c("user.device", "device type, operating system", _MANY),
    _c("user.device.user_agent", "the browser's user-agent string (a fingerprinting vector)", _FEW),
    _c("user.device.ip_address", "an IP address", _ONE),
    _c("user.device.cookie_id", "an identifier stored on the device", _SOME, _FEW),
    _c("user.demographic", "demographic facts", _FEW),
    _c("user.demographic.age_range", "an age band such as 25-34", _MANY),
    _c("user.demographic.date_of_birth", "a date of birth", _ONE),
    _c("user.behavior", "what a person does", _SOME, _FEW),
    _c("user.behavior.browsing", "pages and products viewed, referrers, campaigns", _SOME, _FEW),
    _c("user.behavior.search", "search queries", _SOME, _FEW),
    _c("user.behavior.communication", "engagement with messages: opens, clicks", _SOME, _FEW),
    _c("user.behavior.purchase", "carts, orders and what they contained", _SOME, _ONE),
    _c("user.financial", "payment and bank details", _ONE, cpra_sensitive=True),
    _c("user.derived.inference", "affinities, propensities and predictions about a person", _FEW),
    _special("user.sensitive", "special categories of personal data (GDPR Art. 9)"),
    _special("user.sensitive.health", "health, including wellness interests that reveal it"),
    _special("user.sensitive.religion", "religious or philosophical beliefs"),
    _special("user.sensitive.ethnicity", "racial or ethnic origin"),
    _special("user.sensitive.sexual_orientation", "sex life or sexual orientation"),
    _special("user.sensitive.political_opinion", "political opinions"),
    _special("user.sensitive.biometric", "biometric data used to identify a person"),
    _special("user.sensitive.genetic", "genetic data"),
    _special("user.sensitive.union_membership", "trade union membership"),
)

KNOWN: Mapping[str, Category] = MappingProxyType({c.name: c for c in BUILTIN})
"""The built-in taxonomy by name."""


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name`, to suggest when a catalog misspells one."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def child_of(parent: Category, name: str, description: str) -> Category:
    """A catalog-defined category below `parent`: same floors, same legal class."""
    return Category(
        name,
        description or parent.description,
        parent.floor,
        parent.stored_floor,
        special=parent.special,
        cpra_sensitive=parent.cpra_sensitive,
        direct_identifier=parent.direct_identifier,
    )


def strictest(categories: Iterable[Category]) -> Category | None:
    """The strictest of `categories` (ties go to the alphabetically first, for a stable answer)."""
    ordered = sorted(categories, key=lambda c: c.name)
    return max(ordered, key=lambda c: c.strictness, default=None)
