"""Attacks with nothing but the public write key and what a browser can send (DESIGN §3 invariants
15–16, §4 trust of public keys). Each test is one attack, written so that it fails if the hole opens.

    1 redirect someone's e-mail lookups ─ give their address for an own visitor, or for oneself
                                           with a token, or by rectification ──▶ the index stays

The legitimate flows next to each attack still work (first come for an address no one holds, the
site's backend and the operator moving one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tactful.config import PrivacySettings, RateLimits
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.profiles import service as profiles_service
from tests.api.builders import app_context, basic, bearer, client, issue
from tests.api.test_privacy_api import Api
from tests.api.test_public_key_trust import identify, uid
from tests.api.test_reviews_api import shop
from tests.backends import migrated_database


@pytest.fixture(scope="module")
def api(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Api]:
    with migrated_database(backend, tmp_path_factory.mktemp("attacks")) as db:
        context = app_context(db, keystore)
        context.settings.rate_limits = RateLimits(privacy_filings=0)
        context.settings.privacy = PrivacySettings(export_dir=tmp_path_factory.mktemp("packages"))
        keys = {scope: issue(context, scope, name=f"attacks {scope}") for scope in Scope}
        api = Api(context, client(context), keys)
        shop(api.client, bearer(keys[Scope.ADMIN]))
        yield api


def holder(api: Api, email: str) -> Any:
    """The subject the blind index finds for `email`, as the operator's lookups see it."""
    with api.context.session() as session:
        return profiles_service.find_subject(session, keystore=api.context.keystore, email=email)


def subject(api: Api, **who: str) -> Any:
    with api.context.session() as session:
        return profiles_service.find_subject(session, keystore=api.context.keystore, **who)


def sent(api: Api, path: str, body: Any, *, scope: Scope = Scope.WRITE, plain: bool = False) -> None:
    if plain:
        payload = {**body, "writeKey": api.keys[scope]}
        response = api.client.post(path, content=json.dumps(payload), headers={"Content-Type": "text/plain"})
    else:
        response = api.client.post(path, json=body, headers=basic(api.keys[scope]))
    assert response.status_code == 200, response.text


def customer(api: Api) -> tuple[str, str]:
    """Someone who signed up: the site's backend sent their user id and e-mail address."""
    user, email = api.known(), f"{uid('ada')}@example.com"
    sent(api, "/v1/identify", identify(user, {"email": email, "first_name": "Ada"}), scope=Scope.SERVER)
    assert holder(api, email) == subject(api, user_id=user)
    return user, email


# -- 1. redirecting someone's e-mail lookups ---------------------------------------------------------

FORMS: dict[str, Callable[[dict[str, Any]], tuple[str, Any, bool]]] = {
    "identify": lambda m: ("/v1/identify", m, False),
    "batch": lambda m: ("/v1/batch", {"batch": [m]}, False),
    "short path, text/plain": lambda m: ("/v1/i", m, True),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_page_cannot_point_someones_address_at_its_own_visitor(api: Api, form: str) -> None:
    """Lookups by e-mail (an operator's erasure or access request, the subject lookup) would find the
    attacker's visitor: the victim's erasure would erase a decoy and their data would stay."""
    victim, email = customer(api)
    visitor = uid("anon")
    grant = {"anonymous_id": visitor, "source": "banner", "purposes": {"marketing.email": True}}
    assert api.client.put("/v1/consent", json=grant, headers=bearer(api.keys[Scope.WRITE])).status_code == 200
    for address in (email, email.upper(), f"  {email} "):
        path, body, plain = FORMS[form](identify(None, {"email": address}, anonymousId=visitor))
        sent(api, path, body, plain=plain)
    assert holder(api, email) == subject(api, user_id=victim)
    found = api.client.get(
        "/v1/admin/subjects", params={"email": email}, headers=bearer(api.keys[Scope.ADMIN])
    )
    assert found.json()["subject_id"] == str(subject(api, user_id=victim))


def test_a_subject_token_proves_a_user_not_an_address(api: Api) -> None:
    """A signed-in attacker (a token for their own user id) gives the victim's address as theirs,
    then asks for it to be rectified into their profile: the index stays with the victim."""
    victim, email = customer(api)
    mallory = api.known()
    proof = {"tactful": {"subject_token": api.token(mallory)}}
    sent(api, "/v1/identify", identify(mallory, {"email": email}, context=proof))
    assert holder(api, email) == subject(api, user_id=victim)
    other, _ = customer(api)  # mallory's own address, then corrected to the victim's
    body = {"type": "rectification", "user_id": other, "verified_by": "token", "token": api.token(other)}
    filed = api.filed({**body, "changes": {"email": email}}, scope=Scope.WRITE)
    api.run_jobs()
    assert api.mine(filed["id"], other).json()["status"] == "completed"
    assert holder(api, email) == subject(api, user_id=victim)


def test_an_address_no_one_holds_is_the_visitors_and_the_backend_still_moves_one(api: Api) -> None:
    visitor, email = uid("anon"), f"{uid('new')}@example.com"
    sent(api, "/v1/identify", identify(None, {"email": email}, anonymousId=visitor))
    assert holder(api, email) == subject(api, anonymous_id=visitor)  # first come
    user = api.known()
    sent(api, "/v1/identify", identify(user, {"email": email}), scope=Scope.SERVER)
    assert holder(api, email) == subject(api, user_id=user)  # the site's backend vouches for it
    # The operator corrects an address on the person's behalf (verified by the operator).
    other = api.known()
    api.filed(
        {"type": "rectification", "user_id": other, "verified_by": "operator", "changes": {"email": email}}
    )
    api.run_jobs()
    assert holder(api, email) == subject(api, user_id=user)  # `other` holds no address: nothing corrected
    sent(api, "/v1/identify", identify(other, {"email": "x@example.com"}), scope=Scope.SERVER)
    api.filed(
        {"type": "rectification", "user_id": other, "verified_by": "operator", "changes": {"email": email}}
    )
    api.run_jobs()
    assert holder(api, email) == subject(api, user_id=other)
