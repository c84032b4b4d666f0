"""An app factory for end-to-end tests: `uvicorn tests.e2e.app:create --factory`.

Settings come from `TACTFUL_*` environment variables, as in production; the database must already
hold the schema (the test prepares it). The demo catalog is used when the catalog package can load
it, else the small stand-in catalog of the collection tests.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI

from tactful.config import load_settings
from tactful.crypto import Keystore
from tactful.db import Database
from tests.collect.builders import StandInCatalog
from tests.collect.http import AppContext, app, main


def _catalog() -> object:
    try:
        loader = importlib.import_module("tactful.catalog.loader")
        return loader.load_catalog(main.default_catalog_path())
    except Exception:
        return StandInCatalog()


def create() -> FastAPI:
    settings = load_settings()
    keystore = Keystore(settings.keystore_url, secret_key=settings.secret_key.get_secret_value())
    keystore.create_schema()
    context = AppContext(
        settings=settings,
        db=Database(settings.database_url),
        keystore=keystore,
        catalog=_catalog(),  # type: ignore[arg-type]
    )
    return app(context)
