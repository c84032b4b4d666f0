"""The client's own rules, against a scripted transport: queueing and batching, retries that keep
message ids, what goes back to the queue when the server stays away, and the errors it raises."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.sdk import APIError, Backoff, Client, QueueFull, RateLimited, ServerUnreachable
from tactful.sdk.calls import batches, retry_after

NO_WAIT = Backoff(retries=3, base=0.0, cap=0.0)
Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A transport that answers each request with the next of `answers` (the last one repeats), and
    keeps every request it saw."""

    def __init__(self, *answers: Handler | int) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, int):
            return httpx.Response(answer, json=_problem(answer))
        return answer(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


def _problem(status: int) -> dict[str, Any]:
    code = {429: "rate_limited", 422: "invalid_input", 503: "unavailable"}.get(status, "error")
    return {"type": f"https://tactful.dev/problems/{code}", "status": status, "code": code, "message": "no"}


def stored(request: httpx.Request) -> httpx.Response:
    """What the server answers a batch it stored whole."""
    batch = json.loads(request.content)["batch"]
    results = [{"messageId": m["messageId"], "status": "stored", "refused": []} for m in batch]
    return httpx.Response(200, json={"success": True, "results": results})


def make(script: Script, **options: Any) -> Client:
    options.setdefault("backoff", NO_WAIT)
    return Client(
        base_url="http://tactful.test", api_key="key", transport=httpx.MockTransport(script), **options
    )


def test_collection_calls_queue_until_flushed_then_go_as_one_batch() -> None:
    script = Script(stored)
    client = make(script)
    first = client.track("Product Viewed", anonymous_id="a-1", properties={"sku": "TENT-2"})
    second = client.identify(user_id="u-1", traits={"plan": "pro"})
    assert script.requests == []
    assert client.queued == 2

    outcomes = client.flush()

    [body] = script.bodies()
    assert [m["messageId"] for m in body["batch"]] == [first, second]
    assert body["batch"][0] | {"timestamp": None} == {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "a-1",
        "properties": {"sku": "TENT-2"},
        "messageId": first,
        "timestamp": None,
    }
    assert [(o.message_id, o.status) for o in outcomes] == [(first, "stored"), (second, "stored")]
    assert script.requests[0].headers["authorization"] == "Bearer key"
    assert client.queued == 0


def test_a_full_batch_is_sent_at_once() -> None:
    script = Script(stored)
    client = make(script, batch_size=3)
    for n in range(7):
        client.track("Clicked", anonymous_id=f"a-{n}")
    assert [len(b["batch"]) for b in script.bodies()] == [3, 3]
    assert client.queued == 1


def test_a_retried_batch_keeps_its_message_ids() -> None:
    script = Script(503, 502, stored)
    client = make(script)
    sent = [client.track("Clicked", anonymous_id="a") for _ in range(3)]
    outcomes = client.flush()
    ids = [[m["messageId"] for m in body["batch"]] for body in script.bodies()]
    assert ids == [sent, sent, sent]  # the server deduplicates a retry by these ids
    assert [o.message_id for o in outcomes] == sent


def test_when_the_server_stays_busy_the_messages_wait_for_the_next_flush() -> None:
    script = Script(503)
    client = make(script, backoff=Backoff(retries=2, base=0.0, cap=0.0))
    sent = [client.page("Home", anonymous_id="a"), client.page("Cart", anonymous_id="a")]
    with pytest.raises(APIError) as raised:
        client.flush()
    assert raised.value.status == 503
    assert raised.value.code == "unavailable"
    assert len(script.requests) == 3  # one try and two retries
    assert client.queued == 2

    script.answers = [stored]
    assert [o.message_id for o in client.flush()] == sent


def test_a_final_refusal_hands_the_batch_back_and_keeps_the_rest() -> None:
    script = Script(422, stored)
    client = make(script, batch_size=2)
    client._when_full = lambda: None  # type: ignore[method-assign]  # queue all four, flush once
    sent = [client.track("Clicked", anonymous_id=f"a-{n}") for n in range(4)]
    with pytest.raises(APIError) as raised:
        client.flush()
    assert raised.value.code == "invalid_input"
    assert [m["messageId"] for m in raised.value.undelivered] == sent[:2]
    assert len(script.requests) == 1  # a 422 is not retried
    assert [o.message_id for o in client.flush()] == sent[2:]


def test_rate_limits_are_waited_out_as_the_server_says() -> None:
    waits: list[float] = []
    backoff = Backoff(retries=1, base=0.0, cap=60.0)

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"}, json=_problem(429))

    script = Script(limited)
    client = make(script, backoff=backoff)
    client.track("Clicked", anonymous_id="a")
    import tactful.sdk.client as module

    original = module.time.sleep
    module.time.sleep = waits.append  # type: ignore[assignment]
    try:
        with pytest.raises(RateLimited) as raised:
            client.flush()
    finally:
        module.time.sleep = original
    assert waits == [7.0]
    assert raised.value.retry_after == 7.0
    assert raised.value.code == "rate_limited"


def test_an_unreachable_server_is_reported_and_nothing_is_lost() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    script = Script(refuse)
    client = make(script)
    client.track("Clicked", anonymous_id="a")
    with pytest.raises(ServerUnreachable):
        client.flush()
    assert len(script.requests) == 4
    assert client.queued == 1


def test_the_queue_has_a_bound() -> None:
    client = make(Script(stored), batch_size=2, max_queue=2)
    client._when_full = lambda: None  # type: ignore[method-assign]
    client.track("Clicked", anonymous_id="a")
    client.track("Clicked", anonymous_id="a")
    with pytest.raises(QueueFull):
        client.track("Clicked", anonymous_id="a")


def test_subject_tokens_travel_in_the_context_where_the_server_takes_them_out() -> None:
    script = Script(stored)
    client = make(script)
    client.identify(
        user_id="u-1", traits={"email": "x@example.com"}, subject_token="t-1", context={"locale": "sv"}
    )
    client.alias(user_id="u-2", previous_id="u-1", subject_token="t-2", previous_subject_token="t-1")
    client.flush()
    identify, alias = script.bodies()[0]["batch"]
    assert identify["context"] == {"locale": "sv", "tactful": {"subject_token": "t-1"}}
    assert alias["context"] == {"tactful": {"previous_subject_token": "t-1", "subject_token": "t-2"}}


def test_a_message_needs_someone() -> None:
    with pytest.raises(ValueError, match="user_id or anonymous_id"):
        make(Script(stored)).track("Clicked")


def test_consent_and_decide_send_their_contract() -> None:
    def consent(request: httpx.Request) -> httpx.Response:
        recorded = [{"target": "analytics", "choice": "granted"}]
        return httpx.Response(200, json={"recorded": recorded, "refused": [], "gpc": True, "state": None})

    def decide(request: httpx.Request) -> httpx.Response:
        answer = {"placement": "home_hero", "decision_id": "d-1", "experience": None, "variation": "default",
                  "content": {"title": "Hello"}, "level": "1:all", "strategy": "default", "propensity": 1.0,
                  "explanation": {"level": "1:all"}, "unknown_later_field": 1}  # fmt: skip
        return httpx.Response(200, json={"decisions": [answer]})

    script = Script(consent, decide)
    client = make(script)
    ack = client.consent(anonymous_id="a", purposes={"analytics": True}, source="banner", gpc=True)
    [decision] = client.decide(["home_hero"], user_id="u-1", context={"locale": "sv-SE"})

    put, post = script.requests
    assert (put.method, put.url.path, put.headers["sec-gpc"]) == ("PUT", "/v1/consent", "1")
    assert json.loads(put.content) == {
        "anonymous_id": "a",
        "source": "banner",
        "purposes": {"analytics": True},
    }
    assert ack.gpc
    assert ack.recorded[0]["target"] == "analytics"
    assert (post.method, post.url.path) == ("POST", "/v1/decide")
    assert json.loads(post.content) == {
        "user_id": "u-1",
        "placements": ["home_hero"],
        "context": {"locale": "sv-SE"},
    }
    assert "sec-gpc" not in post.headers
    assert (decision.placement, decision.level, decision.content) == (
        "home_hero",
        "1:all",
        {"title": "Hello"},
    )
    with pytest.raises(TypeError):
        client.decide("home_hero", user_id="u-1")


def test_an_answer_that_is_not_a_problem_document_still_gives_a_clear_error() -> None:
    script = Script(lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    client = make(script, backoff=Backoff(retries=0))
    with pytest.raises(APIError) as raised:
        client.explanation("d-1", locale="sv")
    assert (raised.value.status, raised.value.code) == (502, "http_502")
    assert script.requests[0].url.path == "/v1/decisions/d-1/explanation"
    assert script.requests[0].url.params["locale"] == "sv"


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "3"})) == 3.0
    assert retry_after(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) or 0) < 0
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None


@given(st.integers(0, 10), st.floats(0.01, 5), st.floats(0.1, 60), st.integers(0, 2**32))
def test_backoff_waits_grow_within_their_cap(attempt: int, base: float, cap: float, seed: int) -> None:
    backoff = Backoff(base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= backoff.delay(attempt, None) <= min(cap, base * 2**attempt)
    assert backoff.delay(attempt, 10**6) == cap


messages = st.lists(
    st.fixed_dictionaries({"messageId": st.uuids().map(str), "text": st.text(max_size=300)}), max_size=60
)


@given(messages, st.integers(1, 10), st.integers(1, 4000))
def test_batches_keep_every_message_in_order_within_their_limits(
    sent: list[dict[str, Any]], size: int, max_bytes: int
) -> None:
    split = list(batches(sent, size=size, max_bytes=max_bytes))
    assert [m for batch in split for m in batch] == sent
    for batch in split:
        assert 1 <= len(batch) <= size
        weight = sum(len(json.dumps(m, separators=(",", ":"))) + 1 for m in batch)
        assert weight <= max_bytes or len(batch) == 1  # a single message over the limit goes alone
