"""Collection over HTTP: every route, the analytics.js browser forms, keys, limits and hostile bodies.

Every response is checked against 5xx: bad input never becomes a server error."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tactful.api.collect import IngestResponse
from tactful.collect import quarantine
from tactful.collect import service as collect_service
from tactful.collect.models import Event, Quarantine
from tactful.config import Limits, Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.keys.schemas import Scope
from tests.backends import migrated_database
from tests.collect.builders import OPEN, identify, small_catalog, track, uid
from tests.collect.http import AppContext, app_context, basic, client, write_key

ORIGIN = "https://shop.example.com"


@pytest.fixture(scope="module")
def api_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A database of this module's own: requests commit, so they must not reach other tests' data."""
    with migrated_database(backend, tmp_path_factory.mktemp("collect-api")) as db:
        yield db


@pytest.fixture(scope="module")
def context(api_database: Database, keystore: Keystore) -> AppContext:
    return app_context(api_database, keystore, cors_origins=(ORIGIN,))


@pytest.fixture(scope="module")
def key(context: AppContext) -> str:
    return write_key(context)


@pytest.fixture(scope="module")
def http(context: AppContext) -> Iterator[Any]:
    with client(context) as test_client:
        yield test_client


def post(http: Any, path: str, body: object, **kwargs: Any) -> httpx.Response:
    response: httpx.Response = http.post(path, content=json.dumps(body), **kwargs)
    assert response.status_code < 500, response.text
    return response


def stored(context: AppContext, message_id: str) -> list[Event]:
    with context.session() as session:
        return list(session.scalars(select(Event).where(Event.message_id == message_id)))


def refusals(context: AppContext) -> dict[str, int]:
    """The refusals counted so far, by code (`/metrics`: `tactful_claims_refused`)."""
    with context.session() as session:
        return dict(collect_service.ingest_stats(session).refused_by_reason)


def quarantined(context: AppContext, message_id: str) -> list[Quarantine]:
    with context.session() as session:
        return list(session.scalars(select(Quarantine).where(Quarantine.message_id == message_id)))


MESSAGES = {
    "identify": lambda: identify(),
    "track": lambda: track(),
    "page": lambda: {
        "anonymousId": uid(),
        "messageId": uid("msg"),
        "name": "Home",
        "properties": {"path": "/"},
    },
    "screen": lambda: {"userId": uid(), "messageId": uid("msg"), "name": "Settings"},
    "group": lambda: {"userId": uid(), "messageId": uid("msg"), "groupId": "acme", "traits": {}},
    "alias": lambda: {"userId": uid(), "previousId": uid(), "messageId": uid("msg")},
}
SHORT = {"identify": "i", "track": "t", "page": "p", "screen": "s", "group": "g", "alias": "a"}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_each_route_stores_its_type_with_basic_auth(
    http: Any, context: AppContext, key: str, kind: str
) -> None:
    message = MESSAGES[kind]()
    message.pop("type", None)
    before = refusals(context)
    response = post(http, f"/v1/{kind}", message, headers=basic(key))
    assert response.status_code == 200
    # The page's answer tells what the message alone decides: taken in.
    assert response.json() == {
        "success": True,
        "results": [
            {
                "messageId": message["messageId"],
                "status": "accepted",
                "reason": None,
                "detail": None,
                "refused": [],
            }
        ],
    }
    [row] = stored(context, message["messageId"])
    assert row.type == kind
    # A write key's word about a user id is a claim: an alias is stored but its link waits for
    # proof; an identify is stored without the direct identifier (a first name) it carries. Both
    # refusals are counted for the operator, not told to the page.
    refused = {"alias": "link_unverified", "identify": "identifier_needs_proof"}.get(kind)
    after = refusals(context)
    assert {code: n - before.get(code, 0) for code, n in after.items() if n != before.get(code, 0)} == (
        {refused: 1} if refused else {}
    )


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_analytics_js_short_paths_with_text_plain_and_write_key_in_body(
    http: Any, context: AppContext, key: str, kind: str
) -> None:
    message = {**MESSAGES[kind](), "type": kind, "writeKey": key, "sentAt": "2026-03-01T12:00:00Z"}
    response = post(http, f"/v1/{SHORT[kind]}", message, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "accepted"
    assert [row.type for row in stored(context, message["messageId"])] == [kind]


def test_bearer_token_is_accepted(http: Any, context: AppContext, key: str) -> None:
    message = track()
    response = post(http, "/v1/track", message, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert stored(context, message["messageId"])


@pytest.mark.parametrize(
    ("scope", "statuses"),
    [
        (Scope.SERVER, ["stored", "quarantined", "duplicate"]),
        (Scope.WRITE, ["accepted", "quarantined", "accepted"]),  # a page reads what its message decides
    ],
)
def test_batch_applies_shared_context_and_reports_each_event(
    http: Any, context: AppContext, scope: Scope, statuses: list[str]
) -> None:
    good, bad = track(), track(event="")
    body = {"batch": [good, bad, good], "context": {"locale": "fr-FR"}, "sentAt": "2026-03-01T12:00:00Z"}
    response = post(http, "/v1/batch", body, headers=basic(write_key(context, scope=scope)))
    assert response.status_code == 200
    results = response.json()["results"]
    reasons = [None, "invalid_field", None]
    assert [(r["status"], r["reason"]) for r in results] == list(zip(statuses, reasons, strict=True))
    [row] = stored(context, good["messageId"])
    assert row.context == {"locale": "fr-FR"}


@pytest.mark.parametrize(("scope", "status"), [(Scope.WRITE, "accepted"), (Scope.SERVER, "stored")])
def test_the_answer_is_the_documented_response(
    http: Any, context: AppContext, scope: Scope, status: str
) -> None:
    good, bad = track(), track(event="")
    response = post(http, "/v1/batch", {"batch": [good, bad]}, headers=basic(write_key(context, scope=scope)))
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert IngestResponse.model_validate(answer).model_dump() == answer
    assert answer["success"] is True
    assert answer["results"][0] == {
        "messageId": good["messageId"],
        "status": status,
        "reason": None,
        "detail": None,
        "refused": [],
    }
    assert answer["results"][1]["detail"] == "`event` must be a non-empty string"


def test_analytics_js_batch_forms(http: Any, context: AppContext, key: str) -> None:
    wrapped = [{**track(), "writeKey": key}, {**identify(), "writeKey": key}]
    bare = [{**track(), "writeKey": key}]
    first = post(
        http,
        "/v1/b",
        {"batch": wrapped, "sentAt": "2026-03-01T12:00:00Z"},
        headers={"Content-Type": "text/plain"},
    )
    second = post(http, "/v1/b", bare, headers={"Content-Type": "text/plain"})
    assert first.status_code == second.status_code == 200
    for message in (*wrapped, *bare):
        assert stored(context, message["messageId"])


def test_gzip_body(http: Any, context: AppContext, key: str) -> None:
    message = track()
    body = gzip.compress(json.dumps({"batch": [message]}).encode())
    response = http.post("/v1/batch", content=body, headers={**basic(key), "Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert stored(context, message["messageId"])


@pytest.mark.parametrize("how", ["none", "wrong", "revoked", "malformed header"])
def test_requests_without_a_valid_key_get_401(http: Any, context: AppContext, key: str, how: str) -> None:
    message = track()
    headers = {
        "none": {},
        "wrong": basic(key[:-4] + "AAAA"),
        "revoked": basic(write_key(context, revoked=True)),
        "malformed header": {"Authorization": "Basic !!!"},
    }[how]
    response = post(http, "/v1/track", message, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert not stored(context, message["messageId"])


def test_a_wrong_write_key_in_the_body_gets_401(http: Any, key: str) -> None:
    response = post(http, "/v1/t", {**track(), "writeKey": "tfk_write_nope"})
    assert response.status_code == 401


def test_malformed_body_without_a_key_gets_401_not_a_parse_error(http: Any) -> None:
    response = http.post("/v1/track", content=b"{not json")
    assert response.status_code == 401


def test_every_scope_may_send_events(http: Any, context: AppContext) -> None:
    for scope in Scope:
        response = post(http, "/v1/track", track(), headers=basic(write_key(context, scope=scope)))
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "malformed_json"),
        (
            b'{"type": "track", "event": "x", "anonymousId": "a", "properties": {"n": NaN}}',
            "non_finite_number",
        ),
        (b'{"anonymousId": "a", "properties": {"n": Infinity}}', "non_finite_number"),
        (b'{"properties": ' + b"[" * 1000 + b"]" * 1000 + b"}", "json_too_deep"),
        (json.dumps({"properties": {f"k{i}": i for i in range(600)}}).encode(), "too_many_keys"),
        (b"[1, 2]", "invalid_body"),
        (b'"just a string"', "invalid_body"),
    ],
)
def test_hostile_bodies_get_a_clear_422(http: Any, key: str, body: bytes, code: str) -> None:
    response = http.post("/v1/track", content=body, headers=basic(key))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_a_batch_that_is_not_a_batch_gets_422(http: Any, key: str) -> None:
    assert post(http, "/v1/batch", {"batch": "many"}, headers=basic(key)).status_code == 422
    assert post(http, "/v1/batch", track(), headers=basic(key)).status_code == 422


def test_an_oversize_request_gets_413_from_its_declared_length(http: Any, key: str) -> None:
    body = json.dumps({"batch": [track(properties={"blob": "x" * 1000}) for _ in range(600)]}).encode()
    assert len(body) > Limits().max_request_bytes
    response = http.post("/v1/batch", content=body, headers=basic(key))
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_an_oversize_streamed_request_without_length_gets_413(http: Any, key: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"batch": ['
        for _ in range(2000):
            yield json.dumps(track(properties={"blob": "x" * 500})).encode() + b","
        yield b"{}]}"

    response = http.post("/v1/batch", content=chunks(), headers=basic(key))
    assert response.status_code == 413


def test_a_gzip_bomb_gets_413(http: Any, key: str) -> None:
    bomb = gzip.compress(b"[" + b" " * (20 * 1024 * 1024) + b"]", compresslevel=9)
    response = http.post("/v1/batch", content=bomb, headers={**basic(key), "Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_too_many_events_in_a_batch_gets_413(api_database: Database, keystore: Keystore) -> None:
    small = app_context(api_database, keystore, limits=Limits(max_events_per_batch=3))
    with client(small) as test_client:
        response = post(
            test_client, "/v1/batch", {"batch": [track() for _ in range(4)]}, headers=basic(write_key(small))
        )
    assert response.status_code == 413
    assert response.json()["code"] == "too_many_events"


def test_only_the_documented_variable_sets_collections_batch_limit(
    api_database: Database, keystore: Keystore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Collection reads its limits from the one settings object: an unprefixed variable, which the
    # nested limits once read for themselves, changes nothing; TACTFUL_LIMITS__... does.
    def send(size: int) -> httpx.Response:
        settings = Settings(database_url=api_database.url, keystore_url=str(keystore.engine.url), policy=OPEN)
        context = AppContext(settings=settings, db=api_database, keystore=keystore, catalog=small_catalog())
        with client(context) as test_client:
            batch = {"batch": [track() for _ in range(size)]}
            return post(test_client, "/v1/batch", batch, headers=basic(write_key(context)))

    monkeypatch.delenv("TACTFUL_CONFIG_FILE", raising=False)
    monkeypatch.delenv("TACTFUL_LIMITS__MAX_EVENTS_PER_BATCH", raising=False)
    monkeypatch.setenv("MAX_EVENTS_PER_BATCH", "7")
    unprefixed = send(8)
    assert unprefixed.status_code == 200
    assert [r["status"] for r in unprefixed.json()["results"]] == ["accepted"] * 8
    monkeypatch.setenv("TACTFUL_LIMITS__MAX_EVENTS_PER_BATCH", "7")
    refused = send(8)
    assert refused.status_code == 413
    assert refused.json()["code"] == "too_many_events"
    assert send(7).status_code == 200


def test_an_oversize_event_inside_a_valid_batch_is_quarantined(
    http: Any, context: AppContext, key: str
) -> None:
    small, big = track(), track(properties={"blob": "x" * 40_000})
    response = post(http, "/v1/batch", {"batch": [small, big]}, headers=basic(key))
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "quarantined"]
    assert response.json()["results"][1]["reason"] == "event_too_large"
    assert stored(context, small["messageId"])
    assert quarantined(context, big["messageId"])


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (track(properties={"product_id": "a\u0000b"}), "unstorable_value"),
        (track(properties={"product_id": "\ud800"}), "unstorable_value"),
        ({**track(), "anonymousId": None}, "missing_identity"),
        (track(timestamp="2300-01-01T00:00:00Z"), "timestamp_out_of_range"),
    ],
)
def test_bad_events_are_quarantined_with_200(
    http: Any, context: AppContext, key: str, message: dict[str, Any], reason: str
) -> None:
    message = {**message, "messageId": uid("msg")}
    response = post(http, "/v1/track", message, headers=basic(key))
    assert response.status_code == 200
    assert response.json()["results"][0]["reason"] == reason
    assert [q.reason for q in quarantined(context, message["messageId"])] == [reason]


def test_raw_escapes_reach_the_server_as_unstorable_values(http: Any, context: AppContext, key: str) -> None:
    message_id = uid("msg")
    body = (
        b'{"anonymousId": "a", "event": "x", "messageId": "%s", "properties": {"q": "\\u0000 \\udc00"}}'
        % (message_id.encode())
    )
    response = http.post("/v1/track", content=body, headers=basic(key))
    assert response.status_code == 200
    [held] = quarantined(context, message_id)
    assert held.raw is None  # it names a subject: sealed with the subject's key
    raw = quarantine.read_raw(context.keystore, held)
    assert raw is not None
    assert "\\u0000" in raw
    assert "\\udc00" in raw


def test_injection_strings_in_declared_fields_are_stored_verbatim(
    http: Any, context: AppContext, key: str
) -> None:
    hostile = "'); DROP TABLE events; -- {{7*7}} <script>alert(1)</script> ${7*7}"
    message = track(properties={"product_id": hostile, "category": "{{7*7}}"})
    response = post(http, "/v1/track", message, headers=basic(key))
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "messageId": message["messageId"],
            "status": "accepted",
            "reason": None,
            "detail": None,
            "refused": [],
        }
    ]
    [row] = stored(context, message["messageId"])
    assert row.properties == {"product_id": hostile, "category": "{{7*7}}"}


def test_sec_gpc_header_is_kept_with_the_event(http: Any, context: AppContext, key: str) -> None:
    message = track()
    post(http, "/v1/track", message, headers={**basic(key), "Sec-GPC": "1"})
    assert stored(context, message["messageId"])[0].gpc is True


def test_cors_preflight_and_simple_requests_for_configured_origins(http: Any, key: str) -> None:
    preflight = http.options(
        "/v1/t",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    simple = post(
        http, "/v1/t", {**track(), "writeKey": key}, headers={"Origin": ORIGIN, "Content-Type": "text/plain"}
    )
    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    elsewhere = http.options(
        "/v1/t", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in elsewhere.headers


def test_the_openapi_schema_documents_every_collection_route(http: Any) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    for path in (
        "identify",
        "track",
        "page",
        "screen",
        "group",
        "alias",
        "batch",
        "i",
        "t",
        "p",
        "s",
        "g",
        "a",
        "b",
    ):
        operation = paths[f"/v1/{path}"]["post"]
        assert operation["summary"]
        assert {"application/json", "text/plain"} <= operation["requestBody"]["content"].keys()
        assert {"200", "401", "403", "413", "422"} <= operation["responses"].keys()
        assert "$ref" not in json.dumps(operation["requestBody"])
