"""Who is calling: API keys read from the request, and the scope each route requires.

    Authorization: Basic base64("<key>:")   Segment and RudderStack clients: the key as user name
    Authorization: Bearer <key>
    "writeKey" in the body                   analytics.js; collection reads it and calls
        │                                    `authenticate_token` itself
        ▼
    keys_service.authenticate (one primary-key lookup per request: revocation holds at once)
        ▼
    Principal ──scope allows the route's?──▶ the handler
        401 NotAuthenticated: missing, malformed, unknown, wrong or revoked key (one answer for all)
        403 PermissionDenied: a valid key without the scope

A route declares its scope with `require_write` / `require_server` / `require_admin` as a parameter,
or, when it reads the key itself, with `dependencies=[declare_scope(...)]`. `required_scope(route)`
reads the declaration back; the scope-matrix test walks every route with it.

Both kinds of declaration also apply the rate limits (`tactful.api.ratelimit`) before the key is
looked up, so every route a key can reach is limited without the route saying so; 429 is added to
the OpenAPI answers of the routes whose scope a limited key has (`document_rate_limits`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.openapi.models import HTTPBase as HTTPSchemeModel
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict, Field

from tactful.api import ratelimit
from tactful.api.context import AppContext, Context
from tactful.errors import InvalidInput, PermissionDenied
from tactful.keys import service as keys_service
from tactful.keys.schemas import Principal, Scope
from tactful.types import utcnow


class ProblemItem(BaseModel):
    """One way a request does not match the schema (a 422 `invalid_input` problem lists them)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem response (`application/problem+json`), as `tactful.main` writes every
    error. `code` is stable; the optional members appear with the problems that carry them."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    message: str = Field(
        description="`detail` again, under the name the Segment and RudderStack APIs give it: their "
        "libraries read `code` and `message` from every answer but a 200"
    )
    field: str | None = Field(None, description="The request member at fault, when one is")
    errors: list[ProblemItem] | None = Field(
        None, description="Where the request does not match the schema (`invalid_input`)"
    )
    limit: str | None = Field(None, description="The rate limit window that refused (`rate_limited`)")


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, malformed, unknown, wrong or revoked API key"},
    403: {"model": Problem, "description": "The key is valid but its scope does not allow this"},
}
"""Error responses of every route that takes a key, for the OpenAPI schema."""


# -- reading the key ----------------------------------------------------------------------------


def _from_authorization(header: str | None, scheme: str) -> str | None:
    if not header:
        return None
    given, _, value = header.strip().partition(" ")
    value = value.strip()
    if given.lower() != scheme or not value:
        return None
    if scheme == "bearer":
        return value
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, _password = decoded.partition(":")  # the password is empty by convention and ignored
    return user or None


def header_token(request: Request) -> str | None:
    """The key in the Authorization header (Basic user name or Bearer token), or None."""
    header = request.headers.get("authorization")
    return _from_authorization(header, "bearer") or _from_authorization(header, "basic")


class _KeyScheme(SecurityBase):
    """One way to present a key, for the OpenAPI schema. It never refuses a request itself, so that
    every failure reaches `keys_service.authenticate` and gets the same answer."""

    def __init__(self, scheme: str, name: str, description: str) -> None:
        self.model = HTTPSchemeModel(scheme=scheme, description=description)
        self.scheme_name = name
        self._scheme = scheme

    async def __call__(self, request: Request) -> str | None:
        return _from_authorization(request.headers.get("authorization"), self._scheme)


basic_key = _KeyScheme("basic", "keyAsBasicUser", "The API key as the HTTP Basic user name, password empty")
bearer_key = _KeyScheme("bearer", "bearerKey", "The API key as a Bearer token")


# -- checking it --------------------------------------------------------------------------------


def authenticate_token(context: AppContext, token: str | None, *, required: Scope | None = None) -> Principal:
    """The principal of `token`, checked against the database now; with `required`, also its scope.

    For routes that find the key somewhere else than the headers (collection's `writeKey`).
    """
    # The check only reads; the hourly record of the key's use is a write of its own, when due.
    with context.reading() as session:
        checked = keys_service.verify(session, token=token)
    principal, at = checked.principal, utcnow()
    if keys_service.use_due(checked, at):
        with context.session() as session:
            keys_service.record_use(session, key_id=principal.key_id, at=at)
    if required is not None and not principal.scope.allows(required):
        raise PermissionDenied(f"this needs a key with the {required} scope")
    return principal


def principal(context: Context, request: Request) -> Principal:
    """The caller's principal from the Authorization header, whatever its scope."""
    return authenticate_token(context, header_token(request))


KeyFromBasic = Annotated[str | None, Security(basic_key)]
KeyFromBearer = Annotated[str | None, Security(bearer_key)]


class RequireScope:
    """A dependency that lets through keys whose scope includes `scope`."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def __call__(
        self, context: Context, request: Request, basic: KeyFromBasic, bearer: KeyFromBearer
    ) -> Principal:
        ratelimit.admit(request, bearer or basic)
        return authenticate_token(context, bearer or basic, required=self.scope)

    def __repr__(self) -> str:
        return f"RequireScope({self.scope})"


class ScopeDeclaration:
    """A declared scope for a route that authenticates inside its handler (see `declare_scope`)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, request: Request, basic: KeyFromBasic, bearer: KeyFromBearer) -> None:
        # The handler authenticates; the rate limits apply here, before it reads anything.
        await ratelimit.admit_collection(request, bearer or basic)

    def __repr__(self) -> str:
        return f"ScopeDeclaration({self.scope})"


def declare_scope(scope: Scope) -> Any:
    """`dependencies=[declare_scope(Scope.WRITE)]` for a route that reads the key itself (from the body)
    and calls `authenticate_token(context, token, required=scope)`: documents the key schemes and
    tells `required_scope` (and so the scope-matrix test) what the route demands."""
    return Depends(ScopeDeclaration(scope))


require_write = Annotated[Principal, Depends(RequireScope(Scope.WRITE))]
require_server = Annotated[Principal, Depends(RequireScope(Scope.SERVER))]
require_admin = Annotated[Principal, Depends(RequireScope(Scope.ADMIN))]


class Routed(Protocol):
    """An `APIRoute`, or the effective view of one that an app's included routers give."""

    @property
    def dependant(self) -> Dependant: ...


def required_scope(route: Routed) -> Scope | None:
    """The strictest scope a route's dependencies require, or None for a public route."""
    found: list[Scope] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, RequireScope | ScopeDeclaration):
            found.append(dependant.call.scope)
        pending.extend(dependant.dependencies)
    return max(found, key=lambda scope: scope.rank, default=None)


# -- time parameters ------------------------------------------------------------------------------

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
"""The times a parameter may name: the calendar less a day at each end, so that a time in range can
be written in any UTC offset and moved by a day without leaving it (the databases store them all)."""
TIME_RANGE = f"{EARLIEST.isoformat()} to {LATEST.isoformat()}"
TimeQuery = Annotated[
    datetime | None,
    Query(description=f"An ISO 8601 time with its UTC offset, from {TIME_RANGE}; default now"),
]
"""A time query parameter; pass it through `moment`."""


def moment(value: datetime, *, field: str) -> datetime:
    """A time parameter in UTC. 422 for a time without its offset, or one outside the calendar once in
    UTC (year 1 with a positive offset, 9999 with a negative one), which would overflow downstream."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"`{field}` needs a UTC offset, e.g. 2026-03-03T14:02:00Z", field=field)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise InvalidInput(f"`{field}` must lie from {TIME_RANGE}", code="time_out_of_range", field=field)
    return utc


# -- rate limits in the OpenAPI document ----------------------------------------------------------

RATE_LIMITED_RESPONSE: dict[str, Any] = {
    "description": "Too many requests for this key, or for this key from this address (`rate_limited`)",
    "headers": {
        "Retry-After": {"description": "Seconds until the window resets", "schema": {"type": "integer"}}
    },
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def routes_of(app: FastAPI) -> list[Any]:
    """Every route of `app` with its effective dependencies, however its routers were included."""
    try:
        from fastapi.routing import iter_route_contexts  # newer FastAPI keeps included routers nested
    except ImportError:
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def document_rate_limits(app: FastAPI, *, limited: Callable[[Scope], bool]) -> None:
    """Add the 429 answer to every operation that a key of a `limited` scope may call."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        paths: dict[str, Any] = schema.get("paths", {})
        for route in routes_of(app):
            required = required_scope(route) if hasattr(route, "dependant") else None
            if required is None or not any(limited(s) and s.allows(required) for s in Scope):
                continue
            for method in getattr(route, "methods", None) or ():
                operation = paths.get(getattr(route, "path_format", None) or "", {}).get(method.lower())
                if operation is not None:
                    operation.setdefault("responses", {}).setdefault("429", RATE_LIMITED_RESPONSE)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in problem.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components.setdefault("Problem", problem)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def single_valued_query(request: Request) -> None:
    """No route takes a query parameter more than once: `?after=a&after=b` is refused, never read as
    whichever value the framework keeps."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            raise InvalidInput(f"the query parameter {name!r} is given more than once", field=name)
        seen.add(name)
