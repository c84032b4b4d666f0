"""Privacy requests over HTTP: who may file what with which key, a person reading only their own
request, narrowing requests done before the answer (and told nobody whether the person is held), the
pending link, nothing held, audit entries without identifiers, the operator's listing, extensions and
rejections, the filing rate limit, and the documentation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import func, select

from tactful import main
from tactful.api.privacy_jobs import job_context
from tactful.audit.models import AuditEntry
from tactful.config import RateLimits
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Subject
from tactful.rights.jobs import JobRunner
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.api.test_public_key_trust import identify, uid
from tests.backends import migrated_database

GRANTS = {"analytics": True, "personalization.segments": True}


@dataclass(frozen=True)
class Api:
    context: AppContext
    client: TestClient
    keys: dict[Scope, str]

    def __repr__(self) -> str:
        return "Api()"

    def token(self, user_id: str, *, lifetime: timedelta = timedelta(minutes=5)) -> str:
        secret = self.context.settings.subject_token_secret.get_secret_value()
        return issue_subject_token(secret=secret, user_id=user_id, at=datetime.now(UTC), lifetime=lifetime)

    def file(self, body: dict[str, Any], *, scope: Scope = Scope.ADMIN, **headers: str) -> httpx2.Response:
        return self.client.post("/v1/privacy/requests", json=body, headers=bearer(self.keys[scope]) | headers)

    def filed(self, body: dict[str, Any], *, scope: Scope = Scope.ADMIN) -> dict[str, Any]:
        response = self.file(body, scope=scope)
        assert response.status_code == 202, response.text
        found: dict[str, Any] = response.json()
        return found

    def read(self, public_id: str, *, scope: Scope = Scope.ADMIN, **headers: str) -> httpx2.Response:
        return self.client.get(
            f"/v1/privacy/requests/{public_id}", headers=bearer(self.keys[scope]) | headers
        )

    def mine(self, public_id: str, user_id: str) -> httpx2.Response:
        return self.read(public_id, scope=Scope.WRITE, **{"X-Tactful-Subject-Token": self.token(user_id)})

    def run_jobs(self) -> None:
        JobRunner(job_context(self.context)).run_pending(limit=1000)

    def known(self, *, scope: Scope = Scope.SERVER) -> str:
        """A person Tactful holds, with a consent record."""
        user = uid("user")
        response = self.client.put(
            "/v1/consent",
            json={"user_id": user, "source": "api", "purposes": GRANTS},
            headers=bearer(self.keys[scope]),
        )
        assert response.status_code == 200, response.text
        return user

    def consent(self, **who: str) -> dict[str, Any]:
        response = self.client.get("/v1/consent", params=who, headers=bearer(self.keys[Scope.SERVER]))
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def subjects(self) -> int:
        with self.context.session() as session:
            return int(session.scalar(select(func.count()).select_from(Subject)) or 0)

    def audit_tail(self, count: int) -> list[AuditEntry]:
        with self.context.session() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(count)).all()
            session.expunge_all()
        return list(reversed(rows))


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("privacy")) as db:
        context = app_context(db, keystore)
        # Many filings from one address: the filing limit has a test of its own.
        context.settings.rate_limits = RateLimits(privacy_filings=0)
        keys = {scope: issue(context, scope, name=f"privacy {scope}") for scope in Scope}
        yield Api(context, client(context), keys)


def problem(response: httpx2.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["code"])


# -- filing as the operator ------------------------------------------------------------------------


def test_an_operator_files_and_the_server_runs_the_job(api: Api) -> None:
    user = api.known()
    body = api.filed({"type": "access", "user_id": user, "verified_by": "operator"})
    assert set(body) == {
        "id",
        "type",
        "status",
        "due_at",
        "receipt",
        "download_url",
        "received_at",
        "closed_at",
        "recipients",
    }
    assert body["status"] == "verified"
    assert body["download_url"] is None
    assert datetime.fromisoformat(body["due_at"]) > datetime.fromisoformat(body["received_at"])
    api.run_jobs()
    done = api.read(body["id"]).json()
    assert done["status"] == "completed"
    assert done["receipt"]["steps"]["export"]["held"]["consent"]["events"] == 2


@pytest.mark.parametrize("scope", [Scope.WRITE, Scope.SERVER])
def test_only_an_admin_key_files_as_the_operator(api: Api, scope: Scope) -> None:
    user = api.known()
    for kind in ("erasure", "access", "objection"):
        response = api.file({"type": kind, "user_id": user, "verified_by": "operator"}, scope=scope)
        assert problem(response, 403) == "operator_needs_admin_key"


# -- self-service with a subject token ---------------------------------------------------------------


def test_a_token_files_for_its_own_user_only(api: Api) -> None:
    alice, bob = api.known(), api.known()
    body = {"type": "erasure", "user_id": bob, "verified_by": "token", "token": api.token(alice)}
    assert problem(api.file(body, scope=Scope.WRITE), 403) == "subject_token_mismatch"
    forged = api.token(bob)[:-4] + "AAAA"
    body = {"type": "access", "user_id": bob, "verified_by": "token", "token": forged}
    assert problem(api.file(body, scope=Scope.WRITE), 401) == "subject_token_invalid"
    # In the header as in the body.
    headers = {"X-Tactful-Subject-Token": api.token(alice)}
    response = api.file(
        {"type": "access", "user_id": bob, "verified_by": "token"}, scope=Scope.WRITE, **headers
    )
    assert problem(response, 403) == "subject_token_mismatch"
    assert api.consent(user_id=bob)["purposes"]["analytics"]["state"] == "granted"  # untouched


@pytest.mark.parametrize("kind", ["access", "portability", "erasure", "rectification"])
def test_requests_to_know_delete_or_correct_need_proof_every_time(api: Api, kind: str) -> None:
    user = api.known()
    changes = {"changes": {"first_name": "Ada"}} if kind == "rectification" else {}
    mine = {"type": kind, "user_id": user, **changes}
    assert problem(api.file(mine, scope=Scope.WRITE), 422) == "verification_required"
    first = api.filed({**mine, "verified_by": "token", "token": api.token(user)}, scope=Scope.WRITE)
    assert first["status"] == "verified"
    # The same request again, without its token: the first one's proof is not carried over.
    assert problem(api.file(mine, scope=Scope.WRITE), 422) == "verification_required"


def test_a_token_proves_a_user_id_and_nothing_else(api: Api) -> None:
    user = api.known()
    token = api.token(user)
    cases = [
        (
            {"type": "access", "email": "a@example.com", "verified_by": "token", "token": token},
            "token_proves_user_id",
        ),
        (
            {"type": "access", "anonymous_id": "a-1", "verified_by": "token", "token": token},
            "token_proves_user_id",
        ),
        ({"type": "access", "user_id": user, "verified_by": "token"}, "subject_token_required"),
        ({"type": "objection", "user_id": user, "token": token}, "token_unused"),
    ]
    for body, code in cases:
        assert problem(api.file(body, scope=Scope.WRITE), 422) == code


def test_a_person_reads_their_own_request_and_no_other(api: Api) -> None:
    alice, bob = api.known(), api.known()
    theirs = api.filed(
        {"type": "access", "user_id": alice, "verified_by": "token", "token": api.token(alice)}
    )
    other = api.filed({"type": "access", "user_id": bob, "verified_by": "operator"})
    assert api.mine(theirs["id"], alice).status_code == 200
    assert problem(api.mine(other["id"], alice), 404) == "request_not_found"  # exists, not theirs
    assert problem(api.mine("prq_" + "x" * 24, alice), 404) == "request_not_found"
    assert problem(api.read(theirs["id"], scope=Scope.WRITE), 422) == "subject_token_required"
    stale = api.token(alice, lifetime=timedelta(seconds=1))
    expired_at = {"X-Tactful-Subject-Token": stale[:-2] + "zz"}
    assert problem(api.read(theirs["id"], scope=Scope.SERVER, **expired_at), 401) == "subject_token_invalid"
    assert api.read(other["id"]).status_code == 200  # the operator reads any
    response = api.mine(theirs["id"], alice)
    assert response.headers["cache-control"] == "no-store"


def test_a_request_names_its_person_by_one_identifier(api: Api) -> None:
    response = api.file({"type": "objection", "user_id": "a", "anonymous_id": "b"})
    assert problem(response, 422) == "invalid_input"
    assert problem(api.file({"type": "objection"}), 422) == "invalid_input"
    assert problem(api.file({"type": "forget_me", "user_id": "a"}), 422) == "invalid_input"


# -- narrowing at once ----------------------------------------------------------------------------------


def test_an_objection_from_a_public_key_is_done_before_the_answer_and_tells_nothing(api: Api) -> None:
    user = api.known()
    held = api.filed({"type": "objection", "user_id": user}, scope=Scope.WRITE)
    stranger = api.filed({"type": "objection", "user_id": uid("nobody")}, scope=Scope.WRITE)
    assert held["status"] == stranger["status"] == "completed"
    assert held["receipt"] is stranger["receipt"] is None  # whether the person is held stays unsaid
    assert api.consent(user_id=user)["objection"] is True
    for kind, flag in (("restriction", "restriction"), ("limit_sensitive", "limit_sensitive")):
        api.filed({"type": kind, "user_id": user}, scope=Scope.WRITE)
        assert api.consent(user_id=user)[flag] is True
    api.filed({"type": "opt_out_sale_share", "user_id": user}, scope=Scope.WRITE)
    assert api.consent(user_id=user)["purposes"]["sale_or_share"]["state"] in ("denied", "withdrawn")


def test_an_anonymous_id_never_reaches_the_user_it_was_claimed_for(api: Api) -> None:
    user = api.known()
    anonymous = uid("anon")
    write = bearer(api.keys[Scope.WRITE])
    browser = {"anonymous_id": anonymous, "source": "banner", "purposes": {"analytics": True}}
    assert api.client.put("/v1/consent", json=browser, headers=write).status_code == 200
    claim = identify(user, {}, anonymousId=anonymous)
    [result] = api.client.post("/v1/identify", json=claim, headers=write).json()["results"]
    assert (result["status"], result["refused"]) == ("accepted", [])  # a pending link, not told to a page
    api.filed({"type": "objection", "anonymous_id": anonymous}, scope=Scope.WRITE)
    assert api.consent(user_id=user)["objection"] is False
    assert api.consent(anonymous_id=anonymous)["objection"] is True
    # The operator's access request for the anonymous id exports the browser's profile alone.
    body = api.filed({"type": "access", "anonymous_id": anonymous, "verified_by": "operator"})
    api.run_jobs()
    held = api.read(body["id"]).json()["receipt"]["steps"]["export"]["held"]
    assert held["profiles"]["identities"] == 1


def test_an_identity_not_held_completes_as_nothing_held_and_creates_no_one(api: Api) -> None:
    before = api.subjects()
    stranger = uid("nobody")
    for kind in ("access", "erasure", "objection", "opt_out_sale_share"):
        api.filed({"type": kind, "user_id": stranger, "verified_by": "operator"})
    api.filed({"type": "access", "email": f"{stranger}@example.com", "verified_by": "operator"})
    api.run_jobs()
    assert api.subjects() == before
    with api.context.session() as session:
        assert profiles_service.find_subject(session, keystore=api.context.keystore, user_id=stranger) is None


def test_an_erasure_by_the_person_stays_readable_by_them(api: Api) -> None:
    user = api.known()
    body = api.filed({"type": "erasure", "user_id": user, "verified_by": "token", "token": api.token(user)})
    api.run_jobs()
    done = api.mine(body["id"], user).json()
    assert done["status"] == "completed"
    assert done["receipt"]["steps"]["destroy_keys"]["keys_destroyed"] == 1
    assert (
        api.client.get(
            "/v1/consent", params={"user_id": user}, headers=bearer(api.keys[Scope.SERVER])
        ).status_code
        == 404
    )


# -- audit -----------------------------------------------------------------------------------------------


def test_filings_and_reads_are_audited_without_identifiers(api: Api) -> None:
    user = api.known()
    email = f"{uid('ada')}@example.com"
    body = api.filed(
        {"type": "access", "user_id": user, "verified_by": "token", "token": api.token(user)},
        scope=Scope.WRITE,
    )
    api.filed({"type": "access", "email": email, "verified_by": "operator"})
    api.mine(body["id"], user)
    filed, by_email, read = api.audit_tail(3)
    assert (filed.action, by_email.action, read.action) == (
        "rights.request_filed",
        "rights.request_filed",
        "rights.request_read",
    )
    assert filed.details is not None
    assert filed.details["request"] == body["id"]
    assert filed.details["verified_by"] == "token"
    assert read.details is not None
    assert read.details["reader"] == "token"
    written = json.dumps([[e.actor, e.details, e.subject_ref] for e in (filed, by_email, read)])
    for identifier in (user, email, email.split("@")[0]):
        assert identifier not in written


# -- the operator's listing and decisions -----------------------------------------------------------------


def test_the_listing_pages_and_is_the_operators(api: Api) -> None:
    for _ in range(3):
        api.filed({"type": "access", "user_id": uid("u"), "verified_by": "operator"})
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        response = api.client.get(
            "/v1/privacy/requests", params=params, headers=bearer(api.keys[Scope.ADMIN])
        )
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    everything = api.client.get(
        "/v1/privacy/requests", params={"limit": 200}, headers=bearer(api.keys[Scope.ADMIN])
    )
    assert seen == [item["id"] for item in everything.json()["items"]]
    item = everything.json()["items"][0]
    assert {"regimes", "flags", "overdue", "verified_by", "named_by", "first_due_at"} <= set(item)
    bad = api.client.get(
        "/v1/privacy/requests", params={"cursor": "nonsense"}, headers=bearer(api.keys[Scope.ADMIN])
    )
    assert problem(bad, 422) == "invalid_cursor"
    filtered = api.client.get(
        "/v1/privacy/requests", params={"status": "rejected", "type": "erasure", "overdue": "true"},
        headers=bearer(api.keys[Scope.ADMIN]),
    )  # fmt: skip
    assert filtered.status_code == 200
    for scope in (Scope.WRITE, Scope.SERVER):
        assert api.client.get("/v1/privacy/requests", headers=bearer(api.keys[scope])).status_code == 403


def test_the_operator_extends_once_and_rejects_with_reasons(api: Api) -> None:
    user = api.known()
    body = api.filed({"type": "erasure", "user_id": user, "verified_by": "operator"})
    admin = bearer(api.keys[Scope.ADMIN])
    path = f"/v1/privacy/requests/{body['id']}"
    extended = api.client.post(f"{path}/extend", json={"reasons": "a backlog of requests"}, headers=admin)
    assert extended.status_code == 200, extended.text
    assert extended.json()["extended"] is True
    assert extended.json()["due_at"] > body["due_at"]
    again = api.client.post(f"{path}/extend", json={"reasons": "still"}, headers=admin)
    assert problem(again, 409) == "extension_not_extendable"
    rejected = api.client.post(f"{path}/reject", json={"reason": "manifestly_unfounded"}, headers=admin)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert "right_to_complain" in rejected.json()["receipt"]["rejected"]["gdpr"]
    assert (
        problem(api.client.post(f"{path}/reject", json={"reason": "other"}, headers=admin), 409)
        == "request_closed"
    )
    unknown = api.client.post(
        "/v1/privacy/requests/prq_unknown/reject", json={"reason": "other"}, headers=admin
    )
    assert problem(unknown, 404) == "request_not_found"
    api.run_jobs()
    assert api.read(body["id"]).json()["status"] == "rejected"  # a rejected request never runs


# -- rate limit and documentation --------------------------------------------------------------------------


def test_filing_has_a_rate_limit_of_its_own(api: Api) -> None:
    rate = RateLimits(privacy_filings=2, privacy_filing_window_seconds=3600)
    settings = api.context.settings.model_copy(update={"rate_limits": rate})
    limited = TestClient(main.create_app(settings, context=api.context), raise_server_exceptions=False)
    write, admin = bearer(api.keys[Scope.WRITE]), bearer(api.keys[Scope.ADMIN])
    body = {"type": "objection", "user_id": uid("nobody")}
    for _ in range(2):
        assert limited.post("/v1/privacy/requests", json=body, headers=write).status_code == 202
    refused = limited.post("/v1/privacy/requests", json=body, headers=write)
    assert problem(refused, 429) == "rate_limited"
    assert refused.json()["limit"] == "privacy_filing"
    assert int(refused.headers["retry-after"]) > 1
    assert limited.post("/v1/privacy/requests", json=body, headers=admin).status_code == 202  # trusted


def test_every_route_is_documented_with_its_problems(api: Api) -> None:
    paths = main.create_app(api.context.settings, context=api.context).openapi()["paths"]
    post = paths["/v1/privacy/requests"]["post"]
    assert "202" in post["responses"]
    for status in ("401", "403", "422", "429"):
        assert post["responses"][status]["content"]["application/problem+json"]
    assert "404" in paths["/v1/privacy/requests/{public_id}"]["get"]["responses"]
    assert "409" in paths["/v1/privacy/requests/{public_id}/extend"]["post"]["responses"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("PrivacyRequestCreate")


def _erasure_of_someone_with_an_address(api: Api) -> tuple[str, dict[str, Any]]:
    """An erasure filed for a person whose e-mail address the catalog names recipients for: their
    user id, and the answer to the filing."""
    user = api.known()
    sent = api.client.post(
        "/v1/identify",
        json=identify(user, {"email": f"{uid('ada')}@example.com"}),
        headers=bearer(api.keys[Scope.SERVER]),
    )
    assert sent.status_code == 200, sent.text
    body = api.filed({"type": "erasure", "user_id": user, "verified_by": "operator"})
    return user, body


def test_an_erasure_answer_lists_the_recipients_to_tell(api: Api) -> None:
    _, body = _erasure_of_someone_with_an_address(api)
    assert body["recipients"] == []  # named when the job runs, while the data still exists
    api.run_jobs()
    done = api.read(body["id"]).json()
    assert done["status"] == "completed"
    told = {r["recipient"]: r for r in done["recipients"]}
    assert set(told) == {"email_provider", "hosting"}  # the demo catalog's, for the e-mail address
    assert told["email_provider"]["name"] == "Example Mail Inc."
    assert {r["status"] for r in told.values()} == {"pending"}
    assert done["receipt"]["steps"]["notify_recipients"]["recipients"] == sorted(told)


def test_the_operator_marks_what_became_of_each_recipient(api: Api) -> None:
    user, body = _erasure_of_someone_with_an_address(api)
    api.run_jobs()

    def mark(recipient: str, payload: dict[str, Any], *, scope: Scope = Scope.ADMIN) -> httpx2.Response:
        return api.client.post(
            f"/v1/privacy/requests/{body['id']}/recipients/{recipient}",
            json=payload,
            headers=bearer(api.keys[scope]),
        )

    answer = mark("email_provider", {"status": "sent", "detail": "ticket 4711"})
    assert answer.status_code == 200, answer.text
    assert {t["recipient"]: t["status"] for t in answer.json()} == {
        "email_provider": "sent",
        "hosting": "pending",
    }
    [entry] = api.audit_tail(1)
    assert entry.action == "rights.recipient_marked"
    assert (entry.details["recipient"], entry.details["status"]) == ("email_provider", "sent")
    assert user not in str(entry.details)
    done = api.read(body["id"]).json()
    assert {t["recipient"]: t["status"] for t in done["recipients"]}["email_provider"] == "sent"
    # What cannot be marked: a task that does not exist, "pending" again, another key than admin.
    assert problem(mark("nobody", {"status": "sent"}), 404) == "recipient_task_not_found"
    assert problem(mark("hosting", {"status": "pending"}), 422) == "invalid_input"
    assert mark("hosting", {"status": "sent"}, scope=Scope.SERVER).status_code == 403
    unknown = api.client.post(
        "/v1/privacy/requests/prq_unknown0000/recipients/hosting",
        json={"status": "sent"},
        headers=bearer(api.keys[Scope.ADMIN]),
    )
    assert problem(unknown, 404) == "request_not_found"
