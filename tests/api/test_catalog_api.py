"""Catalog drift over HTTP: admin only, the dropped undeclared fields by name, documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import AppContext, TestClient, app, app_context, bearer, client, issue
from tests.backends import migrated_database

DRIFT = "/v1/admin/catalog/drift"


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


def _send(api: TestClient, context: AppContext, properties: dict[str, object]) -> None:
    message = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "a-drift",
        "properties": {"product_id": "p-1", **properties},
        "context": {"consent": {"categoryPreferences": {"analytics": True}}},
    }
    answer = api.post("/v1/track", json=message, headers=bearer(issue(context, Scope.SERVER)))
    assert answer.status_code == 200
    assert answer.json()["results"][0]["status"] == "stored"


def test_an_empty_drift(api: TestClient, context: AppContext) -> None:
    answer = api.get(DRIFT, headers=bearer(issue(context, Scope.ADMIN)))
    assert answer.status_code == 200
    assert answer.json() == {"total": 0, "fields": []}


def test_dropped_fields_by_name_most_frequent_first(api: TestClient, context: AppContext) -> None:
    _send(api, context, {"color": "red", "size": "M"})
    _send(api, context, {"color": "blue"})
    answer = api.get(DRIFT, headers=bearer(issue(context, Scope.ADMIN)))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["fields"][:2] == [
        {"field": "properties.color", "count": 2, "aggregate": False},
        {"field": "properties.size", "count": 1, "aggregate": False},
    ]
    assert body["total"] == sum(f["count"] for f in body["fields"])
    assert "red" not in answer.text, "names only, never values"


def test_only_admin_keys_read_the_drift(api: TestClient, context: AppContext) -> None:
    assert api.get(DRIFT).status_code == 401
    for scope in (Scope.WRITE, Scope.SERVER):
        assert api.get(DRIFT, headers=bearer(issue(context, scope))).status_code == 403


def test_the_drift_is_documented_with_its_response_model() -> None:
    operation = app().openapi()["paths"][DRIFT]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CatalogDrift"}
    assert {"401", "403"} <= set(operation["responses"])
