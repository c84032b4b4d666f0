"""`Client` and `AsyncClient`: collection, consent, decisions and explanations over HTTP.

Collection calls (`identify`, `track`, `page`, `screen`, `group`, `alias`) only queue a message, with
its id and time fixed when it is queued; `flush()` sends the queue in batches to `/v1/batch` and
returns what became of each message. A batch is retried on 429 and 5xx answers and on transport
errors, with backoff; the server recognises a retried message by its id, so nothing is stored
twice. The other calls are sent at once, with the same retries.

A backend speaks for its users with a server-scope key. With the public write key, what a message
says about a user id is a claim: pass that user's `subject_token` (minted by the site's backend)
with calls that grant consent or link identities, or the server refuses those parts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from tactful.sdk import calls
from tactful.sdk.base import Shared
from tactful.sdk.calls import Backoff, Call
from tactful.sdk.errors import ServerUnreachable
from tactful.sdk.types import ConsentAck, Decision, EventOutcome


def _decisions(payload: Any) -> list[Decision]:
    return [Decision.from_json(item) for item in payload.get("decisions", ())]


class Client(Shared):
    """A synchronous client. Use it as a context manager, or call `close()`: both flush the queue.

    A collection call that fills a batch (`batch_size` messages) flushes it at once, in the calling
    thread; otherwise call `flush()` when a unit of work is done."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        batch_size: int = 100,
        max_batch_bytes: int = 480 * 1024,
        max_queue: int = 10_000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            backoff=backoff,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            max_queue=max_queue,
        )
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Flush what is queued, then close the connection pool."""
        try:
            if self.queued:
                self.flush()
        finally:
            self._http.close()

    def _when_full(self) -> None:
        self.flush()

    def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, json=call.json, params=call.params, headers=call.headers
                )
            except httpx.TransportError as error:
                wait = self._wait_after_error(call, attempt, error)
            else:
                pause = self._wait_after(response, attempt)
                if pause is None:
                    return response
                wait = pause
            time.sleep(wait)
            attempt += 1

    def flush(self) -> list[EventOutcome]:
        """Send every queued message; what became of each, in the order queued.

        If the server stays unreachable or busy, the unsent messages go back to the queue before
        the error is raised, so the next flush sends them (with the same ids). Messages the server
        refuses for good (a 4xx answer to their batch) are in the error's `undelivered`."""
        outcomes: list[EventOutcome] = []
        pending = self._batches()
        while pending:
            batch = pending.pop(0)
            try:
                response = self._send(self._batch_call(batch))
            except ServerUnreachable:
                self._give_back([batch, *pending])
                raise
            outcomes.extend(self._settle(response, batch, pending))
        return outcomes

    def consent(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        purposes: Mapping[str, bool] | None = None,
        explicit: Mapping[str, bool] | None = None,
        source: str = "api",
        notice_version: str | None = None,
        tcf_string: str | None = None,
        subject_token: str | None = None,
        gpc: bool = False,
    ) -> ConsentAck:
        """Record consent choices (`PUT /v1/consent`); a grant for a user id needs its subject token
        unless this is a server key. `gpc=True` forwards the browser's `Sec-GPC: 1`."""
        call = self._consent_call(
            user_id=user_id,
            anonymous_id=anonymous_id,
            purposes=purposes,
            explicit=explicit,
            source=source,
            notice_version=notice_version,
            tcf_string=tcf_string,
            subject_token=subject_token,
            gpc=gpc,
        )
        return ConsentAck.from_json(calls.answer(self._send(call)))

    def consent_state(
        self, *, user_id: str | None = None, anonymous_id: str | None = None, at: datetime | None = None
    ) -> dict[str, Any]:
        """A subject's consent now, or at `at` (`GET /v1/consent`; a server key)."""
        result: dict[str, Any] = calls.answer(
            self._send(self._state_call(user_id=user_id, anonymous_id=anonymous_id, at=at))
        )
        return result

    def decide(
        self,
        placements: Sequence[str],
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        gpc: bool = False,
    ) -> list[Decision]:
        """Decide what to show in each placement for this visitor (`POST /v1/decide`; a server key)."""
        call = self._decide_call(
            placements=placements, user_id=user_id, anonymous_id=anonymous_id, context=context, gpc=gpc
        )
        return _decisions(calls.answer(self._send(call)))

    def explanation(self, decision_id: str, *, locale: str | None = None) -> dict[str, Any]:
        """The subject-facing "why am I seeing this?" of a decision, in `locale` where translated."""
        result: dict[str, Any] = calls.answer(self._send(self._explanation_call(decision_id, locale=locale)))
        return result


class AsyncClient(Shared):
    """The asyncio client. `async with`, or `await aclose()`: both flush the queue.

    Collection calls queue without waiting; one that fills a batch starts a flush in the
    background (`await flush()` to wait for it and see the outcomes)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        batch_size: int = 100,
        max_batch_bytes: int = 480 * 1024,
        max_queue: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            backoff=backoff,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            max_queue=max_queue,
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=timeout, transport=transport
        )
        self._flushes: set[asyncio.Task[list[EventOutcome]]] = set()
        self.background_errors: list[BaseException] = []
        """Errors of flushes started in the background by a full queue (their messages are queued again)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for background flushes, flush what is queued, then close the connection pool."""
        try:
            await self._background_flushes()
            if self.queued:
                await self.flush()
        finally:
            await self._http.aclose()

    def _when_full(self) -> None:
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[list[EventOutcome]]) -> None:
        self._flushes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.background_errors.append(task.exception())  # type: ignore[arg-type]

    async def _background_flushes(self) -> None:
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params, headers=call.headers
                )
            except httpx.TransportError as error:
                wait = self._wait_after_error(call, attempt, error)
            else:
                pause = self._wait_after(response, attempt)
                if pause is None:
                    return response
                wait = pause
            await asyncio.sleep(wait)
            attempt += 1

    async def flush(self) -> list[EventOutcome]:
        """As `Client.flush`."""
        outcomes: list[EventOutcome] = []
        pending = self._batches()
        while pending:
            batch = pending.pop(0)
            try:
                response = await self._send(self._batch_call(batch))
            except ServerUnreachable:
                self._give_back([batch, *pending])
                raise
            outcomes.extend(self._settle(response, batch, pending))
        return outcomes

    async def consent(
        self,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        purposes: Mapping[str, bool] | None = None,
        explicit: Mapping[str, bool] | None = None,
        source: str = "api",
        notice_version: str | None = None,
        tcf_string: str | None = None,
        subject_token: str | None = None,
        gpc: bool = False,
    ) -> ConsentAck:
        """As `Client.consent`."""
        call = self._consent_call(
            user_id=user_id,
            anonymous_id=anonymous_id,
            purposes=purposes,
            explicit=explicit,
            source=source,
            notice_version=notice_version,
            tcf_string=tcf_string,
            subject_token=subject_token,
            gpc=gpc,
        )
        return ConsentAck.from_json(calls.answer(await self._send(call)))

    async def consent_state(
        self, *, user_id: str | None = None, anonymous_id: str | None = None, at: datetime | None = None
    ) -> dict[str, Any]:
        """As `Client.consent_state`."""
        call = self._state_call(user_id=user_id, anonymous_id=anonymous_id, at=at)
        result: dict[str, Any] = calls.answer(await self._send(call))
        return result

    async def decide(
        self,
        placements: Sequence[str],
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        gpc: bool = False,
    ) -> list[Decision]:
        """As `Client.decide`."""
        call = self._decide_call(
            placements=placements, user_id=user_id, anonymous_id=anonymous_id, context=context, gpc=gpc
        )
        return _decisions(calls.answer(await self._send(call)))

    async def explanation(self, decision_id: str, *, locale: str | None = None) -> dict[str, Any]:
        """As `Client.explanation`."""
        result: dict[str, Any] = calls.answer(
            await self._send(self._explanation_call(decision_id, locale=locale))
        )
        return result


__all__ = ["AsyncClient", "Client"]
