"""The audit head over HTTP: admin only, what `tactful audit verify --expect-head` reads, documented."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tactful.audit import service as audit_service
from tactful.audit import verification as audit_verification
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.backends import migrated_database

HEAD = "/v1/admin/audit/head"


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


def test_an_empty_log_answers_the_genesis_head(api: TestClient, context: AppContext) -> None:
    admin = issue(context, Scope.ADMIN)  # audited: the log holds one entry now
    with context.session() as session:
        session.execute(sa.text("DELETE FROM audit_log"))
    answer = api.get(HEAD, headers=bearer(admin))
    assert answer.status_code == 200
    assert answer.json() == {"sequence": 0, "hash": audit_service.GENESIS, "at": None}


def test_the_head_is_the_newest_entry_and_verifies_as_the_expected_head(
    api: TestClient, context: AppContext
) -> None:
    admin = issue(context, Scope.ADMIN)
    for name in ("one", "two"):
        assert (
            api.post(
                "/v1/admin/keys", json={"name": name, "scope": "write"}, headers=bearer(admin)
            ).status_code
            == 201
        )
    answer = api.get(HEAD, headers=bearer(admin))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    with context.session() as session:
        newest = audit_service.head_entry(session)
        assert newest is not None
        assert (body["sequence"], body["hash"]) == (newest.seq, newest.hash)
        assert datetime.fromisoformat(body["at"]) == newest.at
        expected = audit_verification.parse_anchor(f"{body['sequence']}:{body['hash']}")
        assert audit_verification.verify(session, keystore=context.keystore, expect_head=expected).ok


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.SERVER])
def test_keys_below_admin_are_forbidden(api: TestClient, context: AppContext, scope: Scope) -> None:
    answer = api.get(HEAD, headers=bearer(issue(context, scope)))
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert api.get(HEAD).status_code == 401


def test_the_route_is_documented_with_its_response_model(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    operation = spec["paths"][HEAD]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/AuditHead"}
    fields = spec["components"]["schemas"]["AuditHead"]["properties"]
    assert set(fields) == {"sequence", "hash", "at"}
    assert {"401", "403"} <= set(operation["responses"])
