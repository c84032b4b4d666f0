"""The application factory: builds the process's context from settings, mounts the routers, and maps
the error tree of `tactful.errors` to RFC 9457 problem responses in this one place."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from redis import Redis

from tactful import __version__
from tactful.api import audit, collect, consent, deps, health, keys, metrics, ratelimit
from tactful.api.context import AppContext
from tactful.api.middleware import BodyLimit, RequestContext
from tactful.catalog.loader import load_catalog
from tactful.collect import store as collect_store
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database, require_migrated
from tactful.errors import (
    Conflict,
    InvalidInput,
    KeyDestroyed,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    TactfulError,
)

log = logging.getLogger("tactful")

ROUTERS = (health.router, metrics.router, collect.router, keys.router, consent.router, audit.router)

STATUS: tuple[tuple[type[TactfulError], int], ...] = (
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (KeyDestroyed, 410),
    (Conflict, 409),
    (ServiceUnavailable, 503),
)


def problem(status: int, code: str, detail: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="tactful", Bearer'} if status == 401 else None
    body = {"type": f"https://tactful.dev/problems/{code}", "title": code.replace("_", " "), "status": status}
    body |= {"detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def default_catalog_path() -> str:
    return str(resources.files("tactful.catalog") / "data" / "demo_shop.yaml")


def build_context(settings: Settings) -> AppContext:
    """Open the process's connections. Refuses an unmigrated database with the command that fixes it."""
    db = Database(settings.database_url)
    require_migrated(db.engine)
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    keystore.create_schema()
    catalog = load_catalog(settings.catalog_path or default_catalog_path())
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    # A consent refusal reaches collection's stored events through consent's hook (DESIGN §6).
    return AppContext(
        settings=settings, db=db, keystore=keystore, catalog=catalog, redis=redis,
        on_withdrawal=collect_store.forget_withdrawn_purposes,
    )  # fmt: skip


def settle_garbage_collector() -> None:
    """Tune the collector for a long-running server, once everything long-lived exists.

    Freezing moves what start-up built (the catalog's precompiled structures, SQLAlchemy's mappers,
    the routes) out of the collector's sight, so full collections stop rescanning it; a higher
    first threshold lets the many short-lived objects of a request die young. Measured on the
    ingestion benchmark: the p99 of a 100-event batch at 70% load fell from about 94 ms to about
    46 ms, the median unchanged (`make bench`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ratelimit.RateLimited)
    async def _rate_limited(_request: Request, exc: ratelimit.RateLimited) -> JSONResponse:
        response = problem(429, exc.code, exc.message, limit=exc.limit.value)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(TactfulError)
    async def _tactful_error(_request: Request, exc: TactfulError) -> JSONResponse:
        for error_type, status in STATUS:
            if isinstance(exc, error_type):
                field = getattr(exc, "field", None)
                extra = {"field": field} if field else {}
                return problem(status, exc.code, exc.message, **extra)
        log.error("unmapped error %s", type(exc).__name__)
        return problem(500, "internal", "internal error")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return problem(422, "invalid_input", "the request does not match the schema", errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Only the type: messages can carry request data, and logs never carry personal data.
        log.error("unexpected error %s", type(exc).__name__)
        return problem(500, "internal", "internal error")


def create_app(settings: Settings, *, context: AppContext | None = None) -> FastAPI:
    """The ASGI application for `settings` (or for an already built context, in tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = context is None
        app.state.context = context or build_context(settings)
        if own:
            settle_garbage_collector()
            app.state.context.db.checkpoint_in_background()
        try:
            yield
        finally:
            if own:
                app.state.context.db.dispose()
                app.state.context.keystore.dispose()

    app = FastAPI(
        title="Tactful",
        version=__version__,
        summary="Personalization that knows where the line is.",
        lifespan=lifespan,
    )
    if context is not None:
        app.state.context = context
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
            allow_credentials=False,
        )
    streamed = frozenset(route.path for route in collect.router.routes if isinstance(route, APIRoute))
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_api_body_bytes, exempt=streamed)
    app.add_middleware(RequestContext)
    _install_error_handlers(app)
    # Built here rather than in the lifespan, so that an app over a given context (tests) has it too.
    app.state.rate_limiter = limiter = ratelimit.RateLimiter.from_settings(settings)
    for router in ROUTERS:
        app.include_router(router)
    deps.document_rate_limits(app, limited=limiter.limits)
    return app
