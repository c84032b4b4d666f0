"""A process whose `TACTFUL_SECRET_KEY` does not open the keystore (started with the wrong key, or
still running after `tactful secret rotate` moved the keystore to a new one) says so: `/readyz` is not
ready, and requests get a 503 problem document naming the cause (`keystore_locked`), never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tactful.api.context import AppContext
from tactful.crypto import Keystore, derive_kek
from tactful.crypto.sealing import kek_fingerprint, subject_keys
from tactful.keys.schemas import Scope
from tests.api.builders import TestClient, app_context, basic, bearer, client, issue
from tests.backends import fresh_database, migrated_database
from tests.collect.builders import track

SECRET = "the-first-secret-key-of-sufficient-length-00"
NEW_SECRET = "the-rotated-secret-key-of-sufficient-length-0"


@pytest.fixture
def context(backend: str, tmp_path: Path) -> Iterator[AppContext]:
    # A keystore of its own: these tests rotate it, which the shared one must never see.
    with fresh_database(backend, tmp_path, migrated=False, name="keys") as url:
        keystore = Keystore(url, secret_key=SECRET)
        keystore.create_schema()
        with migrated_database(backend, tmp_path) as db:
            yield app_context(db, keystore)
        keystore.dispose()


def _url(keystore: Keystore) -> str:
    return keystore.engine.url.render_as_string(hide_password=False)


def _locked(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "keystore_locked"
    assert "TACTFUL_SECRET_KEY" in body["detail"]


def _grant(http: TestClient, key: str, user_id: str) -> Any:
    body = {"user_id": user_id, "source": "api", "purposes": {"analytics": True}}
    return http.put("/v1/consent", json=body, headers=bearer(key))


def test_after_a_rotation_readiness_fails_and_requests_get_503(context: AppContext) -> None:
    http = client(context)
    server = issue(context, Scope.SERVER)
    assert _grant(http, server, "u-1").status_code == 200
    assert http.post("/v1/track", json=track(userId="u-1"), headers=basic(server)).status_code == 200
    assert http.get("/readyz").status_code == 200

    # `tactful secret rotate`, from another process: this one still holds the old key.
    rotating = Keystore(_url(context.keystore), secret_key=SECRET)
    rotating.rotate(NEW_SECRET)
    rotating.dispose()

    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["keystore"].startswith("locked")
    _locked(_grant(http, server, "u-1"))
    _locked(http.post("/v1/track", json=track(userId="u-1"), headers=basic(server)))
    # A new visitor's key is not wrapped under the old secret, where no restarted process could
    # open it: the request is refused and nothing is written.
    new_visitor = {"anonymous_id": "a-new", "source": "banner", "purposes": {"analytics": True}}
    _locked(http.put("/v1/consent", json=new_visitor, headers=bearer(server)))
    with context.keystore.engine.connect() as conn:
        wrapped_under = set(conn.execute(select(subject_keys.c.kek_id)).scalars())
    assert wrapped_under == {kek_fingerprint(derive_kek(NEW_SECRET))}


def test_a_process_started_with_the_wrong_key_answers_503(context: AppContext) -> None:
    server = issue(context, Scope.SERVER)
    assert _grant(client(context), server, "u-2").status_code == 200  # keys under the right secret
    wrong = Keystore(_url(context.keystore), secret_key=NEW_SECRET)
    try:
        http = client(app_context(context.db, wrong))
        assert http.get("/readyz").status_code == 503
        _locked(_grant(http, server, "u-2"))
        _locked(http.post("/v1/track", json=track(anonymousId="a-2"), headers=basic(server)))
    finally:
        wrong.dispose()


def test_readiness_passes_on_a_keystore_without_keys_yet(context: AppContext) -> None:
    assert client(context).get("/readyz").json()["checks"]["keystore"] == "ok"
