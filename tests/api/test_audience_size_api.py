"""Invariant 7 over HTTP: a 1:many audience matched by fewer than k distinct subjects is not served
(the decision falls to the default, with the reason), the k-th makes it serve once the lineup is
read again, one person deciding many times (a stranger first, then stored) counts once, and the
audience API reports both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tactful.config import DecideSettings, Settings
from tactful.crypto import Keystore
from tactful.decide.audience_count import StoredCount
from tactful.keys.schemas import Scope
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.api.test_consent_api import user
from tests.api.test_decide_api import ADMIN, K, consent, crowd, decide, shop, stored
from tests.backends import migrated_database

SWEDEN_MOBILE = {"location": {"country": "SE"}, "device": {"type": "mobile"}}


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore, decide=DecideSettings(audience_k=K))


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def keys(context: AppContext) -> dict[Scope, dict[str, str]]:
    return {scope: bearer(issue(context, scope, name=f"size {scope}")) for scope in Scope}


def _hero(api: TestClient, server: dict[str, str]) -> dict[str, object]:
    return decide(api, server, user_id=stored(api, server), context=SWEDEN_MOBILE)["home_hero"]


def _audience(api: TestClient, admin: dict[str, str]) -> dict[str, object]:
    response = api.get(f"{ADMIN}/audiences/sweden_mobile", headers=admin)
    assert response.status_code == 200, response.text
    listed = api.get(f"{ADMIN}/audiences", headers=admin).json()
    assert listed == [response.json()]
    found: dict[str, object] = response.json()
    return found


def test_below_k_the_audience_is_in_shadow_and_the_kth_subject_makes_it_serve(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    shop(api, admin)
    assert (_audience(api, admin)["estimated_size"], _audience(api, admin)["serving"]) == (0, False)

    crowd(api, context, server, K - 1)
    shadowed = _hero(api, server)  # this one is the k-th, but counts only from the next refresh
    assert (shadowed["level"], shadowed["strategy"], shadowed["content"]) == (
        "1:all",
        "default",
        {"headline": "Welcome"},
    )
    assert "audience_not_served" in str(shadowed["explanation"])
    assert context.lineups is not None
    context.lineups.invalidate()

    served = _hero(api, server)
    assert (served["level"], served["content"]) == ("1:many", {"headline": "Hej!"})
    audience = _audience(api, admin)
    assert (audience["estimated_size"], audience["serving"]) == (K, True)


def test_one_person_deciding_many_times_counts_once_and_a_stranger_not_at_all(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    admin, server, person = keys[Scope.ADMIN], keys[Scope.SERVER], user()
    shop(api, admin)
    assert context.lineups is not None
    for _ in range(K + 2):  # a stranger: nothing stored under the id, nothing counted
        decide(api, server, user_id=person, context=SWEDEN_MOBILE)
        context.lineups.invalidate()
    assert _audience(api, admin)["estimated_size"] == 0
    consent(api, server, person, **{"personalization.segments": True})
    for _ in range(K + 2):  # now stored: counted by the subject, once
        decide(api, server, user_id=person, context=SWEDEN_MOBILE)
        context.lineups.invalidate()
    assert decide(api, server, user_id=person, context=SWEDEN_MOBILE)["home_hero"]["level"] == "1:all"
    assert (_audience(api, admin)["estimated_size"], _audience(api, admin)["serving"]) == (1, False)


def test_subjects_the_audience_does_not_match_are_not_counted(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    shop(api, admin)
    for _ in range(K + 1):
        decide(
            api, server, user_id=stored(api, server), context={"location": {"country": "SE"}}
        )  # not mobile
    assert context.lineups is not None
    context.lineups.invalidate()
    assert _hero(api, server)["level"] == "1:all"
    assert _audience(api, admin)["estimated_size"] == 0


def test_an_audience_above_1_many_serves_whatever_its_size(
    api: TestClient, keys: dict[Scope, dict[str, str]]
) -> None:
    admin = keys[Scope.ADMIN]
    body = {"key": "named", "name": "Has a first name", "condition": {"traits.first_name": {"$exists": True}}}
    made = api.post(f"{ADMIN}/audiences", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert (made.json()["estimated_size"], made.json()["serving"]) == (0, True)


def test_k_is_configuration_and_defaults_to_50(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().decide.audience_k == 50
    monkeypatch.setenv("TACTFUL_DECIDE__AUDIENCE_K", "7")
    assert Settings().decide.audience_k == 7
    with pytest.raises(ValueError, match="audience_k"):
        Settings(decide=DecideSettings(audience_k=0))


# -- the estimate from stored profiles ---------------------------------------------------------------

LIVES_IN_SWEDEN = {"key": "lives_in_sweden", "name": "Lives in Sweden", "condition": {"traits.country": "SE"}}


def customer(api: TestClient, server: dict[str, str], *, country: str, segments: bool = True) -> str:
    """A stored customer with a country in their profile; `segments`: they let it be used."""
    person = user()
    identify = {"type": "identify", "userId": person, "traits": {"country": country}}
    assert api.post("/v1/batch", json={"batch": [identify]}, headers=server).status_code == 200
    if segments:
        consent(api, server, person, **{"personalization.segments": True})
    return person


def test_an_audience_over_stored_atoms_is_sized_from_the_stored_profiles_when_made(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    shop(api, admin)
    swedes = [customer(api, server, country="SE") for _ in range(K)]
    customer(api, server, country="NO")
    customer(api, server, country="SE", segments=False)  # stored, but not to be used for this
    made = api.post(f"{ADMIN}/audiences", json=LIVES_IN_SWEDEN, headers=admin)
    assert made.status_code == 201, made.text
    assert (made.json()["estimated_size"], made.json()["serving"]) == (K, True)

    experience = {
        "key": "swedish_customers", "placement": "home_hero", "audience": "lives_in_sweden", "priority": 0,
        "variations": [{"key": "hej", "content": {"headline": "Hej, kund!"}}],
    }  # fmt: skip
    assert api.post(f"{ADMIN}/experiences", json=experience, headers=admin).status_code == 201
    assert api.post(f"{ADMIN}/experiences/swedish_customers/publish", headers=admin).status_code == 200
    served = decide(api, server, user_id=swedes[0])["home_hero"]  # no request context needed
    assert (served["level"], served["content"]) == ("1:many", {"headline": "Hej, kund!"})

    renamed = api.patch(f"{ADMIN}/audiences/lives_in_sweden", json={"name": "Swedes"}, headers=admin)
    assert renamed.json()["estimated_size"] == K
    changed = api.patch(
        f"{ADMIN}/audiences/lives_in_sweden", json={"condition": {"traits.country": "NO"}}, headers=admin
    )
    assert (changed.json()["estimated_size"], changed.json()["serving"]) == (1, False), "counted afresh"


def test_the_request_reads_no_more_profiles_than_its_bound(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    with migrated_database(backend, tmp_path) as db:
        bounded = app_context(db, keystore, decide=DecideSettings(audience_k=K, audience_count_inline=2))
        api = client(bounded)
        admin, server = (
            bearer(issue(bounded, scope, name=f"bound {scope}")) for scope in (Scope.ADMIN, Scope.SERVER)
        )
        for _ in range(K + 1):
            customer(api, server, country="SE")
        made = api.post(f"{ADMIN}/audiences", json=LIVES_IN_SWEDEN, headers=admin)
        assert (made.json()["estimated_size"], made.json()["serving"]) == (2, False)


def test_the_count_runs_after_the_audience_is_committed_in_units_of_its_own(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The admin's write unit holds the write lock; counting up to a thousand profiles inside it
    # would keep every collection and consent write waiting. Units open and close in turn.
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    for _ in range(K):
        customer(api, server, country="SE")
    units: list[str] = []
    opened = context.session

    @contextmanager
    def session() -> Iterator[Any]:
        units.append("open")
        with opened() as made:
            yield made
        units.append("closed")

    monkeypatch.setattr(context, "session", session)
    made = api.post(f"{ADMIN}/audiences", json=LIVES_IN_SWEDEN, headers=admin)
    assert (made.json()["estimated_size"], made.json()["serving"]) == (K, True)
    assert len(units) >= 4, "the audience's unit, then the count's"
    assert units == ["open", "closed"] * (len(units) // 2)
    changed = api.patch(
        f"{ADMIN}/audiences/lives_in_sweden", json={"condition": {"traits.country": "NO"}}, headers=admin
    )
    assert changed.json()["estimated_size"] == 0
    assert units == ["open", "closed"] * (len(units) // 2)
    before = len(units)
    again = api.patch(
        f"{ADMIN}/audiences/lives_in_sweden", json={"condition": {"traits.country": "NO"}}, headers=admin
    )
    assert again.json()["version"] == changed.json()["version"] + 1
    assert len(units) == before + 2, "the same condition: the audience's unit alone, no count"


def test_an_audience_is_made_when_a_busy_database_stops_its_count(
    api: TestClient, keys: dict[Scope, dict[str, str]], monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    # The audience commits first; the count is an early estimate that the schedule finishes.
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    person = customer(api, server, country="SE")

    def locked(*_: object, **__: object) -> Any:
        raise OperationalError("INSERT", None, Exception("database is locked"))

    monkeypatch.setattr(StoredCount, "_batch", locked)
    made = api.post(f"{ADMIN}/audiences", json=LIVES_IN_SWEDEN, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["estimated_size"] == 0
    assert api.get(f"{ADMIN}/audiences/lives_in_sweden", headers=admin).status_code == 200
    assert "busy database" in caplog.text
    assert person not in caplog.text
