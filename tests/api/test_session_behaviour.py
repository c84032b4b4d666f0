"""Real-time behaviour over HTTP (`1:some`): product views sent through collection reach a decision
through the session counters, under the subject's consent, and a withdrawal takes them away on the
very next decision. Processes are built by `main.build_context`, as `tactful serve` builds them:
in-process counters without Redis; with `TACTFUL_TEST_REDIS_URL`, two processes sharing Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from tactful import main
from tactful.api.context import AppContext
from tactful.config import Settings
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import InProcessCounters, RedisCounters
from tactful.types import utcnow
from tests.api.builders import TestClient, basic, bearer, client, issue
from tests.backends import REDIS_URL, fresh_database, redis_prefix

ADMIN = "/v1/admin"
RUNNERS = {"session.product_views_by_category": {"$elemMatch": {"value": "running", "count": {"$gte": 3}}}}
PURPOSES = ("personalization.segments", "personalization.behavioral")


@dataclass(frozen=True)
class Process:
    context: AppContext
    client: TestClient
    keys: dict[Scope, str]

    def __repr__(self) -> str:
        return "Process()"


def _process(settings: Settings, keys: dict[Scope, str] | None = None) -> Process:
    context = main.build_context(settings)
    if keys is None:
        keys = {scope: issue(context, scope, name=f"session {scope}") for scope in Scope}
    return Process(context, client(context), keys)


def _close(process: Process) -> None:
    process.context.db.dispose()
    process.context.keystore.dispose()


@pytest.fixture(scope="module", params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def processes(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Process, Process]]:
    """Two processes over one database: the same one twice without Redis (single-process mode),
    two of their own sharing Redis under a key prefix of this test's."""
    if request.param == "redis" and not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    folder: Path = tmp_path_factory.mktemp("session")
    with (
        fresh_database(backend, folder) as url,
        fresh_database(backend, folder, migrated=False, name="keys") as keys_url,
    ):
        prefix = redis_prefix()
        redis_url = REDIS_URL if request.param == "redis" else None
        settings = Settings(database_url=url, keystore_url=keys_url, redis_url=redis_url, redis_prefix=prefix)
        first = _process(settings)
        second = _process(settings, first.keys) if redis_url else first
        try:
            _shop(first)
            yield first, second
        finally:
            for process in {id(first): first, id(second): second}.values():
                _close(process)
            if redis_url:
                redis = Redis.from_url(redis_url)
                for key in redis.scan_iter(match=f"{prefix}*"):
                    redis.delete(key)
                redis.close()


def _made(response: Any) -> None:
    assert response.status_code in (200, 201), response.text


def _shop(process: Process) -> None:
    shop(process.client, bearer(process.keys[Scope.ADMIN]))


def shop(api: TestClient | httpx.Client, admin: dict[str, str]) -> None:
    """`home_hero`: a 1:some banner for people who viewed three running products in this session."""
    placement = {"key": "home_hero", "channel": "web", "default": {"content": {"headline": "Welcome"}}}
    _made(api.post(f"{ADMIN}/placements", json=placement, headers=admin))
    audience = {"key": "runners", "name": "Three running products in this session", "condition": RUNNERS}
    _made(api.post(f"{ADMIN}/audiences", json=audience, headers=admin))
    experience = {
        "key": "running_banner",
        "placement": "home_hero",
        "audience": "runners",
        "holdout": 0.0,
        "variations": [{"key": "run", "content": {"headline": "New running shoes"}}],
    }
    _made(api.post(f"{ADMIN}/experiences", json=experience, headers=admin))
    _made(api.post(f"{ADMIN}/experiences/running_banner/publish", headers=admin))


def views(anon: str, category: str, *, times: int = 1, **properties: Any) -> list[dict[str, Any]]:
    """`times` Product Viewed events of one visitor, sent now."""
    return [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": anon,
            "messageId": f"msg-{uuid.uuid4().hex}",
            "timestamp": utcnow().isoformat(),
            "properties": {"product_id": f"p-{i}", "category": category, **properties},
        }
        for i in range(times)
    ]


def consent(process: Process, anon: str, purposes: dict[str, bool]) -> None:
    body = {"anonymous_id": anon, "purposes": purposes, "source": "banner"}
    response = process.client.put("/v1/consent", json=body, headers=bearer(process.keys[Scope.WRITE]))
    assert response.status_code == 200, response.text


def view(process: Process, anon: str, category: str, *, times: int = 1, **properties: Any) -> None:
    batch = views(anon, category, times=times, **properties)
    # The server key reads the engine's answer (a page's write key would read `accepted`).
    headers = basic(process.keys[Scope.SERVER])
    response = process.client.post("/v1/batch", json={"batch": batch}, headers=headers)
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"stored"}


def hero(process: Process, anon: str) -> dict[str, Any]:
    body = {"anonymous_id": anon, "placements": ["home_hero"]}
    response = process.client.post("/v1/decide", json=body, headers=bearer(process.keys[Scope.SERVER]))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["decisions"][0]
    return answer


def held(process: Process, anon: str) -> dict[str, object]:
    """What the session counters hold about the visitor (as an export shows it)."""
    context = process.context
    with context.session() as session:
        subject = profiles_service.find_subject(session, keystore=context.keystore, anonymous_id=anon)
    assert subject is not None
    assert context.counters is not None
    return context.counters.export(subject)


def test_the_process_keeps_its_counters_where_its_settings_say(processes: tuple[Process, Process]) -> None:
    first, _ = processes
    expected = RedisCounters if first.context.settings.redis_url else InProcessCounters
    assert isinstance(first.context.counters, expected)


def test_three_running_views_reach_the_1_some_banner_with_its_explanation(
    processes: tuple[Process, Process],
) -> None:
    collecting, deciding = processes
    anon = f"anon-{uuid.uuid4().hex}"
    consent(collecting, anon, dict.fromkeys(PURPOSES, True))
    view(collecting, anon, "running", times=2)
    view(collecting, anon, "books")
    before = hero(deciding, anon)
    assert (before["experience"], before["level"]) == (None, "1:all")
    view(collecting, anon, "running")
    answer = hero(deciding, anon)
    assert answer["experience"] == "running_banner"
    assert answer["level"] == "1:some"
    assert answer["content"] == {"headline": "New running shoes"}
    explanation = answer["explanation"]
    assert explanation["level"] == "1:some"
    assert explanation["atoms"] == [
        {"atom": "session.product_views_by_category", "category": "user.behavior.browsing", "weight": 1.0}
    ]
    assert explanation["legal_basis"]["personalization.behavioral"] == "consent"
    # The explanation a visitor reads names the kind of data, never the values counted (asked of
    # the process that decided: its log entry may still wait in that process's buffer).
    why = deciding.client.get(
        f"/v1/decisions/{answer['decision_id']}/explanation", headers=basic(deciding.keys[Scope.WRITE])
    )
    assert why.status_code == 200, why.text
    assert "running" not in why.text


def test_withdrawing_behavioral_consent_falls_back_on_the_very_next_decision_and_purges(
    processes: tuple[Process, Process],
) -> None:
    collecting, deciding = processes
    anon = f"anon-{uuid.uuid4().hex}"
    consent(collecting, anon, dict.fromkeys(PURPOSES, True))
    view(collecting, anon, "running", times=3)
    assert hero(deciding, anon)["level"] == "1:some"
    consent(deciding, anon, {"personalization.behavioral": False})
    answer = hero(collecting, anon)
    assert (answer["experience"], answer["level"]) == (None, "1:all")
    assert answer["explanation"]["consent_downgrade"] is True
    assert held(collecting, anon) == {}
    # Granting again does not bring the old session back: it was purged, not hidden.
    consent(collecting, anon, {"personalization.behavioral": True})
    assert hero(deciding, anon)["level"] == "1:all"
    view(collecting, anon, "running", times=3)
    assert hero(deciding, anon)["level"] == "1:some"


def test_without_the_behavioral_purpose_nothing_is_counted(processes: tuple[Process, Process]) -> None:
    collecting, deciding = processes
    anon = f"anon-{uuid.uuid4().hex}"
    consent(collecting, anon, {"analytics": True, "personalization.segments": True})
    view(collecting, anon, "running", times=3)  # stored, for analytics only
    assert held(collecting, anon) == {}
    assert hero(deciding, anon)["level"] == "1:all"


def test_only_declared_properties_are_counted(processes: tuple[Process, Process]) -> None:
    collecting, _ = processes
    anon = f"anon-{uuid.uuid4().hex}"
    consent(collecting, anon, dict.fromkeys(PURPOSES, True))
    view(collecting, anon, "running", name="Trail Runner 2", colour="red")
    exported = held(collecting, anon)
    counted = {(c.get("property"), c.get("value")) for c in exported["counts"]}  # type: ignore[union-attr]
    assert counted == {(None, None), ("category", "running")}
    assert "Trail Runner 2" not in repr(exported)
    assert "red" not in repr(exported)


def test_a_login_carries_the_visitors_session_over_to_the_user(processes: tuple[Process, Process]) -> None:
    collecting, deciding = processes
    anon, user_id = f"anon-{uuid.uuid4().hex}", f"user-{uuid.uuid4().hex}"
    server = bearer(collecting.keys[Scope.SERVER])
    grant = {"purposes": dict.fromkeys(PURPOSES, True), "source": "banner"}
    made = collecting.client.put("/v1/consent", json={"user_id": user_id, **grant}, headers=server)
    assert made.status_code == 200, made.text
    consent(collecting, anon, dict.fromkeys(PURPOSES, True))
    view(collecting, anon, "running", times=3)
    # The site's backend, with its server key, says the visitor logged in: the profiles merge.
    linked = collecting.client.put(
        "/v1/consent", json={"user_id": user_id, "anonymous_id": anon, **grant}, headers=server
    )
    assert linked.status_code == 200, linked.text
    body = {"user_id": user_id, "placements": ["home_hero"]}
    response = deciding.client.post("/v1/decide", json=body, headers=bearer(deciding.keys[Scope.SERVER]))
    assert response.status_code == 200, response.text
    assert response.json()["decisions"][0]["experience"] == "running_banner"
