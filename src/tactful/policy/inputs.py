"""What the gate reads besides consent: facts about the subject, the request's signals, the
deployment's age policy, and the plain profile a SubjectView is cut from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType

AGE_ATOMS: tuple[str, ...] = ("traits.age", "traits.birthdate", "traits.age_range")
"""Read by the gate itself for age assurance (purpose `essential`, a legal obligation); decisions
read them only under their own purposes."""

_EMPTY: Mapping[str, object] = MappingProxyType({})
_RANGE = re.compile(r"^\s*(\d{1,3})\s*(?:-|–|to)\s*(\d{1,3})\s*$|^\s*(\d{1,3})\s*\+\s*$")


@dataclass(frozen=True, slots=True)
class AgePolicy:
    """The deployment's age settings (DESIGN §1)."""

    minor_age: int = 18
    assume_minor_when_age_unknown: bool = False


@dataclass(frozen=True, slots=True)
class SubjectFacts:
    """Facts about the subject the gate weighs. Age is given as an age, a birthdate or a range;
    the gate reads the lowest age they allow (the cautious reading of "16-20" is 16)."""

    age: int | None = None
    birthdate: date | None = None
    age_range: tuple[int, int | None] | None = None
    minor: bool | None = None
    """A verified answer that overrides the age: True (a child account) or False (verified adult)."""
    objection: bool = False
    """Art. 21 objection, set by a privacy request or the admin API."""
    restriction: bool = False
    """Art. 18 restriction: data kept but unused."""
    limit_sensitive: bool = False
    """CPRA: the subject limited the use of sensitive personal information."""
    country: str | None = None
    region: str | None = None

    def lowest_age(self, at: datetime) -> int | None:
        """The lowest age the facts allow at `at`, or None when nothing is known."""
        ages: list[int] = []
        if self.age is not None:
            ages.append(self.age)
        if self.birthdate is not None:
            day = at.date()
            born = self.birthdate
            ages.append(day.year - born.year - ((day.month, day.day) < (born.month, born.day)))
        if self.age_range is not None:
            ages.append(self.age_range[0])
        return min(ages) if ages else None


@dataclass(frozen=True, slots=True)
class RequestSignals:
    """What this request says: Global Privacy Control, and coarse context for choosing regimes."""

    gpc: bool = False
    country: str | None = None
    region: str | None = None
    language: str | None = None
    device_type: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileSnapshot:
    """Plain data, by atom name: `values` as stored, `request` as read from this request's context,
    `session` as this session's counters say (a mapping that reads them on first use). Atoms that
    the gate allows from the request only are read from `request` alone."""

    values: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    request: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    session: Mapping[str, object] = field(default_factory=lambda: _EMPTY)


def parse_age_range(text: object) -> tuple[int, int | None] | None:
    """`"25-34"` → (25, 34); `"65+"` → (65, None); anything else → None."""
    if not isinstance(text, str):
        return None
    match = _RANGE.match(text)
    if match is None:
        return None
    if match.group(3) is not None:
        return int(match.group(3)), None
    low, high = int(match.group(1)), int(match.group(2))
    return (low, high) if low <= high else None


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def facts_from_profile(
    profile: ProfileSnapshot,
    *,
    minor: bool | None = None,
    objection: bool = False,
    restriction: bool = False,
    limit_sensitive: bool = False,
    country: str | None = None,
    region: str | None = None,
) -> SubjectFacts:
    """Subject facts with the age read from the profile's age atoms (unreadable values are ignored)."""
    values = profile.values
    raw_age = values.get("traits.age")
    age = (
        raw_age if isinstance(raw_age, int) and not isinstance(raw_age, bool) and 0 <= raw_age < 150 else None
    )
    return SubjectFacts(
        age=age,
        birthdate=_as_date(values.get("traits.birthdate")),
        age_range=parse_age_range(values.get("traits.age_range")),
        minor=minor,
        objection=objection,
        restriction=restriction,
        limit_sensitive=limit_sensitive,
        country=country,
        region=region,
    )


def age_protections(
    values: Mapping[str, object], *, at: datetime, limits: tuple[int, ...], age_policy: AgePolicy
) -> tuple[bool, ...]:
    """Whether the age atoms in `values` leave the subject a minor, and below each of `limits` (the
    regimes' consent and opt-in ages), as the gate reads them: an unknown age is below only where
    the deployment assumes minors when it does not know."""
    age = facts_from_profile(ProfileSnapshot(values=values)).lowest_age(at)
    minor = age_policy.assume_minor_when_age_unknown if age is None else age < age_policy.minor_age
    return (minor, *(minor if age is None else age < limit for limit in limits))


def lifts_age_protection(
    before: Mapping[str, object],
    after: Mapping[str, object],
    *,
    at: datetime,
    limits: tuple[int, ...],
    age_policy: AgePolicy,
) -> bool:
    """Whether going from the age atoms `before` to `after` takes away a protection the gate gives
    for age anywhere: the minors' cap, or being below a regime's consent or opt-in age. A claim that
    does is one a public key may not make about an identified person (DESIGN §4)."""
    was = age_protections(before, at=at, limits=limits, age_policy=age_policy)
    now = age_protections(after, at=at, limits=limits, age_policy=age_policy)
    return any(old and not new for old, new in zip(was, now, strict=True))
