"""Key management over HTTP: admin only, the key shown once, revocation effective at once."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.audit import verification as audit_verification
from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.backends import migrated_database

KEYS = "/v1/admin/keys"


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def admin(context: AppContext) -> str:
    return issue(context, Scope.ADMIN, name="operator")


def _basic(token: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{token}:{password}".encode()).decode()}


def test_an_admin_creates_lists_and_revokes_a_key(api: TestClient, context: AppContext, admin: str) -> None:
    created = api.post(KEYS, json={"name": "shop frontend", "scope": "write"}, headers=bearer(admin))
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    assert set(body) == {"id", "name", "scope", "prefix", "created_at", "revoked_at", "last_used_at", "key"}
    assert (body["name"], body["scope"], body["revoked_at"]) == ("shop frontend", "write", None)
    assert body["key"].startswith(body["prefix"] + "_")
    with context.session() as session:
        assert keys_service.authenticate(session, token=body["key"]).scope is Scope.WRITE

    listed = api.get(KEYS, headers=bearer(admin))
    assert listed.status_code == 200
    assert [(k["name"], k["scope"]) for k in listed.json()] == [
        ("operator", "admin"),
        ("shop frontend", "write"),
    ]
    assert body["key"] not in listed.text
    assert admin not in listed.text
    assert all(set(k) == set(body) - {"key"} for k in listed.json())

    revoked = api.delete(f"{KEYS}/{body['id']}", headers=bearer(admin))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert [k["revoked_at"] is not None for k in api.get(KEYS, headers=bearer(admin)).json()] == [False, True]


def test_a_key_created_over_http_works_at_once_and_stops_at_revocation(api: TestClient, admin: str) -> None:
    new = api.post(KEYS, json={"name": "second admin", "scope": "admin"}, headers=bearer(admin)).json()
    assert api.get(KEYS, headers=bearer(new["key"])).status_code == 200

    assert api.delete(f"{KEYS}/{new['id']}", headers=bearer(admin)).status_code == 200

    refused = api.get(KEYS, headers=bearer(new["key"]))
    assert refused.status_code == 401
    assert refused.json()["code"] == "not_authenticated"


def test_the_key_may_come_as_the_basic_user_name(api: TestClient, admin: str) -> None:
    assert api.get(KEYS, headers=_basic(admin)).status_code == 200
    assert api.get(KEYS, auth=(admin, "")).status_code == 200


def test_creation_and_revocation_are_audited_with_the_calling_key(
    api: TestClient, context: AppContext, admin: str
) -> None:
    admin_id = keys_service.key_id_of(admin)
    new = api.post(KEYS, json={"name": "backend", "scope": "server"}, headers=bearer(admin)).json()
    api.delete(f"{KEYS}/{new['id']}", headers=bearer(admin))

    with context.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.actor == f"api:key:{admin_id}")).all()
        assert [(e.action, e.details) for e in entries] == [
            ("keys.created", {"key_id": new["id"], "scope": "server"}),
            ("keys.revoked", {"key_id": new["id"], "scope": "server"}),
        ]
        assert audit_verification.verify(session, keystore=context.keystore).ok


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.SERVER])
def test_keys_below_admin_are_forbidden(api: TestClient, context: AppContext, scope: Scope) -> None:
    token = issue(context, scope)
    for method, path, payload in [
        ("GET", KEYS, None),
        ("POST", KEYS, {"name": "escalate", "scope": "admin"}),
        ("DELETE", f"{KEYS}/{keys_service.key_id_of(token)}", None),
    ]:
        response = api.request(method, path, json=payload, headers=bearer(token))
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "permission_denied"
    with context.session() as session:
        assert [k.scope for k in keys_service.list_keys(session)] == [scope]
        assert all(k.active for k in keys_service.list_keys(session))


def test_every_bad_key_gets_the_same_401(api: TestClient, context: AppContext, admin: str) -> None:
    revoked = issue(context, Scope.ADMIN, revoked=True)
    prefix = admin[:-44]
    attempts: list[dict[str, str]] = [
        {},
        bearer(""),
        bearer("nonsense"),
        bearer(f"tfk_admin_{uuid.uuid4().hex}_{admin[-43:]}"),
        bearer(f"{prefix}_{revoked[-43:]}"),
        bearer(revoked),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode()},
        _basic("", admin),
        {"Authorization": f"Token {admin}"},
    ]
    answers = set()
    for headers in attempts:
        response = api.get(KEYS, headers=headers)
        assert response.status_code == 401, headers
        assert "Basic" in response.headers["www-authenticate"]
        problem = response.json()
        answers.add((problem["code"], problem["detail"]))
    assert answers == {("not_authenticated", keys_service.INVALID_KEY)}


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x", "scope": "root"},
        {"name": "", "scope": "write"},
        {"name": "x" * 101, "scope": "write"},
        {"scope": "write"},
        {"name": "x", "scope": "write", "extra": True},
        ["not", "an", "object"],
    ],
)
def test_invalid_creation_requests_are_422(api: TestClient, admin: str, payload: object) -> None:
    response = api.post(KEYS, json=payload, headers=bearer(admin))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_control_characters_in_names_are_422(api: TestClient, admin: str) -> None:
    response = api.post(KEYS, json={"name": "a\nb", "scope": "write"}, headers=bearer(admin))
    assert response.status_code == 422
    assert response.json()["field"] == "name"


def test_revoking_an_unknown_key_is_404(api: TestClient, admin: str) -> None:
    response = api.delete(f"{KEYS}/{uuid.uuid4()}", headers=bearer(admin))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert api.delete(f"{KEYS}/not-a-uuid", headers=bearer(admin)).status_code == 422


def test_a_bad_path_without_a_key_is_still_401(api: TestClient) -> None:
    assert api.delete(f"{KEYS}/not-a-uuid").status_code == 401


def test_the_routes_are_documented(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    operations = schema["paths"][KEYS] | schema["paths"][KEYS + "/{key_id}"]
    assert set(operations) == {"get", "post", "delete"}
    for operation in operations.values():
        assert operation["summary"]
        assert {"401", "403"} <= set(operation["responses"])
        assert {"keyAsBasicUser": []} in operation["security"]
        assert {"bearerKey": []} in operation["security"]
    assert "404" in operations["delete"]["responses"]
    assert "201" in operations["post"]["responses"]
    assert re.search("shown", operations["post"]["summary"])
    schemes = schema["components"]["securitySchemes"]
    assert schemes["keyAsBasicUser"]["scheme"] == "basic"
    assert schemes["bearerKey"]["scheme"] == "bearer"


def test_a_request_records_its_key_s_use_once_an_hour(
    api: TestClient, context: AppContext, admin: str
) -> None:
    # The key is checked in a unit of work that only reads; its use is recorded by a write of its own.
    key_id = keys_service.key_id_of(admin)
    assert api.get(KEYS, headers=bearer(admin)).status_code == 200
    with context.session() as session:
        first = keys_service.get_key(session, key_id=key_id)
    assert first is not None
    assert first.last_used_at is not None
    assert api.get(KEYS, headers=bearer(admin)).status_code == 200
    with context.session() as session:
        again = keys_service.get_key(session, key_id=key_id)
    assert again is not None
    assert again.last_used_at == first.last_used_at
