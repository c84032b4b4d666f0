"""Request ids and an access log that carries no personal data.

Uvicorn's own access log writes the client address and the raw path with its query string (where
identifiers can travel), so `tactful serve` turns it off and this middleware logs instead: method,
route template, status, duration and request id. Every request gets an `X-Request-ID`: the caller's
when it has the shape of an id (`request_id`), else a new one. Handlers read it from the headers
through the same function and record it as proof (consent, events); the response echoes it.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tactful.access")

HEADER = b"x-request-id"


REQUEST_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16}|[0-9a-fA-F]{32}"
)
"""What a caller's request id may look like: a UUID, or 16 or 32 hexadecimal digits (a W3C trace or
span id). A page chooses this header and it is kept in consent proofs and logged: free text could
forge log lines or carry a name, a phone or a national identity number, which no generated id is."""


def request_id(given: str | None) -> str:
    """The request id: `given` (a caller's `X-Request-ID`) when it has the shape of an id, else a new
    one. The one place that decides, for the access log, the response and every proof."""
    if given is not None and REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware (no response buffering): request id in, request id out, one log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(name, value) for name, value in scope["headers"] if name != HEADER]
        given = [value.decode("latin-1") for name, value in scope["headers"] if name == HEADER]
        chosen = request_id(given[0] if given else None).encode()
        scope = dict(scope, headers=[*headers, (HEADER, chosen)])
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, chosen)]
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
                chosen.decode(),
            )


class BodyLimit:
    """Refuse request bodies over `max_bytes` with a 413 problem before a handler reads them.

    FastAPI reads a whole body before any dependency runs, so the bound has to sit here. Routes that
    stream and bound their bodies themselves (collection, with its own larger limit and gzip) are
    exempt. A body without Content-Length is buffered up to the limit, then replayed.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        declared = [value for name, value in scope["headers"] if name == b"content-length"]
        if declared and (not declared[0].isdigit() or int(declared[0]) > self.max_bytes):
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        # The same document `tactful.api.problems.problem` writes, with collection's code for the fault.
        detail = f"request bodies on this route are limited to {self.max_bytes} bytes"
        body = json.dumps(
            {
                "type": "https://tactful.dev/problems/request_too_large",
                "title": "request too large",
                "status": 413,
                "detail": detail,
                "code": "request_too_large",
                "message": detail,
            }
        ).encode()
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
