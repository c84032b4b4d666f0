"""Session behaviour across real server processes sharing Redis (DESIGN §5): product views collected
by one `tactful serve` reach a `1:some` decision made by another, and a withdrawal made through the
second holds for the very next decision of the first, with the counters gone from Redis."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import app_context, basic, bearer, issue
from tests.api.test_session_behaviour import PURPOSES, shop, views
from tests.backends import REDIS_URL, migrated_database, redis_prefix
from tests.e2e.server import serving

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SECRET = "session-processes-secret-key-of-sufficient-length"


def _hero(server: httpx.Client, key: dict[str, str], anon: str) -> dict[str, Any]:
    response = server.post(
        "/v1/decide", json={"anonymous_id": anon, "placements": ["home_hero"]}, headers=key
    )
    assert response.status_code == 200, response.text
    [answer] = response.json()["decisions"]
    return dict(answer)


def _consent(server: httpx.Client, key: dict[str, str], anon: str, purposes: dict[str, bool]) -> None:
    body = {"anonymous_id": anon, "purposes": purposes, "source": "banner"}
    response = server.put("/v1/consent", json=body, headers=key)
    assert response.status_code == 200, response.text


def test_behaviour_collected_on_one_process_decides_on_another_until_withdrawn(
    backend: str, tmp_path: Path
) -> None:
    if not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    keystore = Keystore(keys_url, secret_key=SECRET)
    keystore.create_schema()
    prefix = redis_prefix()
    redis = Redis.from_url(REDIS_URL)
    anon = f"anon-{uuid.uuid4().hex}"
    try:
        with migrated_database(backend, tmp_path) as db, ExitStack() as stack:
            context = app_context(db, keystore)
            admin, server = bearer(issue(context, Scope.ADMIN)), bearer(issue(context, Scope.SERVER))
            write = basic(issue(context, Scope.WRITE))
            settings = {
                "TACTFUL_DATABASE_URL": db.url,
                "TACTFUL_KEYSTORE_URL": keys_url,
                "TACTFUL_SECRET_KEY": SECRET,
                "TACTFUL_REDIS_URL": REDIS_URL,
                "TACTFUL_REDIS_PREFIX": prefix,
            }
            a, b = (
                stack.enter_context(httpx.Client(base_url=url, timeout=10))
                for url in (
                    stack.enter_context(serving(settings, tmp_path / f"server-{n}.log")) for n in "ab"
                )
            )
            shop(a, admin)
            _consent(a, write, anon, dict.fromkeys(PURPOSES, True))
            sent = a.post("/v1/batch", json={"batch": views(anon, "running", times=3)}, headers=write)
            assert sent.status_code == 200, sent.text
            assert {r["status"] for r in sent.json()["results"]} == {"accepted"}  # a page's answer

            answer = _hero(b, server, anon)
            assert (answer["experience"], answer["level"]) == ("running_banner", "1:some")
            assert list(redis.scan_iter(match=f"{prefix}rt:*"))

            _consent(b, write, anon, {"personalization.behavioral": False})
            after = _hero(a, server, anon)  # the very next decision, on the other process
            assert (after["experience"], after["level"]) == (None, "1:all")
            assert list(redis.scan_iter(match=f"{prefix}rt:*")) == []
    finally:
        for key in redis.scan_iter(match=f"{prefix}*"):
            redis.delete(key)
        redis.close()
        keystore.dispose()
