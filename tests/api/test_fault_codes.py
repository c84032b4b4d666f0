"""One code per fault on every route: a body that is not JSON text is `malformed_json` (422) and a body
over its route's limit is `request_too_large` (413), on a collection route, on `PUT /v1/consent` and
on an admin route alike. Every problem document carries `message` (and `code`) beside the RFC 9457
members, as the Segment and RudderStack libraries read them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tactful.api.context import AppContext
from tactful.config import Limits
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import TestClient, app_context, basic, client, issue
from tests.backends import migrated_database

PROBLEM = "application/problem+json"
LIMIT = 4096
ROUTES = (("post", "/v1/track"), ("put", "/v1/consent"), ("post", "/v1/admin/keys"))


@pytest.fixture
def context(tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    limits = Limits(max_api_body_bytes=LIMIT, max_request_bytes=LIMIT, max_event_bytes=LIMIT)
    with migrated_database("sqlite", tmp_path) as db:
        yield app_context(db, keystore, limits=limits)


@pytest.fixture
def http(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def admin(context: AppContext) -> str:
    return issue(context, Scope.ADMIN)


def _send(http: TestClient, method: str, path: str, body: bytes, key: str) -> Any:
    headers = basic(key) | {"Content-Type": "application/json"}
    return http.request(method.upper(), path, content=body, headers=headers)


def _assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"].endswith("/" + code)
    assert body["message"] == body["detail"] != ""


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("body", [b"{not json", b'{"anonymous_id": "a",', b'{"anonymous_id": "\xff"}'])
def test_a_body_that_is_not_json_is_malformed_json_everywhere(
    http: TestClient, admin: str, method: str, path: str, body: bytes
) -> None:
    _assert_problem(_send(http, method, path, body, admin), 422, "malformed_json")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_over_the_limit_is_request_too_large_everywhere(
    http: TestClient, admin: str, method: str, path: str
) -> None:
    body = b'{"anonymous_id": "a", "notice_version": "' + b"x" * LIMIT + b'"}'
    _assert_problem(_send(http, method, path, body, admin), 413, "request_too_large")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_that_breaks_the_schema_is_not_called_malformed(
    http: TestClient, admin: str, method: str, path: str
) -> None:
    # Valid JSON of the wrong shape is another fault, with its own code.
    response = _send(http, method, path, b"[1, 2]", admin)
    assert response.status_code == 422
    assert response.json()["code"] in ("invalid_input", "invalid_body")


def test_unknown_paths_and_methods_carry_message_too(http: TestClient) -> None:
    _assert_problem(http.get("/v1/nowhere"), 404, "not_found")
    _assert_problem(http.delete("/v1/consent"), 405, "method_not_allowed")


def test_a_refused_key_carries_message(http: TestClient) -> None:
    _assert_problem(
        http.post("/v1/track", json={"type": "track"}, headers=basic("tfk_write_x")), 401, "not_authenticated"
    )
