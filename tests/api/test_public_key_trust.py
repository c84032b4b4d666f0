"""What a public write key may say about an identified person (DESIGN §4, invariant 16).

Each test plays an attacker who holds nothing but the write key that every web page carries and
tries to widen a user's rights: each form of consent in events on every route and body form, an
identify then an anonymous grant, a pending link then a later token, an alias of two user ids, age
and identifier traits, and reading consent through `PUT`. Each asserts the person's state through the
server key afterwards. The last tests show that the legitimate flows still work.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text

from tactful.collect import service as collect_service
from tactful.collect.models import Event, Quarantine
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.profiles import service as profiles_service
from tests.api.builders import AppContext, TestClient, app_context, basic, bearer, client, issue
from tests.backends import migrated_database

PERSONALIZATION = {"analytics": True, "personalization": True}
"""A banner's categories (the default map): analytics, and every personalization purpose."""


@dataclass(frozen=True)
class Site:
    context: AppContext
    client: TestClient
    keys: dict[Scope, str]

    def __repr__(self) -> str:
        return "Site()"

    def token(self, user_id: str) -> str:
        secret = self.context.settings.subject_token_secret.get_secret_value()
        return issue_subject_token(secret=secret, user_id=user_id, at=datetime.now(UTC))

    def send(
        self, path: str, body: Any, *, scope: Scope = Scope.WRITE, text_plain: bool = False, **headers: str
    ) -> list[dict[str, Any]]:
        """Post `body` to a collection route with a key of `scope` (in the body for text/plain)."""
        if text_plain:
            payload = {**body, "writeKey": self.keys[scope]} if isinstance(body, dict) else body
            response = self.client.post(
                path, content=json.dumps(payload), headers={"Content-Type": "text/plain"} | headers
            )
        else:
            response = self.client.post(path, json=body, headers=basic(self.keys[scope]) | headers)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def refusals(
        self, path: str, body: Any, *, scope: Scope = Scope.WRITE, text_plain: bool = False, **headers: str
    ) -> Counter[str]:
        """Send as `send` does; what the engine refused of it, by code, as the operator counts it
        (`/metrics`). A write key's answer never tells it: it depends on what is stored."""
        before = self.refused()
        for result in self.send(path, body, scope=scope, text_plain=text_plain, **headers):
            if scope is Scope.WRITE:
                assert set(result["refused"]) <= {"subject_token_invalid"}, result
        return self.refused() - before

    def refused(self) -> Counter[str]:
        with self.context.session() as session:
            return Counter(collect_service.ingest_stats(session).refused_by_reason)

    def consent(self, body: dict[str, Any], *, scope: Scope = Scope.WRITE, **headers: str) -> Any:
        return self.client.put("/v1/consent", json=body, headers=bearer(self.keys[scope]) | headers)

    def state(self, **who: str) -> dict[str, Any]:
        """The subject's consent as the server key reads it."""
        response = self.client.get("/v1/consent", params=who, headers=bearer(self.keys[Scope.SERVER]))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def granted(self, **who: str) -> set[str]:
        purposes = self.state(**who)["purposes"]
        return {p for p, view in purposes.items() if view["state"] == "granted"}

    def known(self, **who: str) -> bool:
        response = self.client.get("/v1/consent", params=who, headers=bearer(self.keys[Scope.SERVER]))
        return response.status_code == 200

    def subject(self, **who: str) -> uuid.UUID | None:
        with self.context.session() as session:
            return profiles_service.find_subject(session, keystore=self.context.keystore, **who)

    def traits(self, user_id: str) -> dict[str, object]:
        subject = self.subject(user_id=user_id)
        assert subject is not None
        with self.context.session() as session:
            profile = profiles_service.get_profile(
                session, keystore=self.context.keystore, subject_id=subject
            )
        return dict(profile.traits)

    def signed_up(self, user_id: str, **traits: object) -> None:
        """The site's backend (server key) records the user with a full grant and its traits."""
        answer = self.consent(
            {
                "user_id": user_id,
                "source": "api",
                "purposes": {
                    "analytics": True,
                    "personalization.segments": True,
                    "personalization.behavioral": True,
                    "personalization.predictive": True,
                    "personalization.individual": True,
                },
            },
            scope=Scope.SERVER,
        )
        assert answer.status_code == 200, answer.text
        if traits:
            [result] = self.send("/v1/identify", identify(user_id, traits), scope=Scope.SERVER)
            assert result["status"] == "stored"


@pytest.fixture(scope="module")
def site(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Site]:
    with migrated_database(backend, tmp_path_factory.mktemp("trust")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"trust {scope}") for scope in Scope}
        yield Site(context, client(context), keys)


def stats(site: Site) -> collect_service.IngestStats:
    with site.context.session() as session:
        return collect_service.ingest_stats(session)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def track(*, user_id: str | None = None, anonymous_id: str | None = None, **context: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": "Product Viewed", "messageId": uid("msg")}
    message["properties"] = {"product_id": "p-1", "category": "running"}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    if context:
        message["context"] = context
    return message


def identify(user_id: str | None, traits: dict[str, object], **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify", "messageId": uid("msg"), "traits": traits, **extra}
    if user_id:
        message["userId"] = user_id
    return message


SEGMENT = {"consent": {"categoryPreferences": PERSONALIZATION}}
RUDDERSTACK = {
    "consentManagement": {"provider": "custom", "allowedConsentIds": ["analytics", "personalization"]}
}
FORMS = {"segment": SEGMENT, "rudderstack": RUDDERSTACK}
ROUTES = {
    "track": lambda m: ("/v1/track", m, False),
    "batch": lambda m: ("/v1/batch", {"batch": [m]}, False),
    "short path, text/plain": lambda m: ("/v1/t", m, True),
    "batch short path, text/plain": lambda m: ("/v1/b", {"batch": [m]}, True),
}


# -- 1. consent carried in events ------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_consent_in_events_for_a_user_id_records_refusals_only(site: Site, form: str, route: str) -> None:
    victim = uid("user")
    site.consent(
        {"user_id": victim, "source": "api", "purposes": {"marketing.email": False}}, scope=Scope.SERVER
    )
    message = track(user_id=victim, **FORMS[form])
    path, body, plain = ROUTES[route](message)
    assert site.refusals(path, body, text_plain=plain)["subject_token_required"] == 1
    assert site.granted(user_id=victim) == set()

    # The same form, refusing, is recorded at once: a claim that restricts is always accepted.
    site.signed_up(victim)
    refusing = (
        {"consent": {"categoryPreferences": {"analytics": False}}}
        if form == "segment"
        else {"consentManagement": {"provider": "custom", "deniedConsentIds": ["analytics"]}}
    )
    path, body, plain = ROUTES[route](track(user_id=victim, **refusing))
    site.send(path, body, text_plain=plain)
    assert site.state(user_id=victim)["purposes"]["analytics"]["state"] == "withdrawn"


def test_an_identify_with_consent_in_context_grants_nothing_for_the_user(site: Site) -> None:
    victim = uid("user")
    refused = site.refusals(
        "/v1/i", identify(victim, {"first_name": "Eve"}, context=SEGMENT), text_plain=True
    )
    assert refused["subject_token_required"] == 1
    assert site.granted(user_id=victim) == set()


def test_a_token_for_someone_else_or_the_header_of_another_user_proves_nothing(site: Site) -> None:
    victim, attacker = uid("user"), uid("user")
    site.consent(
        {"user_id": victim, "source": "api", "purposes": {"marketing.email": False}}, scope=Scope.SERVER
    )
    forged = track(user_id=victim, **SEGMENT, tactful={"subject_token": site.token(attacker)})
    [result] = site.send("/v1/track", forged)
    assert result["refused"] == ["subject_token_invalid"]  # the message itself shows it: told
    assert site.refusals("/v1/track", forged | {"messageId": uid("msg")})["subject_token_required"] == 1
    refused = site.refusals(
        "/v1/track", track(user_id=victim, **SEGMENT), **{"X-Tactful-Subject-Token": site.token(attacker)}
    )
    assert refused["subject_token_required"] == 1
    assert site.granted(user_id=victim) == set()


# -- 2. linking and merging -------------------------------------------------------------------------


def test_identify_then_an_anonymous_grant_never_reaches_the_user(site: Site) -> None:
    victim, anon = uid("user"), uid("anon")
    site.signed_up(victim, first_name="Ada")
    before = site.state(user_id=victim)["history"]
    assert site.refusals("/v1/identify", identify(victim, {}, anonymousId=anon)) == {"link_unverified": 1}
    assert site.subject(anonymous_id=anon) != site.subject(user_id=victim)

    # A banner grant for the linked anonymous id now needs the user's proof, by event or by PUT.
    assert site.refusals("/v1/track", track(anonymous_id=anon, **SEGMENT))["subject_token_required"] == 1
    before_refused = site.refused()
    answer = site.consent({"anonymous_id": anon, "source": "banner", "purposes": {"sale_or_share": True}})
    # The page is not told that the id speaks for someone; the operator's count says it was refused.
    assert (answer.json()["refused"], answer.json()["unconfirmed"]) == (
        [],
        [{"target": "sale_or_share", "choice": "granted"}],
    )
    assert site.refused() - before_refused == Counter({"subject_token_required": 1})
    assert site.state(user_id=victim)["history"] == before
    # What names only the anonymous id sees only what was collected under it.
    if site.known(anonymous_id=anon):
        assert site.state(anonymous_id=anon)["history"] == []


def test_a_pending_link_is_never_verified_by_a_later_token(site: Site) -> None:
    victim, anon = uid("user"), uid("anon")
    site.signed_up(victim)
    site.send("/v1/identify", identify(victim, {}, anonymousId=anon))
    # The user's own token arrives later with something else: the pending link stays pending.
    site.send("/v1/track", track(user_id=victim, tactful={"subject_token": site.token(victim)}))
    site.consent(
        {
            "user_id": victim,
            "source": "banner",
            "purposes": {"analytics": False},
            "subject_token": site.token(victim),
        }
    )
    assert site.subject(anonymous_id=anon) != site.subject(user_id=victim)
    before_refused = site.refused()
    answer = site.consent({"anonymous_id": anon, "source": "banner", "purposes": {"analytics": True}})
    assert (answer.json()["refused"], answer.json()["unconfirmed"]) == (
        [],
        [{"target": "analytics", "choice": "granted"}],
    )
    assert site.refused() - before_refused == Counter({"subject_token_required": 1})
    assert "analytics" not in site.granted(user_id=victim)


def test_an_unproven_link_earlier_in_a_batch_verifies_nothing_later_in_it(site: Site) -> None:
    """Links applied earlier in a batch count for the messages after them, so only a proven one may."""
    victim, anon = uid("user"), uid("anon")
    site.signed_up(victim)
    batch = [
        {"type": "alias", "previousId": anon, "userId": victim, "messageId": uid("msg")},
        identify(victim, {}, anonymousId=anon),
    ]
    assert site.refusals("/v1/batch", {"batch": batch}) == {"link_unverified": 2}
    assert site.subject(anonymous_id=anon) != site.subject(user_id=victim)

    # With the token on the first message, the second names a link that now holds.
    anon = uid("anon")
    batch[0] = {**batch[0], "previousId": anon, "messageId": uid("msg")}
    batch[0]["context"] = {"tactful": {"subject_token": site.token(victim)}}
    batch[1] = identify(victim, {}, anonymousId=anon)
    assert site.refusals("/v1/batch", {"batch": batch}) == {}
    assert site.subject(anonymous_id=anon) == site.subject(user_id=victim)


def test_an_alias_of_two_user_ids_needs_the_server_key_or_both_tokens(site: Site) -> None:
    victim, attacker = uid("user"), uid("user")
    site.signed_up(victim, first_name="Ada")
    site.signed_up(attacker)

    def alias(**tokens: str) -> dict[str, Any]:
        message = {"type": "alias", "userId": attacker, "previousId": victim, "messageId": uid("msg")}
        if tokens:
            message["context"] = {"tactful": tokens}
        return site.refusals("/v1/alias", message)

    assert alias() == {"merge_needs_proof": 1}
    assert alias(subject_token=site.token(attacker)) == {"merge_needs_proof": 1}
    assert site.subject(user_id=victim) != site.subject(user_id=attacker)

    both = alias(subject_token=site.token(attacker), previous_subject_token=site.token(victim))
    assert both == {}
    assert site.subject(user_id=victim) == site.subject(user_id=attacker)


def test_a_server_key_still_links_and_merges(site: Site) -> None:
    user, anon = uid("user"), uid("anon")
    site.send("/v1/track", track(anonymous_id=anon, **SEGMENT), scope=Scope.SERVER)
    [result] = site.send("/v1/identify", identify(user, {}, anonymousId=anon), scope=Scope.SERVER)
    assert result["refused"] == []
    assert site.subject(anonymous_id=anon) == site.subject(user_id=user)
    assert "analytics" in site.granted(user_id=user)


# -- 3. age and identifier traits -------------------------------------------------------------------


def test_a_public_key_may_make_a_person_younger_never_older(site: Site) -> None:
    teen, adult = uid("user"), uid("user")
    site.signed_up(teen, age_range="13-17")
    site.signed_up(adult, age_range="25-34")
    assert site.state(user_id=teen)["minor"] is True

    older = site.refusals("/v1/identify", identify(teen, {"age_range": "25-34", "birthdate": "1990-01-01"}))
    assert older["age_needs_proof"] == 1
    assert site.state(user_id=teen)["minor"] is True
    assert site.state(user_id=teen)["max_level"] == "1:many"

    assert site.refusals("/v1/identify", identify(adult, {"age_range": "13-17"})) == {}
    assert site.state(user_id=adult)["minor"] is True


def test_a_public_key_may_not_write_an_identified_persons_identifiers(site: Site) -> None:
    victim = uid("user")
    site.signed_up(victim, first_name="Ada", email="ada@example.com")
    page = identify(victim, {"first_name": "Mallory", "email": "mallory@evil.test"})
    page["context"] = {"traits": {"last_name": "Pwned"}}
    assert site.refusals("/v1/identify", page)["identifier_needs_proof"] == 1
    traits = site.traits(victim)
    assert (traits.get("traits.first_name"), traits.get("traits.email")) == ("Ada", "ada@example.com")
    assert "traits.last_name" not in traits

    # With the user's token in the same message the page speaks for them.
    proven = identify(
        victim, {"first_name": "Ada L."}, context={"tactful": {"subject_token": site.token(victim)}}
    )
    assert site.refusals("/v1/identify", proven) == {}
    assert site.traits(victim)["traits.first_name"] == "Ada L."


def test_an_anonymous_visitor_declares_their_own_age_which_stays_theirs(site: Site) -> None:
    user, anon = uid("user"), uid("anon")
    site.signed_up(user, age_range="25-34")
    site.send("/v1/identify", identify(user, {}, anonymousId=anon))  # a pending link, unproven
    [result] = site.send("/v1/identify", identify(None, {"age_range": "13-17"}, anonymousId=anon))
    assert result["refused"] == []
    assert site.state(anonymous_id=anon)["minor"] is True  # an age gate's answer, accepted
    assert site.state(user_id=user)["minor"] is False  # never carried over the pending link
    visitor = site.subject(anonymous_id=anon)
    assert visitor is not None
    with site.context.session() as session:
        ref = site.context.keystore.subject_ref(visitor)
        details = (
            session.execute(
                text(
                    "SELECT details FROM audit_log"
                    " WHERE action = 'profiles.age_declared' AND subject_ref = :r"
                ),
                {"r": ref},
            )
            .scalars()
            .all()
        )
    assert [json.loads(d) if isinstance(d, str) else d for d in details] == [{"method": "self_declared"}]


# -- 4. consent reads ------------------------------------------------------------------------------


def test_a_write_keys_consent_answer_is_the_same_for_a_linked_and_a_fresh_anonymous_id(site: Site) -> None:
    """A page must not learn from `PUT /v1/consent` whether a visitor's id speaks for someone."""
    victim, linked, merged, fresh = uid("user"), uid("anon"), uid("anon"), uid("anon")
    site.signed_up(victim)
    site.send("/v1/identify", identify(victim, {}, anonymousId=linked))  # a pending link
    proven = identify(
        victim, {}, anonymousId=merged, context={"tactful": {"subject_token": site.token(victim)}}
    )
    site.send("/v1/identify", proven)  # a verified one
    assert site.subject(anonymous_id=merged) == site.subject(user_id=victim)
    body = {"source": "banner", "purposes": {"analytics": True, "sale_or_share": False}}
    answers = [site.consent({"anonymous_id": anon, **body}).json() for anon in (linked, merged, fresh)]
    assert answers[0] == answers[1] == answers[2]
    # And with a user id beside it, the link's fate is not told either.
    both = [
        site.consent({"anonymous_id": anon, "user_id": victim, **body}).json() for anon in (merged, fresh)
    ]
    assert both[0] == both[1]
    assert both[0]["refused"] == [{"target": "analytics", "code": "subject_token_required"}]


def test_put_with_a_write_key_answers_an_acknowledgment_that_tells_nothing(site: Site) -> None:
    known, unknown = uid("user"), uid("user")
    site.signed_up(known)
    body = {"source": "banner", "purposes": {"analytics": False, "personalization.individual": True}}
    answers = [site.consent({"user_id": who, **body}).json() for who in (known, unknown)]
    assert (
        answers[0]
        == answers[1]
        == {
            "recorded": [{"target": "analytics", "choice": "refused"}],
            "refused": [{"target": "personalization.individual", "code": "subject_token_required"}],
            "unconfirmed": [],
            "gpc": False,
            "state": None,
        }
    )
    assert site.state(user_id=known)["purposes"]["analytics"]["state"] == "withdrawn"
    assert site.state(user_id=known)["purposes"]["personalization.individual"]["state"] == "granted"


def test_put_that_records_no_choice_is_a_422_and_creates_nobody(site: Site) -> None:
    stranger = uid("user")
    response = site.consent({"user_id": stranger, "source": "banner"})
    assert (response.status_code, response.json()["code"]) == (422, "no_choice")
    refused_only = site.consent({"user_id": stranger, "source": "banner", "purposes": {"analytics": True}})
    assert refused_only.status_code == 200
    assert not site.known(user_id=stranger)


# -- 5. GPC over replayed choices ------------------------------------------------------------------


def test_gpc_wins_over_a_grant_replayed_in_event_context(site: Site) -> None:
    anon = uid("anon")
    replayed = {"consent": {"categoryPreferences": {**PERSONALIZATION, "advertising": True}}}
    site.send("/v1/track", track(anonymous_id=anon, **replayed), **{"Sec-GPC": "1"})
    state = site.state(anonymous_id=anon)
    assert state["purposes"]["sale_or_share"]["allowed"] is False
    assert state["gpc"] is True
    assert state["max_level"] == "1:many"  # Tactful's GPC cap holds against a replayed grant


# -- the token never stays -------------------------------------------------------------------------


def test_a_subject_token_is_never_stored_or_quarantined(site: Site) -> None:
    user = uid("user")
    token = site.token(user)
    good = track(user_id=user, tactful={"subject_token": token, "page_id": "home"})
    bad = {
        "type": "track",
        "userId": user,
        "event": "",
        "messageId": uid("msg"),
        "context": {"tactful": {"subject_token": token}},
    }
    site.send("/v1/batch", {"batch": [good, bad]}, **{"X-Tactful-Subject-Token": token})
    with site.context.session() as session:
        rows = session.scalars(select(Event).where(Event.message_id == good["messageId"])).all()
        held = session.scalars(select(Quarantine).where(Quarantine.message_id == bad["messageId"])).all()
        assert len(held) == 1
        for row in rows:
            assert token not in json.dumps(row.context)
        for entry in held:
            assert token not in (entry.raw or "")
        if session.get_bind().dialect.name == "sqlite":
            dump = "\n".join(session.connection().connection.iterdump())  # type: ignore[attr-defined]
            assert token not in dump
        else:
            found = session.execute(
                text("SELECT count(*) FROM audit_log WHERE details::text LIKE :t"), {"t": f"%{token[:40]}%"}
            )
            assert found.scalar() == 0


# -- the legitimate flows --------------------------------------------------------------------------


def test_a_visitor_consents_on_a_banner_signs_in_with_a_token_and_keeps_their_grants(site: Site) -> None:
    anon, user = uid("anon"), uid("user")
    banner = site.consent(
        {
            "anonymous_id": anon,
            "source": "banner",
            "purposes": {"analytics": True, "personalization.segments": True},
        }
    )
    assert banner.json()["refused"] == []
    sign_in = identify(
        user,
        {"first_name": "Ada"},
        anonymousId=anon,
        context={"tactful": {"subject_token": site.token(user)}},
    )
    [result] = site.send("/v1/i", sign_in, text_plain=True)
    assert result["refused"] == []
    assert site.subject(anonymous_id=anon) == site.subject(user_id=user)
    assert {"analytics", "personalization.segments"} <= site.granted(user_id=user)
    assert site.traits(user)["traits.first_name"] == "Ada"


def test_a_gpc_browser_opts_in_through_the_banner(site: Site) -> None:
    anon = uid("anon")
    site.send("/v1/track", track(anonymous_id=anon), **{"Sec-GPC": "1"})
    purposes = {
        "personalization.segments": True,
        "personalization.behavioral": True,
        "personalization.predictive": True,
        "personalization.individual": True,
        "sale_or_share": True,
    }
    answer = site.consent(
        {"anonymous_id": anon, "source": "banner", "purposes": purposes}, **{"Sec-GPC": "1"}
    )
    assert answer.json()["refused"] == []
    state = site.state(anonymous_id=anon)
    assert state["max_level"] == "1:1"
    assert state["purposes"]["sale_or_share"]["allowed"] is True


def test_refusals_are_counted_and_audited(site: Site) -> None:
    victim = uid("user")
    site.send("/v1/track", track(user_id=victim, **SEGMENT))
    site.consent({"user_id": victim, "source": "banner", "purposes": {"analytics": True}})
    metrics = site.client.get("/metrics", headers=bearer(site.keys[Scope.ADMIN])).text
    [line] = [
        line
        for line in metrics.splitlines()
        if line.startswith('tactful_claims_refused_total{reason="subject_token_required"}')
    ]
    assert float(line.rsplit(" ", 1)[1]) >= 2
    with site.context.session() as session:
        actions = set(session.scalars(text("SELECT action FROM audit_log")).all())
    assert {"collect.claims_refused", "consent.claims_refused"} <= actions


def test_an_older_age_cannot_ride_on_a_younger_one_in_the_same_batch(site: Site) -> None:
    teen = uid("user")
    site.signed_up(teen, age_range="13-17")
    batch = [identify(teen, {"age_range": "13-17"}), identify(teen, {"age_range": "25-34"})]
    assert site.refusals("/v1/batch", {"batch": batch}) == {"age_needs_proof": 1}
    assert site.traits(teen)["traits.age_range"] == "13-17"
    assert site.state(user_id=teen)["minor"] is True


def test_a_grant_that_cannot_be_recorded_creates_nobody(site: Site) -> None:
    stranger = uid("user")
    before = stats(site)
    message = track(user_id=stranger, **SEGMENT)
    assert site.refusals("/v1/t", message, text_plain=True) == {"subject_token_required": 1}
    assert stats(site).suppressed - before.suppressed == 1
    assert site.subject(user_id=stranger) is None  # no profile, identifier or key for a claim refused whole
    refusing = {"consent": {"categoryPreferences": {"analytics": False}}}
    site.send("/v1/t", track(user_id=stranger, **refusing), text_plain=True)
    assert site.state(user_id=stranger)["purposes"]["analytics"]["state"] == "denied"  # a refusal is kept
