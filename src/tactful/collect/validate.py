"""Segment-spec validation of one message: a `ValidEvent` with normalised fields, or a `Rejection`.

Pure. Details name fields, never values: they end up in the quarantine table and in responses.
Timestamps follow Segment's clock-skew correction: when the client sent both the event time and the
time it sent the batch, `timestamp = receivedAt - (sentAt - originalTimestamp)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tactful import jsontext
from tactful.collect.message import MessageType

MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
_TYPES = {kind.value: kind for kind in MessageType}
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SUSPECT = re.compile("\\\\u0000|[\ud800-\udfff]")
"""In JSON text: a NUL (always escaped by the encoder) or a lone surrogate (left raw without ASCII)."""


class Reason(StrEnum):
    """Why an event was not stored."""

    MISSING_IDENTITY = "missing_identity"
    INVALID_TYPE = "invalid_type"
    INVALID_FIELD = "invalid_field"
    EVENT_TOO_LARGE = "event_too_large"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    UNSTORABLE_VALUE = "unstorable_value"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    ERASED_SUBJECT = "erased_subject"
    NO_PURPOSE = "no_purpose"
    """Suppressed: at receipt no purpose allowed storing it (consent, GPC, age, the atom's purposes)."""
    UNDECLARED_EVENT = "undeclared_event"
    """Dropped: the catalog declares no atom for the event's name (a track) or its type."""


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str


@dataclass(frozen=True)
class ValidEvent:
    type: MessageType
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    group_id: str | None
    name: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    consent: dict[str, Any] | None
    gpc: bool | None


class _Invalid(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


# -- fields ----------------------------------------------------------------------------------


def _id(message: Mapping[str, Any], field: str, *, scanned: bool = False) -> str | None:
    """Segment ids are strings or numbers; empty means absent. `scanned`: the whole message is known
    to hold no NUL or lone surrogate (`validate` looked), so the id is not searched again."""
    value = message.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` must be a string")
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_LENGTH:
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` is longer than {MAX_ID_LENGTH} characters")
    if not scanned and _UNSTORABLE.search(text):
        raise _Invalid(Reason.UNSTORABLE_VALUE, f"`{field}` holds NUL or a lone surrogate")
    return text


def _name(message: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    value = message.get(field)
    if value is None or (value == "" and not required):
        if required:
            raise _Invalid(Reason.INVALID_FIELD, f"`{field}` is required for {message.get('type')} calls")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` is longer than {MAX_NAME_LENGTH} characters")
    return value


def _object(message: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    value = message.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` must be an object")
    return value


def _time(message: Mapping[str, Any], field: str) -> datetime | None:
    value = message.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _Invalid(Reason.INVALID_FIELD, f"`{field}` is not an ISO 8601 date-time") from exc
    # Segment reads a time without an offset as UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def event_time(message: Mapping[str, Any], *, at: datetime) -> tuple[datetime, datetime | None]:
    """(corrected timestamp, original timestamp) of a message received at `at`."""
    original = _time(message, "timestamp") or _time(message, "originalTimestamp")
    sent_at = _time(message, "sentAt")
    if original is None:
        return at, None
    if sent_at is None:
        return original, original
    try:
        return at - (sent_at - original), original
    except OverflowError as exc:
        raise _Invalid(
            Reason.TIMESTAMP_OUT_OF_RANGE, "`timestamp` and `sentAt` are implausibly far apart"
        ) from exc


def _unstorable_field(message: Mapping[str, Any]) -> str | None:
    """The top-level field holding a string PostgreSQL cannot store (NUL, lone surrogate), if any."""
    for field, value in message.items():
        if _UNSTORABLE.search(field):
            return "a field name"
        stack: list[object] = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, str):
                if _UNSTORABLE.search(node):
                    return f"`{field}`"
            elif isinstance(node, dict):
                for key, child in node.items():
                    if _UNSTORABLE.search(key):
                        return f"`{field}`"
                    stack.append(child)
            elif isinstance(node, list):
                stack.extend(node)
    return None


def _encoded(message: object) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)


def encoded_size(message: object) -> int:
    """The size of the message as compact UTF-8 JSON."""
    data = jsontext.compact(message)
    if data is not None:
        return len(data)
    text = _encoded(message)
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# -- the message ------------------------------------------------------------------------------


def _consent(context: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, bool | None]:
    if not context:
        return None, None
    consent: dict[str, Any] = {}
    carried = context.get("consent")
    if carried is not None:
        if not isinstance(carried, dict):
            raise _Invalid(Reason.INVALID_FIELD, "`context.consent` must be an object")
        preferences = carried.get("categoryPreferences")
        if preferences is not None and not isinstance(preferences, dict):
            raise _Invalid(Reason.INVALID_FIELD, "`context.consent.categoryPreferences` must be an object")
        consent.update(carried)
    management = context.get("consentManagement")
    if management is not None:
        if not isinstance(management, dict):
            raise _Invalid(Reason.INVALID_FIELD, "`context.consentManagement` must be an object")
        consent["consentManagement"] = management
    gpc = context.get("gpc")
    if gpc is not None and not isinstance(gpc, bool):
        raise _Invalid(Reason.INVALID_FIELD, "`context.gpc` must be true or false")
    return consent or None, gpc


def _check(message: Mapping[str, Any], *, at: datetime) -> ValidEvent:
    # Only `validate` calls this, once it found no NUL or lone surrogate anywhere in the message.
    raw_type = message.get("type")
    kind = _TYPES.get(raw_type) if isinstance(raw_type, str) else None
    if kind is None:
        raise _Invalid(Reason.INVALID_TYPE, "`type` must be identify, track, page, screen, group or alias")
    message_id = _id(message, "messageId", scanned=True)
    user_id = _id(message, "userId", scanned=True)
    anonymous_id = _id(message, "anonymousId", scanned=True)
    previous_id = _id(message, "previousId", scanned=True)
    group_id = _id(message, "groupId", scanned=True)
    if kind is MessageType.ALIAS:
        if user_id is None or previous_id is None:
            raise _Invalid(Reason.MISSING_IDENTITY, "alias calls need `userId` and `previousId`")
    elif user_id is None and anonymous_id is None:
        raise _Invalid(Reason.MISSING_IDENTITY, "`userId` or `anonymousId` is required")
    name: str | None = None
    if kind is MessageType.TRACK:
        name = _name(message, "event", required=True)
    elif kind in (MessageType.PAGE, MessageType.SCREEN):
        name = _name(message, "name")
        _name(message, "category")
    elif kind is MessageType.GROUP and group_id is None:
        raise _Invalid(Reason.INVALID_FIELD, "group calls need `groupId`")
    for field in ("properties", "traits", "integrations"):
        _object(message, field)
    context = _object(message, "context")
    if context is not None:
        _object(context, "traits")
    consent, gpc = _consent(context)
    timestamp, original = event_time(message, at=at)
    if not EARLIEST <= timestamp <= at + FUTURE_TOLERANCE:
        raise _Invalid(
            Reason.TIMESTAMP_OUT_OF_RANGE, "the event time is before 2000 or more than a day ahead"
        )
    return ValidEvent(
        type=kind,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        previous_id=previous_id,
        group_id=group_id,
        name=name,
        timestamp=timestamp,
        original_timestamp=original,
        consent=consent,
        gpc=gpc,
    )


def validate(message: object, *, at: datetime, max_event_bytes: int) -> ValidEvent | Rejection:
    """Check one message received at `at`."""
    if not isinstance(message, dict):
        return Rejection(Reason.INVALID_TYPE, "a message must be a JSON object")
    data = jsontext.compact(message)
    if data is not None:
        # orjson refuses lone surrogates and escapes NUL, so the escape is the only suspect.
        size, suspect = len(data), b"\\u0000" in data
    else:
        text = _encoded(message)
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        suspect = _SUSPECT.search(text) is not None
    if size > max_event_bytes:
        return Rejection(
            Reason.EVENT_TOO_LARGE, f"the event has {size} bytes; the limit is {max_event_bytes}"
        )
    # One scan of the encoded text; the walk that names the field runs only on a suspect.
    where = _unstorable_field(message) if suspect else None
    if where is not None:
        return Rejection(Reason.UNSTORABLE_VALUE, f"{where} holds NUL or a lone surrogate")
    try:
        return _check(message, at=at)
    except _Invalid as invalid:
        return invalid.rejection


@dataclass(frozen=True)
class Identity:
    user_id: str | None
    anonymous_id: str | None


def read_identity(message: object) -> Identity | None:
    """The identity of a message that failed validation, when its ids are themselves valid."""
    if not isinstance(message, dict):
        return None
    try:
        user_id, anonymous_id = _id(message, "userId"), _id(message, "anonymousId")
    except _Invalid:
        return None
    if user_id is None and anonymous_id is None:
        return None
    return Identity(user_id, anonymous_id)
