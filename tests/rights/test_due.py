"""Legal due dates of privacy requests: each regime and type, month ends and leap years, business
days across weekends and holidays, extension windows, several regimes at once; and the flags of
repeated requests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.rights.due import (
    BusinessCalendar,
    Extension,
    ExtensionCode,
    LegalRegime,
    PriorRequest,
    RepeatCode,
    RepeatPolicy,
    RequestType,
    add_months,
    due_dates,
    repeat_flags,
)

GDPR, CCPA = LegalRegime.GDPR, LegalRegime.CCPA
UTC_CAL = BusinessCalendar()
KNOW = (RequestType.ACCESS, RequestType.PORTABILITY, RequestType.ERASURE, RequestType.RECTIFICATION)
NARROWING = (
    RequestType.OPT_OUT_SALE_SHARE,
    RequestType.LIMIT_SENSITIVE,
    RequestType.RESTRICTION,
    RequestType.OBJECTION,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def day_end(day: str, zone: str = "UTC") -> datetime:
    """The last instant of `day` in `zone`, as due dates are given."""
    return datetime.combine(date.fromisoformat(day), datetime.max.time(), tzinfo=ZoneInfo(zone))


# -- GDPR: one calendar month ---------------------------------------------------------------------

GDPR_CASES = [
    # received, due, extended (two more months from the due date)
    ("2026-01-15T10:00:00+00:00", "2026-02-15", "2026-04-15"),
    ("2026-01-31T08:00:00+00:00", "2026-02-28", "2026-04-28"),  # February has no 31st
    ("2028-01-31T08:00:00+00:00", "2028-02-29", "2028-04-29"),  # a leap year's February
    ("2028-02-29T08:00:00+00:00", "2028-03-29", "2028-05-29"),
    ("2026-03-31T23:59:59+00:00", "2026-04-30", "2026-06-30"),
    ("2026-08-31T00:00:00+00:00", "2026-09-30", "2026-11-30"),
    ("2026-12-15T12:00:00+00:00", "2027-01-15", "2027-03-15"),  # across the year
    ("2026-12-31T12:00:00+00:00", "2027-01-31", "2027-03-31"),
]


@pytest.mark.parametrize("kind", list(RequestType))
@pytest.mark.parametrize(("received", "due", "extended"), GDPR_CASES)
def test_gdpr_gives_one_calendar_month_for_every_type(
    kind: RequestType, received: str, due: str, extended: str
) -> None:
    dates = due_dates(kind, regimes=[GDPR], received_at=at(received))
    assert dates.due_at == day_end(due)
    assert dates.effective_due_at == dates.due_at
    assert dates.extension_notice_by == day_end(due)  # reasons within the first month
    assert dates.extended_due_at == day_end(extended)
    assert dates.confirm_by is None  # GDPR asks for no separate confirmation


def test_the_business_time_zone_decides_the_day_of_receipt() -> None:
    # 23:30 on 31 January in Los Angeles is already 1 February in UTC.
    received = at("2026-01-31T23:30:00-08:00")
    in_utc = due_dates(RequestType.ACCESS, regimes=[GDPR], received_at=received)
    la = BusinessCalendar(timezone="America/Los_Angeles")
    in_la = due_dates(RequestType.ACCESS, regimes=[GDPR], received_at=received, calendar=la)
    assert in_utc.due_at == day_end("2026-03-01")
    assert in_la.due_at == day_end("2026-02-28", "America/Los_Angeles")
    assert in_la.due_at.astimezone(UTC) == at("2026-03-01T07:59:59.999999+00:00")


# -- CCPA/CPRA --------------------------------------------------------------------------------------

CCPA_KNOW_CASES = [
    # received, confirm by (10 business days), due (45 days), extended (45 more)
    # Monday 2 March 2026: two plain weeks of business days.
    ("2026-03-02T09:00:00+00:00", "2026-03-16", "2026-04-16", "2026-05-31"),
    # Saturday 7 March: the weekend does not count; Cesar Chavez Day (31 March) is far off.
    ("2026-03-07T09:00:00+00:00", "2026-03-20", "2026-04-21", "2026-06-05"),
    # Friday 20 November: Thanksgiving and the day after are California holidays.
    ("2026-11-20T09:00:00+00:00", "2026-12-08", "2027-01-04", "2027-02-18"),
    # Leap day: 45 days run through March.
    ("2028-02-29T09:00:00+00:00", "2028-03-14", "2028-04-14", "2028-05-29"),
]


@pytest.mark.parametrize("kind", KNOW)
@pytest.mark.parametrize(("received", "confirm", "due", "extended"), CCPA_KNOW_CASES)
def test_ccpa_requests_to_know_delete_or_correct(
    kind: RequestType, received: str, confirm: str, due: str, extended: str
) -> None:
    dates = due_dates(kind, regimes=[CCPA], received_at=at(received))
    assert dates.confirm_by == day_end(confirm)
    assert dates.due_at == day_end(due)
    assert dates.extension_notice_by == day_end(due)  # notice within the first 45 days
    assert dates.extended_due_at == day_end(extended)


CCPA_NARROWING_CASES = [
    # received, due (15 business days)
    ("2026-03-02T09:00:00+00:00", "2026-03-23"),  # three plain weeks
    ("2026-03-20T09:00:00+00:00", "2026-04-13"),  # across Cesar Chavez Day (Tuesday 31 March)
    # Wednesday 23 December: Christmas and New Year's Day fall on Fridays.
    ("2026-12-23T09:00:00+00:00", "2027-01-15"),
]


@pytest.mark.parametrize("kind", NARROWING)
@pytest.mark.parametrize(("received", "due"), CCPA_NARROWING_CASES)
def test_ccpa_opt_out_and_limit_within_15_business_days(kind: RequestType, received: str, due: str) -> None:
    dates = due_dates(kind, regimes=[CCPA], received_at=at(received))
    assert dates.due_at == day_end(due)
    assert dates.confirm_by is None
    assert dates.extension_notice_by is None
    assert dates.extended_due_at is None


def test_business_days_follow_the_configured_country_and_subdivision() -> None:
    # Friday 20 November 2026: the day after Thanksgiving is a California holiday, not a federal one.
    received = at("2026-11-20T09:00:00+00:00")
    california = due_dates(RequestType.ACCESS, regimes=[CCPA], received_at=received)
    federal = due_dates(
        RequestType.ACCESS, regimes=[CCPA], received_at=received, calendar=BusinessCalendar(subdivision=None)
    )
    assert california.confirm_by == day_end("2026-12-08")
    assert federal.confirm_by == day_end("2026-12-07")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"country": "XX"}, "no holiday calendar"),
        ({"subdivision": "ZZ"}, "no holiday calendar"),
    ],
)
def test_a_calendar_that_cannot_be_built_is_refused_at_once(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**settings)


def test_business_days_skip_weekends_and_holidays() -> None:
    cal = BusinessCalendar()
    assert not cal.is_business_day(date(2026, 3, 7))  # Saturday
    assert not cal.is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not cal.is_business_day(date(2026, 3, 31))  # Cesar Chavez Day
    assert cal.is_business_day(date(2026, 3, 30))
    assert cal.add_business_days(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Friday → Monday
    assert cal.add_business_days(date(2026, 3, 30), 1) == date(2026, 4, 1)


# -- extensions --------------------------------------------------------------------------------------

EXTENSION_CASES = [
    # kind, regimes, received, notice at, reasons, code
    (RequestType.ACCESS, [CCPA], "2026-03-02T09:00:00+00:00", "2026-04-16T23:00:00+00:00", False,
     ExtensionCode.ACCEPTED),
    (RequestType.ACCESS, [CCPA], "2026-03-02T09:00:00+00:00", "2026-04-17T00:00:00+00:00", True,
     ExtensionCode.NOTICE_LATE),
    (RequestType.ERASURE, [GDPR], "2026-01-31T08:00:00+00:00", "2026-02-28T12:00:00+00:00", True,
     ExtensionCode.ACCEPTED),
    (RequestType.ERASURE, [GDPR], "2026-01-31T08:00:00+00:00", "2026-03-01T00:00:00+00:00", True,
     ExtensionCode.NOTICE_LATE),
    (RequestType.ERASURE, [GDPR], "2026-01-31T08:00:00+00:00", "2026-02-10T12:00:00+00:00", False,
     ExtensionCode.REASONS_MISSING),
    (RequestType.ACCESS, [GDPR], "2026-01-31T08:00:00+00:00", "2026-01-30T12:00:00+00:00", True,
     ExtensionCode.NOTICE_BEFORE_RECEIPT),
    (RequestType.OPT_OUT_SALE_SHARE, [CCPA], "2026-03-02T09:00:00+00:00", "2026-03-03T09:00:00+00:00", True,
     ExtensionCode.NOT_EXTENDABLE),
    # Under both regimes the notice must come within the earlier window (GDPR's month).
    (RequestType.ACCESS, [GDPR, CCPA], "2026-01-31T08:00:00+00:00", "2026-03-05T12:00:00+00:00", True,
     ExtensionCode.NOTICE_LATE),
    (RequestType.ACCESS, [GDPR, CCPA], "2026-01-31T08:00:00+00:00", "2026-02-05T12:00:00+00:00", False,
     ExtensionCode.REASONS_MISSING),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "regimes", "received", "notice", "reasons", "code"), EXTENSION_CASES)
def test_extension_notices(
    kind: RequestType,
    regimes: list[LegalRegime],
    received: str,
    notice: str,
    reasons: bool,
    code: ExtensionCode,
) -> None:
    extension = Extension(noticed_at=at(notice), reasons_given=reasons)
    dates = due_dates(kind, regimes=regimes, received_at=at(received), extension=extension)
    assert dates.extension is code
    if code is ExtensionCode.ACCEPTED:
        assert dates.extended_due_at is not None
        assert dates.effective_due_at == dates.extended_due_at > dates.due_at
    else:
        assert dates.effective_due_at == dates.due_at


def test_without_a_notice_the_first_due_date_stands() -> None:
    dates = due_dates(RequestType.ACCESS, regimes=[CCPA], received_at=at("2026-03-02T09:00:00+00:00"))
    assert dates.extension is None
    assert dates.effective_due_at == dates.due_at


# -- several regimes --------------------------------------------------------------------------------


def test_under_several_regimes_the_earliest_date_wins() -> None:
    received = at("2026-01-31T08:00:00+00:00")
    both = due_dates(RequestType.ACCESS, regimes=[CCPA, GDPR], received_at=received)
    assert both.due_at == day_end("2026-02-28")  # GDPR's month before CCPA's 45 days (17 March)
    assert both.confirm_by == day_end("2026-02-13")  # only CCPA asks for it
    assert both.extension_notice_by == day_end("2026-02-28")
    assert both.extended_due_at == day_end("2026-04-28")  # before CCPA's 1 May
    assert {d.regime for d in both.deadlines} == {GDPR, CCPA}


def test_an_extension_needs_every_regime_to_allow_one() -> None:
    received = at("2026-03-02T09:00:00+00:00")
    both = due_dates(RequestType.OPT_OUT_SALE_SHARE, regimes=[GDPR, CCPA], received_at=received)
    assert both.due_at == day_end("2026-03-23")  # 15 business days before GDPR's 2 April
    assert both.extension_notice_by is None
    assert both.extended_due_at is None
    notice = Extension(noticed_at=received + timedelta(days=1), reasons_given=True)
    refused = due_dates(
        RequestType.OPT_OUT_SALE_SHARE, regimes=[GDPR, CCPA], received_at=received, extension=notice
    )
    assert refused.extension is ExtensionCode.NOT_EXTENDABLE


def test_a_request_needs_a_regime_and_an_aware_time() -> None:
    with pytest.raises(ValueError, match="regime"):
        due_dates(RequestType.ACCESS, regimes=[], received_at=at("2026-03-02T09:00:00+00:00"))
    with pytest.raises(ValueError, match="aware"):
        due_dates(RequestType.ACCESS, regimes=[GDPR], received_at=datetime(2026, 3, 2, 9))


# -- properties -------------------------------------------------------------------------------------

zones = st.sampled_from(["UTC", "America/Los_Angeles", "Europe/Stockholm", "Pacific/Kiritimati"])
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
).flatmap(
    lambda m: st.integers(-12 * 60, 14 * 60).map(
        lambda minutes: m.astimezone(timezone(timedelta(minutes=minutes)))
    )
)
regime_sets = st.sets(st.sampled_from(list(LegalRegime)), min_size=1)


@given(
    kind=st.sampled_from(list(RequestType)),
    regimes=regime_sets,
    received=moments,
    zone=zones,
    notice_after=st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=100)),
    reasons=st.booleans(),
)
def test_due_dates_never_precede_receipt_and_extensions_only_postpone(
    kind: RequestType,
    regimes: set[LegalRegime],
    received: datetime,
    zone: str,
    notice_after: timedelta,
    reasons: bool,
) -> None:
    cal = BusinessCalendar(timezone=zone)
    extension = Extension(noticed_at=received + notice_after, reasons_given=reasons)
    dates = due_dates(kind, regimes=regimes, received_at=received, calendar=cal, extension=extension)
    assert dates.due_at >= received
    assert dates.confirm_by is None or received <= dates.confirm_by <= dates.due_at
    assert dates.effective_due_at >= dates.due_at
    if dates.extended_due_at is not None:
        assert dates.extended_due_at > dates.due_at
        assert dates.extension_notice_by is not None
        assert dates.extension_notice_by <= dates.due_at
    if dates.extension is ExtensionCode.ACCEPTED:
        assert dates.extension_notice_by is not None
        assert received <= extension.noticed_at <= dates.extension_notice_by
    # The earliest wins: no regime alone is due before the combined date.
    assert dates.due_at == min(d.due_at for d in dates.deadlines)


@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 1, 1)), months=st.integers(0, 36))
def test_adding_months_keeps_the_day_or_takes_the_months_last(day: date, months: int) -> None:
    later = add_months(day, months)
    assert (later.year - day.year) * 12 + later.month - day.month == months
    assert later.day == day.day or (later.day < day.day and (later + timedelta(days=1)).day == 1)


# -- repeated requests ------------------------------------------------------------------------------

NOW = at("2026-06-15T12:00:00+00:00")


def prior(kind: RequestType, days_ago: float, *, closed_days_ago: float | None = 0.5) -> PriorRequest:
    closed = None if closed_days_ago is None else NOW - timedelta(days=closed_days_ago)
    return PriorRequest(kind=kind, received_at=NOW - timedelta(days=days_ago), closed_at=closed)


def codes(
    kind: RequestType, regimes: list[LegalRegime], history: list[PriorRequest]
) -> dict[RepeatCode, int]:
    return {f.code: f.count for f in repeat_flags(kind, regimes=regimes, received_at=NOW, prior=history)}


def test_ccpa_flags_the_third_request_to_know_in_12_months() -> None:
    two = [prior(RequestType.ACCESS, 200), prior(RequestType.PORTABILITY, 30)]
    assert codes(RequestType.ACCESS, [CCPA], two) == {RepeatCode.CCPA_ACCESS_LIMIT: 3}
    assert codes(RequestType.PORTABILITY, [CCPA], two) == {RepeatCode.CCPA_ACCESS_LIMIT: 3}
    assert codes(RequestType.ACCESS, [CCPA], two[:1]) == {}  # the second is answered as of right
    assert codes(RequestType.ERASURE, [CCPA], two) == {}  # only requests to know are limited
    old = [prior(RequestType.ACCESS, 366), prior(RequestType.ACCESS, 30)]
    assert codes(RequestType.ACCESS, [CCPA], old) == {}  # one of them is more than 12 months old
    assert codes(RequestType.ACCESS, [GDPR], two) == {}  # not a GDPR rule


def test_gdpr_flags_a_repeat_while_the_same_request_is_open() -> None:
    still_open = [prior(RequestType.ERASURE, 5, closed_days_ago=None)]
    closed = [prior(RequestType.ERASURE, 5, closed_days_ago=2)]
    other = [prior(RequestType.ACCESS, 5, closed_days_ago=None)]
    assert codes(RequestType.ERASURE, [GDPR], still_open) == {RepeatCode.GDPR_REPEAT_WHILE_OPEN: 2}
    assert codes(RequestType.ERASURE, [GDPR], closed) == {}
    assert codes(RequestType.ERASURE, [GDPR], other) == {}
    assert codes(RequestType.ERASURE, [CCPA], still_open) == {}


def test_gdpr_flags_frequent_requests_of_one_type() -> None:
    three = [prior(RequestType.ACCESS, d) for d in (10, 40, 80)]
    assert codes(RequestType.ACCESS, [GDPR], three) == {RepeatCode.GDPR_FREQUENT: 4}
    assert codes(RequestType.ACCESS, [GDPR], three[:2]) == {}
    spread = [prior(RequestType.ACCESS, d) for d in (10, 40, 100)]
    assert codes(RequestType.ACCESS, [GDPR], spread) == {}
    loose = RepeatPolicy(frequent_count=3, frequent_window=timedelta(days=120))
    flags = repeat_flags(RequestType.ACCESS, regimes=[GDPR], received_at=NOW, prior=spread, policy=loose)
    assert [(f.code, f.count) for f in flags] == [(RepeatCode.GDPR_FREQUENT, 4)]


def test_requests_received_later_do_not_count() -> None:
    later = [PriorRequest(RequestType.ACCESS, NOW + timedelta(days=d)) for d in (1, 2, 3)]
    assert codes(RequestType.ACCESS, [GDPR, CCPA], later) == {}


@given(
    kind=st.sampled_from(list(RequestType)),
    regimes=regime_sets,
    ages=st.lists(st.integers(min_value=0, max_value=800), max_size=8),
)
def test_flags_never_shrink_as_history_grows(
    kind: RequestType, regimes: set[LegalRegime], ages: list[int]
) -> None:
    history = [prior(kind, days) for days in ages]
    fewer = {f.code for f in repeat_flags(kind, regimes=regimes, received_at=NOW, prior=history[:-1])}
    more = {f.code for f in repeat_flags(kind, regimes=regimes, received_at=NOW, prior=history)}
    assert fewer <= more
