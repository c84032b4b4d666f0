"""Rate limits on the routes a public write key reaches: a full window answers 429 with Retry-After
before anything of the request is read or stored; other keys, other addresses and trusted keys go on;
Redis shares the windows between processes, and an unreachable Redis lets requests through."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from sqlalchemy import select

from tactful import main
from tactful.api.ratelimit import (
    Caller,
    Limit,
    RateLimited,
    RateLimiter,
    SweptMemoryStorage,
    caller_of,
    write_key_in,
)
from tactful.collect import service as collect_service
from tactful.collect.message import MessageType, unpack
from tactful.collect.models import Event
from tactful.config import Limits, RateLimits, Settings, load_settings
from tactful.crypto import Keystore
from tactful.errors import InvalidInput
from tactful.keys.schemas import Scope
from tests.api import builders
from tests.api.builders import basic, bearer, issue
from tests.backends import REDIS_URL, migrated_database, redis_prefix
from tests.collect.builders import track
from tests.collect.http import AppContext, app_context

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"
WINDOW = 60
"""Long enough that no window resets while a test runs, so counts are exact."""


@dataclass(frozen=True)
class Keys:
    write: str
    other_write: str
    server: str
    admin: str


@pytest.fixture(scope="module")
def context(
    backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore
) -> Iterator[AppContext]:
    """A database of this module's own (requests commit), with collection's small catalog."""
    with migrated_database(backend, tmp_path_factory.mktemp("ratelimit")) as db:
        yield app_context(db, keystore)


@pytest.fixture(scope="module")
def demo_context(context: AppContext) -> AppContext:
    """The same databases with the demo catalog, which consent's policy gate reads."""
    return builders.app_context(context.db, context.keystore)


@pytest.fixture(scope="module")
def keys(context: AppContext) -> Keys:
    return Keys(
        write=issue(context, Scope.WRITE, name="site"),
        other_write=issue(context, Scope.WRITE, name="other site"),
        server=issue(context, Scope.SERVER, name="backend"),
        admin=issue(context, Scope.ADMIN, name="operator"),
    )


def limited_app(
    context: AppContext,
    *,
    per_key_and_address: int = 0,
    per_key: int = 0,
    scopes: tuple[str, ...] = ("write",),
    redis_url: str | None = None,
    prefix: str = "tactful:",
) -> FastAPI:
    """The whole app over the shared context, with rate limits (and a limiter) of its own."""
    rate = RateLimits(
        per_key_and_address=per_key_and_address,
        per_key=per_key,
        window_seconds=WINDOW,
        scopes=list(scopes),
    )
    settings = context.settings.model_copy(
        update={"rate_limits": rate, "redis_url": redis_url, "redis_prefix": prefix}
    )
    return main.create_app(settings, context=context)


def http(app: FastAPI, address: str = ADDRESS) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(address, 50000))


def send(client: TestClient, key: str, messages: list[dict[str, Any]] | None = None) -> httpx2.Response:
    """A batch of two new track events (or `messages`) with the key as Segment clients send it."""
    body = {"batch": messages if messages is not None else [track(), track()]}
    response = client.post("/v1/batch", content=json.dumps(body), headers=basic(key))
    assert response.status_code < 500, response.text
    return response


def statuses(response: httpx2.Response) -> list[str]:
    return [result["status"] for result in response.json()["results"]]


def stored(context: AppContext, message_ids: list[str]) -> list[Event]:
    with context.session() as session:
        return list(session.scalars(select(Event).where(Event.message_id.in_(message_ids))))


def received(context: AppContext) -> int:
    with context.session() as session:
        return collect_service.ingest_stats(session).received


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


# -- refusing ----------------------------------------------------------------------------------


def test_over_the_limit_is_a_429_problem_and_nothing_of_the_request_is_stored(
    context: AppContext, keys: Keys
) -> None:
    client = http(limited_app(context, per_key_and_address=3))
    for _ in range(3):
        assert send(client, keys.write).status_code == 200
    before = received(context)
    refused_batch = [track(), track()]

    response = send(client, keys.write, refused_batch)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW
    problem = response.json()
    assert (problem["status"], problem["code"], problem["limit"]) == (429, "rate_limited", "key_and_address")
    ids = [message["messageId"] for message in refused_batch]
    assert stored(context, ids) == []
    assert received(context) == before  # not even counted as received: nothing was read
    # Not half done either: nothing remembered its message ids, so the same batch sent where the
    # limit allows is stored, not taken for a duplicate.
    retried = send(http(limited_app(context, per_key_and_address=3)), keys.write, refused_batch)
    assert statuses(retried) == ["accepted", "accepted"]
    assert len(stored(context, ids)) == 2


def test_a_full_window_holds_for_every_route_of_the_key_and_a_retry_is_refused_again(
    context: AppContext, keys: Keys
) -> None:
    client = http(limited_app(context, per_key_and_address=2))
    assert client.post("/v1/track", json=track(), headers=bearer(keys.write)).status_code == 200
    assert send(client, keys.write).status_code == 200
    for path in ("/v1/track", "/v1/page", "/v1/batch"):
        body = track() if path != "/v1/batch" else {"batch": [track()]}
        assert client.post(path, json=body, headers=bearer(keys.write)).status_code == 429


def test_another_address_and_another_key_are_unaffected(context: AppContext, keys: Keys) -> None:
    app = limited_app(context, per_key_and_address=2)
    flooding = http(app, ADDRESS)
    assert [send(flooding, keys.write).status_code for _ in range(4)] == [200, 200, 429, 429]
    assert send(http(app, OTHER_ADDRESS), keys.write).status_code == 200
    assert send(flooding, keys.other_write).status_code == 200


def test_the_key_window_counts_every_address_but_not_requests_an_address_window_refused(
    context: AppContext, keys: Keys
) -> None:
    app = limited_app(context, per_key_and_address=2, per_key=4)
    flooding = http(app, "192.0.2.1")
    # Eight tries from one address: two admitted, six refused by the address window. Only the two
    # count against the key, so that one flooding client cannot use up every visitor's budget.
    assert [send(flooding, keys.write).status_code for _ in range(8)] == [200] * 2 + [429] * 6
    assert send(http(app, "192.0.2.2"), keys.write).status_code == 200
    assert send(http(app, "192.0.2.3"), keys.write).status_code == 200
    response = send(http(app, "192.0.2.4"), keys.write)
    assert response.status_code == 429
    assert response.json()["limit"] == "key"


def test_consent_from_a_write_key_is_limited_and_a_refused_grant_is_not_recorded(
    demo_context: AppContext, keys: Keys
) -> None:
    client = http(limited_app(demo_context, per_key_and_address=1))

    def grant(anonymous_id: str) -> httpx2.Response:
        body = {"anonymous_id": anonymous_id, "source": "banner", "purposes": {"analytics": True}}
        return client.put("/v1/consent", json=body, headers=bearer(keys.write))

    assert grant(f"anon-{uuid.uuid4().hex}").status_code == 200
    refused = f"anon-{uuid.uuid4().hex}"
    response = grant(refused)
    assert response.status_code == 429
    assert "retry-after" in response.headers
    # The server key reads it back (server keys are not limited): no grant, not even a subject.
    read = client.get("/v1/consent", params={"anonymous_id": refused}, headers=bearer(keys.server))
    assert read.status_code == 404, read.text


def test_a_write_key_in_an_analytics_js_body_is_limited_and_admitted_bodies_are_stored(
    context: AppContext, keys: Keys
) -> None:
    client = http(limited_app(context, per_key_and_address=2))
    plain = {"Content-Type": "text/plain"}
    first = {**track(), "writeKey": keys.write}
    # The older analytics.js form: a bare array whose messages carry the key.
    second = [{**track(), "writeKey": keys.write}]
    assert client.post("/v1/t", content=json.dumps(first), headers=plain).status_code == 200
    assert client.post("/v1/b", content=json.dumps(second), headers=plain).status_code == 200
    assert len(stored(context, [first["messageId"], second[0]["messageId"]])) == 2
    third = {**track(), "writeKey": keys.write}
    assert client.post("/v1/t", content=json.dumps(third), headers=plain).status_code == 429
    assert stored(context, [third["messageId"]]) == []


def test_bodies_too_large_and_bodies_without_a_key_keep_their_answers(context: AppContext) -> None:
    client = http(limited_app(context, per_key_and_address=1))
    too_large = "x" * (Limits().max_request_bytes + 1)
    response = client.post("/v1/t", content=json.dumps({"writeKey": too_large}), headers={})
    assert response.status_code == 413
    assert client.post("/v1/t", content=b"{not json", headers={}).status_code == 401
    assert client.post("/v1/t", content=json.dumps(track())).status_code == 401


# -- who is limited ------------------------------------------------------------------------------


def test_server_and_admin_keys_are_not_limited_by_default(context: AppContext, keys: Keys) -> None:
    client = http(limited_app(context, per_key_and_address=1, per_key=1))
    assert [send(client, keys.server).status_code for _ in range(4)] == [200] * 4
    assert [send(client, keys.admin).status_code for _ in range(4)] == [200] * 4
    for _ in range(3):
        assert client.get("/v1/admin/keys", headers=bearer(keys.admin)).status_code == 200


def test_server_keys_are_limited_when_configured(context: AppContext, keys: Keys) -> None:
    client = http(limited_app(context, per_key_and_address=1, scopes=("write", "server")))
    assert [send(client, keys.server).status_code for _ in range(2)] == [200, 429]
    assert send(client, keys.admin).status_code == 200


def test_a_key_claiming_an_unlimited_scope_gains_nothing(context: AppContext, keys: Keys) -> None:
    client = http(limited_app(context, per_key_and_address=1))
    assert send(client, keys.write).status_code == 200
    # The scope in a key's text picks its windows before the key is checked; a write key dressed
    # as a server key skips them, and then fails authentication.
    forged = keys.write.replace("tfk_write_", "tfk_server_", 1)
    assert caller_of(forged) == Caller(key_id=forged.split("_")[2], scope=Scope.SERVER)
    assert [send(client, forged).status_code for _ in range(3)] == [401] * 3
    assert send(client, keys.write).status_code == 429


def test_zero_turns_a_limit_off(context: AppContext, keys: Keys) -> None:
    client = http(limited_app(context, per_key_and_address=0, per_key=0))
    assert [send(client, keys.write).status_code for _ in range(5)] == [200] * 5


# -- metrics, documentation, settings -----------------------------------------------------------


def test_refusals_are_counted_in_the_metrics(context: AppContext, keys: Keys) -> None:
    client = http(limited_app(context, per_key_and_address=1))
    for _ in range(3):
        send(client, keys.write)
    text = client.get("/metrics", headers=bearer(keys.admin)).text
    assert 'tactful_rate_limited_requests_total{limit="key_and_address"} 2.0' in text
    assert 'tactful_rate_limited_requests_total{limit="key"} 0.0' in text
    assert "tactful_rate_limit_store_unavailable_total 0.0" in text
    assert ADDRESS not in text


def test_the_openapi_document_shows_429_where_a_limited_key_can_call(context: AppContext) -> None:
    def with_429(app: FastAPI) -> set[tuple[str, str]]:
        paths = app.openapi()["paths"]
        return {
            (method, path)
            for path, operations in paths.items()
            for method, operation in operations.items()
            if "429" in operation.get("responses", {})
        }

    documented = with_429(limited_app(context, per_key_and_address=10))
    assert {("post", "/v1/batch"), ("post", "/v1/t"), ("put", "/v1/consent")} <= documented
    assert ("get", "/v1/consent") not in documented  # needs a server key
    assert not {path for _, path in documented if path.startswith("/v1/admin") or path == "/metrics"}
    response = limited_app(context, per_key_and_address=10).openapi()["paths"]["/v1/track"]["post"]
    assert "Retry-After" in response["responses"]["429"]["headers"]

    with_server = with_429(limited_app(context, per_key_and_address=10, scopes=("write", "server")))
    assert ("get", "/v1/consent") in with_server
    assert with_429(limited_app(context)) == set()  # no limit, no 429


def test_the_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # local mode keeps its secrets beside the default database
    monkeypatch.setenv("TACTFUL_RATE_LIMITS__PER_KEY", "900")
    monkeypatch.setenv("TACTFUL_RATE_LIMITS__PER_KEY_AND_ADDRESS", "0")
    monkeypatch.setenv("TACTFUL_RATE_LIMITS__SCOPES", '["write", "server"]')
    rate = load_settings().rate_limits
    assert (rate.per_key, rate.per_key_and_address, rate.scopes) == (900, 0, ["write", "server"])
    assert rate.enabled
    assert not RateLimits(per_key=0, per_key_and_address=0).enabled
    assert not RateLimits(scopes=[]).enabled
    defaults = RateLimits()
    assert defaults.scopes == ["write"]
    assert defaults.per_key >= 100
    assert defaults.per_key_and_address >= 10


# -- Redis ---------------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_shares_the_windows_between_two_app_instances(context: AppContext, keys: Keys) -> None:
    if not REDIS_URL:
        pytest.skip("needs TACTFUL_TEST_REDIS_URL")
    prefix = redis_prefix()
    redis = Redis.from_url(REDIS_URL)
    try:
        one = http(limited_app(context, per_key_and_address=3, redis_url=REDIS_URL, prefix=prefix))
        two = http(limited_app(context, per_key_and_address=3, redis_url=REDIS_URL, prefix=prefix))
        assert [send(one, keys.write).status_code for _ in range(2)] == [200, 200]
        assert send(two, keys.write).status_code == 200
        response = send(two, keys.write)
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= WINDOW
        assert send(one, keys.write).status_code == 429
        stored_keys = [key.decode() for key in redis.scan_iter(match=f"{prefix}*")]
        assert stored_keys, "the windows live in Redis under this run's prefix"
        assert not any(ADDRESS in key for key in stored_keys)  # addresses only as keyed hashes
    finally:
        for key in redis.scan_iter(match=f"{prefix}*"):
            redis.delete(key)
        redis.close()


def test_an_unreachable_redis_lets_requests_through_with_a_warning(
    context: AppContext, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    app = limited_app(context, per_key_and_address=1, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    client = http(app)
    with caplog.at_level(logging.WARNING, logger="tactful.ratelimit"):
        assert [send(client, keys.write).status_code for _ in range(3)] == [200] * 3
    warnings = [r for r in caplog.records if r.name == "tactful.ratelimit" and r.levelno == logging.WARNING]
    # One warning for the outage, not one per request: the store is left alone for a while.
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
    assert ADDRESS not in warnings[0].getMessage()
    assert keys.write not in warnings[0].getMessage()
    text = client.get("/metrics", headers=bearer(keys.admin)).text
    assert "tactful_rate_limit_store_unavailable_total 3.0" in text


# -- the limiter on its own ----------------------------------------------------------------------


def memory_limiter(per_key_and_address: int, per_key: int) -> RateLimiter:
    settings = Settings(
        rate_limits=RateLimits(
            per_key_and_address=per_key_and_address, per_key=per_key, window_seconds=WINDOW
        )
    )
    return RateLimiter.from_settings(settings)


@given(
    per_address=st.integers(0, 6),
    per_key=st.integers(0, 10),
    hosts=st.lists(st.sampled_from(["a", "b", "c"]), max_size=25),
)
def test_a_window_admits_exactly_its_limit(per_address: int, per_key: int, hosts: list[str]) -> None:
    limiter = memory_limiter(per_address, per_key)
    caller = Caller(key_id=uuid.uuid4().hex, scope=Scope.WRITE)
    admitted: dict[str, int] = {}
    refused: list[Limit] = []
    for host in hosts:
        try:
            limiter.check(caller, host=host)
        except RateLimited as refusal:
            refused.append(refusal.limit)
        else:
            admitted[host] = admitted.get(host, 0) + 1
    if per_address:
        assert all(n <= per_address for n in admitted.values())
    if per_key:
        assert sum(admitted.values()) <= per_key
    # Refused only when a window was really full: had every host stayed in its window and the key
    # in its own, all would have passed.
    expected = 0
    seen: dict[str, int] = {}
    for host in hosts:
        seen[host] = seen.get(host, 0) + 1
        if (not per_address or seen[host] <= per_address) and (not per_key or expected < per_key):
            expected += 1
    assert sum(admitted.values()) == expected
    assert limiter.counts().refused == {limit: refused.count(limit) for limit in set(refused)}


def test_the_memory_store_starts_no_threads_and_sweeps_expired_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SweptMemoryStorage, "SWEEP_EVERY", 0.0)
    limiter = RateLimiter.from_settings(
        Settings(rate_limits=RateLimits(per_key_and_address=2, per_key=100, window_seconds=1))
    )
    storage = limiter._storage
    assert isinstance(storage, SweptMemoryStorage)
    before = {thread.ident for thread in threading.enumerate() if thread.is_alive()}
    caller = Caller(key_id=uuid.uuid4().hex, scope=Scope.WRITE)
    for host in range(30):
        limiter.check(caller, host=str(host))
    started = {thread.ident for thread in threading.enumerate() if thread.is_alive()} - before
    assert started == set()  # the stock storage restarts a timer thread here
    assert len(storage.windows) == 31  # one window per address, one for the key
    time.sleep(1.1)
    limiter.check(Caller(key_id=uuid.uuid4().hex, scope=Scope.WRITE), host="x")
    assert len(storage.windows) == 2  # only the new caller's windows


_KEY = st.one_of(st.none(), st.just(""), st.integers(), st.sampled_from(["tfk_a", "tfk_b", "tfk_c"]))


def _message(key: object) -> object:
    return {"type": "track"} if key is None else {"type": "track", "writeKey": key}


_BODY = st.one_of(
    st.lists(_KEY.map(_message), max_size=4),
    st.builds(
        lambda top, items: {"batch": items} if top is None else {"batch": items, "writeKey": top},
        _KEY,
        st.lists(st.one_of(_KEY.map(_message), st.just("not a message")), max_size=4),
    ),
    _KEY.map(_message),
)


@given(body=_BODY)
def test_the_body_key_is_the_one_collection_authenticates(body: object) -> None:
    """Were they to differ, a body could be counted under one key and authenticated as another."""
    limits = Limits()
    try:
        batch = unpack(body, kind=None, limits=limits).write_key
    except InvalidInput:
        batch = None
    else:
        assert write_key_in(body) == batch
    try:
        single = unpack(body, kind=MessageType.TRACK, limits=limits).write_key
    except InvalidInput:
        return
    # A single-message route reads only the top-level key: where it finds one, it is the same.
    assert single is None or single == write_key_in(body)
