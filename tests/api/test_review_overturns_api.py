"""An overturned review binds the person's later decisions (GDPR Art. 22(3), DESIGN §1): a significant
experience decides for a person, they contest it with their subject token, an operator overturns
it, and from the very next `POST /v1/decide` that experience no longer serves them, with the reason
in codes and in their language; someone else is unaffected; a profile merged into theirs keeps it;
once the review's record is swept the experience may serve again; erasure takes every review."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tactful.rights.models import DecisionReview
from tactful.rights.registry import RightsContext, erase_all
from tactful.rights.retention import run_retention
from tactful.types import utcnow
from tests.api.builders import AppContext, TestClient, app_context, bearer, client, issue
from tests.api.test_consent_api import user
from tests.api.test_reviews_api import ADMIN, TOKEN_HEADER, review_url, shop, token
from tests.backends import migrated_database

OVERTURN = {
    "outcome": "overturned",
    "reason": "The member price does not fit your case; the list price applies.",
}
SIGNIFICANT = {"source": "api", "explicit": {"significant_decisions": True}}


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


@pytest.fixture
def api(context: AppContext) -> TestClient:
    return client(context)


@pytest.fixture
def keys(context: AppContext) -> dict[Scope, dict[str, str]]:
    return {scope: bearer(issue(context, scope, name=f"overturns {scope}")) for scope in Scope}


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def price(api: TestClient, server: dict[str, str], **who: str) -> dict[str, Any]:
    """The person's answer for `price_box`, after they gave the explicit consent."""
    _ok(api.put("/v1/consent", json={**who, **SIGNIFICANT}, headers=server))
    body = {**who, "placements": ["price_box"]}
    [answer] = _ok(api.post("/v1/decide", json=body, headers=server))["decisions"]
    return answer


def overturn(
    api: TestClient, keys: dict[Scope, dict[str, str]], decision: str, filer: dict[str, str]
) -> None:
    review = _ok(api.post(review_url(decision), json={"kind": "contest"}, headers=filer))
    _ok(api.post(f"{ADMIN}/reviews/{review['id']}/answer", json=OVERTURN, headers=keys[Scope.ADMIN]))


def test_an_overturned_decision_is_not_made_again_for_that_person_until_its_record_goes(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    server, person, other = keys[Scope.SERVER], user(), user()
    first = price(api, server, user_id=person)
    assert (first["experience"], first["variation"]) == ("member_price", "member")
    assert "overturned" not in first["explanation"]

    # The person contests with the site's public key and their token; an operator overturns it.
    theirs = keys[Scope.WRITE] | {TOKEN_HEADER: token(context, person)}
    overturn(api, keys, first["decision_id"], theirs)

    after = price(api, server, user_id=person)
    assert (after["experience"], after["variation"], after["level"]) == (None, "default", "1:all")
    assert after["content"] == {"price": "100 kr"}
    assert after["explanation"]["overturned"] == [
        {"level": "1:all", "code": "overturned_by_review", "experience": "member_price"}
    ]
    assert "significant" not in after["explanation"]  # the default has no significant effect
    url = f"/v1/decisions/{after['decision_id']}/explanation"
    english = _ok(api.get(url, params={"locale": "en"}, headers=keys[Scope.WRITE]))
    assert "A person at the shop reviewed an earlier decision about you and it no longer applies" in " ".join(
        english["summary"]
    )
    assert english["your_rights"] == []
    swedish = _ok(api.get(url, params={"locale": "sv"}, headers=keys[Scope.WRITE]))
    assert any("granskade ett tidigare beslut om dig" in s for s in swedish["summary"])

    # Someone else still gets the member price.
    assert price(api, server, user_id=other)["experience"] == "member_price"

    # The review's record is kept for its retention; the sweep after it lets the experience serve again.
    days = context.settings.privacy.review_record_days
    with context.session() as session:
        answered_at = session.scalars(select(DecisionReview.answered_at)).one()
    assert answered_at is not None

    def sweep(after: timedelta) -> int:
        with context.session() as session:
            report = run_retention(
                session, catalog=context.catalog, settings=context.settings, at=utcnow() + after,
                keystore=context.keystore,
            )  # fmt: skip
        return report.total("decision reviews")

    assert sweep(timedelta(days=days - 1)) == 0
    assert price(api, server, user_id=person)["experience"] is None
    assert sweep(timedelta(days=days + 1)) == 1
    again = price(api, server, user_id=person)
    assert (again["experience"], "overturned" in again["explanation"]) == ("member_price", False)


def test_an_overturn_follows_the_person_into_their_account_and_erasure_takes_it(
    api: TestClient, context: AppContext, keys: dict[Scope, dict[str, str]]
) -> None:
    shop(api, keys[Scope.ADMIN])
    server, person, anon = keys[Scope.SERVER], user(), f"anon-{user()}"
    assert price(api, server, user_id=person)["experience"] == "member_price"
    # Browsing anonymously, the person is decided for and the site's backend files the contest.
    browsing = price(api, server, anonymous_id=anon)
    assert browsing["experience"] == "member_price"
    overturn(api, keys, browsing["decision_id"], server)
    assert price(api, server, anonymous_id=anon)["experience"] is None
    assert price(api, server, user_id=person)["experience"] == "member_price"  # not yet one person

    # They log in: the backend links the browser to the account, and the profiles merge.
    _ok(api.put("/v1/consent", json={"user_id": person, "anonymous_id": anon, **SIGNIFICANT}, headers=server))
    with context.session() as session:
        survivor = profiles_service.find_subject(session, keystore=context.keystore, user_id=person)
        assert survivor is not None
        assert (
            profiles_service.find_subject(session, keystore=context.keystore, anonymous_id=anon) == survivor
        )
        [reviewed] = session.scalars(select(DecisionReview.subject_id)).all()
        assert reviewed != survivor  # the review stays with the profile it was filed for
    logged_in = price(api, server, user_id=person)
    assert logged_in["experience"] is None
    assert [s["code"] for s in logged_in["explanation"]["overturned"]] == ["overturned_by_review"]

    with context.session() as session:
        ctx = RightsContext(session=session, keystore=context.keystore, settings=context.settings,
                            logbook=context.logbook)  # fmt: skip
        assert erase_all(ctx, survivor)["decision_reviews"] == 1
    with context.session() as session:
        assert session.scalar(select(func.count()).select_from(DecisionReview)) == 0


def test_the_answer_endpoint_documents_what_an_overturn_binds_and_for_how_long(api: TestClient) -> None:
    answer = api.get("/openapi.json").json()["paths"]["/v1/admin/reviews/{review_id}/answer"]["post"]
    for said in ("overturned_by_review", "later versions", "merges", "TACTFUL_PRIVACY__REVIEW_RECORD_DAYS"):
        assert said in answer["description"], said
