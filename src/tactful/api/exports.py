"""The download of an access or portability package.

    GET  /v1/privacy/exports/{token}    the admin key, or any key with the person's subject token
    HEAD /v1/privacy/exports/{token}    the same answer without a body: never a use

    token ──sha-256──▶ exports.live (unexpired, uses left, file present) ──▶ whose? (a subject token's
    user must be the export's subject; asked for an unknown link too, so that both take as long)
        ──▶ the key unsealed ──▶ ExportDownload streams the chunks
        the last byte handed to the connection ──▶ a use, audited (the last use deletes the package)
        a transfer cut short (the client went away) ──▶ audited, no use

Mail scanners open links before people do: HEAD costs nothing, a GET without a key is refused, and a
transfer counts only once it completed. An unknown, expired, used-up token and one the caller may not
open all answer the same 404, so a token says nothing about who it belongs to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, BinaryIO

import anyio
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, require_write
from tactful.collect.proof import SUBJECT_TOKEN_HEADER
from tactful.errors import InvalidInput, KeyDestroyed, NotFound
from tactful.keys.schemas import Principal
from tactful.keys.schemas import Scope as KeyScope
from tactful.keys.tokens import token_subject
from tactful.profiles import service as profiles_service
from tactful.rights import exports
from tactful.rights.exports import Opened
from tactful.types import NOBODY, utcnow

log = logging.getLogger("tactful.rights")

router = APIRouter(prefix="/v1/privacy/exports", tags=["privacy"], responses=AUTH_RESPONSES)

ExportToken = Annotated[
    str,
    Path(
        min_length=43,
        max_length=43,
        pattern=r"^[A-Za-z0-9_-]{43}$",
        description="The token of the link given as `download_url` with the privacy request",
    ),
]
_DESCRIPTION = (
    "The zip of JSON and CSV files that answers an access or portability request, with `README.txt` (a "
    "plain-language summary) and `schema.json`. With an admin key, any package; with another key, only "
    "one of the person whose subject token comes in the X-Tactful-Subject-Token header. A download "
    "counts as one use only once its whole body was transferred (a link allows a few, "
    "`TACTFUL_PRIVACY__EXPORT_DOWNLOADS`); HEAD and interrupted transfers do not count. Every download "
    "is audited with the key's id and the request's id. Unknown, expired and used-up links, and links "
    "the caller may not open, all answer 404."
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The package",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "Content-Disposition": {
                "description": "attachment; filename=tactful-<kind>-<request id>.zip",
                "schema": {"type": "string"},
            },
            "Content-Length": {"description": "The zip's size in bytes", "schema": {"type": "integer"}},
        },
    },
    404: {
        "model": Problem,
        "description": "No package has this link, it expired or was used up, or it is not the caller's "
        "(`export_not_found`)",
    },
    422: {
        "model": Problem,
        "description": "Without an admin key, the header X-Tactful-Subject-Token is missing "
        "(`subject_token_required`)",
    },
}


def _not_found() -> NotFound:
    return NotFound("no package has this link, or it expired or was used up", code="export_not_found")


def _reader(request: Request, context: AppContext, principal: Principal) -> str | None:
    """None for the operator (an admin key), else the user id the subject token proves."""
    if principal.scope.allows(KeyScope.ADMIN):
        return None
    token = request.headers.get(SUBJECT_TOKEN_HEADER)
    if not token:
        raise InvalidInput(
            "without an admin key, a package is downloaded with the person's subject token "
            f"({SUBJECT_TOKEN_HEADER})",
            code="subject_token_required",
            field=SUBJECT_TOKEN_HEADER,
        )
    return token_subject(
        token,
        secret=context.settings.subject_token_secret.get_secret_value(),
        at=utcnow(),
        max_lifetime=context.settings.subject_token_max_lifetime,
    )


def _open(token: str, request: Request, context: AppContext, principal: Principal) -> tuple[Opened, BinaryIO]:
    user_id = _reader(request, context, principal)
    keystore = context.keystore.cached()
    with context.session() as session:
        row = exports.live(session, settings=context.settings, token=token, at=utcnow())
        if user_id is not None:
            # Whose it is, looked up for an unknown link too: another person's package is answered
            # as an unknown one, after the same queries.
            theirs = profiles_service.find_subject(session, keystore=keystore, user_id=user_id)
            whose = profiles_service.canonical(session, row.subject_id if row is not None else NOBODY)
            if theirs is None or theirs != whose:
                row = None
        opened = None if row is None else exports.open_export(
            session, keystore=keystore, settings=context.settings, row=row
        )  # fmt: skip
    if opened is None:
        raise _not_found()
    try:
        handle = opened.path.open("rb")
    except FileNotFoundError:
        raise _not_found() from None  # deleted (used up, expired, erased) since it was looked up
    return opened, handle


def _ended(context: AppContext, opened: Opened, principal: Principal, reader: str) -> Callable[[bool], None]:
    def ended(complete: bool) -> None:
        keystore = context.keystore.cached()
        try:
            with context.session() as session:
                if complete:
                    exports.count_download(
                        session, keystore=keystore, settings=context.settings, opened=opened,
                        key_id=principal.key_id, reader=reader, at=utcnow(),
                    )  # fmt: skip
                else:
                    exports.audit_incomplete(
                        session, keystore=keystore, opened=opened, key_id=principal.key_id, reader=reader,
                        at=utcnow(),
                    )  # fmt: skip
        except Exception as exc:
            log.error("a package download was not recorded (%s)", type(exc).__name__)

    return ended


class ExportDownload(Response):
    """Streams a package's chunks as they open, and tells `ended` whether the whole body went out: the
    last chunk handed to the server with the client still there."""

    media_type = "application/zip"

    def __init__(
        self, opened: Opened, handle: BinaryIO, *, head: bool, ended: Callable[[bool], None] | None
    ) -> None:
        super().__init__(
            status_code=200,
            headers={
                "Content-Length": str(opened.size),
                "Content-Disposition": f'attachment; filename="{opened.filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )
        self.opened, self.handle, self.head, self.ended = opened, handle, head, ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = anyio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        complete = False
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(listen)
                try:
                    await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                    if self.head:
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    else:
                        complete = await self._stream(send, gone)
                finally:
                    group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                self.handle.close()
                if self.ended is not None:
                    await anyio.to_thread.run_sync(self.ended, complete)

    async def _stream(self, send: Send, gone: anyio.Event) -> bool:
        # The last chunk goes with `more_body: False`: a client that has every byte (it knows the
        # length) may close at once, and that is a completed transfer, not a cut one.
        chunks = self.opened.chunks(self.handle)
        held: bytes | None = None
        while True:
            try:
                chunk = await anyio.to_thread.run_sync(next, chunks, None)
            except (KeyDestroyed, OSError) as exc:
                log.warning("a package could not be read to the end (%s)", type(exc).__name__)
                return False
            if gone.is_set():
                return False
            if held is not None:
                await send({"type": "http.response.body", "body": held, "more_body": chunk is not None})
            if chunk is None:
                # Judged before anything else runs: a client gone while the last bytes waited to be
                # written was seen (the server's send waited, the listener ran); one gone after
                # they were written had them all.
                return not gone.is_set()
            held = chunk


@router.get(
    "/{token}",
    summary="Download the package that answers an access or portability request",
    description=_DESCRIPTION,
    response_class=Response,
    responses=_RESPONSES,
)
def download_export(
    token: ExportToken, request: Request, context: Context, principal: require_write
) -> Response:
    opened, handle = _open(token, request, context, principal)
    reader = "operator" if principal.scope.allows(KeyScope.ADMIN) else "token"
    return ExportDownload(opened, handle, head=False, ended=_ended(context, opened, principal, reader))


@router.head(
    "/{token}",
    summary="Check a package's link without downloading it (never counts as a use)",
    description="The headers `GET` would send (size, file name), with the same rules and the same 404s; "
    "nothing is counted or transferred.",
    response_class=Response,
    responses=_RESPONSES,
)
def check_export(
    token: ExportToken, request: Request, context: Context, principal: require_write
) -> Response:
    opened, handle = _open(token, request, context, principal)
    return ExportDownload(opened, handle, head=True, ended=None)
