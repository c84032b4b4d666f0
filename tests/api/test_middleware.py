"""Request ids and the access log: the log names routes by template and never carries identifiers."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tactful.api.context import AppContext
from tactful.collect.models import Event
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tests.api.builders import app_context, bearer, client, issue
from tests.backends import migrated_database


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"

MALFORMED_IDS = [
    "x" * 65,
    "trace 42",
    "trace-42",
    "A.b_c-9",
    "0176-1234567-x",  # a phone number with a letter
    "jane.doe.1985",
    "00f067aa0ba902b",  # 15 digits: not an id's length
    "46701234567",  # digits alone: a phone number
    "199001011234",  # a national identity number
    "ada.lovelace",  # letters alone: a name
    "x" * 64,
    "trace-42 GET /v1/admin/keys 200",
    "ada@example.com",
    'id"with"quotes',
    "caf\u00e9",
    "",
]


def test_every_response_carries_a_request_id(context: AppContext) -> None:
    http = client(context)
    generated = http.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    for given in (
        "4b3f0c2e-9d1a-4c57-8e0f-2a6b9d3c1e77",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
    ):
        assert http.get("/healthz", headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize("given", MALFORMED_IDS)
def test_a_malformed_request_id_is_replaced_in_the_response_and_the_log(
    context: AppContext, caplog: pytest.LogCaptureFixture, given: str
) -> None:
    with caplog.at_level(logging.INFO, logger="tactful.access"):
        response = client(context).get("/healthz", headers={"X-Request-ID": given.encode("utf-8")})
    replaced = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
    [line] = [record.getMessage() for record in caplog.records if record.name == "tactful.access"]
    assert line.endswith(f" id={replaced}")
    if given:
        assert given not in line


@pytest.mark.parametrize("given", [_TRACE_ID, "trace 42\nGET /forged 200"])
def test_consent_proof_and_stored_events_keep_the_request_id_the_response_names(
    context: AppContext, given: str
) -> None:
    http = client(context)
    server = bearer(issue(context, Scope.SERVER))
    anonymous_id = f"anon-{uuid.uuid4().hex}"
    body = {"anonymous_id": anonymous_id, "purposes": {"analytics": True}, "source": "api"}
    recorded = http.put("/v1/consent", json=body, headers=server | {"X-Request-ID": given})
    assert recorded.status_code == 200, recorded.text
    echoed = recorded.headers["x-request-id"]
    assert (echoed == given) is (given == _TRACE_ID)
    assert recorded.json()["state"]["purposes"]["analytics"]["proof"]["request_id"] == echoed

    event = {"type": "track", "event": "Product Viewed", "anonymousId": anonymous_id, "messageId": given}
    sent = http.post("/v1/track", json=event, headers=server | {"X-Request-ID": given})
    assert sent.status_code == 200, sent.text
    with context.session() as session:
        stored = session.scalars(select(Event.request_id).where(Event.message_id == given)).all()
    assert stored == [sent.headers["x-request-id"]]


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


def test_bodies_over_the_api_limit_are_refused_before_any_handler(context: AppContext) -> None:
    http = client(context)
    key = issue(context, Scope.ADMIN)
    limit = context.settings.limits.max_api_body_bytes
    big = b'{"anonymous_id": "a", "purposes": {}, "notice_version": "' + b"x" * limit + b'"}'
    refused = http.put(
        "/v1/consent", content=big, headers={**bearer(key), "Content-Type": "application/json"}
    )
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield big[: limit // 2]
        yield big[limit // 2 :]

    streamed = http.put(
        "/v1/consent", content=chunked(), headers={**bearer(key), "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    small = http.put(
        "/v1/consent",
        json={"anonymous_id": "a-1", "purposes": {"analytics": True}, "source": "banner"},
        headers=bearer(issue(context, Scope.WRITE)),
    )
    assert small.status_code == 200, small.text


def test_collection_keeps_its_own_larger_limit(context: AppContext) -> None:
    http = client(context)
    events = [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": "a-1",
            "messageId": f"m-{n}",
            "properties": {"product_id": "p" * 500},
        }
        for n in range(200)
    ]
    response = http.post("/v1/batch", json={"batch": events}, headers=bearer(issue(context, Scope.WRITE)))
    assert len(response.request.content) > context.settings.limits.max_api_body_bytes
    assert response.status_code == 200, response.text
