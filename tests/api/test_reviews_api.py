"""Human review of significant decisions over HTTP (GDPR Art. 22(3)): the person files with their
subject token or the site's backend with a server key; a public key learns nothing about decisions
that are not its person's; the operator's queue puts what is overdue first; answers are audited with
the key that gave them; erasure takes the reviews with the person."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.decide import log as decision_log
from tactful.errors import KeyDestroyed
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.profiles import service as profiles_service
from tactful.rights.due import add_months
from tactful.rights.models import DecisionReview
from tactful.rights.registry import RightsContext, erase_all, export_all
from tactful.types import utcnow
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.api.test_consent_api import user
from tests.api.test_ratelimit import http, limited_app
from tests.backends import migrated_database

ADMIN = "/v1/admin"
TOKEN_HEADER = "X-Tactful-Subject-Token"
PRICE = {"key": "price_box", "channel": "web", "default": {"content": {"price": "100 kr"}}}
HERO = {"key": "home_hero", "channel": "web", "default": {"content": {"headline": "Welcome"}}}
MEMBER_PRICE = {
    "key": "member_price",
    "placement": "price_box",
    "significant_effect": True,
    "variations": [{"key": "member", "content": {"price": "80 kr"}}],
}


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def keys(context: AppContext) -> dict[Scope, dict[str, str]]:
    return {scope: bearer(issue(context, scope, name=f"reviews {scope}")) for scope in Scope}


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def shop(api: TestClient, admin: dict[str, str]) -> None:
    """`price_box` with a significant member price over a default price; `home_hero` with nothing but
    its default."""
    for placement in (PRICE, HERO):
        _ok(api.post(f"{ADMIN}/placements", json=placement, headers=admin))
    _ok(api.post(f"{ADMIN}/experiences", json=MEMBER_PRICE, headers=admin))
    _ok(api.post(f"{ADMIN}/experiences/member_price/publish", headers=admin))


def decided(
    api: TestClient, server: dict[str, str], person: str, *, significant: bool = True
) -> dict[str, str]:
    """The person's decisions by placement, after they gave (or refused) the explicit consent."""
    choice = {"user_id": person, "source": "api", "explicit": {"significant_decisions": significant}}
    _ok(api.put("/v1/consent", json=choice, headers=server))
    body = {"user_id": person, "placements": ["price_box", "home_hero"]}
    answers = {d["placement"]: d for d in _ok(api.post("/v1/decide", json=body, headers=server))["decisions"]}
    assert answers["price_box"]["experience"] == ("member_price" if significant else None)
    return {placement: answer["decision_id"] for placement, answer in answers.items()}


def token(context: AppContext, person: str) -> str:
    secret = context.settings.subject_token_secret.get_secret_value()
    return issue_subject_token(secret=secret, user_id=person, at=utcnow())


def review_url(decision_id: str) -> str:
    return f"/v1/decisions/{decision_id}/review"


def test_the_person_asks_for_review_and_contests_and_reads_the_answer(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    person = user()
    decision = decided(api, keys[Scope.SERVER], person)["price_box"]
    mine = keys[Scope.WRITE] | {TOKEN_HEADER: token(context, person)}
    statement = "I am a member since 2019, write to ada@example.com or call +46 70 123 45 67"

    filed = api.post(review_url(decision), json={"statement": statement}, headers=mine)
    assert filed.status_code == 201, filed.text
    review = filed.json()
    assert (review["kind"], review["status"], review["outcome"]) == ("review", "open", None)
    assert review["statement_removed"] == ["email", "phone"]
    assert "ada@example.com" not in filed.text
    again = api.post(review_url(decision), json={"statement": "another"}, headers=mine)
    assert (again.status_code, again.json()["id"]) == (200, review["id"])  # one per decision and kind
    contest = {"kind": "contest", "subject_token": token(context, person)}  # the token in the body
    contested = api.post(review_url(decision), json=contest, headers=keys[Scope.WRITE])
    assert contested.status_code == 201, contested.text
    assert contested.json()["id"] != review["id"]

    with context.session() as session:
        row = session.scalars(select(DecisionReview).where(DecisionReview.public_id == review["id"])).one()
        assert b"member since" not in (row.statement_enc or b"")  # sealed
        assert row.filed_by == "subject_token"

    queued = _ok(api.get(f"{ADMIN}/reviews/{review['id']}", headers=keys[Scope.ADMIN]))
    assert queued["statement"] == "I am a member since 2019, write to [email] or call [phone]"
    assert queued["decision"]["variation"] == "member"
    assert queued["decision"]["level"] == "1:all"
    assert queued["decision"]["sentences"]
    assert "80 kr" not in str(queued["decision"])  # the explanation, never what was shown or read
    assert queued["overdue"] is False
    filed_on = datetime.fromisoformat(review["filed_at"]).date()
    assert datetime.fromisoformat(queued["due_at"]).date() == add_months(filed_on, 1)  # a calendar month

    answer = {"outcome": "overturned", "reason": "The member price applies; mail ada@example.com"}
    answered = _ok(api.post(f"{ADMIN}/reviews/{review['id']}/answer", json=answer, headers=keys[Scope.ADMIN]))
    assert answered["status"] == "answered"
    assert answered["answered_key_id"] == str(_key_id(keys[Scope.ADMIN]))
    twice = api.post(f"{ADMIN}/reviews/{review['id']}/answer", json=answer, headers=keys[Scope.ADMIN])
    assert (twice.status_code, twice.json()["code"]) == (409, "review_answered")

    seen = _ok(api.get(review_url(decision), headers=mine))
    assert [r["kind"] for r in seen["reviews"]] == ["contest", "review"]
    [reviewed] = [r for r in seen["reviews"] if r["kind"] == "review"]
    assert (reviewed["outcome"], reviewed["reason"]) == (
        "overturned",
        "The member price applies; mail [email]",
    )
    assert reviewed["replacement"] == {
        "variation": "default",
        "content": {"price": "100 kr"},
        "level": "1:all",
    }
    by_backend = _ok(api.get(review_url(decision), headers=keys[Scope.SERVER]))
    assert by_backend == seen


def _key_id(headers: dict[str, str]) -> uuid.UUID:
    return uuid.UUID(headers["Authorization"].split("_")[2])


def test_a_public_key_learns_nothing_about_decisions_that_are_not_its_persons(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    ada, bob = user(), user()
    theirs = decided(api, keys[Scope.SERVER], ada)
    decision, ordinary = theirs["price_box"], theirs["home_hero"]
    public = keys[Scope.WRITE]
    unknown = "dc_" + "A" * 22

    def refused(url: str, headers: dict[str, str], body: dict[str, Any] | None = None) -> tuple[int, str]:
        response = (
            api.post(url, json=body or {}, headers=headers)
            if body is not None
            else api.get(url, headers=headers)
        )
        return response.status_code, response.json()["code"]

    not_found = (404, "decision_not_found")
    for body in ({}, None):  # filing and reading alike
        assert refused(review_url(decision), public, body) == not_found  # no token
        assert refused(review_url(decision), public | {TOKEN_HEADER: token(context, bob)}, body) == not_found
        assert refused(review_url(unknown), public | {TOKEN_HEADER: token(context, ada)}, body) == not_found
        # Not significant: still the 404 for a stranger, a 409 only for the person or the backend.
        assert refused(review_url(ordinary), public, body) == not_found
    stranger = {"subject_token": token(context, bob)}
    assert refused(review_url(decision), public, stranger) == not_found
    secret = "not the deployment's secret, but long enough"
    forged = issue_subject_token(secret=secret, user_id=ada, at=utcnow())
    assert refused(review_url(decision), public | {TOKEN_HEADER: forged}, {}) == (
        401,
        "subject_token_invalid",
    )
    assert refused(review_url(unknown), public | {TOKEN_HEADER: forged}, {}) == (401, "subject_token_invalid")

    not_significant = (409, "decision_not_significant")
    assert refused(review_url(ordinary), keys[Scope.SERVER], {}) == not_significant
    assert refused(review_url(ordinary), public | {TOKEN_HEADER: token(context, ada)}, {}) == not_significant
    # Nothing was filed by any of it: the person's own read finds no review yet.
    mine = public | {TOKEN_HEADER: token(context, ada)}
    assert refused(review_url(decision), mine, None) == (404, "review_not_found")
    with context.session() as session:
        assert session.scalars(select(DecisionReview)).all() == []


def test_a_body_member_cannot_widen_what_a_public_key_may_do(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    decision = decided(api, keys[Scope.SERVER], user())["price_box"]
    for extra in ({"user_id": "someone"}, {"filed_by": "server_key"}, {"subject_id": str(uuid.uuid4())}):
        response = api.post(review_url(decision), json=extra, headers=keys[Scope.WRITE])
        assert (response.status_code, response.json()["code"]) == (422, "invalid_input")
    long = api.post(review_url(decision), json={"statement": "x" * 4001}, headers=keys[Scope.SERVER])
    assert (long.status_code, long.json()["code"]) == (422, "invalid_input")
    nul = api.post(review_url(decision), json={"statement": "a\u0000b"}, headers=keys[Scope.SERVER])
    assert nul.status_code == 422
    kind = api.post(review_url(decision), json={"kind": "appeal"}, headers=keys[Scope.SERVER])
    assert kind.status_code == 422


def test_the_queue_puts_overdue_reviews_first_and_filters_and_pages(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    admin, server = keys[Scope.ADMIN], keys[Scope.SERVER]
    filed = []
    for _ in range(4):
        decision = decided(api, server, user())["price_box"]
        filed.append(_ok(api.post(review_url(decision), json={}, headers=server))["id"])
    contest = _ok(api.post(review_url(decision), json={"kind": "contest"}, headers=server))["id"]
    now = utcnow()
    due = {  # two overdue (one of them answered: no longer due), three ahead
        filed[0]: now + timedelta(days=20),
        filed[1]: now - timedelta(days=2),
        filed[2]: now - timedelta(days=9),
        filed[3]: now + timedelta(days=5),
        contest: now - timedelta(days=30),
    }
    with context.session() as session:
        for public_id, at in due.items():
            session.execute(
                update(DecisionReview).where(DecisionReview.public_id == public_id).values(due_at=at)
            )
    answer = {"outcome": "upheld", "reason": "The price follows the published rule."}
    _ok(api.post(f"{ADMIN}/reviews/{contest}/answer", json=answer, headers=admin))

    listed = _ok(api.get(f"{ADMIN}/reviews", headers=admin))
    assert [r["id"] for r in listed["items"]] == [filed[2], filed[1], contest, filed[3], filed[0]]
    assert [r["overdue"] for r in listed["items"]] == [True, True, False, False, False]
    overdue = _ok(api.get(f"{ADMIN}/reviews", params={"overdue": "true"}, headers=admin))
    assert [r["id"] for r in overdue["items"]] == [filed[2], filed[1]]
    answered = _ok(api.get(f"{ADMIN}/reviews", params={"status": "answered"}, headers=admin))
    assert [(r["id"], r["outcome"]) for r in answered["items"]] == [(contest, "upheld")]
    contests = _ok(api.get(f"{ADMIN}/reviews", params={"kind": "contest"}, headers=admin))
    assert [r["id"] for r in contests["items"]] == [contest]

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = _ok(api.get(f"{ADMIN}/reviews", params=params, headers=admin))
        pages += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [r["id"] for r in listed["items"]]
    bad = api.get(f"{ADMIN}/reviews", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=admin)
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_cursor")
    for scope in (Scope.WRITE, Scope.SERVER):
        assert api.get(f"{ADMIN}/reviews", headers=keys[scope]).status_code == 403
    missing = api.get(f"{ADMIN}/reviews/rv_nothing", headers=admin)
    assert (missing.status_code, missing.json()["code"]) == (404, "review_not_found")
    blank = api.post(f"{ADMIN}/reviews/{filed[0]}/answer", json=answer | {"reason": "  "}, headers=admin)
    assert (blank.status_code, blank.json()["code"]) == (422, "invalid_input")


def test_filing_reading_and_answering_are_audited_by_keyed_reference_without_the_words(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    person = user()
    decision = decided(api, keys[Scope.SERVER], person)["price_box"]
    mine = keys[Scope.WRITE] | {TOKEN_HEADER: token(context, person)}
    review = _ok(api.post(review_url(decision), json={"statement": "Please look again"}, headers=mine))
    _ok(api.get(f"{ADMIN}/reviews/{review['id']}", headers=keys[Scope.ADMIN]))
    answer = {"outcome": "upheld", "reason": "The rule was applied as published"}
    _ok(api.post(f"{ADMIN}/reviews/{review['id']}/answer", json=answer, headers=keys[Scope.ADMIN]))

    with context.session() as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("rights.review%")).order_by(AuditEntry.seq)
        ).all()
        subject = profiles_service.find_subject(session, keystore=context.keystore, user_id=person)
    assert subject is not None
    assert [e.action for e in entries] == [
        "rights.review_filed",
        "rights.review_read",
        "rights.review_answered",
    ]
    reference = context.keystore.subject_ref(subject)
    assert {e.subject_ref for e in entries} == {reference}
    filed, read, answered = entries
    assert (filed.details["filed_by"], filed.details["key_id"]) == (
        "subject_token",
        str(_key_id(keys[Scope.WRITE])),
    )
    assert (read.details["reader"], answered.details["outcome"]) == ("operator", "upheld")
    assert answered.details["key_id"] == str(_key_id(keys[Scope.ADMIN]))
    text = str([(e.actor, e.details) for e in entries])
    for secret in ("Please look again", "The rule was applied", decision, person):
        assert secret not in text


def test_erasure_takes_the_reviews_and_shreds_their_words(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    person = user()
    decision = decided(api, keys[Scope.SERVER], person)["price_box"]
    review = _ok(api.post(review_url(decision), json={"statement": "I disagree"}, headers=keys[Scope.SERVER]))
    _ok(api.post(f"{ADMIN}/reviews/{review['id']}/answer", json={"outcome": "overturned", "reason": "Agreed"},
                 headers=keys[Scope.ADMIN]))  # fmt: skip

    with context.session() as session:
        subject = profiles_service.find_subject(session, keystore=context.keystore, user_id=person)
        assert subject is not None
        row = session.scalars(select(DecisionReview)).one()
        sealed, row_id = row.statement_enc, row.id
        ctx = RightsContext(session=session, keystore=context.keystore, settings=context.settings,
                            logbook=context.logbook)  # fmt: skip
        [exported] = export_all(ctx, subject)["decision_reviews"]["reviews"]  # type: ignore[index]
        assert (exported["id"], exported["statement"], exported["reason"]) == (
            review["id"],
            "I disagree",
            "Agreed",
        )
        assert exported["outcome"] == "overturned"
        removed = erase_all(ctx, subject)
        assert removed["decision_reviews"] == 1
    with context.session() as session:
        assert session.scalars(select(DecisionReview)).all() == []
    assert sealed is not None
    with pytest.raises(KeyDestroyed):
        context.keystore.decrypt(subject, sealed, context=f"decision-review-statement:{row_id}")
    gone = api.get(review_url(decision), headers=keys[Scope.SERVER])
    assert (gone.status_code, gone.json()["code"]) == (404, "decision_not_found")


def test_the_explanation_of_a_significant_decision_names_review_and_contest(
    api: TestClient, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    decisions = decided(api, keys[Scope.SERVER], user())
    url = f"/v1/decisions/{decisions['price_box']}/explanation"
    swedish = _ok(api.get(url, params={"locale": "sv"}, headers=keys[Scope.WRITE]))
    assert swedish["significant"] is True
    assert any("bestrida" in sentence for sentence in swedish["your_rights"])
    english = _ok(api.get(url, params={"locale": "en"}, headers=keys[Scope.WRITE]))
    assert any("contest" in sentence for sentence in english["your_rights"])
    ordinary = _ok(api.get(f"/v1/decisions/{decisions['home_hero']}/explanation", headers=keys[Scope.WRITE]))
    assert (ordinary["significant"], ordinary["your_rights"]) == (False, [])


def test_filing_is_rate_limited_for_public_keys(
    context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    limited = http(limited_app(context, per_key_and_address=3))
    decision = "dc_" + "B" * 22
    codes = [
        limited.post(review_url(decision), json={}, headers=keys[Scope.WRITE]).status_code for _ in range(5)
    ]
    assert codes[:3] == [404, 404, 404]
    assert codes[3:] == [429, 429]


def test_every_review_route_is_documented(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    operations = [
        (
            paths["/v1/decisions/{decision_id}/review"]["post"],
            {"201", "200", "401", "403", "404", "409", "422"},
        ),
        (paths["/v1/decisions/{decision_id}/review"]["get"], {"200", "401", "403", "404"}),
        (paths["/v1/admin/reviews"]["get"], {"200", "401", "403", "422"}),
        (paths["/v1/admin/reviews/{review_id}"]["get"], {"200", "401", "403", "404"}),
        (paths["/v1/admin/reviews/{review_id}/answer"]["post"], {"200", "401", "403", "404", "409", "422"}),
    ]
    for operation, statuses in operations:
        assert operation["summary"]
        assert len(operation["description"]) > 80
        assert statuses <= set(operation["responses"]), operation["summary"]
        for status in statuses - {"200", "201"}:
            assert operation["responses"][status]["description"]
    filing = paths["/v1/decisions/{decision_id}/review"]["post"]
    assert "decision_not_significant" in filing["responses"]["409"]["description"]
    assert "429" in filing["responses"]


def test_a_review_outlives_its_decisions_log_entry(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    person = user()
    decision = decided(api, keys[Scope.SERVER], person)["price_box"]
    mine = keys[Scope.WRITE] | {TOKEN_HEADER: token(context, person)}
    _ok(api.post(review_url(decision), json={}, headers=mine))
    assert context.logbook is not None
    context.logbook.flush()
    with context.session() as session:
        assert decision_log.expire(session, before=utcnow() + timedelta(days=1)) >= 2  # its retention ran
    assert api.get(f"/v1/decisions/{decision}/explanation", headers=mine).status_code == 404
    assert [r["status"] for r in _ok(api.get(review_url(decision), headers=mine))["reviews"]] == ["open"]
    other = keys[Scope.WRITE] | {TOKEN_HEADER: token(context, user())}
    assert api.get(review_url(decision), headers=other).json()["code"] == "decision_not_found"
