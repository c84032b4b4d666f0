"""What `tactful simulate` showed of the engine, kept as regression tests: a message that follows a
verified link in the same batch is no new claim."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tactful.api.context import AppContext
from tactful.collect import service as collect_service
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.main import create_app
from tactful.types import utcnow
from tests.demo.test_simulate import shop_context

ANONYMOUS = "5b0f9c1e-2a44-4d5e-9b7a-0c2f5e1d3a10"
USER = "s-findings-1"


@pytest.fixture
def shop(backend: str, tmp_path: Path) -> Iterator[tuple[AppContext, TestClient, str]]:
    with shop_context(backend, tmp_path) as context:
        with context.session() as session:
            _, key = keys_service.create_key(
                session, keystore=context.keystore, name="page", scope=Scope.WRITE, at=utcnow(), actor="test"
            )
        yield context, TestClient(create_app(context.settings, context=context)), key


def _refused(context: AppContext) -> dict[str, int]:
    """The claims refused so far, by reason: the operator's count (a page's answer never tells)."""
    with context.session() as session:
        return dict(collect_service.ingest_stats(session).refused_by_reason)


def _message(kind: str, number: int, **fields: Any) -> dict[str, Any]:
    at = (utcnow() - timedelta(minutes=5) + timedelta(seconds=number)).isoformat()
    return {"type": kind, "messageId": f"findings-{number}", "timestamp": at, **fields}


def _sign_up(context: AppContext) -> list[dict[str, Any]]:
    """What analytics.js sends when a visitor signs up: the alias and identify carry the subject
    token the shop's backend minted, the track after them names both ids, as every later call does."""
    token = issue_subject_token(
        secret=context.settings.subject_token_secret.get_secret_value(), user_id=USER, at=utcnow()
    )
    proof = {"tactful": {"subject_token": token}}
    both = {"userId": USER, "anonymousId": ANONYMOUS}
    return [
        _message("alias", 1, previousId=ANONYMOUS, userId=USER, context=proof),
        _message("identify", 2, **both, traits={"first_name": "Ebba"}, context=proof),
        _message("track", 3, **both, event="Signed Up", properties={"method": "email"}),
    ]


def test_after_a_verified_link_a_later_batch_is_no_new_claim(
    shop: tuple[AppContext, TestClient, str],
) -> None:
    """The behaviour the finding below expects, where it holds: across two requests."""
    context, api, key = shop
    first, second, third = _sign_up(context)
    answer = api.post("/v1/batch", json={"batch": [first, second]}, auth=(key, ""))
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "accepted"]
    assert _refused(context) == {}
    answer = api.post("/v1/batch", json={"batch": [third]}, auth=(key, ""))
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"]
    assert _refused(context) == {}


def test_a_message_after_a_verified_link_in_the_same_batch_is_no_new_claim(
    shop: tuple[AppContext, TestClient, str],
) -> None:
    context, api, key = shop
    answer = api.post("/v1/batch", json={"batch": _sign_up(context)}, auth=(key, ""))
    assert answer.status_code == 200
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"] * 3
    assert _refused(context) == {}
