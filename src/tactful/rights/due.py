"""Legal due dates of privacy requests: plain data in, plain data out, time passed in.

    request type ─┐
    regimes ──────┼─▶ one Deadline per regime ─▶ the earliest wins ─▶ DueDates
    received_at ──┤     (due, confirmation, extension window, extended due)
    extension? ───┘     an extension notice is accepted only if every regime accepts it

GDPR (Art. 12(3)): one calendar month from receipt, the same day of the next month or, if that
month has no such day, its last day; extendable by two further months, with the reasons given to
the person within the first month. The two months are counted from the first due date (31 Jan →
28 Feb → 28 Apr), the earlier of the two readings of the article.

CCPA/CPRA (Civ. Code §1798.130, Regs. §7021, §7026, §7027): a request to know, delete or correct is
confirmed within 10 business days and answered within 45 calendar days counted from receipt,
whether or not it is verified yet; extendable once by 45 more with notice within the first 45.
Opting out of sale/sharing and limiting the use of sensitive data: within 15 business days, no
extension. CCPA knows no restriction or objection; Tactful holds them to the opt-out's 15 business
days, since like an opt-out they only narrow what is done and are carried out at once.

A "day" is a day in the business's time zone; a due date ends at the last instant of its day there.
Business days are Monday to Friday less the public holidays of the configured country and
subdivision (California by default), from the `holidays` package. A period of business days starts
on the day after receipt. This is engineering, not legal advice: the calendar is configuration.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays


class RequestType(StrEnum):
    ACCESS = "access"
    PORTABILITY = "portability"
    ERASURE = "erasure"
    RECTIFICATION = "rectification"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    OPT_OUT_SALE_SHARE = "opt_out_sale_share"
    LIMIT_SENSITIVE = "limit_sensitive"


class LegalRegime(StrEnum):
    GDPR = "gdpr"
    CCPA = "ccpa"


class ExtensionCode(StrEnum):
    """Why an extension notice was refused (or that it was accepted)."""

    ACCEPTED = "extension_accepted"
    NOT_EXTENDABLE = "extension_not_extendable"
    NOTICE_LATE = "extension_notice_late"
    NOTICE_BEFORE_RECEIPT = "extension_notice_before_receipt"
    REASONS_MISSING = "extension_reasons_missing"


class RepeatCode(StrEnum):
    """Patterns of repeated requests flagged for the operator; never a refusal."""

    CCPA_ACCESS_LIMIT = "ccpa_access_more_than_twice_in_12_months"
    """A request to know (access or portability) that is at least the third in the 12 months up to
    its receipt: a business need not answer more than two (§1798.130(b)); the operator decides."""
    GDPR_REPEAT_WHILE_OPEN = "gdpr_repeat_while_open"
    """The same type of request received while an earlier one of that type is still open."""
    GDPR_FREQUENT = "gdpr_frequent"
    """At least `frequent_count` requests of the same type (this one included) within
    `frequent_window`: a sign, for the operator alone to weigh, of Art. 12(5)'s "excessive"."""


CCPA_KNOW_DAYS = 45
CCPA_CONFIRM_BUSINESS_DAYS = 10
CCPA_OPT_OUT_BUSINESS_DAYS = 15
CCPA_ACCESS_PER_YEAR = 2
GDPR_MONTHS = 1
GDPR_EXTENSION_MONTHS = 2

_CCPA_KNOW = frozenset(
    {RequestType.ACCESS, RequestType.PORTABILITY, RequestType.ERASURE, RequestType.RECTIFICATION}
)
_ACCESS = frozenset({RequestType.ACCESS, RequestType.PORTABILITY})


@dataclass(frozen=True)
class BusinessCalendar:
    """What a day and a business day are: the business's time zone, and the country and subdivision
    whose public holidays are not business days (ISO 3166 codes, as the `holidays` package names
    them)."""

    timezone: str = "UTC"
    country: str = "US"
    subdivision: str | None = "CA"

    def __post_init__(self) -> None:
        # Refused when configured, not at the first due date computed months later.
        try:
            self.zone  # noqa: B018 - builds and caches it
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        try:
            self._holidays  # noqa: B018
        except NotImplementedError as exc:
            raise ValueError(f"no holiday calendar for {self.country!r} / {self.subdivision!r}") from exc

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        # Years are filled in as dates are asked about (`expand`).
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def day_of(self, moment: datetime) -> date:
        """The business's date at `moment` (an aware time)."""
        return moment.astimezone(self.zone).date()

    def end_of(self, day: date) -> datetime:
        """The last instant of `day` in the business's time zone."""
        return datetime.combine(day, time.max, tzinfo=self.zone)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def add_business_days(self, day: date, count: int) -> date:
        """The `count`-th business day after `day` (`day` itself does not count)."""
        current = day
        left = count
        while left > 0:
            current += timedelta(days=1)
            if self.is_business_day(current):
                left -= 1
        return current


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or that month's last day if it has no such day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


@dataclass(frozen=True)
class Extension:
    """An extension notice given to the person at `noticed_at`, with or without its reasons."""

    noticed_at: datetime
    reasons_given: bool


@dataclass(frozen=True)
class Deadline:
    """One regime's deadlines for one request. `extension_notice_by` and `extended_due_at` are None
    when the regime allows no extension for this type; `confirm_by` when it asks no confirmation."""

    regime: LegalRegime
    due_at: datetime
    confirm_by: datetime | None
    extension_notice_by: datetime | None
    extended_due_at: datetime | None

    def extension(self, notice: Extension, *, received_at: datetime) -> ExtensionCode:
        """Whether this regime accepts `notice`."""
        if self.extension_notice_by is None:
            return ExtensionCode.NOT_EXTENDABLE
        if notice.noticed_at < received_at:
            return ExtensionCode.NOTICE_BEFORE_RECEIPT
        if notice.noticed_at > self.extension_notice_by:
            return ExtensionCode.NOTICE_LATE
        if self.regime is LegalRegime.GDPR and not notice.reasons_given:
            return ExtensionCode.REASONS_MISSING
        return ExtensionCode.ACCEPTED


@dataclass(frozen=True)
class DueDates:
    """The deadlines of a request under every regime that applies; the earliest of each wins.

    `due_at` is the first due date; `effective_due_at` the one in force (the extended date once an
    extension was accepted). `extension` is None when no notice was given."""

    due_at: datetime
    confirm_by: datetime | None
    extension_notice_by: datetime | None
    extended_due_at: datetime | None
    extension: ExtensionCode | None
    effective_due_at: datetime
    deadlines: tuple[Deadline, ...] = field(default=())


def regime_deadline(
    regime: LegalRegime, kind: RequestType, *, received_at: datetime, calendar: BusinessCalendar
) -> Deadline:
    """One regime's deadlines for a request of `kind` received at `received_at`."""
    received = calendar.day_of(received_at)
    if regime is LegalRegime.GDPR:
        due = add_months(received, GDPR_MONTHS)
        return Deadline(
            regime=regime,
            due_at=calendar.end_of(due),
            confirm_by=None,
            extension_notice_by=calendar.end_of(due),
            extended_due_at=calendar.end_of(add_months(due, GDPR_EXTENSION_MONTHS)),
        )
    if kind in _CCPA_KNOW:
        due = received + timedelta(days=CCPA_KNOW_DAYS)
        return Deadline(
            regime=regime,
            due_at=calendar.end_of(due),
            confirm_by=calendar.end_of(calendar.add_business_days(received, CCPA_CONFIRM_BUSINESS_DAYS)),
            extension_notice_by=calendar.end_of(due),
            extended_due_at=calendar.end_of(due + timedelta(days=CCPA_KNOW_DAYS)),
        )
    due = calendar.add_business_days(received, CCPA_OPT_OUT_BUSINESS_DAYS)
    return Deadline(
        regime=regime,
        due_at=calendar.end_of(due),
        confirm_by=None,
        extension_notice_by=None,
        extended_due_at=None,
    )


def _earliest(values: Iterable[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def due_dates(
    kind: RequestType,
    *,
    regimes: Iterable[LegalRegime],
    received_at: datetime,
    calendar: BusinessCalendar | None = None,
    extension: Extension | None = None,
) -> DueDates:
    """The deadlines of a request of `kind` received at `received_at` (aware) under `regimes` (at
    least one). Under several, each deadline is the earliest of theirs; an extension is possible only
    if every regime allows one, and its notice is accepted only if every regime accepts it (the first
    refusal's code is given)."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be an aware time")
    cal = calendar or BusinessCalendar()
    applying = sorted(set(regimes))
    if not applying:
        raise ValueError("at least one regime applies to a request")
    deadlines = tuple(regime_deadline(r, kind, received_at=received_at, calendar=cal) for r in applying)
    extendable = all(d.extension_notice_by is not None for d in deadlines)
    due_at = min(d.due_at for d in deadlines)
    notice_by = _earliest(d.extension_notice_by for d in deadlines) if extendable else None
    extended = _earliest(d.extended_due_at for d in deadlines) if extendable else None
    code: ExtensionCode | None = None
    if extension is not None:
        codes = [d.extension(extension, received_at=received_at) for d in deadlines]
        code = next((c for c in codes if c is not ExtensionCode.ACCEPTED), ExtensionCode.ACCEPTED)
    effective = extended if code is ExtensionCode.ACCEPTED and extended is not None else due_at
    return DueDates(
        due_at=due_at,
        confirm_by=_earliest(d.confirm_by for d in deadlines),
        extension_notice_by=notice_by,
        extended_due_at=extended,
        extension=code,
        effective_due_at=effective,
        deadlines=deadlines,
    )


# -- repeated requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PriorRequest:
    """An earlier request of the same person: its type, receipt, and when it was closed (None while
    it is open)."""

    kind: RequestType
    received_at: datetime
    closed_at: datetime | None = None


@dataclass(frozen=True)
class RepeatFlag:
    code: RepeatCode
    count: int
    """How many requests, this one included, make the pattern."""


@dataclass(frozen=True)
class RepeatPolicy:
    """The GDPR pattern's thresholds: at least `frequent_count` requests of one type within
    `frequent_window` (this one included). Configuration; they flag and never refuse."""

    frequent_count: int = 4
    frequent_window: timedelta = timedelta(days=90)


def ccpa_year_start(received_at: datetime) -> datetime:
    """The start of the 12 months that end at `received_at` (same day a year before; 29 Feb → 28 Feb)."""
    day = add_months(received_at.date(), -12)
    return received_at.replace(year=day.year, month=day.month, day=day.day)


def repeat_flags(
    kind: RequestType,
    *,
    regimes: Iterable[LegalRegime],
    received_at: datetime,
    prior: Sequence[PriorRequest],
    policy: RepeatPolicy | None = None,
) -> tuple[RepeatFlag, ...]:
    """The repetition patterns a new request of `kind` at `received_at` completes, given the same
    person's `prior` requests (those received after it are ignored). Flags for the operator: a flagged
    request is still received and run unless the operator decides otherwise."""
    rules = policy or RepeatPolicy()
    applying = set(regimes)
    earlier = [p for p in prior if p.received_at <= received_at]
    flags: list[RepeatFlag] = []
    if LegalRegime.CCPA in applying and kind in _ACCESS:
        start = ccpa_year_start(received_at)
        count = 1 + sum(1 for p in earlier if p.kind in _ACCESS and p.received_at > start)
        if count > CCPA_ACCESS_PER_YEAR:
            flags.append(RepeatFlag(RepeatCode.CCPA_ACCESS_LIMIT, count))
    if LegalRegime.GDPR in applying:
        same = [p for p in earlier if p.kind == kind]
        open_ = [p for p in same if p.closed_at is None or p.closed_at > received_at]
        if open_:
            flags.append(RepeatFlag(RepeatCode.GDPR_REPEAT_WHILE_OPEN, 1 + len(open_)))
        recent = 1 + sum(1 for p in same if p.received_at > received_at - rules.frequent_window)
        if recent >= rules.frequent_count:
            flags.append(RepeatFlag(RepeatCode.GDPR_FREQUENT, recent))
    return tuple(flags)
