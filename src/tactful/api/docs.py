"""The API documentation page (`/docs`), served with its assets from the package itself.

FastAPI's own page loads Swagger UI from a public CDN, so a self-hosted install without internet
access showed a blank page. Swagger UI's two files (and its licence, Apache-2.0) ship under
`static/swagger-ui/` and are served from here; ReDoc, which would need a CDN too, is not offered.

    GET /docs                       Swagger UI's page, pointing at /openapi.json
    GET /docs/assets/{name}         swagger-ui-bundle.js, swagger-ui.css, favicon, LICENSE, NOTICE
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from tactful.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
SWAGGER_UI_VERSION = "5.36.0"
MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
    "NOTICE": "text/plain; charset=utf-8",
    "swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
}
"""The files served, and nothing else: a name is looked up here, never joined to a path."""


@cache
def _asset(name: str) -> bytes:
    return (resources.files("tactful.api") / "static" / "swagger-ui" / name).read_bytes()


@router.get("/docs")
def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Tactful API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
        swagger_css_url=f"{ASSETS}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )


@router.get(ASSETS + "/{name}")
def asset(name: str) -> Response:
    media_type = MEDIA_TYPES.get(name)
    if media_type is None:
        raise NotFound("no such documentation asset")
    return Response(_asset(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})
