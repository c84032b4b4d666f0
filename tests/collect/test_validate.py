"""Segment-spec validation: typed reasons, timestamps normalised to UTC, clock-skew correction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.collect.message import MessageType
from tactful.collect.validate import Reason, Rejection, ValidEvent, read_identity, validate
from tests.collect.builders import T0

AT = T0


def check(message: object, *, limit: int = 32 * 1024) -> ValidEvent | Rejection:
    return validate(message, at=AT, max_event_bytes=limit)


def valid(message: object) -> ValidEvent:
    result = check(message)
    assert isinstance(result, ValidEvent), result
    return result


def reason(message: object, **kwargs: Any) -> Reason:
    result = check(message, **kwargs)
    assert isinstance(result, Rejection), result
    return result.reason


BASE = {"anonymousId": "a-1", "timestamp": "2026-03-01T11:00:00Z"}


@pytest.mark.parametrize(
    "message",
    [
        {**BASE, "type": "track", "event": "Signed Up"},
        {**BASE, "type": "identify", "traits": {"first_name": "Ada"}},
        {**BASE, "type": "page", "name": "Home", "properties": {"path": "/"}},
        {**BASE, "type": "page"},
        {**BASE, "type": "screen", "name": "Home"},
        {**BASE, "type": "group", "groupId": "g-1"},
        {"type": "alias", "userId": "u-1", "previousId": "a-1"},
        {"type": "identify", "userId": 42},
    ],
)
def test_spec_messages_are_valid(message: dict[str, Any]) -> None:
    assert valid(message).type is MessageType(message["type"])


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ([], Reason.INVALID_TYPE),
        ("track", Reason.INVALID_TYPE),
        ({**BASE}, Reason.INVALID_TYPE),
        ({**BASE, "type": "purchase"}, Reason.INVALID_TYPE),
        ({**BASE, "type": 7}, Reason.INVALID_TYPE),
        ({"type": "track", "event": "x"}, Reason.MISSING_IDENTITY),
        ({"type": "track", "event": "x", "userId": "", "anonymousId": None}, Reason.MISSING_IDENTITY),
        ({"type": "alias", "userId": "u-1"}, Reason.MISSING_IDENTITY),
        ({"type": "alias", "previousId": "a-1", "anonymousId": "a-2"}, Reason.MISSING_IDENTITY),
        ({**BASE, "type": "track"}, Reason.INVALID_FIELD),
        ({**BASE, "type": "track", "event": ""}, Reason.INVALID_FIELD),
        ({**BASE, "type": "track", "event": 3}, Reason.INVALID_FIELD),
        ({**BASE, "type": "track", "event": "x", "properties": []}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "traits": "Ada"}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "context": 1}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "userId": {"id": 1}}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "userId": True}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "userId": "u" * 256}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "messageId": ["m"]}, Reason.INVALID_FIELD),
        ({**BASE, "type": "group"}, Reason.INVALID_FIELD),
        ({**BASE, "type": "page", "name": 5}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "timestamp": "yesterday"}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "timestamp": 1700000000}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "sentAt": "soon"}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "context": {"gpc": "yes"}}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "context": {"consent": []}}, Reason.INVALID_FIELD),
        ({**BASE, "type": "identify", "timestamp": "2100-01-01T00:00:00Z"}, Reason.TIMESTAMP_OUT_OF_RANGE),
        ({**BASE, "type": "identify", "timestamp": "1999-12-31T23:59:59Z"}, Reason.TIMESTAMP_OUT_OF_RANGE),
        ({**BASE, "type": "identify", "traits": {"name": "A\u0000da"}}, Reason.UNSTORABLE_VALUE),
        ({**BASE, "type": "identify", "traits": {"na\u0000me": "Ada"}}, Reason.UNSTORABLE_VALUE),
        ({**BASE, "type": "identify", "traits": {"name": "\ud800"}}, Reason.UNSTORABLE_VALUE),
        ({**BASE, "type": "identify", "context": {"a": [{"b": ["\udfff"]}]}}, Reason.UNSTORABLE_VALUE),
        ({**BASE, "type": "identify", "anonymousId": "a\u0000"}, Reason.UNSTORABLE_VALUE),
    ],
)
def test_invalid_messages_get_a_typed_reason(message: object, expected: Reason) -> None:
    assert reason(message) is expected


def test_an_event_over_the_size_limit_is_too_large() -> None:
    message = {**BASE, "type": "track", "event": "x", "properties": {"blob": "é" * 600}}
    assert reason(message, limit=1024) is Reason.EVENT_TOO_LARGE  # 1,200 bytes of UTF-8
    assert isinstance(check(message, limit=1400), ValidEvent)


def test_details_name_fields_never_values() -> None:
    result = check({**BASE, "type": "identify", "traits": {"email": "ada@example.com\u0000"}})
    assert isinstance(result, Rejection)
    assert "ada@example.com" not in result.detail


def test_timestamps_are_normalised_to_utc() -> None:
    event = valid({**BASE, "type": "identify", "timestamp": "2026-03-01T13:00:00+02:00"})
    assert event.timestamp == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    naive = valid({**BASE, "type": "identify", "timestamp": "2026-03-01T11:00:00"})
    assert naive.timestamp == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The device clock runs 3 hours fast: the event happened 5 minutes before it was sent.
    event = valid(
        {**BASE, "type": "identify", "timestamp": "2026-03-01T14:55:00Z", "sentAt": "2026-03-01T15:00:00Z"}
    )
    assert event.timestamp == AT - timedelta(minutes=5)
    assert event.original_timestamp == datetime(2026, 3, 1, 14, 55, tzinfo=UTC)


def test_a_far_future_device_clock_is_corrected_not_refused() -> None:
    event = valid(
        {**BASE, "type": "identify", "timestamp": "2100-01-01T00:00:00Z", "sentAt": "2100-01-01T00:00:01Z"}
    )
    assert event.timestamp == AT - timedelta(seconds=1)


def test_without_a_timestamp_the_event_time_is_the_receipt_time() -> None:
    event = valid({"type": "track", "event": "x", "userId": "u"})
    assert event.timestamp == AT
    assert event.original_timestamp is None


def test_original_timestamp_is_read_when_timestamp_is_absent() -> None:
    event = valid({"type": "track", "event": "x", "userId": "u", "originalTimestamp": "2026-02-01T00:00:00Z"})
    assert event.timestamp == datetime(2026, 2, 1, tzinfo=UTC)


def test_a_day_of_future_tolerance() -> None:
    assert isinstance(
        check({**BASE, "type": "identify", "timestamp": (AT + timedelta(hours=23)).isoformat()}), ValidEvent
    )
    assert reason({**BASE, "type": "identify", "timestamp": (AT + timedelta(hours=25)).isoformat()}) is (
        Reason.TIMESTAMP_OUT_OF_RANGE
    )


def test_consent_and_gpc_are_read_from_the_context() -> None:
    event = valid(
        {
            **BASE,
            "type": "track",
            "event": "x",
            "context": {
                "consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}},
                "consentManagement": {"cmp": "example"},
                "gpc": True,
            },
        }
    )
    assert event.consent == {
        "categoryPreferences": {"Advertising": False, "Analytics": True},
        "consentManagement": {"cmp": "example"},
    }
    assert event.gpc is True
    assert valid({**BASE, "type": "identify"}).consent is None


def test_read_identity_of_an_invalid_message() -> None:
    identity = read_identity({"type": "nonsense", "userId": "u-1"})
    assert identity is not None
    assert identity.user_id == "u-1"
    assert identity.anonymous_id is None
    assert read_identity({"type": "track", "userId": "u\u0000"}) is None
    assert read_identity({"type": "track"}) is None
    assert read_identity(17) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "userId",
                "anonymousId",
                "event",
                "timestamp",
                "sentAt",
                "properties",
                "traits",
                "context",
                "previousId",
                "groupId",
                "name",
                "messageId",
            ]
        ),
        json_values,
    )
)
def test_any_message_is_either_valid_or_rejected_with_a_reason(message: dict[str, Any]) -> None:
    result = check(message)
    assert isinstance(result, ValidEvent | Rejection)
    if isinstance(result, Rejection):
        assert result.reason in Reason
