"""Request parameters read in the API layer: times in UTC within the calendar, or 422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.api.deps import EARLIEST, LATEST, moment
from tactful.errors import InvalidInput

OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(local=st.datetimes(), offset=OFFSETS)
def test_a_time_is_its_utc_value_or_refused_as_out_of_range(local: datetime, offset: timezone) -> None:
    value = local.replace(tzinfo=offset)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is not None and EARLIEST <= utc <= LATEST:
        converted = moment(value, field="at")
        assert converted == value
        assert converted.utcoffset() == timedelta(0)
        # A day either way stays in the calendar, whatever code does with the time next.
        assert converted - timedelta(days=1) < converted + timedelta(days=1)
    else:
        with pytest.raises(InvalidInput) as refused:
            moment(value, field="at")
        assert (refused.value.code, refused.value.field) == ("time_out_of_range", "at")


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        moment(datetime(2026, 3, 3, 14, 2), field="since")
    assert refused.value.field == "since"
    assert refused.value.code == "invalid_input"
