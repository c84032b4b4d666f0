"""Invariant 3 across processes: a consent change made through one server process shows on the other
at its very next request: the state, the purge of what the withdrawal left without a purpose, and
the purposes of the next event (nothing is cached between requests)."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tactful.api.context import AppContext
from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tests.api.builders import app_context, bearer, issue
from tests.backends import migrated_database
from tests.e2e.server import serving

pytestmark = pytest.mark.slow

SECRET = "consent-processes-secret-key-of-sufficient-length"
PERSONALIZATION = ("personalization.segments", "personalization.behavioral", "personalization.predictive")


def _consent(url: str, key: str, anonymous_id: str, purposes: dict[str, bool]) -> dict[str, Any]:
    body = {"anonymous_id": anonymous_id, "purposes": purposes, "source": "banner"}
    response = httpx.put(f"{url}/v1/consent", json=body, headers=bearer(key), timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _read(url: str, key: str, anonymous_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{url}/v1/consent", params={"anonymous_id": anonymous_id}, headers=bearer(key), timeout=10
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _purposes(db: Any, message_id: str) -> list[str] | None:
    with db.session() as session:
        row = session.scalars(select(Event).where(Event.message_id == message_id)).one()
        purposes: list[str] | None = row.purposes
        return purposes


def _view(url: str, key: str, anonymous_id: str) -> dict[str, Any]:
    body = {
        "event": "Product Viewed",
        "anonymousId": anonymous_id,
        "messageId": uuid.uuid4().hex,
        "properties": {"product_id": "p-1", "category": "books"},
    }
    response = httpx.post(f"{url}/v1/track", json=body, headers=bearer(key), timeout=10)
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    answer: dict[str, Any] = result
    return answer


def test_a_withdrawal_on_one_process_holds_on_the_other_at_once(backend: str, tmp_path: Path) -> None:
    keys_url = f"sqlite:///{tmp_path / 'keys.db'}"
    keystore = Keystore(keys_url, secret_key=SECRET)
    keystore.create_schema()
    anon = f"anon-{uuid.uuid4().hex[:12]}"
    with migrated_database(backend, tmp_path) as db, ExitStack() as stack:
        context: AppContext = app_context(db, keystore)
        write, server_key = issue(context, Scope.WRITE), issue(context, Scope.SERVER)
        settings = {
            "TACTFUL_DATABASE_URL": db.url,
            "TACTFUL_KEYSTORE_URL": keys_url,
            "TACTFUL_SECRET_KEY": SECRET,
        }
        a, b = (stack.enter_context(serving(settings, tmp_path / f"server-{n}.log")) for n in "ab")

        grants = dict.fromkeys(("analytics", *PERSONALIZATION), True)
        _consent(a, write, anon, grants)
        assert _read(b, server_key, anon)["purposes"]["personalization.predictive"]["state"] == "granted"
        first = _view(a, server_key, anon)
        assert first["status"] == "stored"
        assert _purposes(db, first["messageId"]) == ["analytics", "personalization.behavioral"]
        with db.session() as session:
            [subject] = set(session.scalars(select(Event.subject_id)))
            built = profiles_service.stored_atoms(session, subject_id=subject)
        assert {"computed.favorite_category", "computed.event_counts"} <= built

        _consent(b, write, anon, {"personalization.predictive": False, "personalization.behavioral": False})
        seen_by_a = _read(a, server_key, anon)["purposes"]["personalization.predictive"]
        assert (seen_by_a["state"], seen_by_a["allowed"]) == ("withdrawn", False)
        with db.session() as session:
            kept = profiles_service.stored_atoms(session, subject_id=subject)
        assert "computed.favorite_category" not in kept  # predictive or e-mail marketing only
        assert "computed.event_counts" in kept  # analytics still holds
        # The next event sent to A serves only what B left allowed.
        second = _view(a, server_key, anon)
        assert second["status"] == "stored"
        assert _purposes(db, second["messageId"]) == ["analytics"]

        # Withdrawing everything on B: the very next event sent to A is suppressed.
        _consent(b, write, anon, dict.fromkeys(grants, False))
        result = _view(a, server_key, anon)
        assert (result["status"], result["reason"]) == ("suppressed", "no_purpose")
        with db.session() as session:
            assert profiles_service.stored_atoms(session, subject_id=subject) <= {"computed.last_seen"}
    keystore.dispose()
