"""Collection over HTTP, compatible with the Segment HTTP Tracking API and analytics.js.

    POST /v1/{identify,track,page,screen,group,alias,batch}   server libraries (JSON, HTTP Basic)
    POST /v1/{i,t,p,s,g,a,b}                                   analytics.js (text/plain, writeKey in body)

The body is read as a stream and refused with 413 as soon as it passes the request limit (declared
length first, then counted bytes, inflated bytes for gzip). The key is checked and the events are
ingested in one transaction, committed before the response is sent.
"""

# ruff: noqa: N815 - the shapes use Segment's field names (messageId, userId, ...)

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal, NoReturn

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tactful.api import answers, ratelimit
from tactful.api.context import AppContext, Context
from tactful.api.deps import AUTH_RESPONSES, Problem, authenticate_token, declare_scope, header_token
from tactful.api.middleware import request_id
from tactful.collect import proof, realtime
from tactful.collect import service as collect_service
from tactful.collect.limits import BodyReader, check_content_length, parse_json
from tactful.collect.message import MessageType, unpack
from tactful.collect.schemas import EventResult, Source
from tactful.config import Limits
from tactful.errors import InvalidInput, NotAuthenticated, PayloadTooLarge, PermissionDenied
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.types import utcnow

router = APIRouter(tags=["collection"])


# -- documented shapes -------------------------------------------------------------------------


class SegmentMessage(BaseModel):
    """A Segment-spec message (https://segment.com/docs/connections/spec/); other fields are allowed
    and dropped unless the catalog declares them."""

    model_config = ConfigDict(extra="allow")

    type: Literal["identify", "track", "page", "screen", "group", "alias"] | None = None
    messageId: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    previousId: str | None = None
    groupId: str | None = None
    event: str | None = None
    name: str | None = None
    timestamp: str | None = None
    sentAt: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    writeKey: str | None = Field(
        None, description="The write key, when not sent as HTTP Basic user or Bearer"
    )


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    batch: list[SegmentMessage]
    context: dict[str, Any] | None = Field(None, description="Applies to every message that lacks the field")
    sentAt: str | None = None
    writeKey: str | None = None


class EventOutcome(BaseModel):
    """What became of one message, as the key's scope may see it.

    A write key is public (it sits in every web page), so its answer is determined by the message
    alone and tells nothing about the people it names: `accepted` (taken in: stored, or left out
    because of the person's consent or an earlier erasure, or a repeat of a message received
    before), `quarantined` (only for a fault of the message itself, with its reason) or `dropped`
    (the catalog does not declare the event). A server or admin key reads the engine's answer:
    `stored`, `duplicate`, `quarantined`, `suppressed` or `dropped`, with the reason and every
    refusal. The counts by outcome and the refusals are in `/metrics` and the audit trail."""

    messageId: str | None = Field(
        description="The message id; a message sent without one gets a fresh id (`tf-` and a random UUID)"
    )
    status: Literal["accepted", "stored", "duplicate", "quarantined", "suppressed", "dropped"] = Field(
        description="To a write key: `accepted`, `quarantined` (a fault of the message: `missing_identity`, "
        "`invalid_type`, `invalid_field`, `event_too_large`, `timestamp_out_of_range`, `unstorable_value`) "
        "or `dropped` (`undeclared_event`: the catalog does not declare the event). To a server or admin "
        "key: `stored`, `duplicate`, `quarantined` (also `duplicate_conflict`: the message id came before "
        "with another payload), `suppressed` (`no_purpose`, `erased_subject`) or `dropped`"
    )
    reason: str | None = Field(None, description="Why the event was quarantined, suppressed or dropped")
    detail: str | None = Field(None, description="Which field a quarantined message's fault is in")
    refused: list[str] = Field(
        default_factory=list,
        description="What the message asked that its key may not do without proof (a server key, or a "
        "subject token for the user id); the rest of the message was processed. A write key sees only "
        "`subject_token_invalid` (a token the message carried proves nothing), since the others depend on "
        "what is stored about the person. A server or admin key sees every code: "
        "`subject_token_required` (a consent grant), `link_unverified` (an anonymous id linked to a user "
        "id: kept pending, nothing merged), `merge_needs_proof` (two user ids), "
        "`identifier_needs_proof`, `age_needs_proof`, `place_needs_proof` (a country or region that "
        "would take a regime away), `subject_token_invalid`.",
    )


class IngestResponse(BaseModel):
    success: bool = True
    results: list[EventOutcome]


ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    413: {"model": Problem, "description": "The request body or the batch exceeds the configured limits"},
    422: {
        "model": Problem,
        "description": "Malformed body: invalid JSON or gzip, NaN/Infinity, nesting too deep, too many keys",
    },
}


def _inline(node: object, defs: dict[str, Any]) -> Any:
    """Resolve local `$defs` references: the schema sits inline in the OpenAPI document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    content = {"schema": _inline(schema, schema.pop("$defs", {}))}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": content, "text/plain": content},
        }
    }


# -- request handling --------------------------------------------------------------------------


def _ingest(
    context: AppContext, token: str | None, messages: list[object], source: Source
) -> tuple[list[EventResult], bool]:
    """Each message's result, and whether the key may read the engine's answer (a server key)."""
    at = utcnow()
    policy = context.policy_context()
    behaviour = realtime.Behaviour(policy.catalog) if policy.catalog.session_atoms else None
    with context.session() as session:
        # The key is checked in the ingestion transaction itself: one transaction per request.
        if token is None:
            raise NotAuthenticated(keys_service.INVALID_KEY)
        principal = keys_service.authenticate(session, token=token, at=at)
        if not principal.scope.allows(Scope.WRITE):
            raise PermissionDenied(f"this needs a key with the {Scope.WRITE} scope")
        trusted = principal.scope.allows(Scope.SERVER)
        results = collect_service.ingest(
            session,
            keystore=context.keystore,
            messages=messages,
            source=Source(
                write_key_id=principal.key_id,
                gpc=source.gpc,
                request_id=source.request_id,
                trusted=trusted,
                subject_token=source.subject_token,
            ),
            at=at,
            limits=context.settings.limits,
            policy=policy,
            tokens=proof.token_check(
                context.settings.subject_token_secret.get_secret_value(),
                max_lifetime=context.settings.subject_token_max_lifetime,
            ),
            outcomes=context.on_outcome,
            behaviour=behaviour,
        )
    # Committed: the session counters count what was stored (nothing, had the commit failed).
    if behaviour is not None:
        behaviour.feed(context.counters, at=at)
    return results, trusted


async def _read_json(request: Request, limits: Limits) -> object:
    check_content_length(request.headers.get("content-length"), limit=limits.max_request_bytes)
    reader = BodyReader(
        limit=limits.max_request_bytes, content_encoding=request.headers.get("content-encoding")
    )
    held = ratelimit.held_body(request)  # the limiter read it to find a body's writeKey
    if held is not None:
        reader.feed(held)
    else:
        async for chunk in request.stream():
            reader.feed(chunk)
    return parse_json(reader.finish(), limits=limits)


async def _refuse(context: AppContext, token: str | None, error: InvalidInput) -> NoReturn:
    """Raise `error`, unless the caller has no valid key: then 401 comes first, so that a caller
    without a key learns nothing about how bodies are read. Size refusals need no key."""
    if not isinstance(error, PayloadTooLarge):
        await run_in_threadpool(partial(authenticate_token, context, token, required=Scope.WRITE))
    raise error


def _answer(results: list[EventResult], *, trusted: bool) -> Response:
    """The `IngestResponse` body, written directly: a batch's results need no validation round (they
    are built here from engine types), and orjson writes them in a fraction of the time. What each
    result shows is the key scope's view (`answers`)."""
    body = {"success": True, "results": answers.results(results, trusted=trusted)}
    return Response(orjson.dumps(body), media_type="application/json")


async def _collect(request: Request, context: AppContext, kind: MessageType | None) -> Response:
    limits = context.settings.limits
    try:
        body = await _read_json(request, limits)
    except InvalidInput as error:
        await _refuse(context, header_token(request), error)
    try:
        envelope = unpack(body, kind=kind, limits=limits)
    except InvalidInput as error:
        body_key = body.get("writeKey") if isinstance(body, dict) else None
        await _refuse(
            context, header_token(request) or (body_key if isinstance(body_key, str) else None), error
        )
    source = Source(
        gpc=request.headers.get("sec-gpc", "").strip() == "1",
        request_id=request_id(request.headers.get("x-request-id")),
        subject_token=request.headers.get(proof.SUBJECT_TOKEN_HEADER) or None,
    )
    token = header_token(request) or envelope.write_key
    results, trusted = await run_in_threadpool(_ingest, context, token, envelope.messages, source)
    return _answer(results, trusted=trusted)


def _handler(kind: MessageType | None) -> Callable[[Request, AppContext], Awaitable[Response]]:
    async def handle(request: Request, context: Context) -> Response:
        return await _collect(request, context, kind)

    return handle


ROUTES: tuple[tuple[str, MessageType | None, str], ...] = (
    ("identify", MessageType.IDENTIFY, "Identify a user and record their traits"),
    ("track", MessageType.TRACK, "Record an action the user performed"),
    ("page", MessageType.PAGE, "Record a page view"),
    ("screen", MessageType.SCREEN, "Record a screen view in an app"),
    ("group", MessageType.GROUP, "Associate the user with a group"),
    ("alias", MessageType.ALIAS, "Link a previous identity to a user id"),
    ("batch", None, "Send up to the batch limit of messages in one request"),
)
SHORT_PATHS = {
    "identify": "i",
    "track": "t",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
    "batch": "b",
}

for _name, _kind, _summary in ROUTES:
    for _path, _suffix in ((_name, ""), (SHORT_PATHS[_name], " (analytics.js short path)")):
        router.add_api_route(
            f"/v1/{_path}",
            _handler(_kind),
            methods=["POST"],
            summary=_summary + _suffix,
            operation_id=f"collect_{_path}",
            response_model=IngestResponse,
            responses=ERRORS,
            dependencies=[declare_scope(Scope.WRITE)],
            openapi_extra=_request_body(BatchBody if _kind is None else SegmentMessage),
            description=(
                "Segment HTTP Tracking API compatible. The write key is read from HTTP Basic (user name), "
                "a Bearer token, or `writeKey` in the body. Bodies may be `application/json` or "
                "`text/plain`, optionally gzip-compressed. Answers 200 with one result per message, after "
                "the commit: to a write key what the message alone determines (`accepted`, a fault of "
                "the message, an undeclared event), to a server or admin key the engine's outcome. A "
                "`track` event carrying `properties.decision_id` is an outcome of that decision: linked "
                "when its event declares the property, it is stored for analytics and the decision is "
                "the same person's; the answer is the same whether it was linked or not."
            ),
        )
