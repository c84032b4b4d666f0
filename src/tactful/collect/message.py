"""The shapes of Segment messages on the wire: envelopes, transport fields and content fingerprints.

Pure. A request carries one message (`/v1/track`) or a batch (`/v1/batch`, analytics.js `/v1/b`); a
batch's `context`, `integrations` and `sentAt` apply to every message that does not set its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from tactful import jsontext
from tactful.errors import InvalidInput, PayloadTooLarge


class BatchLimit(Protocol):
    """What unpacking reads of the configured limits (`tactful.config.Limits` has it): this module
    stays pure, with no settings code behind it."""

    @property
    def max_events_per_batch(self) -> int: ...


class MessageType(StrEnum):
    IDENTIFY = "identify"
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


TRANSPORT_FIELDS = frozenset({"writeKey", "sentAt", "receivedAt", "_metadata", "integrations", "messageId"})
"""Fields about delivery, not about what happened: a retry may change them without being a new event."""

CONTEXT_TRANSPORT = frozenset({"library"})

CONSENT_CONTEXT_FIELDS = frozenset({"consent", "consentManagement", "gpc"})
"""Kept in their own columns for the consent ledger, so not passed through the catalog filter."""

STORED_ELSEWHERE = frozenset(
    {"writeKey", "sentAt", "receivedAt", "_metadata", "integrations", "originalTimestamp"}
)


@dataclass(frozen=True)
class Envelope:
    messages: list[object]
    write_key: str | None


def _write_key(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _without_write_key(item: object) -> object:
    if isinstance(item, dict) and "writeKey" in item:
        return {k: v for k, v in item.items() if k != "writeKey"}
    return item


def unpack(body: object, *, kind: MessageType | None, limits: BatchLimit) -> Envelope:
    """Split a parsed request body into messages; `kind` is the type a single-message path implies."""
    if kind is not None:
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object", code="invalid_body")
        message = {k: v for k, v in body.items() if k != "writeKey"}
        message["type"] = kind.value
        return Envelope([message], _write_key(body.get("writeKey")))
    shared: dict[str, Any] = {}
    if isinstance(body, list):  # older analytics.js batching posts a bare array
        items: list[object] = body
    elif isinstance(body, dict) and isinstance(body.get("batch"), list):
        items = body["batch"]
        shared = body
    else:
        raise InvalidInput("a batch body is an object with a `batch` array", code="invalid_body")
    if len(items) > limits.max_events_per_batch:
        raise PayloadTooLarge(
            f"a batch holds at most {limits.max_events_per_batch} messages", code="too_many_events"
        )
    write_key = _write_key(shared.get("writeKey"))
    if write_key is None:
        write_key = next(
            (k for i in items if isinstance(i, dict) and (k := _write_key(i.get("writeKey")))), None
        )
    messages = [_apply_shared(_without_write_key(item), shared) for item in items]
    return Envelope(messages, write_key)


def _apply_shared(item: object, shared: Mapping[str, Any]) -> object:
    if not isinstance(item, dict) or not shared:
        return item
    merged = dict(item)
    for name in ("context", "integrations"):
        outer = shared.get(name)
        if isinstance(outer, dict) and outer:
            inner = merged.get(name)
            if inner is None:
                merged[name] = dict(outer)
            elif isinstance(inner, dict):
                merged[name] = {**outer, **inner}
    if "sentAt" in shared and "sentAt" not in merged:
        merged["sentAt"] = shared["sentAt"]
    return merged


# -- content ----------------------------------------------------------------------------------


def content(message: Mapping[str, Any]) -> dict[str, Any]:
    """The message without its transport fields: what a retry repeats exactly. A null or absent
    field, and a context that only held transport fields, read the same."""
    kept = {k: v for k, v in message.items() if k not in TRANSPORT_FIELDS and v is not None}
    context = kept.get("context")
    if isinstance(context, dict) and CONTEXT_TRANSPORT & context.keys():
        kept["context"] = {k: v for k, v in context.items() if k not in CONTEXT_TRANSPORT}
    if kept.get("context") == {}:
        del kept["context"]
    return kept


def canonical(message: Mapping[str, Any]) -> str:
    """A canonical JSON text of the content (sorted keys, compact), for fingerprints."""
    return jsontext.canonical(content(message))


def content_hash(message: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(message).encode("utf-8", "surrogatepass")).hexdigest()


def for_catalog(message: Mapping[str, Any]) -> dict[str, Any]:
    """What goes through the catalog filter: no transport fields, no consent signals (stored apart)."""
    kept = {k: v for k, v in message.items() if k not in STORED_ELSEWHERE}
    context = kept.get("context")
    if isinstance(context, dict) and CONSENT_CONTEXT_FIELDS & context.keys():
        kept["context"] = {k: v for k, v in context.items() if k not in CONSENT_CONTEXT_FIELDS}
    return kept


def raw_text(message: object) -> str:
    """The payload as ASCII JSON: NUL and lone surrogates become escapes that every database stores."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":"), default=str)
