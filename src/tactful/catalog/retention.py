"""Retention periods as the catalog writes them: `request`, `36h`, `30d`, `26w`, `13mo`, `2y`, or
ISO 8601 durations such as `P30D`, `P1Y6M`, `PT12H`.

A month counts 30 days and a year 365 days, so a period never runs longer than its calendar length:
for a limit on keeping data, erring short is the safe side.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum

REQUEST_ONLY = timedelta(0)
"""The retention of a field read for the current request and never stored."""

REQUEST_WORD = "request"


class Expiry(StrEnum):
    """What the retention sweep does to a stored event row whose period ended (`expiry:` in the
    catalog, per category)."""

    DELETE = "delete"
    """The row goes."""
    ANONYMISE = "anonymise"
    """The row stays for aggregates (counts, sums per day) but loses every link to the person: its
    subject, message id, group id, request id, consent context, traits, free text, URLs and the
    properties marked `reference`; its times keep only the day."""


class Anchor(StrEnum):
    """What an event atom's retention period counts from (`retention_anchor:`)."""

    EACH = "each"
    """Each row's own time: a page view goes 30 days after it was seen."""
    LATEST = "latest"
    """The subject's latest row of the atom: orders stay until 24 months after the last one, so a
    customer's history goes as a whole once they stop buying."""


_DAYS = {"d": 1, "w": 7, "mo": 30, "y": 365}
_SHORT = re.compile(r"^\s*(\d+)\s*(h|d|w|mo|y)\s*$", re.IGNORECASE)
_ISO = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$"
)
_LARGEST = timedelta(days=100 * 365)


class RetentionError(ValueError):
    """The text is not a retention period."""


def parse_retention(text: object) -> timedelta:
    """The period that `text` names; `request` is zero (never stored). Raises `RetentionError`."""
    if not isinstance(text, str) or not text.strip():
        raise RetentionError(f"{text!r} is not a retention period")
    word = text.strip()
    if word.lower() == REQUEST_WORD:
        return REQUEST_ONLY
    period = _parse_short(word)
    if period is None:
        period = _parse_iso(word.upper())
    if period is None:
        raise RetentionError(f"{text!r} is not a retention period")
    if period <= timedelta(0):
        raise RetentionError(f"{text!r} is zero: write 'request' for a field that is never stored")
    if period > _LARGEST:
        raise RetentionError(f"{text!r} is longer than a century")
    return period


def _parse_short(word: str) -> timedelta | None:
    match = _SHORT.match(word)
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(hours=count) if unit == "h" else timedelta(days=count * _DAYS[unit])


def _parse_iso(word: str) -> timedelta | None:
    match = _ISO.match(word)
    if match is None:
        return None
    years, months, weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(
        days=years * 365 + months * 30 + weeks * 7 + days, hours=hours, minutes=minutes, seconds=seconds
    )


def format_retention(period: timedelta) -> str:
    """A short human form: `request only`, `6 years`, `13 months`, `26 weeks`, `30 days`, `36 hours`,
    `30 minutes` (a session atom)."""
    if period == REQUEST_ONLY:
        return "request only (not stored)"
    if period % timedelta(days=1):
        if period % timedelta(hours=1) == timedelta(0):
            return _plural(int(period.total_seconds() // 3600), "hour")
        if period % timedelta(minutes=1) == timedelta(0):
            return _plural(int(period.total_seconds() // 60), "minute")
        return str(period)
    days = period.days
    for size, unit in ((365, "year"), (30, "month"), (7, "week"), (1, "day")):
        if days % size == 0:
            return _plural(days // size, unit)
    raise AssertionError("unreachable: every whole number of days divides by 1")  # pragma: no cover


def describe_retention(period: timedelta, anchor: Anchor = Anchor.EACH) -> str:
    """`format_retention`, saying what the period counts from when that is not each row's own time:
    `24 months after the latest`."""
    text = format_retention(period)
    return f"{text} after the latest" if anchor is Anchor.LATEST else text


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
