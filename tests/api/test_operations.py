"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tactful.api.context import AppContext
from tactful.crypto import Keystore
from tactful.db import Database, schema_status
from tactful.keys.schemas import Scope
from tests.api.builders import app_context, bearer, client, issue
from tests.backends import migrated_database


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


def test_liveness_and_readiness(context: AppContext) -> None:
    http = client(context)
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok", "keystore": "ok"}


def test_readiness_fails_on_a_database_behind_the_code(keystore: Keystore, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'unmigrated.db'}")
    ready = client(app_context(db, keystore)).get("/readyz")
    assert ready.status_code == 503
    _, head = schema_status(db.engine)
    assert head is not None
    assert ready.json()["checks"]["migrations"] == f"at none, code needs {head}"
    db.dispose()


def _metric(text: str, line_start: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_metrics_count_ingestion_outcomes_for_admins_only(context: AppContext) -> None:
    http: TestClient = client(context)
    write = issue(context, Scope.WRITE)
    batch = {
        "batch": [
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": "a-1",
                "messageId": "m-1",
                "properties": {"product_id": "p-1", "category": "books", "color": "red"},
            },
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": "a-1",
                "messageId": "m-1",
                "properties": {"product_id": "p-1", "category": "books", "color": "red"},
            },
            {"type": "track", "event": "Product Viewed", "messageId": "m-2"},
            {"type": "track", "event": "Wishlist Shared", "anonymousId": "a-1", "messageId": "m-3"},
        ],
        # The banner's choice: without it a GDPR visitor's browsing would be suppressed.
        "context": {"consent": {"categoryPreferences": {"analytics": True}}},
    }
    assert http.post("/v1/batch", json=batch, headers=bearer(write)).status_code == 200
    assert http.get("/metrics", headers=bearer(issue(context, Scope.SERVER))).status_code == 403
    assert http.get("/metrics").status_code == 401
    response = http.get("/metrics", headers=bearer(issue(context, Scope.ADMIN)))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _metric(text, 'tactful_events_total{outcome="received"}') == 4
    assert _metric(text, 'tactful_events_total{outcome="stored"}') == 1
    assert _metric(text, 'tactful_events_total{outcome="deduplicated"}') == 1
    assert _metric(text, 'tactful_events_total{outcome="quarantined"}') == 1
    assert _metric(text, 'tactful_events_quarantined_by_reason_total{reason="missing_identity"}') == 1
    assert _metric(text, 'tactful_events_total{outcome="dropped"}') == 1
    assert _metric(text, 'tactful_events_dropped_by_reason_total{reason="undeclared_event"}') == 1
    assert _metric(text, "tactful_fields_dropped_total") >= 1
    assert _metric(text, "tactful_events_balanced") == 1
    assert "a-1" not in text, "metrics carry no identifiers"
