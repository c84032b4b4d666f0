"""`POST /v1/decide` and the explanation over HTTP: one subject walked up and down the pyramid by
consent choices, the explanation in the subject's language, and the refusals (unknown placements,
keys without the scope, bad input) as problem documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tactful.config import DecideSettings
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.profiles.models import Subject
from tests.api.builders import AppContext, TestClient, app_context, basic, bearer, client, issue
from tests.api.test_consent_api import anonymous, user
from tests.backends import migrated_database

ADMIN = "/v1/admin"
SWEDEN_MOBILE = {"context.location.country": "SE", "context.device.type": "mobile"}
SWEDEN_MOBILE_REQUEST = {"location": {"country": "SE"}, "device": {"type": "mobile"}}
GREETING = "Hello {{ traits.first_name | default('there') }}!"
K = 3
"""Distinct subjects a 1:many audience must match before it serves, in these tests."""


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore, decide=DecideSettings(audience_k=K))


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def keys(context: AppContext) -> dict[Scope, dict[str, str]]:
    return {scope: bearer(issue(context, scope, name=f"decide {scope}")) for scope in Scope}


def _made(response: Any) -> None:
    assert response.status_code in (200, 201), response.text


def shop(api: TestClient, admin: dict[str, str]) -> None:
    """`home_hero` with a 1:many banner for Sweden on mobile over a default; `greeting` with a 1:1
    template that greets by first name over a default."""
    hero = {"key": "home_hero", "channel": "web", "default": {"content": {"headline": "Welcome"}}}
    greeting = {"key": "greeting", "channel": "web", "default": {"content": {"text": "Hello!"}}}
    for placement in (hero, greeting):
        _made(api.post(f"{ADMIN}/placements", json=placement, headers=admin))
    audience = {"key": "sweden_mobile", "name": "Sweden on mobile", "condition": SWEDEN_MOBILE}
    _made(api.post(f"{ADMIN}/audiences", json=audience, headers=admin))
    experiences = [
        {
            "key": "nordic_banner",
            "placement": "home_hero",
            "audience": "sweden_mobile",
            "variations": [{"key": "nordic", "content": {"headline": "Hej!"}}],
        },
        {
            "key": "named_greeting",
            "placement": "greeting",
            "variations": [{"key": "named", "content": {"text": "Hello!"}, "templates": {"text": GREETING}}],
        },
    ]
    for experience in experiences:
        _made(api.post(f"{ADMIN}/experiences", json=experience, headers=admin))
        _made(api.post(f"{ADMIN}/experiences/{experience['key']}/publish", headers=admin))


def crowd(api: TestClient, context: AppContext, server: dict[str, str], people: int) -> None:
    """`people` customers in Sweden on mobile decide (matching the 1:many audience), then the lineup
    is read again (as it is, in serving, at most a second later). Each is stored first (a consent
    choice): only a stored subject is counted towards k (`decide.audience_size`)."""
    for _ in range(people):
        decide(api, server, user_id=stored(api, server), context=SWEDEN_MOBILE_REQUEST)
    assert context.lineups is not None
    context.lineups.invalidate()


def stored(api: TestClient, server: dict[str, str]) -> str:
    """A new user id, stored as a subject by its first consent choice."""
    person = user()
    consent(api, server, person, **{"personalization.segments": True})
    return person


def decide(api: TestClient, headers: dict[str, str], **body: Any) -> dict[str, dict[str, Any]]:
    body = {"placements": ["home_hero", "greeting"]} | body
    response = api.post("/v1/decide", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return {d["placement"]: d for d in response.json()["decisions"]}


PYRAMID = (
    "personalization.segments",
    "personalization.behavioral",
    "personalization.predictive",
    "personalization.individual",
)
"""The pyramid's purposes, lowest first: a level needs its own and every one below (DESIGN §2)."""


def everything(granted: bool) -> dict[str, bool]:
    return dict.fromkeys(PYRAMID, granted)


def consent(api: TestClient, server: dict[str, str], user_id: str, **purposes: bool) -> None:
    body = {"user_id": user_id, "purposes": purposes, "source": "api"}
    _made(api.put("/v1/consent", json=body, headers=server))


def test_a_subject_walks_up_and_down_the_pyramid_with_their_consent(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    server, person = keys[Scope.SERVER], user()
    crowd(api, context, server, K)  # the 1:many audience has k subjects: it serves
    identify = {"type": "identify", "userId": person, "traits": {"first_name": "Astrid"}}
    assert api.post("/v1/batch", json={"batch": [identify]}, headers=server).status_code == 200
    context = {"location": {"country": "SE"}, "device": {"type": "mobile"}, "locale": "sv-SE"}

    consent(api, server, person, **everything(False))
    low = decide(api, server, user_id=person, context=context)
    assert (low["greeting"]["level"], low["greeting"]["content"]) == ("1:all", {"text": "Hello!"})
    assert low["greeting"]["strategy"] == "default"
    assert low["greeting"]["explanation"]["consent_downgrade"] is True
    # What would change it: every pyramid purpose from the ceiling up to the greeting's level.
    changes = low["greeting"]["explanation"]["would_change"]
    assert {c["params"]["purpose"] for c in changes} >= {"personalization.individual"}
    assert "traits.first_name" not in str(low)  # withheld: not even read

    consent(api, server, person, **everything(True))
    high = decide(api, server, user_id=person, context=context)
    assert high["home_hero"]["level"] == "1:many"
    assert high["home_hero"]["content"] == {"headline": "Hej!"}
    assert (high["greeting"]["level"], high["greeting"]["content"]) == ("1:1", {"text": "Hello Astrid!"})
    assert (high["greeting"]["strategy"], high["greeting"]["propensity"]) == ("rule", 1.0)
    atoms = [a["atom"] for a in high["greeting"]["explanation"]["atoms"]]
    assert atoms == ["traits.first_name"]

    consent(api, server, person, **{"personalization.individual": False})
    after = decide(api, server, user_id=person, context=context)  # the very next decision
    assert (after["greeting"]["level"], after["greeting"]["content"]) == ("1:all", {"text": "Hello!"})
    assert after["home_hero"]["level"] == "1:many"


def test_the_explanation_speaks_the_persons_language_and_never_shows_values(
    api: TestClient, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    server, person = keys[Scope.SERVER], user()
    identify = {"type": "identify", "userId": person, "traits": {"first_name": "Astrid"}}
    assert api.post("/v1/batch", json={"batch": [identify]}, headers=server).status_code == 200
    consent(api, server, person, **everything(True))
    answer = decide(api, server, user_id=person, context={"locale": "sv-SE"})["greeting"]
    assert answer["content"] == {"text": "Hello Astrid!"}

    url = f"/v1/decisions/{answer['decision_id']}/explanation"
    swedish = api.get(url, headers=keys[Scope.WRITE])  # the public key may ask
    assert swedish.status_code == 200, swedish.text
    assert swedish.json()["language"] == "sv"
    assert swedish.headers["cache-control"] == "no-store"
    assert "Astrid" not in swedish.text
    english = api.get(url, params={"locale": "en"}, headers=keys[Scope.WRITE]).json()
    assert english["language"] == "en"
    assert english["summary"] != swedish.json()["summary"]
    by_header = api.get(url, headers=keys[Scope.WRITE] | {"Accept-Language": "en-GB;q=0.9, de"}).json()
    assert by_header["language"] == "en"

    context = api.app.state.context  # type: ignore[attr-defined]
    assert context.logbook.flush() >= 2  # written to the log: still found, from the table
    assert api.get(url, headers=keys[Scope.WRITE]).json() == swedish.json()
    for unknown in ("dc_" + "A" * 22, "dc_nope"):
        missing = api.get(f"/v1/decisions/{unknown}/explanation", headers=keys[Scope.WRITE])
        assert (missing.status_code, missing.json()["code"]) == (404, "decision_not_found")


def test_a_stranger_is_answered_from_the_request_alone_and_nothing_is_created(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    with context.session() as session:
        before = session.scalar(select(func.count()).select_from(Subject))
    answers = decide(
        api, keys[Scope.SERVER], anonymous_id=anonymous(), context={"location": {"country": "SE"}}
    )
    assert answers["home_hero"]["content"] == {"headline": "Welcome"}  # not mobile: the default
    assert all(a["content"] for a in answers.values())
    with context.session() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == before


def test_a_pending_link_reads_only_what_the_anonymous_id_holds(
    api: TestClient, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    server, person, browser = keys[Scope.SERVER], user(), anonymous()
    identify = {"type": "identify", "userId": person, "traits": {"first_name": "Astrid"}}
    assert api.post("/v1/batch", json={"batch": [identify]}, headers=server).status_code == 200
    consent(api, server, person, **everything(True))
    # The public key claims that this browser is that person: a pending link, never a merge.
    claim = {"type": "identify", "userId": person, "anonymousId": browser, "traits": {}}
    assert api.post("/v1/batch", json={"batch": [claim]}, headers=basic_of(keys[Scope.WRITE])).is_success
    answer = decide(api, server, anonymous_id=browser)["greeting"]
    assert answer["content"] == {"text": "Hello!"}
    assert "Astrid" not in str(answer)


def basic_of(headers: dict[str, str]) -> dict[str, str]:
    return basic(headers["Authorization"].removeprefix("Bearer "))


def test_sec_gpc_is_recorded_once_and_obeyed(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(api, keys[Scope.ADMIN])
    server, person = keys[Scope.SERVER], user()
    consent(api, server, person, **{"personalization.segments": True})
    # Deciding reads; only the decision whose signal changes the person's state opens a write unit.
    writes: list[int] = []
    opened = context.session

    def session() -> Any:
        writes.append(1)
        return opened()

    monkeypatch.setattr(context, "session", session)
    decide(api, server, user_id=person)
    assert writes == []
    for _ in range(3):
        decide(api, server | {"Sec-GPC": "1"}, user_id=person)
    assert writes == [1]
    decide(api, server | {"Sec-GPC": "1"}, user_id=user())  # nobody stored: nothing to record
    assert writes == [1]
    monkeypatch.undo()
    state = api.get("/v1/consent", params={"user_id": person}, headers=server).json()
    gpc_entries = [h for h in state["history"] if h.get("source") == "gpc"]
    assert len(gpc_entries) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"user_id": "u", "placements": ["nowhere"]}, "unknown_placement"),
        ({"placements": ["home_hero"]}, "missing_identity"),
        ({"user_id": "u", "placements": []}, "invalid_input"),
        ({"user_id": "u", "placements": ["home_hero"] * 51}, "invalid_input"),
        ({"user_id": "u", "placements": ["home_hero"], "context": []}, "invalid_input"),
        ({"user_id": "u", "placements": ["Home Hero"]}, "invalid_input"),
        ({"user_id": "u\x00", "placements": ["home_hero"]}, "invalid_input"),
        ({"user_id": "u", "placements": ["home_hero"], "extra": 1}, "invalid_input"),
    ],
)
def test_bad_input_is_a_problem_document(
    api: TestClient, keys: dict[Scope, dict[str, str]], body: dict[str, Any], code: str
) -> None:
    shop(api, keys[Scope.ADMIN])
    response = api.post("/v1/decide", json=body, headers=keys[Scope.SERVER])
    assert (response.status_code, response.json()["code"]) == (422, code)


def test_deciding_needs_a_server_key(api: TestClient, keys: dict[Scope, dict[str, str]]) -> None:
    shop(api, keys[Scope.ADMIN])
    body = {"user_id": user(), "placements": ["home_hero"]}
    assert api.post("/v1/decide", json=body, headers=keys[Scope.WRITE]).status_code == 403
    assert api.post("/v1/decide", json=body).status_code == 401


def test_metrics_count_decisions_served_logged_and_pending(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    decide(api, keys[Scope.SERVER], user_id=user())

    def metric(name: str) -> float:
        text = api.get("/metrics", headers=keys[Scope.ADMIN]).text
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        return float(line.split()[1])

    assert (metric("tactful_decisions_served_total"), metric("tactful_decisions_pending")) == (2, 2)
    assert context.logbook is not None
    context.logbook.flush()
    assert (metric("tactful_decisions_logged_total"), metric("tactful_decisions_pending")) == (2, 0)
    assert metric("tactful_decisions_lost_total") == 0
    assert metric("tactful_decision_log_stalled_processes") == 0


def test_a_split_hashes_an_anonymous_id_only_where_a_device_identifier_may_be_read(
    api: TestClient, keys: dict[Scope, dict[str, str]]
) -> None:
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    shop(api, admin)
    split = {
        "key": "two_heroes",
        "placement": "home_hero",
        "strategy": "split",
        "priority": 9,
        "variations": [
            {"key": "a", "content": {"headline": "A"}},
            {"key": "b", "content": {"headline": "B"}},
        ],
    }
    _made(api.post(f"{ADMIN}/experiences", json=split, headers=admin))
    _made(api.post(f"{ADMIN}/experiences/two_heroes/publish", headers=admin))

    browser = anonymous()
    stranger = decide(api, server, anonymous_id=browser, placements=["home_hero"])["home_hero"]
    assert (stranger["experience"], stranger["strategy"]) == (None, "default")  # GDPR: no consent yet
    grant = {"anonymous_id": browser, "purposes": {"personalization.segments": True}, "source": "banner"}
    _made(api.put("/v1/consent", json=grant, headers=keys[Scope.WRITE]))
    consented = decide(api, server, anonymous_id=browser, placements=["home_hero"])["home_hero"]
    assert consented["strategy"] in ("split", "holdout")

    answers = [decide(api, server, user_id=user(), placements=["home_hero"])["home_hero"] for _ in range(40)]
    served = [a for a in answers if a["experience"] == "two_heroes"]
    assert {a["strategy"] for a in served} == {"split"}
    assert all(a["propensity"] == pytest.approx(0.5 * 0.95) for a in served)
    held = [a for a in answers if a["experience"] is None]
    assert all(a["strategy"] == "holdout" and a["propensity"] == pytest.approx(0.05) for a in held)
    assert {a["variation"] for a in served} == {"a", "b"}


def test_a_preview_shows_a_made_up_subject_and_logs_nothing(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    admin = keys[Scope.ADMIN]
    shop(api, admin)
    body = {"ceiling": "1:1", "atoms": {"traits.first_name": "Preview"}, "context": {"locale": "sv"}}
    shown = api.post(f"{ADMIN}/placements/greeting/preview", json=body, headers=admin)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["level"], shown.json()["content"]) == ("1:1", {"text": "Hello Preview!"})
    lower = api.post(f"{ADMIN}/placements/greeting/preview", json=body | {"ceiling": "1:few"}, headers=admin)
    assert (lower.json()["level"], lower.json()["content"]) == ("1:all", {"text": "Hello!"})
    hero = {"ceiling": "1:many", "context": {"location": {"country": "SE"}, "device": {"type": "mobile"}}}
    banner = api.post(f"{ADMIN}/placements/home_hero/preview", json=hero, headers=admin).json()
    # A truthful preview: the 1:many audience has matched fewer than k people, so it does not serve yet.
    assert banner["content"] == {"headline": "Welcome"}
    steps = banner["explanation"]["not_higher"]
    assert [s["code"] for s in steps if s["level"] == "1:many"] == ["audience_not_served"]
    assert context.logbook is not None
    assert context.logbook.sequence == 0  # a preview is not a decision

    undeclared = api.post(
        f"{ADMIN}/placements/greeting/preview", json={"atoms": {"traits.shoe": 1}}, headers=admin
    )
    assert (undeclared.status_code, undeclared.json()["code"]) == (422, "undeclared_atom")
    missing = api.post(f"{ADMIN}/placements/nowhere/preview", json={}, headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (422, "unknown_placement")
    assert (
        api.post(f"{ADMIN}/placements/greeting/preview", json={}, headers=keys[Scope.SERVER]).status_code
        == 403
    )
