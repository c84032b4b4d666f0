"""The operator's look-up of a subject: every part of what is held, pending links shown as pending,
an audit entry per read that names the key and no identifier, the scopes, the query's validation,
paging of events, and the same 404 for an unknown subject and an erased one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Subject
from tactful.rights import lookup
from tactful.rights.registry import RightsContext, erase_all
from tests.api.builders import AppContext, TestClient, app_context, basic, bearer, client, issue
from tests.api.test_public_key_trust import identify, track, uid
from tests.backends import migrated_database

GRANTS = {
    "analytics": True,
    "personalization.segments": True,
    "personalization.behavioral": True,
    "personalization.predictive": True,
    "personalization.individual": True,
}
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@dataclass(frozen=True)
class Api:
    context: AppContext
    client: TestClient
    keys: dict[Scope, str]

    def __repr__(self) -> str:
        return "Api()"

    def send(self, path: str, body: dict[str, Any], *, scope: Scope = Scope.SERVER) -> list[dict[str, Any]]:
        response = self.client.post(path, json=body, headers=basic(self.keys[scope]))
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def consent(self, body: dict[str, Any], *, scope: Scope = Scope.SERVER, **headers: str) -> None:
        response = self.client.put("/v1/consent", json=body, headers=bearer(self.keys[scope]) | headers)
        assert response.status_code == 200, response.text

    def flags(self, **body: Any) -> None:
        response = self.client.put(
            "/v1/admin/subjects/flags", json=body, headers=bearer(self.keys[Scope.ADMIN])
        )
        assert response.status_code == 200, response.text

    def get(self, path: str = "", *, scope: Scope = Scope.ADMIN, **params: Any) -> Any:
        return self.client.get(f"/v1/admin/subjects{path}", params=params, headers=bearer(self.keys[scope]))

    def look(self, path: str = "", **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body: dict[str, Any] = response.json()
        return body

    def subject(self, **who: str) -> uuid.UUID | None:
        with self.context.session() as session:
            return profiles_service.find_subject(session, keystore=self.context.keystore, **who)

    def audit_tail(self, count: int) -> list[AuditEntry]:
        with self.context.session() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(count)).all()
            session.expunge_all()
        return list(reversed(rows))

    def subjects(self) -> int:
        with self.context.session() as session:
            return int(session.scalar(select(func.count()).select_from(Subject)) or 0)


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("subjects")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"subjects {scope}") for scope in Scope}
        yield Api(context, client(context), keys)


@dataclass(frozen=True)
class Person:
    user_id: str
    anonymous_id: str
    """Merged into the user's profile with the server key's word."""
    claimed: str
    """Claimed for the user by a write key without proof: a pending link."""
    email: str
    tracks: tuple[str, ...]
    quarantined: str


def seeded(api: Api) -> Person:
    """A customer who browsed anonymously, signed up (server key: the browser's id merges), sent
    events, had one message quarantined, and whose other browser was claimed without proof."""
    user, anon, claimed = uid("user"), uid("anon"), uid("anon")
    email = f"{uid('ada')}@example.com"
    api.consent(
        {"anonymous_id": anon, "source": "banner", "purposes": {"analytics": True}}, scope=Scope.WRITE
    )
    api.send("/v1/track", track(anonymous_id=anon))
    api.consent({"user_id": user, "source": "api", "purposes": GRANTS})
    [linked] = api.send(
        "/v1/identify",
        identify(user, {"email": email, "first_name": "Ada", "age_range": "25-34"}, anonymousId=anon),
    )
    assert linked["status"] == "stored"
    tracks = []
    for minutes in range(5):
        message = track(user_id=user) | {"timestamp": (BASE + timedelta(minutes=minutes)).isoformat()}
        [result] = api.send("/v1/track", message)
        assert result["status"] == "stored", result
        tracks.append(message["messageId"])
    bad = identify(user, {"first_name": "QuarantineProbe"}, timestamp="not a time")
    [held] = api.send("/v1/identify", bad)
    assert held["status"] == "quarantined"
    # Another browser of the same person, claimed by a page without proof.
    api.consent(
        {"anonymous_id": claimed, "source": "banner", "purposes": {"analytics": True}}, scope=Scope.WRITE
    )
    api.send("/v1/track", track(anonymous_id=claimed), scope=Scope.WRITE)
    [pending] = api.send("/v1/identify", identify(user, {}, anonymousId=claimed), scope=Scope.WRITE)
    assert (pending["status"], pending["refused"]) == ("accepted", [])  # the claim is not told to a page
    api.flags(user_id=user, restriction=True, limit_sensitive=True)
    return Person(user, anon, claimed, email, tuple(tracks), bad["messageId"])


@pytest.fixture(scope="module")
def person(api: Api) -> Person:
    return seeded(api)


def identities(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(i["kind"], i["value"], i["status"]) for i in body["identities"]}


# -- what is held ----------------------------------------------------------------------------------


def test_every_part_of_a_seeded_subject_is_shown(api: Api, person: Person) -> None:
    body = api.look(user_id=person.user_id)
    survivor = api.subject(user_id=person.user_id)
    assert body["subject_id"] == str(survivor)
    assert len(body["merged_from"]) == 1  # the anonymous visitor's profile
    assert {
        ("user_id", person.user_id, "linked"),
        ("anonymous_id", person.anonymous_id, "linked"),
        ("email", person.email, "linked"),
        ("anonymous_id", person.claimed, "pending"),
    } <= identities(body)
    [pending] = [i for i in body["identities"] if i["status"] == "pending"]
    assert pending["other_subject_id"] == str(api.subject(anonymous_id=person.claimed))
    assert pending["expires_at"] is not None

    traits = {t["atom"]: t for t in body["traits"]}
    assert traits["traits.first_name"]["value"] == "Ada"  # sealed at rest, opened for the operator
    assert traits["traits.email"]["value"] == person.email
    assert traits["traits.age_range"] == {
        "atom": "traits.age_range",
        "value": "25-34",
        "category": "user.demographic.age_range",
        "inferred": False,
    }
    favourite = traits["computed.favorite_category"]
    assert favourite["value"] == "running"
    assert favourite["inferred"] is True
    assert favourite["category"] == "user.derived.inference"
    assert all(t["inferred"] is t["atom"].startswith("computed.") for t in body["traits"])

    consent = body["consent"]
    assert consent["purposes"]["personalization.individual"]["state"] == "granted"
    assert consent["purposes"]["marketing.email"]["state"] != "granted"
    assert consent["purposes"]["marketing.email"]["allowed"] is False
    assert consent["restriction"] is True
    assert consent["limit_sensitive"] is True
    assert consent["objection"] is False
    assert consent["gpc"] is False

    events = body["events"]["items"]
    assert set(person.tracks) <= {e["message_id"] for e in events}
    times = [e["timestamp"] for e in events]
    assert times == sorted(times, reverse=True)
    [held] = body["quarantine"]["items"]
    assert held["message_id"] == person.quarantined
    assert held["reason"] == "invalid_field"
    assert "QuarantineProbe" in held["raw"]  # opened for the operator


def test_each_identifier_and_the_subject_id_lead_to_the_same_answer(api: Api, person: Person) -> None:
    by_user = api.look(user_id=person.user_id)
    for params in (
        {"anonymous_id": person.anonymous_id},
        {"email": person.email.upper()},  # the blind index ignores case
    ):
        assert api.look(**params)["subject_id"] == by_user["subject_id"]
    assert api.look(f"/{by_user['subject_id']}")["identities"] == by_user["identities"]
    # A merged profile's id leads to the survivor.
    assert api.look(f"/{by_user['merged_from'][0]}")["subject_id"] == by_user["subject_id"]


def test_the_claimed_browser_shows_its_pending_user(api: Api, person: Person) -> None:
    body = api.look(anonymous_id=person.claimed)
    assert body["subject_id"] != str(api.subject(user_id=person.user_id))
    assert ("anonymous_id", person.claimed, "linked") in identities(body)
    assert ("user_id", person.user_id, "pending") in identities(body)
    assert ("user_id", person.user_id, "linked") not in identities(body)


def test_a_claim_proven_later_is_shown_linked_only(api: Api) -> None:
    user, anon = uid("user"), uid("anon")
    api.consent({"user_id": user, "source": "api", "purposes": GRANTS})
    api.consent(
        {"anonymous_id": anon, "source": "banner", "purposes": {"analytics": True}}, scope=Scope.WRITE
    )
    api.send("/v1/track", track(anonymous_id=anon), scope=Scope.WRITE)
    [claimed] = api.send("/v1/identify", identify(user, {}, anonymousId=anon), scope=Scope.WRITE)
    assert (claimed["status"], claimed["refused"]) == ("accepted", [])
    assert ("anonymous_id", anon, "pending") in identities(api.look(user_id=user))
    api.send("/v1/identify", identify(user, {}, anonymousId=anon))  # the backend's word: merged
    shown = identities(api.look(user_id=user))
    assert ("anonymous_id", anon, "linked") in shown
    assert ("anonymous_id", anon, "pending") not in shown


def test_flags_set_elsewhere_are_shown(api: Api) -> None:
    user = uid("user")
    api.consent({"user_id": user, "source": "api", "purposes": GRANTS})
    api.consent({"user_id": user, "source": "api", "purposes": {"analytics": False}}, **{"Sec-GPC": "1"})
    api.flags(user_id=user, objection=True)
    consent = api.look(user_id=user)["consent"]
    assert consent["objection"] is True
    assert consent["gpc"] is True
    assert consent["restriction"] is False
    assert consent["purposes"]["analytics"]["state"] != "granted"


def test_events_come_in_pages_newest_first(api: Api, person: Person) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"user_id": person.user_id, "events_limit": 2}
        if cursor:
            params["events_cursor"] = cursor
        page = api.look(**params)["events"]
        assert 1 <= len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = api.look(user_id=person.user_id, events_limit=200)["events"]
    assert everything["next_cursor"] is None
    assert [e["id"] for e in seen] == [e["id"] for e in everything["items"]]
    assert len({e["id"] for e in seen}) == len(seen) >= len(person.tracks)


# -- audit -----------------------------------------------------------------------------------------


def test_each_read_is_audited_with_the_key_and_no_identifier(api: Api, person: Person) -> None:
    admin = keys_service.key_id_of(api.keys[Scope.ADMIN])
    api.look(email=person.email)
    api.look(user_id=person.user_id)
    first, second = api.audit_tail(2)
    for entry, found_by in ((first, "email"), (second, "user_id")):
        assert entry.action == lookup.VIEWED
        assert entry.details == {"key_id": str(admin), "found_by": found_by}
        assert entry.actor == f"api:key:{admin}"
        assert entry.subject_ref is not None
        written = json.dumps([entry.actor, entry.details, entry.subject_ref])
        survivor = str(api.subject(user_id=person.user_id))
        for identifier in (person.user_id, person.email, person.anonymous_id, survivor):
            assert identifier not in written
    assert first.subject_ref == second.subject_ref  # the same person, under one keyed reference


def test_a_miss_is_audited_naming_no_one(api: Api) -> None:
    stranger = uid("user")
    assert api.get(user_id=stranger).status_code == 404
    [entry] = api.audit_tail(1)
    assert entry.action == lookup.MISSED
    assert entry.subject_ref is None
    assert stranger not in json.dumps(entry.details)


# -- who may look, and how to ask -----------------------------------------------------------------


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.SERVER])
def test_only_an_admin_key_may_look(api: Api, person: Person, scope: Scope) -> None:
    subject = api.subject(user_id=person.user_id)
    for response in (api.get(user_id=person.user_id, scope=scope), api.get(f"/{subject}", scope=scope)):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
    assert api.client.get("/v1/admin/subjects", params={"user_id": person.user_id}).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"user_id": "a", "anonymous_id": "b"},
        {"user_id": "a", "email": "a@example.com"},
        {"anonymous_id": "b", "email": "a@example.com"},
    ],
)
def test_exactly_one_identifier(api: Api, params: dict[str, str]) -> None:
    response = api.get(**params)
    assert response.status_code == 422
    assert response.json()["code"] == "one_identifier"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/not-a-uuid", {}),
        ("", {"user_id": ""}),
        ("", {"user_id": "u", "events_limit": 0}),
        ("", {"user_id": "u", "events_limit": 201}),
    ],
)
def test_a_malformed_query_is_a_422(api: Api, path: str, params: dict[str, Any]) -> None:
    response = api.get(path, **params)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGEgY3Vyc29y", "MjAyNi0wMS0wMXxub3QtYS11dWlk"])
def test_a_cursor_this_route_did_not_give_is_a_422(api: Api, person: Person, cursor: str) -> None:
    response = api.get(user_id=person.user_id, events_cursor=cursor)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


# -- unknown and erased ------------------------------------------------------------------------------


def test_an_unknown_subject_is_a_404_and_nobody_is_created(api: Api) -> None:
    before = api.subjects()
    for response in (
        api.get(user_id=uid("user")),
        api.get(anonymous_id=uid("anon")),
        api.get(email=f"{uid('nobody')}@example.com"),
        api.get(f"/{uuid.uuid4()}"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert api.subjects() == before


def test_an_erased_subject_is_the_same_404(api: Api) -> None:
    someone = seeded(api)
    subject = api.subject(user_id=someone.user_id)
    assert subject is not None
    context = api.context
    with context.session() as session:
        erase_all(
            RightsContext(session=session, keystore=context.keystore, settings=context.settings), subject
        )
    unknown = api.get(f"/{uuid.uuid4()}").json()
    for response in (api.get(f"/{subject}"), api.get(user_id=someone.user_id), api.get(email=someone.email)):
        assert response.status_code == 404
        assert response.json() == unknown
    assert api.subject(user_id=someone.user_id) is None
    assert not context.keystore.has_subject(subject)  # the look-up made no key again
