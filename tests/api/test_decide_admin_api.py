"""The decision model over HTTP: admin keys only, problem documents that list each fault with its
field and how to fix it, versions and rollback, and the admin key recorded with each change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.decide.models import DecideVersion
from tactful.keys.schemas import Scope
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.backends import migrated_database

ADMIN = "/v1/admin"
HERO = {"key": "home_hero", "channel": "web", "default": {"content": {"headline": "Welcome"}}}
SPLIT = {
    "key": "spring",
    "placement": "home_hero",
    "strategy": "split",
    "variations": [{"key": "a", "content": {"headline": "A"}}, {"key": "b", "content": {"headline": "B"}}],
}


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def admin(context: AppContext) -> dict[str, str]:
    return bearer(issue(context, Scope.ADMIN, name="marketing"))


def _key_id(headers: dict[str, str]) -> uuid.UUID:
    return uuid.UUID(headers["Authorization"].split("_")[2])


def test_a_marketer_builds_publishes_and_rolls_back(
    api: TestClient, context: AppContext, admin: dict[str, str]
) -> None:
    assert api.post(f"{ADMIN}/placements", json=HERO, headers=admin).status_code == 201
    audience = {"key": "sweden", "name": "Sweden", "condition": {"context.location.country": "SE"}}
    assert api.post(f"{ADMIN}/audiences", json=audience, headers=admin).status_code == 201
    created = api.post(f"{ADMIN}/experiences", json=SPLIT | {"audience": "sweden"}, headers=admin)
    assert created.status_code == 201
    assert (created.json()["status"], created.json()["holdout"]) == ("draft", 0.05)

    published = api.post(f"{ADMIN}/experiences/spring/publish", headers=admin)
    assert published.status_code == 200
    assert (published.json()["status"], published.json()["published_version"]) == ("live", 2)

    one = [{"key": "a", "content": {"headline": "A"}}]
    changed = api.patch(f"{ADMIN}/experiences/spring", json={"variations": one}, headers=admin)
    assert changed.status_code == 422  # a split with one variation
    changed = api.patch(f"{ADMIN}/experiences/spring", json={"priority": 5.0}, headers=admin)
    assert (changed.status_code, changed.json()["priority"], changed.json()["version"]) == (200, 5, 3)
    assert api.post(f"{ADMIN}/experiences/spring/publish", headers=admin).json()["version"] == 4
    assert api.post(f"{ADMIN}/experiences/spring/pause", headers=admin).json()["status"] == "paused"

    rolled = api.post(f"{ADMIN}/experiences/spring/rollback", json={"version": 2}, headers=admin)
    assert rolled.status_code == 200
    assert (rolled.json()["status"], rolled.json()["priority"], rolled.json()["version"]) == ("live", 0, 6)

    versions = api.get(f"{ADMIN}/experiences/spring/versions", headers=admin)
    assert versions.status_code == 200
    assert [(v["version"], v["change"], v["published"]) for v in versions.json()] == [
        (6, "rolled_back", True),
        (5, "paused", True),
        (4, "published", True),
        (3, "updated", False),
        (2, "published", True),
        (1, "created", False),
    ]
    assert {v["actor_key_id"] for v in versions.json()} == {str(_key_id(admin))}
    older = api.get(f"{ADMIN}/experiences/spring/versions", params={"before": 3, "limit": 1}, headers=admin)
    assert [v["version"] for v in older.json()] == [2]

    with context.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action.like("decide.%")).order_by(AuditEntry.seq)
        ).all()
        actors = set(session.scalars(select(AuditEntry.actor).where(AuditEntry.action.like("decide.%"))))
        assert session.scalars(select(DecideVersion.actor_key_id)).all()
    assert actions == [
        "decide.placement.created",
        "decide.audience.created",
        "decide.experience.created",
        "decide.experience.published",
        "decide.experience.updated",
        "decide.experience.published",
        "decide.experience.paused",
        "decide.experience.rolled_back",
    ]
    assert actors == {f"api:key:{_key_id(admin)}"}


def test_faults_come_back_as_a_problem_listing_each(api: TestClient, admin: dict[str, str]) -> None:
    api.post(f"{ADMIN}/placements", json=HERO, headers=admin)
    body = SPLIT | {"audience": "nobody", "variations": [{"key": "a", "content": {"headline": None}}]}
    refused = api.post(f"{ADMIN}/experiences", json=body, headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert (problem["code"], problem["message"]) == ("invalid_definition", problem["detail"])
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
        (["audience"], "audience_unknown"),
        (["variations"], "split_needs_two_variations"),
        (["variations", 0, "content", "headline"], "content_null"),
    ]
    assert all(e["msg"] for e in problem["errors"])


def test_a_significant_effect_is_published_but_never_reading_a_special_category(
    api: TestClient, admin: dict[str, str]
) -> None:
    # Human review and its queue exist (`api/reviews.py`): publishing is allowed where DESIGN §1 holds.
    api.post(f"{ADMIN}/placements", json=HERO, headers=admin)
    wellness = {"key": "wellness", "name": "Wellness", "condition": {"traits.health_interest": "back_pain"}}
    assert api.post(f"{ADMIN}/audiences", json=wellness, headers=admin).status_code == 201
    significant = SPLIT | {"significant_effect": True}
    api.post(f"{ADMIN}/experiences", json=significant | {"audience": "wellness"}, headers=admin)
    refused = api.post(f"{ADMIN}/experiences/spring/publish", headers=admin)
    assert refused.status_code == 422
    assert refused.json()["code"] == "publish_refused"
    [error] = refused.json()["errors"]
    assert (error["loc"], error["type"]) == (
        ["significant_effect"],
        "significant_effect_reads_special_category",
    )
    assert "traits.health_interest" in error["msg"]
    assert api.get(f"{ADMIN}/experiences/spring", headers=admin).json()["status"] == "draft"

    fair = significant | {"key": "fair_price"}
    assert api.post(f"{ADMIN}/experiences", json=fair, headers=admin).status_code == 201
    published = api.post(f"{ADMIN}/experiences/fair_price/publish", headers=admin)
    assert published.status_code == 200, published.text
    assert (published.json()["status"], published.json()["significant_effect"]) == ("live", True)


def test_missing_taken_and_malformed(api: TestClient, admin: dict[str, str]) -> None:
    assert api.post(f"{ADMIN}/placements", json=HERO, headers=admin).status_code == 201
    taken = api.post(f"{ADMIN}/placements", json=HERO, headers=admin)
    assert (taken.status_code, taken.json()["code"]) == (409, "placement_exists")
    missing = api.get(f"{ADMIN}/audiences/nobody", headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "audience_not_found")
    assert api.post(f"{ADMIN}/experiences/nothing/pause", headers=admin).status_code == 404
    bad_key = api.post(f"{ADMIN}/placements", json=HERO | {"key": "Home Hero"}, headers=admin)
    assert (bad_key.status_code, bad_key.json()["code"]) == (422, "invalid_input")
    assert api.get(f"{ADMIN}/placements/Home%20Hero", headers=admin).status_code == 422
    text_version = api.post(f"{ADMIN}/experiences/spring/rollback", json={"version": "2"}, headers=admin)
    assert text_version.status_code == 422
    naive = api.post(f"{ADMIN}/experiences", json=SPLIT | {"starts_at": "2026-06-01T09:00:00"}, headers=admin)
    assert naive.status_code == 422


def test_lists_and_reads(api: TestClient, admin: dict[str, str]) -> None:
    for key in ("b_slot", "a_slot"):
        api.post(f"{ADMIN}/placements", json=HERO | {"key": key}, headers=admin)
    listed = api.get(f"{ADMIN}/placements", headers=admin)
    assert (listed.status_code, listed.headers["cache-control"]) == (200, "no-store")
    assert [p["key"] for p in listed.json()] == ["a_slot", "b_slot"]
    assert [
        p["key"] for p in api.get(f"{ADMIN}/placements", params={"after": "a_slot"}, headers=admin).json()
    ] == ["b_slot"]
    patched = api.patch(f"{ADMIN}/placements/a_slot", json={"description": "Top"}, headers=admin)
    assert (patched.json()["description"], patched.json()["version"]) == ("Top", 2)
    assert (
        api.get(f"{ADMIN}/placements/a_slot/versions", headers=admin).json()[0]["snapshot"]["description"]
        == "Top"
    )


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.SERVER])
def test_only_admin_keys_manage_the_model(api: TestClient, context: AppContext, scope: Scope) -> None:
    headers = bearer(issue(context, scope))
    assert api.post(f"{ADMIN}/placements", json=HERO, headers=headers).status_code == 403
    assert api.get(f"{ADMIN}/experiences", headers=headers).status_code == 403
    assert api.post(f"{ADMIN}/experiences/spring/publish", headers=headers).status_code == 403
    assert api.get(f"{ADMIN}/audiences").status_code == 401
