"""Request ids and an access log that carries no personal data.

Uvicorn's own access log writes the client address and the raw path with its query string (where
identifiers can travel), so `tactful serve` turns it off and this middleware logs instead: method,
route template, status, duration and request id. Every request gets an `X-Request-ID` (the caller's,
when it is a short printable token; else a new one), which handlers read from the headers and
record as proof (consent, events), and which the response echoes.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tactful.access")

HEADER = b"x-request-id"


def valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 64 and all(0x21 <= byte <= 0x7E for byte in value)


class RequestContext:
    """Pure ASGI middleware (no response buffering): request id in, request id out, one log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(name, value) for name, value in scope["headers"] if name != HEADER]
        given = [value for name, value in scope["headers"] if name == HEADER]
        request_id = given[0] if given and valid_request_id(given[0]) else uuid.uuid4().hex.encode()
        scope = dict(scope, headers=[*headers, (HEADER, request_id)])
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "(unmatched)"
            log.info(
                "%s %s %d %.1fms id=%s",
                scope["method"],
                path,
                status,
                (time.perf_counter() - started) * 1000,
                request_id.decode(),
            )
