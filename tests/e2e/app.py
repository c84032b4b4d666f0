"""An app factory for end-to-end tests: `uvicorn tests.e2e.app:create --factory`.

Settings come from `TACTFUL_*` environment variables, as in production, and the demo catalog (or
`TACTFUL_CATALOG_PATH`) is loaded as `tactful.main` does; the test prepares the database schema.
"""

from __future__ import annotations

from fastapi import FastAPI

from tactful.api.context import AppContext
from tactful.catalog.loader import load_catalog
from tactful.config import load_settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.main import default_catalog_path
from tests.collect.http import app


def create() -> FastAPI:
    settings = load_settings()
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    keystore.create_schema()
    context = AppContext(
        settings=settings,
        db=Database(settings.database_url),
        keystore=keystore,
        catalog=load_catalog(settings.catalog_path or default_catalog_path()),
    )
    return app(context)
