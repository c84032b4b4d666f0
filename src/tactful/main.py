"""The application factory: builds the process's context from settings, mounts the routers, and
installs the problem responses of `api.problems`."""

from __future__ import annotations

import gc
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from redis import Redis
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tactful import __version__
from tactful.api import (
    audit,
    collect,
    consent,
    decide_admin,
    deps,
    docs,
    exports,
    health,
    keys,
    metrics,
    privacy,
    privacy_jobs,
    problems,
    ratelimit,
    reviews,
    subjects,
)
from tactful.api.catalog import router as catalog_router
from tactful.api.context import CATALOG_VERSION_KEY, AppContext, RedisBoard, compile_for
from tactful.api.decide import router as decide_router
from tactful.api.logs import uvicorn_log_config
from tactful.api.middleware import BodyLimit, RequestContext
from tactful.catalog.loader import load_catalog
from tactful.catalog.minimisation import retention_warnings
from tactful.catalog.model import Catalog
from tactful.collect import realtime
from tactful.config import Settings, load_settings
from tactful.consent.gatekeeper import RecordsPurged, WithdrawalHook
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.db import Database, require_migrated
from tactful.decide import log as decision_log
from tactful.decide.logbook import Logbook
from tactful.measure import outcomes as measure_outcomes
from tactful.policy.holder import GateHolder
from tactful.profiles.counters import RealtimeCounters, make_counters
from tactful.rights.reapply import reapply
from tactful.rights.schedule import ScheduleWorker
from tactful.types import Purpose, utcnow

log = logging.getLogger("tactful")

ROUTERS = (
    # The paths every page view calls come first: a request is matched against the routes in this
    # order, route by route, and matching was a sixth of a decision's CPU when `/v1/decide` came
    # after the management routers. (No two routers here share a path.)
    collect.router,
    decide_router,
    consent.router,
    health.router,
    metrics.router,
    keys.router,
    audit.router,
    subjects.router,
    privacy.router,
    exports.router,
    catalog_router,
    *decide_admin.routers,
    *reviews.routers,
    docs.router,
)


def default_catalog_path() -> str:
    return str(resources.files("tactful.catalog") / "data" / "demo_shop.yaml")


def withdrawal_hook(catalog: Catalog, counters: RealtimeCounters | None) -> WithdrawalHook:
    """What a refusal does above consent: collection's stored events under `catalog` keep only what
    the purposes left allow, the session counters go without `personalization.behavioral`
    (`collect.realtime`), and measurement's outcomes go without analytics. What it reports (for the
    audit) are the events."""
    events = realtime.withdrawal_hook(catalog, counters)

    def forget(
        session: Session, *, subject_id: uuid.UUID, purposes: frozenset[Purpose], at: datetime
    ) -> RecordsPurged:
        measure_outcomes.forget_withdrawn(session, subject_id=subject_id, purposes=purposes, at=at)
        return events(session, subject_id=subject_id, purposes=purposes, at=at)

    return forget


def build_context(settings: Settings) -> AppContext:
    """Open the process's connections. Refuses an unmigrated database with the command that fixes it."""
    db = Database(settings.database_url)
    require_migrated(db.engine)
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    keystore.create_schema()
    path = settings.catalog_path or default_catalog_path()
    catalog = load_catalog(path)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    regimes = configured_regimes(settings.policy)
    # The compiled gate: the catalog is read again and recompiled when another process publishes a
    # new catalog version (through Redis); this process announces its own at start.
    board = RedisBoard(redis, settings.redis_prefix + CATALOG_VERSION_KEY) if redis is not None else None
    gates = GateHolder(
        load=lambda: compile_for(settings, regimes, load_catalog(path)), clock=time.monotonic, board=board,
        gate=compile_for(settings, regimes, catalog),
    )  # fmt: skip
    gates.publish()
    # Session counters in Redis when configured (every process shares them), else in this process.
    counters = make_counters(redis=redis, prefix=settings.redis_prefix)
    # A consent refusal reaches collection's stored events, the session counters and measurement's
    # outcomes through consent's hook; an outcome reaches measurement through collection's, and the
    # decisions it waits for through the log's writer (DESIGN §6).
    return AppContext(
        settings=settings, db=db, keystore=keystore, catalog=catalog, redis=redis, regimes=regimes,
        on_withdrawal=withdrawal_hook(catalog, counters), gates=gates,
        withdrawal_for=lambda changed: withdrawal_hook(changed, counters), counters=counters,
        on_outcome=measure_outcomes.record,
        logbook=Logbook(decision_log.writer(db, landed=measure_outcomes.landed)),
    )  # fmt: skip


def stop_logbook(db: Database, logbook: Logbook) -> None:
    """Record that this process stopped with its decision log written (`decide.log.stalled` looks
    for processes that stopped without it)."""
    if not logbook.sequence:
        return  # it served no decision: nothing to account for
    try:
        with db.session() as session:
            decision_log.stopped(session, process=logbook.process, at=utcnow())
    except SQLAlchemyError as error:
        log.warning("the decision log's stop was not recorded (%s)", type(error).__name__)


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


def workers_need_redis(settings: Settings, workers: int) -> str | None:
    """Why `workers` server processes cannot serve with `settings` (None: they can)."""
    if workers > 1 and not settings.redis_url:
        return (
            f"--workers {workers} needs Redis: the session counters (1:some decisions) live in one "
            "process's memory without it, and another process would decide without them; set "
            "TACTFUL_REDIS_URL, or serve with one worker"
        )
    return None


def run_server(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Serve the application with uvicorn: in this process, or in `workers` processes, each of which
    builds its application from the environment (`app_from_environment`), as this process read it."""
    import uvicorn

    several = workers > 1
    if several:
        os.environ["TACTFUL_DATABASE_URL"] = settings.database_url
    # Uvicorn's access log carries client addresses and query strings: Tactful logs requests itself.
    # Records with exceptions are reduced to type and location (tracebacks can quote request data).
    uvicorn.run(
        "tactful.main:app_from_environment" if several else create_app(settings),
        factory=several,
        workers=workers if several else None,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=uvicorn_log_config(settings.log_level),
    )


def app_from_environment() -> FastAPI:
    """The application of one of several server processes (`tactful serve --workers N`), each
    reading its settings from the environment."""
    return create_app(load_settings())


def create_app(settings: Settings, *, context: AppContext | None = None) -> FastAPI:
    """The ASGI application for `settings` (or for an already built context, in tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = context is None
        app.state.context = context or build_context(settings)
        logbook = app.state.context.logbook
        jobs = None
        sweeps: ScheduleWorker | None = None
        if own:
            # A restored backup must not bring back anyone erased since (DESIGN §5).
            ctx = app.state.context
            reapply(
                database=ctx.db, keystore=ctx.keystore, settings=ctx.settings, at=utcnow(), redis=ctx.redis
            )
            settle_garbage_collector()
            app.state.context.db.checkpoint_in_background()
            logbook.start()
            jobs = privacy_jobs.start_jobs(app.state.context)  # privacy requests run in the server itself
            own_context = app.state.context
            for warning in retention_warnings(own_context.catalog):
                log.warning("catalog retention: %s", warning)
            sweeps = ScheduleWorker.start_for(
                database=own_context.db, keystore=own_context.keystore, settings=own_context.settings,
                catalog=lambda: own_context.catalog, counting=own_context.audience_counting(),
            )  # fmt: skip
        try:
            yield
        finally:
            if jobs is not None:
                jobs.stop()
            if sweeps is not None:
                sweeps.stop()
            if own:
                logbook.stop()  # the last window of decisions, written before the databases close
                stop_logbook(app.state.context.db, logbook)
                app.state.context.db.dispose()
                app.state.context.keystore.dispose()

    app = FastAPI(
        title="Tactful",
        version=__version__,
        summary="Personalization that knows where the line is.",
        lifespan=lifespan,
        dependencies=[Depends(deps.single_valued_query)],
        # `api.docs` serves Swagger UI from the package: FastAPI's pages load theirs from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    if context is not None:
        app.state.context = context
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding", "X-Tactful-Subject-Token"],
            allow_credentials=False,
        )
    streamed = frozenset(route.path for route in collect.router.routes if isinstance(route, APIRoute))
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_api_body_bytes, exempt=streamed)
    app.add_middleware(RequestContext)
    problems.install_error_handlers(app)
    # Built here rather than in the lifespan, so that an app over a given context (tests) has it too.
    app.state.rate_limiter = limiter = ratelimit.RateLimiter.from_settings(settings)
    for router in ROUTERS:
        app.include_router(router)
    deps.document_rate_limits(app, limited=limiter.limits)
    problems.document_problems(app)
    return app
