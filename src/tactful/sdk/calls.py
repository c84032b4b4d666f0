"""What both clients share, with no I/O: the messages they build, the requests they send, how they
read answers and when they try again. `Client` and `AsyncClient` differ only in how they wait."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from tactful.sdk.errors import APIError, RateLimited

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Answers worth trying again: the server was busy or briefly unable. Any other 4xx is final."""

MESSAGE_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: try `retries` more times, waiting a random time up to
    `base * 2**attempt` (capped at `cap`) seconds, or what the server's Retry-After says."""

    retries: int = 3
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))


@dataclass(frozen=True)
class Call:
    """One HTTP request to make."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def message(kind: str, fields: Mapping[str, Any], *, subject_token: str | None) -> dict[str, Any]:
    """A Segment-spec message of `kind` with its id and time fixed now, so that a retry of it is
    recognised by the server as the same message. Fields left as None are left out."""
    if kind not in MESSAGE_TYPES:
        raise ValueError(f"unknown message type {kind!r}: one of {', '.join(sorted(MESSAGE_TYPES))}")
    body = {name: value for name, value in fields.items() if value is not None}
    if not body.get("userId") and not body.get("anonymousId"):
        raise ValueError("a message needs user_id or anonymous_id")
    body["type"] = kind
    body.setdefault("messageId", str(uuid.uuid4()))
    body.setdefault("timestamp", datetime.now(UTC).isoformat())
    if subject_token is not None:
        context = dict(body.get("context") or {})
        context["tactful"] = {**(context.get("tactful") or {}), "subject_token": subject_token}
        body["context"] = context
    return body


def batches(
    messages: Sequence[dict[str, Any]], *, size: int, max_bytes: int
) -> Iterator[list[dict[str, Any]]]:
    """Split `messages` into batches of at most `size` messages and about `max_bytes` of JSON each."""
    batch: list[dict[str, Any]] = []
    weight = 0
    for item in messages:
        cost = len(json.dumps(item, separators=(",", ":"), default=str)) + 1
        if batch and (len(batch) >= size or weight + cost > max_bytes):
            yield batch
            batch, weight = [], 0
        batch.append(item)
        weight += cost
    if batch:
        yield batch


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait (Retry-After as seconds or as an HTTP date), if it says."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        try:
            return (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None


def failure(response: httpx.Response, *, undelivered: Sequence[Mapping[str, Any]] = ()) -> APIError:
    """The error an answer that is not a success stands for, from its problem document."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"http_{response.status_code}")
    text = str(body.get("message") or body.get("detail") or response.reason_phrase or "request failed")
    if response.status_code == 429:
        return RateLimited(
            429,
            retry_after=retry_after(response),
            code=code,
            message=text,
            body=body,
            undelivered=undelivered,
        )
    return APIError(response.status_code, code=code, message=text, body=body, undelivered=undelivered)


def answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer; the error it stands for otherwise."""
    if response.is_success:
        return response.json()
    raise failure(response)


def identity(user_id: str | None, anonymous_id: str | None) -> dict[str, str]:
    """The subject of a consent, decision or privacy call: one or both ids, never none."""
    if not user_id and not anonymous_id:
        raise ValueError("give user_id or anonymous_id")
    return {name: value for name, value in (("user_id", user_id), ("anonymous_id", anonymous_id)) if value}
