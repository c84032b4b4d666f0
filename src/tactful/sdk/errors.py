"""The client's errors: what went wrong talking to a Tactful server, as the server said it.

    TactfulClientError
     ├─ APIError            the server answered with a problem document (status, code, message)
     │   └─ RateLimited     429, after the retries the client was allowed (Retry-After kept)
     ├─ ServerUnreachable   no answer at all after the retries (connection refused, timeout)
     └─ QueueFull           collection calls queued faster than they were flushed

The server's codes are stable strings (`invalid_input`, `subject_token_invalid`, ...): branch on
`APIError.code`, never on `message`, which is meant for people.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class TactfulClientError(Exception):
    """Anything the client raises."""


class APIError(TactfulClientError):
    """The server refused the call: `status`, its problem `code` and `message`, and the whole body."""

    def __init__(
        self,
        status: int,
        *,
        code: str,
        message: str,
        body: Mapping[str, Any] | None = None,
        undelivered: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body: Mapping[str, Any] = body or {}
        self.undelivered = tuple(undelivered)
        """Collection messages taken off the queue because the server refused them for good."""


class RateLimited(APIError):
    """429 Too Many Requests, still after the client's retries; `retry_after` in seconds when given."""

    def __init__(self, status: int, *, retry_after: float | None, **kwargs: Any) -> None:
        super().__init__(status, **kwargs)
        self.retry_after = retry_after


class ServerUnreachable(TactfulClientError):
    """No answer after the retries: the last transport error is the cause (`__cause__`)."""


class QueueFull(TactfulClientError):
    """The queue of collection calls holds `max_queue` messages: flush, or raise the limit."""
