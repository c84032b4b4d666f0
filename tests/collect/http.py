"""Builders for collection's HTTP tests: the app over a given database, with a stand-in catalog."""

from __future__ import annotations

import base64
import warnings
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():  # Starlette's test client asks for `httpx2`; the project pins httpx
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from tactful import main
from tactful.api import collect as collect_api
from tactful.api.context import AppContext
from tactful.config import Limits, Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tests.collect.builders import StandInCatalog


def app_context(
    db: Database, keystore: Keystore, *, cors_origins: tuple[str, ...] = (), limits: Limits | None = None
) -> AppContext:
    settings = Settings(
        database_url=db.url,
        keystore_url=str(keystore.engine.url),
        cors_origins=list(cors_origins),
        limits=limits or Limits(),
    )
    return AppContext(settings=settings, db=db, keystore=keystore, catalog=StandInCatalog())  # type: ignore[arg-type]


def app(context: AppContext) -> FastAPI:
    application = main.create_app(context.settings, context=context)
    if collect_api.router not in main.ROUTERS:  # until the lead mounts it in `main.ROUTERS`
        application.include_router(collect_api.router)
    return application


def client(context: AppContext) -> TestClient:
    """A client of the whole app; server errors come back as 500 responses, not exceptions."""
    return TestClient(app(context), raise_server_exceptions=False)


def write_key(context: AppContext, *, scope: Scope = Scope.WRITE, revoked: bool = False) -> str:
    now = datetime.now(UTC)
    with context.session() as session:
        row, token = keys_service.create_key(
            session, keystore=context.keystore, name="collect tests", scope=scope, at=now, actor="tests"
        )
        if revoked:
            keys_service.revoke_key(session, keystore=context.keystore, key_id=row.id, at=now, actor="tests")
    return token


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}
