"""The time a message is judged by against an erasure is its own: whatever the client's clock skew
correction makes of it, a message sent before an erasure is never taken for one sent after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tactful.collect.erased import own_time
from tactful.collect.validate import ValidEvent, validate

START = datetime(2026, 1, 1, tzinfo=UTC)
minutes = st.integers(min_value=0, max_value=60 * 24 * 300)


@given(
    happened=minutes,
    sent_after=minutes,
    received_after=minutes,
    field=st.sampled_from(["timestamp", "originalTimestamp"]),
)
def test_a_message_is_judged_by_when_it_happened(
    happened: int, sent_after: int, received_after: int, field: str
) -> None:
    at = START + timedelta(minutes=happened)
    sent = at + timedelta(minutes=sent_after)
    received = sent + timedelta(minutes=received_after)
    message = {"type": "track", "event": "Product Viewed", "userId": "u-1", "messageId": "m-1",
               field: at.isoformat(), "sentAt": sent.isoformat()}  # fmt: skip
    event = validate(message, at=received, max_event_bytes=32_000)
    assert isinstance(event, ValidEvent)
    assert own_time(event) == at  # held back for days, or replayed: still the time it happened
    assert own_time(event) <= event.timestamp  # never later than the skew-corrected time


@given(late_clock=minutes)
def test_a_device_clock_running_behind_counts_as_earlier(late_clock: int) -> None:
    received = START + timedelta(days=400)
    said = received - timedelta(minutes=late_clock)
    message = {"type": "page", "anonymousId": "a-1", "messageId": "m-2", "timestamp": said.isoformat()}
    event = validate(message, at=received, max_event_bytes=32_000)
    assert isinstance(event, ValidEvent)
    assert own_time(event) == said  # the safe side: suppressed rather than a person brought back
