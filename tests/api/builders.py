"""Builders for tests that go through the HTTP API: a process context over given databases, a test
client of the whole app, and keys of each scope."""

from __future__ import annotations

import base64
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tactful import main
from tactful.api.context import AppContext
from tactful.catalog.loader import load_catalog
from tactful.catalog.model import Catalog
from tactful.config import DecideSettings, Limits, PolicySettings, PrivacySettings, Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope


def app_context(
    db: Database,
    keystore: Keystore,
    *,
    catalog: Catalog | None = None,
    cors_origins: tuple[str, ...] = (),
    limits: Limits | None = None,
    policy: PolicySettings | None = None,
    decide: DecideSettings | None = None,
) -> AppContext:
    """A process context over the given databases; the demo catalog and the default policy unless
    others are given."""
    settings = Settings(
        database_url=db.url,
        keystore_url=str(keystore.engine.url),
        cors_origins=list(cors_origins),
        limits=limits or Limits(),
        policy=policy or PolicySettings(),
        decide=decide or DecideSettings(),
        privacy=PrivacySettings(export_dir=Path(tempfile.mkdtemp(prefix="tactful-exports-"))),
    )
    chosen = catalog if catalog is not None else load_catalog(main.default_catalog_path())
    return AppContext(settings=settings, db=db, keystore=keystore, catalog=chosen)


def app(context: AppContext | None = None) -> FastAPI:
    """The whole application over `context` (without one, good for looking at its routes only)."""
    settings = context.settings if context is not None else Settings()
    return main.create_app(settings, context=context)


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


def basic(token: str) -> dict[str, str]:
    """The key as the HTTP Basic user name, as Segment's clients send it."""
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:".encode()).decode()}
