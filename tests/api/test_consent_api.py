"""The consent API: who may record what, TC strings and GPC as ledger events with proof, and the
state read back now or at a past moment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tests.api.builders import AppContext, TestClient, app_context, basic, bearer, client, issue
from tests.backends import migrated_database
from tests.consent.tcf_encoder import encode_tc_string, publisher, tc_string

PERSONALIZATION = {
    "personalization.segments": True,
    "personalization.behavioral": True,
    "personalization.predictive": True,
    "personalization.individual": True,
}


@dataclass(frozen=True)
class Api:
    context: AppContext
    client: TestClient
    keys: dict[Scope, str]

    def put(self, scope: Scope, body: dict[str, Any], **headers: str) -> Any:
        return self.client.put("/v1/consent", json=body, headers=bearer(self.keys[scope]) | headers)

    def get(self, params: dict[str, str], scope: Scope = Scope.SERVER) -> Any:
        return self.client.get("/v1/consent", params=params, headers=bearer(self.keys[scope]))

    def state(self, params: dict[str, str]) -> dict[str, Any]:
        """The subject's consent as a server key reads it."""
        response = self.get(params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def __repr__(self) -> str:
        return "Api()"  # hypothesis prints fixtures with a failing example; the context is huge

    def token(self, user_id: str, *, at: datetime | None = None) -> str:
        secret = self.context.settings.subject_token_secret.get_secret_value()
        return issue_subject_token(secret=secret, user_id=user_id, at=at or datetime.now(UTC))


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("consent")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"consent {scope}") for scope in Scope}
        yield Api(context, client(context), keys)


def anonymous() -> str:
    return f"anon-{uuid.uuid4().hex}"


def user() -> str:
    return f"user-{uuid.uuid4().hex}"


# -- who may record what -------------------------------------------------------------------------


def test_a_write_key_grants_for_an_anonymous_id(api: Api) -> None:
    anon = anonymous()
    response = api.put(
        Scope.WRITE, {"anonymous_id": anon, "purposes": {"analytics": True}, "source": "banner"}
    )
    assert response.status_code == 200, response.text
    # A page is not told whether the id speaks for someone (DESIGN §4); the state shows the grant.
    assert response.json() == {
        "recorded": [],
        "refused": [],
        "unconfirmed": [{"target": "analytics", "choice": "granted"}],
        "gpc": False,
        "state": None,  # a write key never reads consent back
    }
    view = api.state({"anonymous_id": anon})
    analytics = view["purposes"]["analytics"]
    assert (analytics["state"], analytics["source"], analytics["legal_basis"]) == (
        "granted",
        "banner",
        "consent",
    )
    assert view["history"][0]["target"] == "analytics"


def test_a_write_key_grants_for_a_user_id_only_with_a_subject_token(api: Api) -> None:
    uid = user()
    body: dict[str, Any] = {"user_id": uid, "purposes": {"analytics": True}, "source": "banner"}
    refused = api.put(Scope.WRITE, body)
    assert refused.status_code == 200, refused.text
    assert refused.json()["recorded"] == []
    assert refused.json()["refused"] == [{"target": "analytics", "code": "subject_token_required"}]
    assert api.get({"user_id": uid}).status_code == 404  # nothing recorded: not even the subject kept

    accepted = api.put(Scope.WRITE, body | {"subject_token": api.token(uid)})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["recorded"] == [{"target": "analytics", "choice": "granted"}]
    view = api.state({"user_id": uid})
    assert view["purposes"]["analytics"]["state"] == "granted"
    assert view["history"][-1]["proof"]["subject_token"] == "verified"


def test_a_subject_token_for_someone_else_or_expired_is_refused(api: Api) -> None:
    uid = user()
    body: dict[str, Any] = {"user_id": uid, "purposes": {"analytics": True}, "source": "api"}
    # A token that proves nothing is no proof: the grant is refused, and nothing else is lost.
    other = api.put(Scope.WRITE, body | {"subject_token": api.token(user())})
    assert other.status_code == 200, other.text
    assert other.json()["refused"] == [{"target": "analytics", "code": "subject_token_invalid"}]
    old = api.token(uid, at=datetime.now(UTC) - timedelta(hours=1))
    expired = api.put(
        Scope.WRITE, body | {"subject_token": old, "purposes": {"analytics": True, "marketing.email": False}}
    )
    assert expired.json()["refused"] == [{"target": "analytics", "code": "subject_token_invalid"}]
    assert expired.json()["recorded"] == [{"target": "marketing.email", "choice": "refused"}]
    assert api.state({"user_id": uid})["purposes"]["analytics"]["state"] == "not_set"
    lonely = api.put(
        Scope.WRITE, {"anonymous_id": anonymous(), "source": "api", "subject_token": api.token(uid)}
    )
    assert lonely.status_code == 422


def test_any_key_may_withdraw_or_deny_for_any_subject(api: Api) -> None:
    uid = user()
    api.put(Scope.SERVER, {"user_id": uid, "purposes": {"analytics": True}, "source": "api"})
    response = api.client.put(
        "/v1/consent",
        json={"user_id": uid, "purposes": {"analytics": False, "marketing.email": False}, "source": "banner"},
        headers=basic(api.keys[Scope.WRITE]),
    )
    assert response.status_code == 200, response.text
    # The answer is the same whatever the person chose before: it does not tell a withdrawal from a denial.
    assert response.json()["recorded"] == [
        {"target": "analytics", "choice": "refused"},
        {"target": "marketing.email", "choice": "refused"},
    ]
    purposes = api.state({"user_id": uid})["purposes"]
    assert purposes["analytics"]["state"] == "withdrawn"  # a "no" after a "yes"
    assert purposes["marketing.email"]["state"] == "denied"


def test_a_server_key_grants_for_anyone(api: Api) -> None:
    for subject in ({"user_id": user()}, {"anonymous_id": anonymous()}):
        body = subject | {"purposes": PERSONALIZATION, "source": "api", "notice_version": "2026-01"}
        response = api.put(Scope.SERVER, body)
        assert response.status_code == 200, response.text
        assert response.json()["refused"] == []
        state = response.json()["state"]  # a server key reads the state back
        assert state["max_level"] == "1:1"
        assert state["history"][0]["notice_version"] == "2026-01"


def test_a_write_key_without_a_token_does_not_tie_an_anonymous_id_to_a_user(api: Api) -> None:
    uid, anon = user(), anonymous()
    api.put(
        Scope.WRITE, {"user_id": uid, "anonymous_id": anon, "purposes": {"analytics": False}, "source": "api"}
    )
    assert api.get({"anonymous_id": anon}).status_code == 404
    assert api.get({"user_id": uid}).status_code == 200


# -- explicit and parental consent, TC strings, GPC ------------------------------------------------


def test_explicit_and_parental_consent_are_recorded(api: Api) -> None:
    anon = anonymous()
    body = {
        "anonymous_id": anon,
        "explicit": {"user.sensitive.health": True, "significant_decisions": False},
        "parental_consent": {"method": "credit_card", "reference": "tx-42"},
        "source": "banner",
    }
    response = api.put(Scope.WRITE, body)
    assert response.status_code == 200, response.text
    view = api.state({"anonymous_id": anon})
    explicit = view["explicit"]
    assert explicit["user.sensitive.health"]["state"] == "granted"
    assert explicit["significant_decisions"]["state"] == "denied"
    parental = next(h for h in view["history"] if h["target"] == "parental")
    assert (parental["method"], parental["proof"]["reference"]) == ("credit_card", "tx-42")


def test_a_tc_string_becomes_ledger_events_with_the_string_as_proof(api: Api) -> None:
    anon = anonymous()
    text = encode_tc_string(
        tc_string(special_feature_optins=frozenset({1}), publisher_tc=publisher({1, 8, 9, 11}))
    )
    response = api.put(Scope.WRITE, {"anonymous_id": anon, "source": "banner", "tcf_string": text})
    assert response.status_code == 200, response.text
    view = api.state({"anonymous_id": anon})
    recorded = {h["target"]: h["action"] for h in view["history"]}
    assert recorded == {
        "analytics": "granted",
        "personalization.segments": "granted",
        "personalization.behavioral": "granted",
        "personalization.predictive": "denied",
        "personalization.individual": "denied",
        "explicit:special_feature_1": "granted",
    }
    assert "essential" not in recorded  # TCF's special purposes need no consent: nothing to record
    assert {h["source"] for h in view["history"]} == {"tcf"}
    assert all(h["proof"]["tcf_string"] == text for h in view["history"])
    assert view["purposes"]["analytics"]["proof"]["tcf_segment"] == "publisher"
    assert view["max_level"] == "1:some"


def test_a_malformed_tc_string_is_a_422_and_records_nothing(api: Api) -> None:
    anon = anonymous()
    response = api.put(Scope.WRITE, {"anonymous_id": anon, "source": "banner", "tcf_string": "not*base64"})
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("tcf_invalid", "tcf_string")
    assert api.get({"anonymous_id": anon}).status_code == 404


def test_the_gpc_header_records_the_opt_out_once(api: Api) -> None:
    anon = anonymous()
    first = api.put(Scope.WRITE, {"anonymous_id": anon, "source": "banner"}, **{"Sec-GPC": "1"})
    assert first.status_code == 200, first.text
    view = api.state({"anonymous_id": anon})
    sale = view["purposes"]["sale_or_share"]
    assert (sale["state"], sale["source"], sale["allowed"], first.json()["gpc"]) == (
        "denied",
        "gpc",
        False,
        True,
    )
    api.put(Scope.WRITE, {"anonymous_id": anon, "source": "banner"}, **{"Sec-GPC": "1"})
    # A request without the signal is no opt-in, even with a grant replayed from event context.
    api.put(
        Scope.WRITE, {"anonymous_id": anon, "source": "segment_context", "purposes": {"sale_or_share": True}}
    )
    later = api.state({"anonymous_id": anon})
    assert later["purposes"]["sale_or_share"]["allowed"] is False
    gpc_rows = [h for h in later["history"] if h["source"] == "gpc"]
    assert len(gpc_rows) == 1


def test_an_explicit_grant_sent_with_the_signal_applies_after_it(api: Api) -> None:
    anon = anonymous()
    body = {"anonymous_id": anon, "source": "banner", "purposes": {"sale_or_share": True, **PERSONALIZATION}}
    response = api.put(Scope.WRITE, body, **{"Sec-GPC": "1"})
    assert response.status_code == 200, response.text
    view = api.state({"anonymous_id": anon})
    assert next(h["source"] for h in view["history"]) == "gpc"
    assert view["purposes"]["sale_or_share"]["allowed"] is True
    assert view["max_level"] == "1:1"  # the grants came after the signal and lift its cap


# -- reading consent back -----------------------------------------------------------------------------


def test_the_state_at_a_past_moment(api: Api) -> None:
    uid = user()
    api.put(Scope.SERVER, {"user_id": uid, "source": "api"})
    before = datetime.now(UTC)
    api.put(
        Scope.SERVER, {"user_id": uid, "purposes": PERSONALIZATION | {"analytics": True}, "source": "api"}
    )

    now = api.get({"user_id": uid})
    assert now.status_code == 200
    body = now.json()
    assert set(body) == {"at", "regimes", "minor", "max_level", "purposes", "explicit", "objection",
                         "restriction", "limit_sensitive", "gpc", "history"}  # fmt: skip
    assert body["regimes"] == ["gdpr"]
    assert body["minor"] is False
    assert body["max_level"] == "1:1"
    assert len(body["purposes"]) == 8
    assert body["purposes"]["essential"] == {
        "state": "not_set",
        "legal_basis": "not_required",
        "allowed": True,
        "reason": "essential needs no consent (gdpr)",
        "reason_code": "not_required",
        "reason_params": {"purpose": "essential", "regime": "gdpr"},
        "at": None,
        "source": None,
        "proof": {},
    }
    granted = body["purposes"]["personalization.individual"]
    assert granted["state"] == "granted"
    assert granted["reason_code"] == "consent_granted"
    assert granted["reason_params"] == {"purpose": "personalization.individual", "regime": "gdpr"}
    assert granted["proof"]["request_id"]

    then = api.get({"user_id": uid, "at": before.isoformat()}).json()
    assert then["purposes"]["personalization.individual"]["state"] == "not_set"
    assert then["max_level"] == "1:many"  # GDPR: request context on legitimate interest only
    assert then["purposes"]["personalization.segments"]["legal_basis"] == "legitimate_interest"
    assert then["history"] == []


def test_reading_needs_a_known_subject_and_a_time_with_an_offset(api: Api) -> None:
    assert api.get({"user_id": user()}).status_code == 404
    uid = user()
    api.put(Scope.SERVER, {"user_id": uid, "source": "api"})
    naive = api.get({"user_id": uid, "at": "2026-03-03T14:02:00"})
    assert (naive.status_code, naive.json()["field"]) == (422, "at")
    assert api.get({}).status_code == 422
    assert api.get({"user_id": uid}, scope=Scope.WRITE).status_code == 403


def test_admin_flags_object_and_restrict(api: Api) -> None:
    uid = user()
    api.put(Scope.SERVER, {"user_id": uid, "purposes": PERSONALIZATION, "source": "api"})
    headers = bearer(api.keys[Scope.ADMIN])
    flags = api.client.put(
        "/v1/admin/subjects/flags", json={"user_id": uid, "objection": True}, headers=headers
    )
    assert flags.json() == {"objection": True, "restriction": False, "limit_sensitive": False}
    view = api.get({"user_id": uid}).json()
    assert view["objection"] is True
    assert view["max_level"] == "1:some"  # predictive profiling serves direct marketing: stopped

    restrict = {"user_id": uid, "restriction": True}
    assert (
        api.client.put("/v1/admin/subjects/flags", json=restrict, headers=headers).json()["restriction"]
        is True
    )
    view = api.get({"user_id": uid}).json()
    assert (view["restriction"], view["max_level"]) == (True, "1:all")
    unknown = api.client.put(
        "/v1/admin/subjects/flags", json={"user_id": user(), "objection": True}, headers=headers
    )
    assert unknown.status_code == 404


def test_admin_flags_limit_the_use_of_sensitive_data(api: Api) -> None:
    uid = user()
    api.put(Scope.SERVER, {"user_id": uid, "purposes": PERSONALIZATION, "source": "api"})
    headers = bearer(api.keys[Scope.ADMIN])

    def set_flags(**flags: object) -> Any:
        return api.client.put("/v1/admin/subjects/flags", json={"user_id": uid, **flags}, headers=headers)

    limited = set_flags(limit_sensitive=True)
    assert limited.json() == {"objection": False, "restriction": False, "limit_sensitive": True}
    view = api.get({"user_id": uid}).json()
    assert (view["limit_sensitive"], view["restriction"], view["max_level"]) == (True, False, "1:1")
    entry = view["history"][-1]
    assert (entry["target"], entry["action"], entry["source"]) == ("limit_sensitive", "denied", "api")
    assert entry["proof"]["key_id"]

    assert set_flags(objection=True).json()["limit_sensitive"] is True  # left out: kept as it is
    assert set_flags(limit_sensitive=False).json()["limit_sensitive"] is False
    assert api.get({"user_id": uid}).json()["limit_sensitive"] is False
    bad = set_flags(limit_sensitive="sometimes")
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"source": "banner"},
        {"anonymous_id": "a", "purposes": {"analytics": True}},
        {"anonymous_id": "a", "source": "gpc"},
        {"anonymous_id": "a", "source": "banner", "purposes": {"advertising": True}},
        {"anonymous_id": "a", "source": "banner", "purposes": {"analytics": "maybe"}},
        {"anonymous_id": "a", "source": "banner", "explicit": {"user.name": True}},
        {"anonymous_id": "a" * 257, "source": "banner"},
        {"anonymous_id": "a", "source": "banner", "unexpected": 1},
        {"anonymous_id": "a", "source": "banner", "parental_consent": {"reference": "x"}},
        {"anonymous_id": "a", "source": "banner", "notice_version": "v" * 201},
    ],
)
def test_bad_bodies_are_422_never_5xx(api: Api, body: dict[str, Any]) -> None:
    response = api.put(Scope.SERVER, body)
    assert response.status_code == 422, response.text


def test_a_tc_string_grants_like_any_grant(api: Api) -> None:
    text = encode_tc_string(tc_string(publisher_tc=publisher({1, 8, 9})))
    uid = user()
    response = api.put(Scope.WRITE, {"user_id": uid, "source": "banner", "tcf_string": text})
    assert response.status_code == 200, response.text
    answer = response.json()
    # Its grants wait for proof; its refusals (purposes 5 and 6 not consented) are recorded.
    assert {r["target"] for r in answer["refused"]} == {"analytics"}
    assert {r["code"] for r in answer["refused"]} == {"subject_token_required"}
    assert {c["choice"] for c in answer["recorded"]} == {"refused"}
    view = api.state({"user_id": uid})
    assert view["purposes"]["analytics"]["state"] == "not_set"
    assert view["purposes"]["personalization.predictive"]["state"] == "denied"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["user_id", "anonymous_id", "purposes", "explicit", "parental_consent", "source", "notice_version",
     "tcf_string", "subject_token"]
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(body=st.dictionaries(FIELDS, JSON, max_size=6) | JSON)
def test_no_body_gets_a_server_error(api: Api, body: object) -> None:
    for scope in (Scope.WRITE, Scope.SERVER):
        response = api.client.put(
            "/v1/consent", json=body, headers=bearer(api.keys[scope]) | {"Sec-GPC": "1"}
        )
        assert response.status_code < 500, response.text
