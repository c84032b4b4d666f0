"""A public write key's per-event answers tell nothing about a person's stored state (DESIGN §4,
invariant 16).

Each test plays someone who holds only the write key every web page carries: they send the same
message naming two people whose stored state differs (consent refused or granted, erased or never
seen, an anonymous id linked or not, a user id identified or not, a minor or an adult) and compare
the answers, on every route and body form. The answers must be the same. The engine's outcome is
asserted too, through the server key's answer or the counters (`/metrics`), so that each test shows
a real difference in state that the public answer hides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.api.privacy_jobs import job_context
from tactful.collect import service as collect_service
from tactful.crypto import Keystore
from tactful.decide import log as decision_log
from tactful.keys.schemas import Scope
from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType
from tactful.rights.jobs import JobRunner, RunOutcome
from tactful.rights.schemas import NamedBy, VerifiedBy
from tactful.types import utcnow
from tests.api.builders import AppContext, app_context, bearer, client, issue
from tests.api.test_consent_api import user
from tests.api.test_public_key_trust import SEGMENT, Site, identify, track, uid
from tests.api.test_reviews_api import TOKEN_HEADER, decided, review_url, shop, token
from tests.backends import migrated_database

ROUTES = {
    "json": lambda m: ("/v1/track" if m["type"] == "track" else f"/v1/{m['type']}", m, False),
    "batch": lambda m: ("/v1/batch", {"batch": [m]}, False),
    "short path, text/plain": lambda m: (f"/v1/{m['type'][0]}", m, True),
    "batch short path, text/plain": lambda m: ("/v1/b", {"batch": [m]}, True),
}


@pytest.fixture(scope="module")
def site(backend: str, tmp_path_factory: pytest.TempPathFactory, keystore: Keystore) -> Iterator[Site]:
    with migrated_database(backend, tmp_path_factory.mktemp("answers")) as db:
        context = app_context(db, keystore)
        keys = {scope: issue(context, scope, name=f"answers {scope}") for scope in Scope}
        yield Site(context, client(context), keys)


def stats(site: Site) -> collect_service.IngestStats:
    with site.context.session() as session:
        return collect_service.ingest_stats(session)


def without_id(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "messageId"}


def fresh_ids(message: dict[str, Any]) -> dict[str, Any]:
    """The same message with a new message id (a page sends each message once)."""
    return {**message, "messageId": uid("msg")}


def public_answers(site: Site, messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """What the write key reads for each message, on every route and body form, ids aside."""
    answers = []
    for message in messages:
        seen = []
        for route in ROUTES.values():
            path, body, plain = route(fresh_ids(message))
            [result] = site.send(path, body, text_plain=plain)
            seen.append(without_id(result))
        answers.append(seen)
    return answers


ACCEPTED: dict[str, Any] = {"status": "accepted", "reason": None, "detail": None, "refused": []}


def erase(context: AppContext, user_id: str) -> None:
    """The operator erases the person, as `tactful privacy erase` does: every store, then the keys."""
    with context.session() as session:
        record = requests_service.file_request(
            session,
            keystore=context.keystore,
            policy=context.policy_context(),
            calendar=requests_service.calendar_of(context.settings.privacy),
            kind=RequestType.ERASURE,
            named_by=NamedBy.USER_ID,
            value=user_id,
            verified_by=VerifiedBy.OPERATOR,
            key_id=None,
            at=utcnow(),
            actor="tests",
        )
    assert JobRunner(job_context(context)).run(record.id) is RunOutcome.COMPLETED


# -- consent -----------------------------------------------------------------------------------------


def test_whether_a_person_refused_or_granted_consent_is_not_told(site: Site) -> None:
    granted, refused, stranger = uid("user"), uid("user"), uid("user")
    site.signed_up(granted)
    answer = site.consent(
        {
            "user_id": refused,
            "source": "api",
            "purposes": {"analytics": False, "personalization.segments": False},
        },
        scope=Scope.SERVER,
    )
    assert answer.status_code == 200, answer.text
    # The engine's outcome differs: the server key reads it.
    by_server = [
        site.send("/v1/track", track(user_id=who), scope=Scope.SERVER)[0]["status"]
        for who in (granted, refused, stranger)
    ]
    assert by_server == ["stored", "suppressed", "suppressed"]

    before = stats(site)
    answers = public_answers(site, [track(user_id=who) for who in (granted, refused, stranger)])
    assert answers[0] == answers[1] == answers[2] == [ACCEPTED] * len(ROUTES)
    after = stats(site)
    assert after.stored - before.stored == len(ROUTES)  # the counts stay exact
    assert after.suppressed_by_reason["no_purpose"] - before.suppressed_by_reason["no_purpose"] == 2 * len(
        ROUTES
    )


def test_whether_a_user_id_was_erased_is_not_told(site: Site) -> None:
    erased, stranger = uid("user"), uid("user")
    site.signed_up(erased)
    erase(site.context, erased)
    earlier = (utcnow() - timedelta(hours=1)).isoformat()

    def before_erasure(who: str) -> dict[str, Any]:
        return {**track(user_id=who), "timestamp": earlier}

    before = stats(site)
    answers = public_answers(site, [before_erasure(erased), before_erasure(stranger)])
    assert answers[0] == answers[1] == [ACCEPTED] * len(ROUTES)
    after = stats(site)
    replayed = after.suppressed_by_reason.get("erased_subject", 0) - before.suppressed_by_reason.get(
        "erased_subject", 0
    )
    assert replayed == len(ROUTES)  # the erased person's messages were suppressed, and counted
    [server] = site.send("/v1/track", before_erasure(erased), scope=Scope.SERVER)
    assert (server["status"], server["reason"]) == ("suppressed", "erased_subject")


# -- links and merges --------------------------------------------------------------------------------


def test_whether_an_anonymous_id_is_linked_to_a_user_id_is_not_told(site: Site) -> None:
    user, linked, pending, fresh, stranger = (uid("user"), *(uid("anon") for _ in range(4)))
    site.signed_up(user)
    site.send("/v1/identify", identify(user, {}, anonymousId=linked), scope=Scope.SERVER)
    site.send("/v1/identify", identify(user, {}, anonymousId=pending))  # a pending link
    assert site.subject(anonymous_id=linked) == site.subject(user_id=user)

    before = stats(site)
    sign_ins = [identify(user, {}, anonymousId=anon) for anon in (linked, pending, fresh)]
    answers = public_answers(site, sign_ins)
    assert answers[0] == answers[1] == answers[2] == [ACCEPTED] * len(ROUTES)
    # A grant for an anonymous id: refused where a link claims it, recorded for a stranger.
    grants = public_answers(
        site, [track(anonymous_id=anon, **SEGMENT) for anon in (linked, pending, stranger)]
    )
    assert grants[0] == grants[1] == grants[2] == [ACCEPTED] * len(ROUTES)
    after = stats(site)

    def refused(code: str) -> int:
        return after.refused_by_reason.get(code, 0) - before.refused_by_reason.get(code, 0)

    # Counted, not shown: the repeated links to a linked id are no new claim; the others are.
    assert refused("link_unverified") == 2 * len(ROUTES)
    assert refused("subject_token_required") >= len(ROUTES)  # the pending link's grants, at least


def test_whether_a_previous_id_is_a_known_user_id_is_not_told(site: Site) -> None:
    victim, attacker, unknown = uid("user"), uid("user"), uid("user")
    site.signed_up(victim)
    site.signed_up(attacker)
    before = stats(site)
    aliases = [
        {"type": "alias", "userId": attacker, "previousId": previous, "messageId": uid("msg")}
        for previous in (victim, unknown)
    ]
    answers = public_answers(site, aliases)
    assert answers[0] == answers[1] == [ACCEPTED] * len(ROUTES)
    after = stats(site)
    merges = after.refused_by_reason.get("merge_needs_proof", 0) - before.refused_by_reason.get(
        "merge_needs_proof", 0
    )
    assert merges >= len(ROUTES)  # the known user id's merges were refused, and counted
    assert site.subject(user_id=victim) != site.subject(user_id=attacker)


# -- identifiers and age -------------------------------------------------------------------------------


def test_whether_a_user_id_is_identified_or_a_minor_is_not_told(site: Site) -> None:
    identified, teen, stranger = uid("user"), uid("user"), uid("user")
    site.signed_up(identified, first_name="Ada", email="ada@example.com")
    site.signed_up(teen, age_range="13-17")
    before = stats(site)
    writes = public_answers(site, [identify(who, {"email": "x@evil.test"}) for who in (identified, stranger)])
    assert writes[0] == writes[1] == [ACCEPTED] * len(ROUTES)
    ages = public_answers(site, [identify(who, {"age_range": "25-34"}) for who in (teen, stranger)])
    assert ages[0] == ages[1] == [ACCEPTED] * len(ROUTES)
    after = stats(site)
    for code in ("identifier_needs_proof", "age_needs_proof"):
        assert after.refused_by_reason.get(code, 0) > before.refused_by_reason.get(code, 0), code
    assert site.traits(identified)["traits.email"] == "ada@example.com"
    assert site.state(user_id=teen)["minor"] is True


# -- what the message itself shows ---------------------------------------------------------------------


def test_faults_of_the_message_undeclared_events_and_bad_tokens_are_still_told(site: Site) -> None:
    user = uid("user")
    nameless = {"type": "track", "event": "", "userId": user, "messageId": uid("msg")}
    nobody = {"type": "track", "event": "Product Viewed", "messageId": uid("msg")}
    [fault, missing] = site.send("/v1/batch", {"batch": [nameless, nobody]})
    assert (fault["status"], fault["reason"]) == ("quarantined", "invalid_field")
    assert fault["detail"]
    assert (missing["status"], missing["reason"]) == ("quarantined", "missing_identity")

    undeclared = {"type": "track", "event": "Never Declared", "userId": user, "messageId": uid("msg")}
    first, again = site.send("/v1/batch", {"batch": [undeclared, undeclared]})
    assert (
        without_id(first)
        == without_id(again)
        == {**ACCEPTED, "status": "dropped", "reason": "undeclared_event"}
    )
    repeat = {**undeclared, "messageId": uid("msg")}
    site.send("/v1/track", repeat, scope=Scope.SERVER)
    [server] = site.send("/v1/track", repeat, scope=Scope.SERVER)
    assert server["status"] == "duplicate"  # the engine's word; the page's is the catalog's fact

    forged = track(user_id=user, tactful={"subject_token": site.token(uid("user"))})
    [bad] = site.send("/v1/track", forged)
    assert bad == {**ACCEPTED, "messageId": forged["messageId"], "refused": ["subject_token_invalid"]}


def test_a_message_id_sent_again_with_another_payload_is_accepted(site: Site) -> None:
    user = uid("user")
    site.signed_up(user)
    first = track(user_id=user)
    other = {**first, "properties": {"product_id": "p-2", "category": "trail"}}
    before = stats(site)
    answers = [site.send("/v1/track", message)[0] for message in (first, first, other)]
    assert [without_id(a) for a in answers] == [ACCEPTED] * 3
    after = stats(site)
    assert after.deduplicated - before.deduplicated == 1
    conflicts = after.quarantined_by_reason.get("duplicate_conflict", 0)
    assert conflicts - before.quarantined_by_reason.get("duplicate_conflict", 0) == 1


def test_server_and_admin_keys_read_the_engines_answer(site: Site) -> None:
    user = uid("user")
    for scope in (Scope.SERVER, Scope.ADMIN):
        message = track(user_id=user, **SEGMENT)
        [result] = site.send("/v1/track", message, scope=scope)
        assert (result["status"], result["reason"], result["refused"]) == ("stored", None, [])
        [again] = site.send("/v1/track", message, scope=scope)
        assert again["status"] == "duplicate"


def test_the_openapi_document_names_both_shapes(site: Site) -> None:
    schema = site.client.get("/openapi.json").json()
    outcome = schema["components"]["schemas"]["EventOutcome"]
    assert "accepted" in outcome["properties"]["status"]["enum"]
    assert {"stored", "suppressed", "duplicate"} <= set(outcome["properties"]["status"]["enum"])
    text = json.dumps(outcome)
    assert "write key" in text
    assert "server or admin key" in text


def test_the_answers_of_one_batch_follow_its_messages(site: Site) -> None:
    """A batch mixing the outcomes: each answer is the public view of its own message, in order."""
    known = uid("user")
    site.signed_up(known)
    batch = [
        track(user_id=known),
        track(user_id=uid("user")),
        {"type": "track", "event": "", "userId": known, "messageId": uid("msg")},
        {"type": "track", "event": "Never Declared", "userId": known, "messageId": uid("msg")},
    ]
    results = site.send("/v1/batch", {"batch": batch})
    assert [r["messageId"] for r in results] == [m["messageId"] for m in batch]
    assert [r["status"] for r in results] == ["accepted", "accepted", "quarantined", "dropped"]


# -- decision ids ----------------------------------------------------------------------------------------


def test_a_decision_id_reads_the_same_unknown_erased_expired_or_someone_elses(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    """The explanation and the review routes take the write key: what they answer for a decision id
    that is not the asker's tells nothing about why (never made, expired, its person erased)."""
    with migrated_database(backend, tmp_path) as db:
        context = app_context(db, keystore)
        api = client(context)
        keys = {scope: bearer(issue(context, scope, name=f"ids {scope}")) for scope in Scope}
        shop(api, keys[Scope.ADMIN])
        assert context.logbook is not None
        older = decided(api, keys[Scope.SERVER], user())["price_box"]
        context.logbook.flush()
        with context.session() as session:
            assert decision_log.expire(session, before=utcnow()) >= 1  # its retention ran
        ada, bob = user(), user()
        theirs = decided(api, keys[Scope.SERVER], ada)["price_box"]
        gone = decided(api, keys[Scope.SERVER], bob)["price_box"]
        context.logbook.flush()
        erase(context, bob)
        public = keys[Scope.WRITE]
        assert api.get(f"/v1/decisions/{theirs}/explanation", headers=public).status_code == 200

        def answer(response: Any) -> tuple[int, dict[str, Any]]:
            return response.status_code, response.json()

        unknown = "dc_" + "A" * 22
        explained = [
            answer(api.get(f"/v1/decisions/{decision}/explanation", headers=public))
            for decision in (unknown, older, gone)
        ]
        assert all(e == explained[0] for e in explained), explained
        assert (explained[0][0], explained[0][1]["code"]) == (404, "decision_not_found")
        someone = public | {TOKEN_HEADER: token(context, user())}
        reviews = [
            answer(call(review_url(decision), headers=headers))
            for decision in (unknown, older, gone, theirs)
            for headers in (public, someone)
            for call in (api.get, lambda url, headers: api.post(url, json={}, headers=headers))
        ]
        assert all(r == reviews[0] for r in reviews), reviews
        assert (reviews[0][0], reviews[0][1]["code"]) == (404, "decision_not_found")
