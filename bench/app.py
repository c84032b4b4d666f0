"""The ASGI factory the HTTP benchmark serves: `uvicorn bench.app:create --factory`.

Settings come from the environment the benchmark sets (`TACTFUL_DATABASE_URL`, ...). Until the
collection router is listed in `tactful.main.ROUTERS` it is mounted here, so that the benchmark
measures the real endpoint either way.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.routing import APIRoute

from tactful.config import load_settings
from tactful.main import create_app


def create() -> FastAPI:
    app = create_app(load_settings())
    if not any(isinstance(r, APIRoute) and r.path == "/v1/batch" for r in app.routes):
        app.include_router(importlib.import_module("tactful.api.collect").router)
    return app
