"""Builders for tests that go through the HTTP API: a process context over given databases, a test
client, and keys of each scope."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

# Starlette asks for `httpx2` instead of `httpx` under its test client; the project still pins httpx.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from tactful import main
from tactful.api import keys as keys_api
from tactful.api.context import AppContext
from tactful.catalog.loader import load_catalog
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.errors import CatalogError
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope


def _catalog() -> object:
    """The demo catalog, or a placeholder while its data file is not there (key routes never read it)."""
    try:
        return load_catalog(main.default_catalog_path())
    except CatalogError:
        return object()


def app_context(db: Database, keystore: Keystore) -> AppContext:
    settings = Settings(database_url=db.url, keystore_url=str(keystore.engine.url))
    return AppContext(settings=settings, db=db, keystore=keystore, catalog=_catalog())  # type: ignore[arg-type]


def app(context: AppContext | None = None) -> FastAPI:
    """The whole application over `context` (without one, good for looking at its routes only)."""
    settings = context.settings if context is not None else Settings()
    application = main.create_app(settings, context=context)
    if keys_api.router not in main.ROUTERS:  # until the key routes are mounted in `main.ROUTERS`
        application.include_router(keys_api.router)
    return application


def client(context: AppContext) -> TestClient:
    """A client of the whole app; server errors come back as 500 responses, not exceptions."""
    return TestClient(app(context), raise_server_exceptions=False)


def issue(context: AppContext, scope: Scope, *, name: str = "test key", revoked: bool = False) -> str:
    """A key of `scope` (committed), optionally revoked already."""
    now = datetime.now(UTC)
    with context.session() as session:
        row, token = keys_service.create_key(
            session, keystore=context.keystore, name=name, scope=scope, at=now, actor="tests"
        )
        if revoked:
            keys_service.revoke_key(session, keystore=context.keystore, key_id=row.id, at=now, actor="tests")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
