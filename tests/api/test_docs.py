"""The documentation page works without internet access: `/docs` names only URLs of this server, and
each of them answers 200 from the files the package ships."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tactful.api.context import AppContext
from tactful.crypto import Keystore
from tests.api.builders import TestClient, app_context, client
from tests.backends import migrated_database

URL_ATTRIBUTE = re.compile(r"""(?:src|href|url)\s*[:=]\s*["']([^"']+)["']""")


@pytest.fixture
def http(tmp_path: Path, keystore: Keystore) -> Iterator[TestClient]:
    with migrated_database("sqlite", tmp_path) as db:
        context: AppContext = app_context(db, keystore)
        yield client(context)


def test_the_docs_page_names_only_local_urls_and_each_answers(http: TestClient) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = URL_ATTRIBUTE.findall(page.text)
    assert len(urls) >= 4, urls  # the script, the style sheet, the icon, the OpenAPI document
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert url.startswith("/"), url
        assert http.get(url).status_code == 200, url
    assert "http://" not in page.text
    assert "https://" not in page.text


def test_the_assets_are_swagger_ui_with_its_licence(http: TestClient) -> None:
    script = http.get("/docs/assets/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content
    assert http.get("/docs/assets/swagger-ui.css").headers["content-type"].startswith("text/css")
    assert "Apache License" in http.get("/docs/assets/LICENSE").text


@pytest.mark.parametrize("name", ["../__init__.py", "..%2F..%2Fdocs.py", "index.html", "swagger-ui.js.map"])
def test_nothing_else_is_served(http: TestClient, name: str) -> None:
    response = http.get(f"/docs/assets/{name}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_redoc_is_not_offered(http: TestClient) -> None:
    assert http.get("/redoc").status_code == 404
