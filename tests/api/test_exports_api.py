"""Downloading an access package over HTTP, from the request to the zip: the link in the request's
answer, the operator's and the person's own download, every way of asking for someone else's (all one
404), uses counted only for completed transfers (HEAD and a client that went away do not count), the
limit, expiry, each download audited without an identifier, and the route's documentation. Runs on
PostgreSQL too when it is configured."""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import select, update

from tactful.config import PrivacySettings, RateLimits
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.rights import exports
from tactful.rights.models import PrivacyExport
from tactful.types import utcnow
from tests.api.builders import app, app_context, bearer, client, issue
from tests.api.test_privacy_api import Api, problem
from tests.api.test_public_key_trust import identify, track, uid
from tests.backends import migrated_database

SUBJECT_TOKEN = "X-Tactful-Subject-Token"


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("exports-api")) as db:
        context = app_context(db, keystore)
        context.settings.rate_limits = RateLimits(privacy_filings=0)
        context.settings.privacy = PrivacySettings(
            export_dir=tmp_path_factory.mktemp("packages"), export_downloads=3
        )
        keys = {scope: issue(context, scope, name=f"exports {scope}") for scope in Scope}
        yield Api(context, client(context), keys)


def someone(api: Api) -> tuple[str, str]:
    """A person with an e-mail address and an event; their user id and e-mail address."""
    user = api.known()
    email = f"{uid('ada')}@example.com"
    server = bearer(api.keys[Scope.SERVER])
    sent = api.client.post(
        "/v1/identify", json=identify(user, {"email": email, "first_name": "Ada"}), headers=server
    )
    assert sent.status_code == 200, sent.text
    assert api.client.post("/v1/track", json=track(user_id=user), headers=server).status_code == 200
    return user, email


def packaged(api: Api, user: str, **filing: Any) -> tuple[str, str]:
    """An access request for `user`, run: its id and its download path."""
    body = {"type": "access", "user_id": user, "verified_by": "operator", **filing}
    request_id = api.filed(body)["id"]
    api.run_jobs()
    answer = api.read(request_id).json()
    assert answer["status"] == "completed"
    assert answer["download_url"] is not None
    return request_id, str(answer["download_url"])


def get(api: Api, url: str, *, scope: Scope = Scope.ADMIN, **headers: str) -> Any:
    return api.client.get(url, headers=bearer(api.keys[scope]) | headers)


def uses(api: Api, url: str) -> int | None:
    token = url.rsplit("/", 1)[-1]
    with api.context.session() as session:
        row = session.scalars(
            select(PrivacyExport).where(PrivacyExport.token_digest == exports.digest_of(token))
        ).one_or_none()
        return None if row is None else row.downloads


def test_the_operator_downloads_the_package_of_a_completed_request(api: Api) -> None:
    user, email = someone(api)
    request_id, url = packaged(api, user)
    assert url.startswith("/v1/privacy/exports/")
    response = get(api, url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert (
        response.headers["content-disposition"] == f'attachment; filename="tactful-access-{request_id}.zip"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert int(response.headers["content-length"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert email in archive.read("traits.json").decode()
        assert json.loads(archive.read("manifest.json"))["request_id"] == request_id
        assert {e["type"] for e in json.loads(archive.read("events.json"))} == {"identify", "track"}
    assert uses(api, url) == 1
    [entry] = api.audit_tail(1)
    assert entry.action == exports.DOWNLOADED
    assert entry.details["request"] == request_id
    assert entry.details["use"] == 1
    assert entry.details["reader"] == "operator"
    assert entry.details["key_id"]
    said = json.dumps(entry.details) + entry.actor
    assert user not in said
    assert email not in said


def test_the_person_downloads_their_own_with_their_subject_token(api: Api) -> None:
    user, email = someone(api)
    token = api.token(user)
    filed = api.filed(
        {"type": "access", "user_id": user, "verified_by": "token", "token": token}, scope=Scope.WRITE
    )
    api.run_jobs()
    answer = api.mine(filed["id"], user)
    assert answer.status_code == 200
    url = answer.json()["download_url"]
    response = get(api, url, scope=Scope.WRITE, **{SUBJECT_TOKEN: token})
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert email in archive.read("traits.json").decode()
    [entry] = api.audit_tail(1)
    assert (entry.action, entry.details["reader"]) == (exports.DOWNLOADED, "token")


def test_nobody_else_opens_a_package_and_every_refusal_looks_the_same(api: Api) -> None:
    user, _ = someone(api)
    other, _ = someone(api)
    _, url = packaged(api, user)
    unknown = "/v1/privacy/exports/" + secrets.token_urlsafe(32)[:43]
    as_other = get(api, url, scope=Scope.WRITE, **{SUBJECT_TOKEN: api.token(other)})
    as_other_server = get(api, url, scope=Scope.SERVER, **{SUBJECT_TOKEN: api.token(other)})
    wrong = get(api, unknown)
    assert (
        problem(as_other, 404) == problem(as_other_server, 404) == problem(wrong, 404) == "export_not_found"
    )
    assert as_other.json()["detail"] == wrong.json()["detail"]
    assert problem(get(api, url, scope=Scope.WRITE), 422) == "subject_token_required"
    assert problem(get(api, url, scope=Scope.SERVER), 422) == "subject_token_required"
    assert problem(get(api, url, scope=Scope.WRITE, **{SUBJECT_TOKEN: "not.a.token"}), 401).startswith(
        "subject_token"
    )
    assert api.client.get(url).status_code == 401  # no key at all: a mail scanner's prefetch
    assert get(api, url[:-1]).status_code == 422  # not the shape of a token
    assert uses(api, url) == 0


def test_head_and_the_limit_count_only_completed_downloads(api: Api) -> None:
    user, _ = someone(api)
    request_id, url = packaged(api, user)
    head = api.client.head(url, headers=bearer(api.keys[Scope.ADMIN]))
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert uses(api, url) == 0
    for use in (1, 2, 3):
        assert get(api, url).status_code == 200
        assert uses(api, url) == (use if use < 3 else None)  # the last use deletes the package
    assert problem(get(api, url), 404) == "export_not_found"
    assert api.client.head(url, headers=bearer(api.keys[Scope.ADMIN])).status_code == 404
    assert api.read(request_id).json()["download_url"] is None


def test_a_transfer_the_client_left_is_not_counted_but_audited(api: Api) -> None:
    user, _ = someone(api)
    request_id, url = packaged(api, user)
    asgi = app(api.context)
    sent: list[dict[str, Any]] = []
    asked = 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1  # the request (no body), then the client is gone
        return (
            {"type": "http.request", "body": b"", "more_body": False}
            if asked == 1
            else {"type": "http.disconnect"}
        )

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    key = api.keys[Scope.ADMIN].encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": url, "raw_path": url.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), (b"authorization", b"Bearer " + key)],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "app": asgi,
    }  # fmt: skip

    async def call() -> None:
        await asgi(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(call)
    assert sent[0]["status"] == 200
    assert not any(m.get("more_body") is False for m in sent if m["type"] == "http.response.body")
    assert uses(api, url) == 0
    [entry] = api.audit_tail(1)
    assert entry.action == exports.INCOMPLETE
    assert entry.details["request"] == request_id
    assert get(api, url).status_code == 200  # the link still works, and now counts
    assert uses(api, url) == 1


def test_an_expired_package_answers_as_an_unknown_one(api: Api) -> None:
    user, _ = someone(api)
    request_id, url = packaged(api, user)
    with api.context.session() as session:
        session.execute(
            update(PrivacyExport)
            .where(PrivacyExport.token_digest == exports.digest_of(url.rsplit("/", 1)[-1]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert problem(get(api, url), 404) == "export_not_found"
    assert api.read(request_id).json()["download_url"] is None


def test_the_listing_shows_the_link_too(api: Api) -> None:
    user, _ = someone(api)
    request_id, url = packaged(api, user)
    listed = api.client.get(
        "/v1/privacy/requests", params={"type": "access", "limit": 200}, headers=bearer(api.keys[Scope.ADMIN])
    ).json()["items"]
    assert {item["id"]: item["download_url"] for item in listed}[request_id] == url


def test_the_download_is_documented(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    path = schema["paths"]["/v1/privacy/exports/{token}"]
    for method in ("get", "head"):
        operation = path[method]
        assert operation["summary"]
        assert operation["description"]
        assert "application/problem+json" in operation["responses"]["404"]["content"]
    assert "application/zip" in path["get"]["responses"]["200"]["content"]
    assert "download_url" in schema["components"]["schemas"]["PrivacyRequestView"]["properties"]
