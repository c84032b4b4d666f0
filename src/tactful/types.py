"""Shared vocabulary: pyramid levels, purposes, time and identifiers.

These live in the foundation because the catalog (below `policy`) declares them for every atom; the
rules that combine them (ceilings, allowances) live in `tactful.policy`.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum


class Level(StrEnum):
    """A level of the personalization pyramid, ordered from `1:all` (0) to `1:1` (4)."""

    ALL = "1:all"
    MANY = "1:many"
    SOME = "1:some"
    FEW = "1:few"
    ONE = "1:1"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    # All four, by rank: `str` already defines them by text, so `functools.total_ordering` would keep
    # str's `>`, `<=` and `>=`, and "1:1" would sort below "1:some".
    def __lt__(self, other: object) -> bool:
        return _LEVEL_RANK[self] < _LEVEL_RANK[other] if isinstance(other, Level) else NotImplemented

    def __le__(self, other: object) -> bool:
        return _LEVEL_RANK[self] <= _LEVEL_RANK[other] if isinstance(other, Level) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return _LEVEL_RANK[self] > _LEVEL_RANK[other] if isinstance(other, Level) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return _LEVEL_RANK[self] >= _LEVEL_RANK[other] if isinstance(other, Level) else NotImplemented

    # str's own hash (Enum's hashes the name, in Python): a level finds its entry in a dict keyed by
    # its text, and ranks are looked up by hash on every comparison.
    __hash__ = str.__hash__

    @classmethod
    def from_rank(cls, rank: int) -> Level:
        return _LEVEL_ORDER[rank]


_LEVEL_ORDER: tuple[Level, ...] = (Level.ALL, Level.MANY, Level.SOME, Level.FEW, Level.ONE)
_LEVEL_RANK: dict[Level, int] = {level: rank for rank, level in enumerate(_LEVEL_ORDER)}


class Purpose(StrEnum):
    """Why data is processed (DESIGN §1)."""

    ESSENTIAL = "essential"
    ANALYTICS = "analytics"
    SEGMENTS = "personalization.segments"
    BEHAVIORAL = "personalization.behavioral"
    PREDICTIVE = "personalization.predictive"
    INDIVIDUAL = "personalization.individual"
    MARKETING_EMAIL = "marketing.email"
    SALE_OR_SHARE = "sale_or_share"


LEVEL_PURPOSE: dict[Level, Purpose] = {
    Level.MANY: Purpose.SEGMENTS,
    Level.SOME: Purpose.BEHAVIORAL,
    Level.FEW: Purpose.PREDICTIVE,
    Level.ONE: Purpose.INDIVIDUAL,
}
"""The purpose that each level above `1:all` needs (levels are cumulative)."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC. Services take time as a parameter; this is the default."""
    return datetime.now(UTC)


NOBODY = uuid.UUID(int=0)
"""A subject id no one has: the stand-in where a lookup runs the same query whether or not it
names someone (so that the answer's timing says nothing about who exists)."""


def new_id() -> uuid.UUID:
    """A random, unguessable identifier (subjects, keys)."""
    return uuid.uuid4()


_RANDOM_B = (1 << 62) - 1
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62


def new_row_id() -> uuid.UUID:
    """The identifier of an appended row (an event, a ledger entry): a UUIDv7 (RFC 9562), whose first
    48 bits are the Unix time in milliseconds and the other 74 random.

    Ids that grow with time go to the end of their index, where random ones land on a different page
    each: a 100-event commit on a large SQLite file then writes about an eighth fewer pages. The time
    they carry is the row's creation time, which the row holds anyway."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10))  # 12 bits of rand_a, then 62 of rand_b
    return uuid.UUID(
        int=(millis << 80) | _VERSION_7 | ((rand >> 62) & 0xFFF) << 64 | _VARIANT | (rand & _RANDOM_B)
    )
