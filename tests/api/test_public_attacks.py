"""Attacks with nothing but the public write key and what a browser can send (DESIGN §3 invariants
15–16, §4 trust of public keys). Each test is one attack, written so that it fails if the hole opens.

    1 redirect someone's e-mail lookups ─ give their address for an own visitor, or for oneself
                                           with a token, or by rectification ──▶ the index stays
    2 move someone to a lighter regime ─── say an EU customer lives in California ──▶ not kept
    3 learn who holds an account ──────── file by e-mail (an admin key only); read the due date
                                           (the same for anyone) or the time (a floor) of a filing
    4 learn whose decision, review, export link or request an id is, or whether a browser's id
                                           speaks for a user ──▶ the same queries either way
    5 leave personal data behind ──────── a marker in every field and header a browser sets is
                                           in no table, server log line, error, metric or window

The legitimate flows next to each attack still work (first come for an address no one holds, the
site's backend and the operator moving one, a claim that only adds a regime, the operator filing
by e-mail, the site's backend filing without a wait).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import MetaData, event, select

from tactful.api import privacy as privacy_api
from tactful.catalog.loader import parse_catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event, Quarantine
from tactful.config import PolicySettings, PrivacySettings, RateLimits
from tactful.crypto import Keystore
from tactful.keys.schemas import Scope
from tactful.main import default_catalog_path
from tactful.profiles import service as profiles_service
from tactful.rights import requests as requests_service
from tactful.rights.due import RequestType, due_dates
from tactful.rights.models import DecisionReview, PrivacyRequest
from tests.api.builders import AppContext, app_context, basic, bearer, client, issue
from tests.api.test_privacy_api import Api
from tests.api.test_public_key_trust import identify, track, uid
from tests.api.test_reviews_api import TOKEN_HEADER, decided, review_url, shop
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


# -- 2. moving someone to a lighter regime ---------------------------------------------------------------


REGION = """  traits.region:
    category: user.location.imprecise
    purposes: [essential, analytics, personalization.segments]
    retention: 3y
"""


def region_catalog() -> Any:
    """The demo catalog with the region stored as a trait, as a deployment serving California would."""
    text = Path(default_catalog_path()).read_text(encoding="utf-8")
    marker = "  traits.city:\n"
    catalog, problems = parse_catalog(text.replace(marker, REGION + marker))
    assert catalog is not None, problems
    return catalog


def test_a_page_cannot_move_an_identified_person_out_of_their_regime(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    """Established outside the EEA, a shop applies GDPR to its EU customers by their country: a page
    that says an EU customer lives in California would put them under CCPA's opt-outs (personalized
    without consent, up to 1:1)."""
    with migrated_database(backend, tmp_path) as db:
        policy = PolicySettings(establishment_country="US")
        context = app_context(db, keystore, catalog=region_catalog(), policy=policy)
        keys = {scope: issue(context, scope, name=f"place {scope}") for scope in Scope}
        api = Api(context, client(context), keys)
        european, visitor = api.known(), uid("anon")
        sent(api, "/v1/identify", identify(european, {"country": "DE"}), scope=Scope.SERVER)
        before = (api.consent(user_id=european)["regimes"], api.consent(user_id=european)["max_level"])
        assert before == (["gdpr"], "1:many")
        # In two steps too: the country alone changes nothing (GDPR is the default where none
        # applies) and is kept; the region after it would bring CCPA alone.
        for claim in ({"country": "US", "region": "CA"}, {"country": "US"}, {"region": "CA"}):
            sent(api, "/v1/identify", identify(european, claim))
            assert (
                api.consent(user_id=european)["regimes"],
                api.consent(user_id=european)["max_level"],
            ) == before
        # A claim that only adds a regime restricts (the strictest answer wins): it is kept.
        californian = api.known()
        sent(
            api, "/v1/identify", identify(californian, {"country": "US", "region": "CA"}), scope=Scope.SERVER
        )
        sent(api, "/v1/identify", identify(californian, {"country": "DE", "region": "US-CA"}))
        assert api.consent(user_id=californian)["regimes"] == ["gdpr", "ccpa"]
        # A visitor says where they live; the site's backend may move anyone.
        sent(api, "/v1/identify", identify(None, {"country": "US", "region": "CA"}, anonymousId=visitor))
        sent(api, "/v1/identify", identify(european, {"country": "US", "region": "CA"}), scope=Scope.SERVER)
        assert api.consent(user_id=european)["regimes"] == ["ccpa"]
        with context.session() as session:
            refused = collect_service.ingest_stats(session).refused_by_reason
        assert refused.get("place_needs_proof") == 2


# -- 3. learning who holds an account through a privacy filing ---------------------------------------


def test_only_the_operator_names_a_person_by_email(api: Api) -> None:
    _, email = customer(api)
    for scope in (Scope.WRITE, Scope.SERVER):
        for address in (email, f"{uid('nobody')}@example.com"):
            answer = api.file({"type": "opt_out_sale_share", "email": address}, scope=scope)
            assert (answer.status_code, answer.json()["code"]) == (403, "email_needs_admin_key")
    with api.context.session() as session:
        digest = requests_service.identity_digest(api.context.keystore, requests_service.NamedBy.EMAIL, email)
        assert (
            session.scalars(select(PrivacyRequest).where(PrivacyRequest.identity_digest == digest)).all()
            == []
        )
    assert api.file({"type": "opt_out_sale_share", "email": email}).status_code == 202  # the operator may


def test_an_unproven_filing_is_answered_alike_for_a_californian_and_no_one(
    backend: str, tmp_path: Path, keystore: Keystore
) -> None:
    """Where a deployment stores the region, the regimes of a person held (CCPA: 15 business days for
    an opt-out, not GDPR's month) would show in the due date of a filing that names them."""
    with migrated_database(backend, tmp_path) as db:
        context = app_context(db, keystore, catalog=region_catalog())
        context.settings.rate_limits = RateLimits(privacy_filings=0)
        keys = {scope: issue(context, scope, name=f"region {scope}") for scope in Scope}
        api = Api(context, client(context), keys)
        californian = api.known()
        where = {"country": "US", "region": "CA"}
        sent(api, "/v1/identify", identify(californian, where), scope=Scope.SERVER)
        answers = [
            api.filed({"type": "opt_out_sale_share", "user_id": who}, scope=Scope.WRITE)
            for who in (californian, uid("nobody"))
        ]
        shown = {(a["status"], a["due_at"][:10], a["receipt"]) for a in answers}
        assert len(shown) == 1, shown
        with context.session() as session:
            stored = {
                row.subject_id is not None: (row.regime, row.due_at)
                for row in session.scalars(select(PrivacyRequest))
            }
        assert stored[True][0] != stored[False][0]  # the rows differ: the answers do not tell
        earliest = due_dates(
            RequestType.OPT_OUT_SALE_SHARE,
            regimes=requests_service.legal_regimes(context.regimes),
            received_at=datetime.fromisoformat(answers[0]["received_at"]),
            calendar=requests_service.calendar_of(context.settings.privacy),
        ).due_at
        assert datetime.fromisoformat(answers[0]["due_at"]) == earliest <= min(d for _, d in stored.values())


def test_an_unproven_filing_is_answered_no_sooner_than_the_floor(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Carried out before the answer, an opt-out takes longer for a person held than for no one; the
    answer leaves at the same time for both."""
    floor = api.context.settings.privacy.unproven_answer_ms / 1000
    assert floor > 0
    slept: list[float] = []
    real_sleep = time.sleep

    def sleeping(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(privacy_api.time, "sleep", sleeping)
    for who in (api.known(), uid("nobody")):
        started, slept[:] = time.monotonic(), []
        api.filed({"type": "objection", "user_id": who}, scope=Scope.WRITE)
        assert time.monotonic() - started >= floor
        # The wait is what the work left of the floor, not the floor again after the work.
        assert [s for s in slept if 0 < s < floor], slept
    started = time.monotonic()
    api.filed({"type": "objection", "user_id": uid("nobody")}, scope=Scope.SERVER)
    assert time.monotonic() - started < floor  # the site's backend is not kept waiting


# -- 4. the same work for someone else's id as for an unknown one -------------------------------------


@contextmanager
def queries(context: AppContext) -> Iterator[list[str]]:
    """The SQL both databases run inside the block, in order, parameters aside."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not statement.lstrip().upper().startswith("PRAGMA"):
            seen.append(" ".join(statement.split()))

    engines = (context.db.engine, context.keystore.engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def same_work(api: Api, call: Callable[[str], httpx2.Response], theirs: str, unknown: str) -> None:
    """`call` about someone else's id and about an unknown one: the same answer after the same
    queries, so that its time tells no more than its answer (`bench.public_timing` measures both)."""
    for each in (theirs, unknown):
        call(each)  # warm: caches, a key's hourly last-used mark
    done: list[tuple[int, str, list[str]]] = []
    for each in (theirs, unknown):
        with queries(api.context) as seen:
            response = call(each)
        done.append((response.status_code, response.text, seen))
    assert done[0][:2] == done[1][:2], done
    assert done[0][2] == done[1][2]


def test_someone_elses_decision_reviews_and_reviewed_decisions_cost_an_unknown_ones(api: Api) -> None:
    """With a write key alone, or with the attacker's own subject token: whether a decision is
    someone's, and whether they asked for its review, shows neither in the answer nor in the work."""
    server = bearer(api.keys[Scope.SERVER])
    victim = uid("user")
    reviewed = decided(api.client, server, victim)["price_box"]
    plain = decided(api.client, server, victim)["price_box"]
    assert api.context.logbook is not None
    api.context.logbook.flush()
    assert api.client.post(review_url(reviewed), json={}, headers=server).status_code == 201
    mallory = api.known()
    mine = bearer(api.keys[Scope.WRITE]) | {TOKEN_HEADER: api.token(mallory)}
    unknown = "dc_" + secrets.token_urlsafe(16)
    for headers in (mine, bearer(api.keys[Scope.WRITE])):
        for theirs in (reviewed, plain):
            same_work(api, lambda d, h=headers: api.client.get(review_url(d), headers=h), theirs, unknown)
            same_work(
                api, lambda d, h=headers: api.client.post(review_url(d), json={}, headers=h), theirs, unknown
            )
    with api.context.session() as session:
        filed = session.scalars(select(DecisionReview).where(DecisionReview.decision_id == plain)).all()
    assert filed == []  # and nothing was filed on the victim's decision


def test_someone_elses_export_link_costs_an_unknown_ones(api: Api) -> None:
    """A signed-in attacker holding someone's download link (a forwarded mail) learns nothing of it."""
    victim, _ = customer(api)
    request_id = api.filed({"type": "access", "user_id": victim, "verified_by": "operator"})["id"]
    api.run_jobs()
    link = api.read(request_id).json()["download_url"]
    mine = bearer(api.keys[Scope.WRITE]) | {TOKEN_HEADER: api.token(api.known())}
    unknown = "/v1/privacy/exports/" + secrets.token_urlsafe(32)
    same_work(api, lambda url: api.client.head(url, headers=mine), link, unknown)
    same_work(api, lambda url: api.client.get(url, headers=mine), link, unknown)
    assert api.client.get(link, headers=bearer(api.keys[Scope.ADMIN])).status_code == 200  # still live


def test_someone_elses_privacy_request_costs_an_unknown_ones(api: Api) -> None:
    """Read with the attacker's own subject token, another person's request is an unknown one."""
    victim = api.known()
    theirs = api.filed({"type": "access", "user_id": victim, "verified_by": "operator"})["id"]
    mallory = api.known()
    unknown = "prq_" + secrets.token_urlsafe(18)
    same_work(api, lambda request_id: api.mine(request_id, mallory), theirs, unknown)


def test_a_refused_grant_for_a_linked_browser_does_the_work_of_a_recorded_one(api: Api) -> None:
    """Whether an anonymous id speaks for a user decides whether a page's grant is recorded; the
    answer is the same, and so are the writes (only what is written differs)."""
    victim, linked, seen = api.known(), uid("anon"), uid("anon")
    sent(api, "/v1/identify", identify(victim, {}, anonymousId=linked), scope=Scope.SERVER)  # verified
    assert subject(api, anonymous_id=linked) == subject(api, user_id=victim)
    write = bearer(api.keys[Scope.WRITE])

    def grant(anonymous: str) -> httpx2.Response:
        body = {"anonymous_id": anonymous, "source": "banner", "purposes": {"sale_or_share": True}}
        return api.client.put("/v1/consent", json=body, headers=write)

    for each in (linked, seen):
        grant(each)
    work = []
    for each in (linked, seen):
        with queries(api.context) as statements:
            answer = grant(each)
        work.append((answer.json(), [s.split()[0].upper() for s in statements]))
    assert work[0][0] == work[1][0]
    writes = [[v for v in found if v in {"INSERT", "UPDATE", "DELETE"}] for _, found in work]
    assert writes[0] == writes[1], work  # the subject seen, then one row for the grant or its refusal
    reads = [found.count("SELECT") for _, found in work]
    assert reads[1] - reads[0] == 1, work  # recording reads the ledger's last sequence number
    assert api.consent(user_id=victim)["purposes"]["sale_or_share"]["state"] != "granted"


# -- 5. leaving personal data behind -------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """A string to look for: in an e-mail address (used as a user id too), an anonymous id, a name."""

    tag: str

    @property
    def email(self) -> str:
        return f"leak{self.tag}@example.com"

    @property
    def anon(self) -> str:
        return f"anon{self.tag}"

    def headers(self) -> dict[str, str]:
        """Every header a page's script or its browser sets, each holding the marker."""
        return {
            "X-Request-Id": f"{self.email}\r\nX-Injected: 1",
            "Accept-Language": f"sv;q=0.9, {self.email}",
            "Sec-GPC": self.email,
            "Cookie": f"ajs_user_id={self.email}; ajs_anonymous_id={self.anon}",
            "Referer": f"https://shop.example/?email={self.email}",
            "User-Agent": self.email,
        }

    def messages(self, token: str) -> list[dict[str, Any]]:
        """Identifiers (sealed), free text and URLs (redacted), a property named after the address
        (undeclared), an undeclared event, and two messages that are quarantined."""
        email, anon, tag = self.email, self.anon, self.tag
        context = {
            "page": {"url": f"https://shop.example/cart?email={email}&q={tag}", "search": f"?email={email}"},
            "traits": {"email": email, "first_name": tag},
            "campaign": {"term": f"from {email}"},
        }
        traits = {"email": email, "first_name": tag, "phone": f"+46 70 {tag[:3]} 45 67"}
        return [
            identify(email, traits, anonymousId=anon, context={"tactful": {"subject_token": token}}),
            {**track(user_id=email, anonymous_id=anon), "context": context},
            {"type": "track", "event": "Products Searched", "userId": email, "properties": {"query": email}},
            {"type": "track", "event": "Product Viewed", "userId": email, "properties": {email: 1}},
            {"type": "track", "event": f"Viewed {email}", "anonymousId": anon, "properties": {"q": email}},
            {"type": "page", "name": "Home", "anonymousId": anon, "properties": {"url": f"/?e={email}"}},
            {"type": "alias", "previousId": anon, "userId": email},
            {**track(user_id=email), "timestamp": "1800-01-01T00:00:00Z"},  # quarantined: out of range
            {"type": "track", "userId": email, "properties": {"note": email}},  # quarantined: no event
        ]

    def consent_bodies(self) -> list[dict[str, Any]]:
        email, anon = self.email, self.anon
        return [
            {"user_id": email, "source": "banner", "purposes": {"analytics": False, "sale_or_share": True}},
            {
                "anonymous_id": anon,
                "source": "banner",
                "purposes": {"analytics": True},
                "notice_version": email,
            },
            {"user_id": email, "source": "banner", "purposes": {email: True}},
            {"user_id": email, "source": "banner", "explicit": {email: True}},
            {"user_id": email, "source": "banner", "purposes": {"analytics": True}, "subject_token": email},
            {"anonymous_id": anon, "source": email, "purposes": {"analytics": True}},
            {"anonymous_id": anon, "source": "tcf", "tcf_string": email},
        ]

    def filings(self) -> list[dict[str, Any]]:
        email, anon = self.email, self.anon
        return [
            {"type": "opt_out_sale_share", "user_id": email},
            {"type": "objection", "anonymous_id": anon},
            {"type": "opt_out_sale_share", "email": email},
            {"type": "access", "user_id": email, "verified_by": "token", "token": email},
            {"type": "rectification", "user_id": email, "changes": {email: email}},
        ]


def everything_a_page_sends(api: Api, marker: Marker) -> list[httpx2.Response]:
    """The marker through every route a write key reaches, with every header set."""
    write, headers = api.keys[Scope.WRITE], marker.headers()
    answers = [api.client.post("/v1/batch", json={"batch": marker.messages(api.token(marker.email))},
                               headers=basic(write) | headers)]  # fmt: skip
    for message in marker.messages(api.token(marker.email)):
        body = json.dumps({**message, "writeKey": write})
        plain = {"Content-Type": "text/plain"} | headers
        answers.append(api.client.post(f"/v1/{message['type'][0]}", content=body, headers=plain))
    public = bearer(write) | headers
    answers += [api.client.put("/v1/consent", json=body, headers=public) for body in marker.consent_bodies()]
    answers += [
        api.client.post("/v1/privacy/requests", json=body, headers=public) for body in marker.filings()
    ]
    decision = decided(api.client, bearer(api.keys[Scope.SERVER]), marker.email)["price_box"]
    mine = public | {TOKEN_HEADER: api.token(marker.email)}
    statement = {"statement": f"Write to {marker.email}, ref {marker.tag}", "kind": "review"}
    answers.append(api.client.post(review_url(decision), json=statement, headers=mine))
    for path in (
        review_url(decision),
        f"/v1/decisions/{decision}/explanation?locale={marker.email}",
        f"/v1/decisions/dc_{marker.tag}/explanation",
        f"/v1/privacy/requests/prq_{marker.tag}",
        f"/v1/privacy/exports/{marker.tag * 2}{marker.tag[:11]}",
        f"/v1/consent?user_id={marker.email}",
    ):
        answers.append(api.client.get(path, headers=mine))
    return answers


def test_a_marker_sent_everywhere_a_browser_can_is_kept_nowhere_in_clear(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The marker is looked for in every row of both databases, every log line of the server, every
    error answer, the operator's metrics and the rate limiter's windows."""
    marker = Marker(secrets.token_hex(8))
    purposes = dict.fromkeys(("analytics", "personalization.segments", "personalization.behavioral"), True)
    for who in ({"user_id": marker.email}, {"anonymous_id": marker.anon}):
        grant = {**who, "source": "api", "purposes": purposes}  # so that events are stored
        assert (
            api.client.put("/v1/consent", json=grant, headers=bearer(api.keys[Scope.SERVER])).status_code
            == 200
        )
    with api.context.session() as session:
        quarantined_before = len(session.scalars(select(Quarantine.id)).all())
    with caplog.at_level(logging.DEBUG):
        answers = everything_a_page_sends(api, marker)

    assert [a.text for a in answers if a.status_code >= 500] == []
    assert [a.headers["x-request-id"] for a in answers if marker.tag in a.headers["x-request-id"]] == []
    person = subject(api, user_id=marker.email)
    with api.context.session() as session:  # what there is to look through
        held = profiles_service.get_profile(session, keystore=api.context.keystore, subject_id=person)
        stored = session.scalars(select(Event.type).where(Event.subject_id == person)).all()
        quarantined = session.scalars(select(Quarantine.id)).all()
    assert len(stored) >= 4
    assert len(quarantined) > quarantined_before  # the bad events' rows are among those looked through
    assert held.traits["traits.email"] == marker.email
    server_lines = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert [line for line in server_lines if marker.tag in line] == []
    assert [(a.request.url, a.text) for a in answers if a.status_code >= 400 and marker.tag in a.text] == []
    metrics = api.client.get("/metrics", headers=bearer(api.keys[Scope.ADMIN]))
    assert metrics.status_code == 200
    assert marker.tag not in metrics.text
    limiter = api.client.app.state.rate_limiter  # type: ignore[attr-defined]
    # Its windows are keyed by key id and a keyed hash of the client's address: never the address.
    assert [key for key in limiter._storage.windows if "testclient" in key] == []
    assert rows_holding(api.context, marker.tag) == []


def rows_holding(context: AppContext, needle: str) -> list[str]:
    """Each column of either database holding `needle` in some row (case aside), where it was."""
    found: list[str] = []
    for engine in (context.db.engine, context.keystore.engine):
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    for column, value in zip(table.columns, row, strict=True):
                        text = _text(value).lower()
                        if needle in text:
                            at = text.index(needle)
                            found.append(f"{table.name}.{column.name}: …{text[max(0, at - 60) : at + 40]}…")
    return found


def _text(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)
