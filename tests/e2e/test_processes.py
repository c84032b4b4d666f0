"""Two server processes over one database: a revocation made through one is enforced by both within
a second (DESIGN §4, keys), and events sent to either land in the same store."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tactful.api.context import AppContext
from tactful.collect import service as collect_service
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import app_context, bearer, issue
from tests.backends import migrated_database
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "two-process-secret-key-of-sufficient-length"


def _track(url: str, key: str, message_id: str) -> httpx.Response:
    body = {
        "event": "Product Viewed",
        "anonymousId": "anon-2p",
        "messageId": message_id,
        "context": {"consent": {"categoryPreferences": {"analytics": True}}},  # else suppressed (GDPR)
    }
    return httpx.post(f"{url}/v1/track", json=body, headers=bearer(key), timeout=5)


def test_revocation_reaches_every_process_within_a_second(backend: str, tmp_path: Path) -> None:
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    keystore = Keystore(keys_url, secret_key=SECRET)
    keystore.create_schema()
    with migrated_database(backend, tmp_path) as db, ExitStack() as stack:
        context: AppContext = app_context(db, keystore)
        write, admin = issue(context, Scope.WRITE), issue(context, Scope.ADMIN)
        settings = {
            "TACTFUL_DATABASE_URL": db.url,
            "TACTFUL_KEYSTORE_URL": keys_url,
            "TACTFUL_SECRET_KEY": SECRET,
        }
        urls = [stack.enter_context(serving(settings, tmp_path / f"server-{n}.log")) for n in (1, 2)]

        for n, url in enumerate(urls):
            assert _track(url, write, f"before-{n}").status_code == 200
        with db.session() as session:
            assert collect_service.ingest_stats(session).stored == 2

        [key_id] = [
            k["id"]
            for k in httpx.get(f"{urls[0]}/v1/admin/keys", headers=bearer(admin)).json()
            if k["scope"] == "write"
        ]
        revoked_at = time.monotonic()
        assert httpx.delete(f"{urls[0]}/v1/admin/keys/{key_id}", headers=bearer(admin)).status_code in (
            200,
            204,
        )
        for n, url in enumerate(urls):
            while _track(url, write, f"after-{n}-{time.monotonic_ns()}").status_code != 401:
                assert time.monotonic() - revoked_at < 1.0, f"process {n + 1} still accepts a revoked key"
                time.sleep(0.05)
        assert time.monotonic() - revoked_at < 1.0
    keystore.dispose()
