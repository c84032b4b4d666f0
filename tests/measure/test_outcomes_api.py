"""Outcomes over HTTP, in a process built by `main.build_context` (so these tests also show that it
wires collection's outcome hook and the log writer's): a decision served to one visitor, its outcome
sent with the public write key while the decision is still in the process's buffer, another
visitor's attempt to claim it, and what /metrics counts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tactful import main
from tactful.collect.models import Event
from tactful.config import Settings
from tactful.keys.schemas import Scope
from tactful.measure.models import DecisionOutcome
from tests.api.builders import AppContext, TestClient, basic, bearer, client, issue
from tests.backends import fresh_database

CONSENTED = {"consent": {"categoryPreferences": {"analytics": True}}}


@pytest.fixture
def wired(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppContext, TestClient]]:
    folder = tmp_path_factory.mktemp("outcomes")
    with (
        fresh_database(backend, folder) as url,
        fresh_database(backend, folder, migrated=False, name="keys") as keys_url,
    ):
        context = main.build_context(Settings(database_url=url, keystore_url=keys_url))
        try:
            yield context, client(context)
        finally:
            context.db.dispose()
            context.keystore.dispose()


def _track(key: str, api: TestClient, anonymous_id: str, event: str, **properties: Any) -> dict[str, Any]:
    message = {
        "type": "track",
        "event": event,
        "anonymousId": anonymous_id,
        "messageId": f"m-{uuid.uuid4().hex}",
        "properties": properties,
        "context": CONSENTED,
    }
    response = api.post("/v1/track", json=message, headers=basic(key))
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    del result["messageId"]
    return dict(result)


def _metrics(context: AppContext, api: TestClient) -> dict[str, float]:
    response = api.get("/metrics", headers=bearer(issue(context, Scope.ADMIN)))
    assert response.status_code == 200
    found = {}
    for line in response.text.splitlines():
        match = re.fullmatch(r"(tactful_(?:outcomes|decisions)_\w+(?:\{[^}]*\})?) (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


def test_an_outcome_sent_with_the_write_key_links_to_its_visitors_decision_only(
    wired: tuple[AppContext, TestClient],
) -> None:
    context, api = wired
    write, server, admin = (issue(context, scope) for scope in (Scope.WRITE, Scope.SERVER, Scope.ADMIN))
    placement = {"key": "home_hero", "channel": "web", "default": {"content": {"headline": "Welcome"}}}
    assert api.post("/v1/admin/placements", json=placement, headers=bearer(admin)).status_code == 201
    visitor, attacker = f"anon-{uuid.uuid4().hex}", f"anon-{uuid.uuid4().hex}"
    for anonymous_id in (visitor, attacker):
        _track(write, api, anonymous_id, "Product Viewed", product_id="p-1")
    decided = api.post(
        "/v1/decide", json={"anonymous_id": visitor, "placements": ["home_hero"]}, headers=bearer(server)
    )
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decisions"][0]["decision_id"]
    assert context.logbook is not None
    assert context.logbook.pending == 1  # served, not yet written

    own = _track(write, api, visitor, "Product Added", product_id="p-1", decision_id=decision_id)
    claimed = _track(write, api, attacker, "Product Added", product_id="p-1", decision_id=decision_id)
    malformed = _track(write, api, attacker, "Product Added", product_id="p-1", decision_id="ada@example.com")
    accepted = {"status": "accepted", "reason": None, "detail": None, "refused": []}
    assert own == claimed == malformed == accepted  # a page's answer: the same, whatever became of it

    waiting = _metrics(context, api)
    assert waiting["tactful_outcomes_unattributed_pending"] == 2
    assert waiting['tactful_outcomes_unattributed_total{reason="malformed"}'] == 1

    assert context.logbook.flush() == 1  # the decision lands, and what waited for it follows

    with context.session() as session:
        rows = list(session.scalars(select(DecisionOutcome)))
        assert [(r.decision_id, r.status, r.event, r.learnable) for r in rows] == [
            (decision_id, "linked", "events.product_added", True)
        ]
    counted = _metrics(context, api)
    assert counted["tactful_outcomes_received_total"] == 3
    assert counted["tactful_outcomes_linked_total"] == 1
    assert counted['tactful_outcomes_unattributed_total{reason="other_subject"}'] == 1
    assert counted['tactful_outcomes_unattributed_total{reason="malformed"}'] == 1
    assert counted["tactful_outcomes_unattributed_pending"] == 0
    assert counted["tactful_decisions_erased_total"] == 0


def test_withdrawing_analytics_takes_the_outcomes_and_the_stored_ids_away(
    wired: tuple[AppContext, TestClient],
) -> None:
    context, api = wired
    write, server, admin = (issue(context, scope) for scope in (Scope.WRITE, Scope.SERVER, Scope.ADMIN))
    placement = {"key": "home_hero", "channel": "web", "default": {"content": {"headline": "Welcome"}}}
    assert api.post("/v1/admin/placements", json=placement, headers=bearer(admin)).status_code == 201
    visitor = f"anon-{uuid.uuid4().hex}"
    _track(write, api, visitor, "Product Viewed", product_id="p-1")
    decided = api.post(
        "/v1/decide", json={"anonymous_id": visitor, "placements": ["home_hero"]}, headers=bearer(server)
    )
    linked_id = decided.json()["decisions"][0]["decision_id"]
    assert context.logbook is not None
    context.logbook.flush()
    _track(write, api, visitor, "Order Completed", order_id="o-1", revenue=30, decision_id=linked_id)
    _track(write, api, visitor, "Order Completed", order_id="o-2", decision_id="dc_neverServedHere")
    with context.session() as session:
        assert {r.status for r in session.scalars(select(DecisionOutcome))} == {"linked", "pending"}

    refusal = {"anonymous_id": visitor, "purposes": {"analytics": False}, "source": "banner"}
    assert api.put("/v1/consent", json=refusal, headers=bearer(write)).status_code == 200

    with context.session() as session:
        assert list(session.scalars(select(DecisionOutcome))) == []
        kept = [e.properties for e in session.scalars(select(Event).where(Event.event == "Order Completed"))]
    # The orders stay (they are kept for the contract), without the ids that made them outcomes.
    assert sorted(kept, key=lambda p: str(p["order_id"])) == [
        {"order_id": "o-1", "revenue": 30},
        {"order_id": "o-2"},
    ]
    counted = _metrics(context, api)
    assert counted['tactful_outcomes_unattributed_total{reason="withdrawn"}'] == 1
    assert counted["tactful_outcomes_unattributed_pending"] == 0
    assert counted["tactful_outcomes_received_total"] == 2
