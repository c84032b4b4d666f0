"""The OpenFeature provider, used only through the real `openfeature-sdk` API: placements as object
flags, strategies as reasons, the decision's level and id as metadata, errors as defaults with a
code, and outcomes sent by `track`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.track import TrackingEventDetails

from tactful.sdk import Backoff, Client
from tactful.sdk.openfeature import CONSENT_DOWNGRADE, TactfulProvider

HERO = {"title": "Trail shoes for Sweden", "image": "/img/se.jpg"}


def decision(**overrides: Any) -> dict[str, Any]:
    base = {
        "placement": "home_hero", "decision_id": "d-123", "experience": "se_mobile", "variation": "b",
        "content": HERO, "level": "1:many", "strategy": "split", "propensity": 0.475,
        "explanation": {"legal_basis": {"personalization.segments": "consent"}},
    }  # fmt: skip
    return base | overrides


class Server:
    def __init__(self) -> None:
        self.answer: Any = decision()
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/batch":
            batch = json.loads(request.content)["batch"]
            return httpx.Response(
                200, json={"results": [{"messageId": m["messageId"], "status": "stored"} for m in batch]}
            )
        if isinstance(self.answer, httpx.Response):
            return self.answer
        return httpx.Response(200, json={"decisions": [self.answer]})


@pytest.fixture
def server() -> Iterator[Server]:
    served = Server()
    client = Client(
        base_url="http://tactful.test",
        api_key="key",
        transport=httpx.MockTransport(served),
        backoff=Backoff(retries=0),
    )
    api.set_provider(TactfulProvider(client=client))
    yield served
    api.shutdown()


def test_a_placement_is_an_object_flag(server: Server) -> None:
    context = EvaluationContext(targeting_key="u-1", attributes={"context": {"locale": "sv-SE"}, "gpc": True})
    details = api.get_client().get_object_details("home_hero", {"title": "default"}, context)

    assert details.value == HERO
    assert details.variant == "b"
    assert details.reason == Reason.SPLIT
    assert details.error_code is None
    assert details.flag_metadata == {
        "level": "1:many",
        "decision_id": "d-123",
        "strategy": "split",
        "propensity": 0.475,
        "experience": "se_mobile",
        "legal_basis": "personalization.segments:consent",
    }
    [request] = server.requests
    assert json.loads(request.content) == {
        "user_id": "u-1",
        "placements": ["home_hero"],
        "context": {"locale": "sv-SE"},
    }
    assert request.headers["sec-gpc"] == "1"


@pytest.mark.parametrize(
    ("strategy", "downgraded", "reason"),
    [
        ("rule", False, Reason.TARGETING_MATCH),
        ("split", False, Reason.SPLIT),
        ("holdout", False, Reason.SPLIT),
        ("default", False, Reason.DEFAULT),
        ("default", True, CONSENT_DOWNGRADE),
        ("rule", True, CONSENT_DOWNGRADE),
    ],
)
def test_reasons_follow_the_strategy_and_consent(
    server: Server, strategy: str, downgraded: bool, reason: str
) -> None:
    server.answer = decision(strategy=strategy, explanation={"consent_downgrade": downgraded})
    details = api.get_client().get_object_details(
        "home_hero", {}, EvaluationContext(attributes={"anonymous_id": "a-1"})
    )
    assert details.reason == reason
    assert json.loads(server.requests[0].content)["anonymous_id"] == "a-1"


def test_without_anyone_to_decide_for_the_default_comes_back(server: Server) -> None:
    details = api.get_client().get_object_details("home_hero", {"title": "default"}, EvaluationContext())
    assert details.value == {"title": "default"}
    assert details.error_code == ErrorCode.TARGETING_KEY_MISSING
    assert server.requests == []


def test_an_unknown_placement_is_flag_not_found(server: Server) -> None:
    problem = {"status": 422, "code": "unknown_placement", "message": "no placement home_heroo"}
    server.answer = httpx.Response(422, json=problem)
    details = api.get_client().get_object_details(
        "home_heroo", {"x": 1}, EvaluationContext(targeting_key="u-1")
    )
    assert details.value == {"x": 1}
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND
    assert details.reason == Reason.ERROR


def test_a_server_error_gives_the_default_not_an_exception(server: Server) -> None:
    server.answer = httpx.Response(503, json={"status": 503, "code": "unavailable", "message": "busy"})
    details = api.get_client().get_object_details(
        "home_hero", {"x": 1}, EvaluationContext(targeting_key="u-1")
    )
    assert (details.value, details.error_code) == ({"x": 1}, ErrorCode.GENERAL)


def test_typed_flags_answer_only_their_type(server: Server) -> None:
    server.answer = decision(content="Hej Anna!")
    client = api.get_client()
    context = EvaluationContext(targeting_key="u-1")
    assert client.get_string_value("greeting", "Hello", context) == "Hej Anna!"
    assert client.get_object_details("greeting", {}, context).error_code == ErrorCode.TYPE_MISMATCH
    server.answer = decision(content=True)
    assert client.get_boolean_value("banner_on", False, context) is True
    assert client.get_integer_details("banner_on", 0, context).error_code == ErrorCode.TYPE_MISMATCH


def test_track_sends_an_outcome_linked_to_its_decision(server: Server) -> None:
    client = api.get_client()
    context = EvaluationContext(targeting_key="u-1")
    details = client.get_object_details("home_hero", {}, context)
    client.track(
        "Order Completed",
        context,
        TrackingEventDetails(value=59.0, attributes={"decision_id": details.flag_metadata["decision_id"]}),
    )

    [batch] = [json.loads(r.content)["batch"] for r in server.requests if r.url.path == "/v1/batch"]
    [outcome] = batch
    assert outcome["type"] == "track"
    assert outcome["event"] == "Order Completed"
    assert outcome["userId"] == "u-1"
    assert outcome["properties"] == {"decision_id": "d-123", "value": 59.0}
