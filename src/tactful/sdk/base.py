"""What both clients share: their configuration, the queue of collection messages, the requests of
every call, and the rules for reading answers and trying again. The clients only send and wait."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib import metadata
from typing import Any

import httpx

from tactful.sdk import calls
from tactful.sdk.calls import Backoff, Call
from tactful.sdk.errors import QueueFull, ServerUnreachable
from tactful.sdk.types import EventOutcome

try:
    _VERSION = metadata.version("tactful")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "0"

Message = dict[str, Any]


class Shared:
    """Configuration, the queue of collection messages and the requests of every call."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        backoff: Backoff | None,
        batch_size: int,
        max_batch_bytes: int,
        max_queue: int,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required: a server key for a backend, a write key in browsers")
        if not 1 <= batch_size <= max_queue:
            raise ValueError("batch_size must be between 1 and max_queue")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.max_queue = max_queue
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": f"tactful-python/{_VERSION}"}
        self._queue: deque[Message] = deque()
        self._lock = threading.Lock()

    # -- collection: queued ------------------------------------------------------------------

    def identify(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        subject_token: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Queue an identify call; returns its message id."""
        fields = {"userId": user_id, "anonymousId": anonymous_id, "traits": traits, "context": context}
        return self._queue_message("identify", fields, subject_token, message_id, timestamp)

    def track(
        self,
        event: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        subject_token: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Queue a track call (an outcome of a decision carries `properties["decision_id"]`)."""
        fields = {
            "event": event,
            "userId": user_id,
            "anonymousId": anonymous_id,
            "properties": properties,
            "context": context,
        }
        return self._queue_message("track", fields, subject_token, message_id, timestamp)

    def page(
        self,
        name: str | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        subject_token: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
        screen: bool = False,
    ) -> str:
        """Queue a page call (a screen call with `screen=True`, for apps)."""
        fields = {
            "name": name,
            "userId": user_id,
            "anonymousId": anonymous_id,
            "properties": properties,
            "context": context,
        }
        return self._queue_message(
            "screen" if screen else "page", fields, subject_token, message_id, timestamp
        )

    def group(
        self,
        group_id: str,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        subject_token: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Queue a group call."""
        fields = {
            "groupId": group_id,
            "userId": user_id,
            "anonymousId": anonymous_id,
            "traits": traits,
            "context": context,
        }
        return self._queue_message("group", fields, subject_token, message_id, timestamp)

    def alias(
        self,
        *,
        user_id: str,
        previous_id: str,
        context: Mapping[str, Any] | None = None,
        subject_token: str | None = None,
        previous_subject_token: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Queue an alias call: `previous_id` (an anonymous id or an older user id) is `user_id`.
        Without a server key, joining two user ids needs a token for each."""
        if previous_subject_token is not None:
            given = dict(context or {})
            given["tactful"] = {
                **(given.get("tactful") or {}),
                "previous_subject_token": previous_subject_token,
            }
            context = given
        fields = {"userId": user_id, "previousId": previous_id, "context": context}
        return self._queue_message("alias", fields, subject_token, message_id, timestamp)

    def _queue_message(
        self,
        kind: str,
        fields: dict[str, Any],
        subject_token: str | None,
        message_id: str | None,
        timestamp: datetime | None,
    ) -> str:
        fields |= {"messageId": message_id, "timestamp": timestamp.isoformat() if timestamp else None}
        built = calls.message(kind, fields, subject_token=subject_token)
        with self._lock:
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"{len(self._queue)} messages are queued: call flush()")
            self._queue.append(built)
            full = len(self._queue) >= self.batch_size
        if full:
            self._when_full()
        return str(built["messageId"])

    def _when_full(self) -> None:
        raise NotImplementedError

    @property
    def queued(self) -> int:
        """Messages waiting for the next flush."""
        return len(self._queue)

    def _take(self) -> list[Message]:
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
        return taken

    def _batches(self) -> list[list[Message]]:
        taken = self._take()
        return list(calls.batches(taken, size=self.batch_size, max_bytes=self.max_batch_bytes))

    def _give_back(self, batches: Sequence[Sequence[Message]]) -> None:
        with self._lock:
            self._queue.extendleft(reversed([m for batch in batches for m in batch]))

    def _settle(
        self, response: httpx.Response, batch: list[Message], pending: list[list[Message]]
    ) -> list[EventOutcome]:
        """The outcomes of a sent batch; or, when the server refused it, the unsent messages back in
        the queue (the refused batch too, unless the refusal is final) and the error raised."""
        if response.is_success:
            return [EventOutcome.from_json(item) for item in response.json().get("results", ())]
        if response.status_code in calls.RETRY_STATUSES:
            self._give_back([batch, *pending])
            raise calls.failure(response)
        self._give_back(pending)
        raise calls.failure(response, undelivered=batch)

    def _wait_after(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before trying `response`'s call again; None to take the answer as it is."""
        if response.status_code not in calls.RETRY_STATUSES or attempt >= self.backoff.retries:
            return None
        return self.backoff.delay(attempt, calls.retry_after(response))

    def _wait_after_error(self, call: Call, attempt: int, error: httpx.TransportError) -> float:
        if attempt >= self.backoff.retries:
            raise ServerUnreachable(f"{call.method} {call.path}: {error}") from error
        return self.backoff.delay(attempt, None)

    # -- the other calls: built here, sent by the subclass --------------------------------------

    @staticmethod
    def _consent_call(
        *,
        user_id: str | None,
        anonymous_id: str | None,
        purposes: Mapping[str, bool] | None,
        explicit: Mapping[str, bool] | None,
        source: str,
        notice_version: str | None,
        tcf_string: str | None,
        subject_token: str | None,
        gpc: bool,
    ) -> Call:
        body: dict[str, Any] = calls.identity(user_id, anonymous_id) | {"source": source}
        optional = {
            "purposes": purposes,
            "explicit": explicit,
            "notice_version": notice_version,
            "tcf_string": tcf_string,
            "subject_token": subject_token,
        }
        body |= {name: value for name, value in optional.items() if value is not None}
        return Call("PUT", "/v1/consent", json=body, headers={"Sec-GPC": "1"} if gpc else {})

    @staticmethod
    def _state_call(*, user_id: str | None, anonymous_id: str | None, at: datetime | None) -> Call:
        params = calls.identity(user_id, anonymous_id) | ({"at": at.isoformat()} if at else {})
        return Call("GET", "/v1/consent", params=params)

    @staticmethod
    def _decide_call(
        *,
        placements: Sequence[str],
        user_id: str | None,
        anonymous_id: str | None,
        context: Mapping[str, Any] | None,
        gpc: bool,
    ) -> Call:
        if isinstance(placements, str):
            raise TypeError("placements is a list of placement keys")
        body = calls.identity(user_id, anonymous_id) | {
            "placements": list(placements),
            "context": context or {},
        }
        return Call("POST", "/v1/decide", json=body, headers={"Sec-GPC": "1"} if gpc else {})

    @staticmethod
    def _explanation_call(decision_id: str, *, locale: str | None) -> Call:
        if not decision_id or "/" in decision_id:
            raise ValueError("decision_id is the id a decision answered with")
        params = {"locale": locale} if locale else None
        return Call("GET", f"/v1/decisions/{decision_id}/explanation", params=params)

    def _batch_call(self, batch: Sequence[Message]) -> Call:
        return Call("POST", "/v1/batch", json={"batch": list(batch)})
