"""Request ids and the access log: the log names routes by template and never carries identifiers."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tactful.api.context import AppContext
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import app_context, bearer, client, issue
from tests.backends import migrated_database


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


def test_every_response_carries_a_request_id(context: AppContext) -> None:
    http = client(context)
    generated = http.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert http.get("/healthz", headers={"X-Request-ID": "trace-42"}).headers["x-request-id"] == "trace-42"
    replaced = http.get("/healthz", headers={"X-Request-ID": "x" * 65}).headers["x-request-id"]
    assert replaced != "x" * 65
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_access_log_names_the_route_template_only(
    context: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    http = client(context)
    admin = issue(context, Scope.ADMIN)
    secret_looking = uuid.uuid4()
    with caplog.at_level(logging.INFO, logger="tactful.access"):
        http.delete(f"/v1/admin/keys/{secret_looking}", headers=bearer(admin))
        http.get("/healthz?user_id=ada@example.com")
    lines = [record.getMessage() for record in caplog.records if record.name == "tactful.access"]
    assert any(line.startswith("DELETE /v1/admin/keys/{key_id} 404 ") for line in lines), lines
    assert any(line.startswith("GET /healthz 200 ") for line in lines), lines
    text = "\n".join(lines)
    assert str(secret_looking) not in text
    assert "ada@example.com" not in text
    assert "testclient" not in text, "no client address"
