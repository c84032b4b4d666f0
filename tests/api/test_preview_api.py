"""The admin preview of an experience with a significant effect: the made-up subject may say it gave
the explicit consent `significant_decisions` and is an adult (the gate's own reading of age), and
the marketer sees the experience with its explanation and the sentences its person would read;
without that, and for a minor, the preview shows why it does not serve. Nothing is logged or
stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tactful.config import PolicySettings
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.profiles.models import Subject
from tests.api.builders import AppContext, TestClient, app, app_context, bearer, client, issue
from tests.api.test_reviews_api import shop
from tests.backends import migrated_database

PREVIEW = "/v1/admin/placements/price_box/preview"


@pytest.fixture
def context(backend: str, tmp_path: Path, keystore: Keystore) -> Iterator[AppContext]:
    with migrated_database(backend, tmp_path) as db:
        yield app_context(db, keystore)


def admin_of(context: AppContext) -> tuple[TestClient, dict[str, str]]:
    """A client of the app with the member price (significant) live over the default price."""
    api, admin = client(context), bearer(issue(context, Scope.ADMIN, name="preview admin"))
    shop(api, admin)
    return api, admin


def previewed(api: TestClient, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    response = api.post(PREVIEW, json=body, headers=admin)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_significant_experience_is_previewed_with_the_explicit_consent_of_an_adult(
    context: AppContext,
) -> None:
    api, admin = admin_of(context)
    with context.session() as session:
        subjects = session.scalar(select(func.count()).select_from(Subject))

    plain = previewed(api, admin)  # as before: no such consent, so the default
    assert (plain["experience"], plain["content"], plain["significant"]) == (None, {"price": "100 kr"}, False)
    assert plain["explanation"]["consent_downgrade"] is True  # below what the placement could show

    shown = previewed(api, admin, significant_decisions=True)
    assert (shown["experience"], shown["variation"], shown["content"]) == (
        "member_price",
        "member",
        {"price": "80 kr"},
    )
    assert shown["significant"] is True
    assert shown["explanation"]["significant"] is True
    assert shown["explanation"]["atoms"] == []  # the age the gate read is no atom of the decision
    assert shown["sentences"]["your_rights"]  # the person may ask for review and contest it
    assert shown["sentences"]["summary"]

    swedish = previewed(api, admin, significant_decisions=True, context={"locale": "sv-SE"})
    assert swedish["sentences"]["your_rights"] != shown["sentences"]["your_rights"]

    for minor in ({"traits.age_range": "13-17"}, {"traits.birthdate": "2015-06-01"}):
        young = previewed(api, admin, significant_decisions=True, atoms=minor)
        assert (young["experience"], young["content"]) == (None, {"price": "100 kr"})
        assert "minor_cap" in [s["code"] for s in young["explanation"]["not_higher"]]

    assert context.logbook is not None
    assert context.logbook.sequence == 0  # a preview is no decision
    with context.session() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == subjects


def test_the_made_up_adult_is_an_adult_where_unknown_ages_count_as_minors(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    with migrated_database(backend, tmp_path) as db:
        policy = PolicySettings(assume_minor_when_age_unknown=True, minor_age=21)
        context = app_context(db, keystore, policy=policy)
        api, admin = admin_of(context)
        assert previewed(api, admin, significant_decisions=True)["experience"] == "member_price"
        twenty = previewed(api, admin, significant_decisions=True, atoms={"traits.age_range": "18-24"})
        assert twenty["experience"] is None  # an age given is the age read


def test_the_preview_documents_the_explicit_consent() -> None:
    schema = app().openapi()
    operation = schema["paths"]["/v1/admin/placements/{key}/preview"]["post"]
    assert "significant" in operation["description"]
    request = schema["components"]["schemas"]["PreviewRequest"]["properties"]["significant_decisions"]
    assert request["default"] is False
    assert "adult" in request["description"]
    answer = schema["components"]["schemas"]["PreviewView"]["properties"]
    assert {"significant", "sentences"} <= set(answer)
