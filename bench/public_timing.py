"""Timing of the answers a public write key reads: does "someone's" take measurably longer (or
shorter) than "no one's" where the answer itself is the same?

    fresh SQLite files ── the app in process (rate limits off: an attacker spreads over addresses)
        seed: a significant experience, known users (consent, traits, decisions, reviews, exports),
              users who refused, anonymous ids seen, linked, or claimed by a pending link
    for each probe, `--reps` interleaved pairs in random order, each request timed on its own:
        A  the request naming someone held (a known user id, their decision, their export link)
        B  the same request naming no one (a fresh id, an unknown decision or link), or someone
           in another state (refused consent, no review asked for, not linked)
    per probe: both answers compared (status and body, ids aside), medians, p10–p90, and AUC, the
    chance that one A request is slower than one B request (0.5: one request tells nothing)

An AUC far from 0.5 with the same answer is an oracle that one request can read; one near 0.5 needs
many requests per guess, which the probes that change state (a fresh id is known once asked about)
do not allow. `python -m bench.public_timing [--reps N] [--only TEXT] [--dir /dev/shm]
[--unproven-answer-ms 0] [--json PATH]`; figures go in the note, not in a test (a busy machine would
make such a test flaky: `tests/api/test_public_attacks.py` asserts the same queries instead).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from bench.stats import percentile
from bench.stores import SECRET, fresh_stores
from tactful import main as tactful_main
from tactful.api.context import AppContext
from tactful.api.privacy_jobs import job_context
from tactful.catalog.loader import load_catalog
from tactful.collect.proof import SUBJECT_TOKEN_HEADER
from tactful.config import PrivacySettings, RateLimits, Settings
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.rights import requests as requests_service
from tactful.rights.jobs import JobRunner
from tactful.types import utcnow

PURPOSES = {
    "analytics": True,
    "personalization.segments": True,
    "personalization.behavioral": True,
    "personalization.predictive": True,
    "personalization.individual": True,
}
PRICE = {"key": "price_box", "channel": "web", "default": {"content": {"price": "100 kr"}}}
MEMBER_PRICE = {
    "key": "member_price",
    "placement": "price_box",
    "significant_effect": True,
    "variations": [{"key": "member", "content": {"price": "80 kr"}}],
}
VOLATILE = {"id", "messageId", "received_at", "closed_at", "due_at", "filed_at"}
"""Members that differ between any two answers (fresh ids, clocks), left out of the comparison."""


# -- the site ---------------------------------------------------------------------------------------


@dataclass
class Site:
    context: AppContext
    api: TestClient
    keys: dict[Scope, dict[str, str]]

    def secret(self) -> str:
        return self.context.settings.subject_token_secret.get_secret_value()

    def token(self, user_id: str) -> str:
        return issue_subject_token(secret=self.secret(), user_id=user_id, at=utcnow())

    def ok(self, response: Response) -> Any:
        if response.status_code >= 300:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
        return response.json()


def build(directory: Path, *, unproven_answer_ms: int | None = None) -> Site:
    stores = fresh_stores(directory)
    db, keystore = stores.open()
    settings = Settings(
        database_url=stores.url,
        keystore_url=stores.keystore_url,
        secret_key=SECRET,
        rate_limits=RateLimits(per_key=0, per_key_and_address=0, privacy_filings=0),
        privacy=PrivacySettings(
            export_dir=directory / "exports",
            run_jobs=False,
            **({} if unproven_answer_ms is None else {"unproven_answer_ms": unproven_answer_ms}),
        ),
    )
    catalog = load_catalog(tactful_main.default_catalog_path())
    context = AppContext(settings=settings, db=db, keystore=keystore, catalog=catalog)
    api = TestClient(tactful_main.create_app(settings, context=context), raise_server_exceptions=True)
    keys: dict[Scope, dict[str, str]] = {}
    for scope in Scope:
        with context.session() as session:
            _, token = keys_service.create_key(
                session, keystore=keystore, name=f"timing {scope}", scope=scope, at=utcnow(), actor="bench"
            )
        keys[scope] = {"Authorization": f"Bearer {token}"}
    return Site(context, api, keys)


@dataclass
class Seeded:
    """What the attacker aims at: the people held, their decisions, reviews and export links."""

    users: list[str]
    anonymous: list[str]
    decisions: list[str]
    reviewed: list[str]
    export_tokens: list[str]
    attacker: str
    seen: list[str]
    """Anonymous ids a browser used, linked to no one (two per repetition)."""
    pending: list[str]
    """Anonymous ids a page linked to a user id without proof (a pending link; two per repetition)."""
    refused: list[str]
    """User ids held whose consent to analytics is refused."""
    requests: list[str]
    """Privacy requests of the people held (their public ids)."""


def seed(site: Site, people: int, pool: int) -> Seeded:
    admin, server = site.keys[Scope.ADMIN], site.keys[Scope.SERVER]
    site.ok(site.api.post("/v1/admin/placements", json=PRICE, headers=admin))
    site.ok(site.api.post("/v1/admin/experiences", json=MEMBER_PRICE, headers=admin))
    site.ok(site.api.post("/v1/admin/experiences/member_price/publish", headers=admin))
    users = [f"user-{uuid.uuid4().hex}" for _ in range(people)]
    anonymous = [f"anon-{uuid.uuid4().hex}" for _ in range(people)]
    decisions: list[str] = []
    for user, anon in zip(users, anonymous, strict=True):
        choice = {"user_id": user, "source": "api", "purposes": PURPOSES}
        site.ok(
            site.api.put(
                "/v1/consent", json=choice | {"explicit": {"significant_decisions": True}}, headers=server
            )
        )
        identify = {
            "type": "identify",
            "userId": user,
            "anonymousId": anon,
            "traits": {"first_name": "Ada", "email": f"{user}@example.com", "country": "SE"},
        }
        site.ok(site.api.post("/v1/identify", json=identify, headers=server))
        body = {"user_id": user, "placements": ["price_box"]}
        [answer] = site.ok(site.api.post("/v1/decide", json=body, headers=server))["decisions"]
        decisions.append(answer["decision_id"])
    assert site.context.logbook is not None
    site.context.logbook.flush()
    reviewed = decisions[: people // 2]
    for decision in reviewed:
        site.ok(site.api.post(f"/v1/decisions/{decision}/review", json={}, headers=server))
    exports = [_export(site, user) for user in users[:4]]
    export_tokens, requests = [token for token, _ in exports], [request for _, request in exports]
    attacker = f"mallory-{uuid.uuid4().hex}"
    site.ok(
        site.api.put(
            "/v1/consent", json={"user_id": attacker, "source": "api", "purposes": PURPOSES}, headers=server
        )
    )
    write = site.keys[Scope.WRITE]
    seen = [f"anon-{uuid.uuid4().hex}" for _ in range(2 * pool)]
    pending = [f"anon-{uuid.uuid4().hex}" for _ in range(2 * pool)]
    for anon in seen:  # a page's banner grant: a subject of its own, so that its page view is stored
        choice = {"anonymous_id": anon, "source": "banner", "purposes": {"analytics": True}}
        site.ok(site.api.put("/v1/consent", json=choice, headers=write))
    for start in range(0, 2 * pool, 50):
        batch = [
            {"type": "page", "name": "Home", "anonymousId": anon, "properties": {}}
            for anon in seen[start : start + 50]
        ] + [
            {"type": "identify", "anonymousId": anon, "userId": f"user-{uuid.uuid4().hex}", "traits": {}}
            for anon in pending[start : start + 50]
        ]
        site.ok(site.api.post("/v1/batch", json={"batch": batch}, headers=write))
    refused = [f"user-{uuid.uuid4().hex}" for _ in range(people)]
    for user in refused:
        choice = {"user_id": user, "source": "api", "purposes": {"analytics": False}}
        site.ok(site.api.put("/v1/consent", json=choice, headers=server))
    return Seeded(
        users, anonymous, decisions, reviewed, export_tokens, attacker, seen, pending, refused, requests
    )


def _export(site: Site, user: str) -> tuple[str, str]:
    """A live download link of an access package of `user` (its token), and its request's id."""
    admin = site.keys[Scope.ADMIN]
    body = {"type": "access", "user_id": user, "verified_by": "operator"}
    filed = site.ok(site.api.post("/v1/privacy/requests", json=body, headers=admin))
    with site.context.session() as session:
        record = requests_service.get_request(session, public_id=filed["id"])
    assert record is not None
    JobRunner(job_context(site.context)).run(record.id)
    read = site.ok(site.api.get(f"/v1/privacy/requests/{filed['id']}", headers=admin))
    url: str = read["download_url"]
    return url.rsplit("/", 1)[-1], str(filed["id"])


# -- probes -------------------------------------------------------------------------------------------

Call = Callable[[int], Response]


@dataclass(frozen=True)
class Probe:
    name: str
    """"what: A / B"."""
    a: Call
    """The request naming someone held (index: which repetition)."""
    b: Call
    """The same request naming no one, or someone in another state."""


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def probes(site: Site, seeded: Seeded) -> list[Probe]:
    api, write = site.api, site.keys[Scope.WRITE]
    mine = write | {SUBJECT_TOKEN_HEADER: site.token(seeded.attacker)}
    users, decisions = seeded.users, seeded.decisions
    unreviewed = [d for d in decisions if d not in seeded.reviewed]

    def pick(items: list[str], i: int) -> str:
        return items[i % len(items)]

    def track(user: str) -> Response:
        message = {
            "type": "track",
            "event": "Product Viewed",
            "userId": user,
            "properties": {"product_id": "p-1"},
        }
        return api.post("/v1/track", json=message, headers=write)

    def alias(user: str) -> Response:
        return api.post(
            "/v1/alias", json={"type": "alias", "previousId": fresh("anon"), "userId": user}, headers=write
        )

    def refuse(user: str) -> Response:
        body = {"user_id": user, "source": "banner", "purposes": {"sale_or_share": False}}
        return api.put("/v1/consent", json=body, headers=write)

    def grant_anonymous(anon: str) -> Response:
        body = {"anonymous_id": anon, "source": "banner", "purposes": {"analytics": True}}
        return api.put("/v1/consent", json=body, headers=write)

    def opt_out(user: str) -> Response:
        return api.post(
            "/v1/privacy/requests", json={"type": "opt_out_sale_share", "user_id": user}, headers=write
        )

    def unknown_decision() -> str:
        return "dc_" + uuid.uuid4().hex[:22]

    def review_get(decision: str, headers: dict[str, str]) -> Response:
        return api.get(f"/v1/decisions/{decision}/review", headers=headers)

    def review_post(decision: str, headers: dict[str, str]) -> Response:
        return api.post(f"/v1/decisions/{decision}/review", json={}, headers=headers)

    def export_head(token: str) -> Response:
        return api.head(f"/v1/privacy/exports/{token}", headers=mine)

    def unknown_export() -> str:
        return uuid.uuid4().hex + uuid.uuid4().hex[:11]

    def privacy_get(request_id: str) -> Response:
        return api.get(f"/v1/privacy/requests/{request_id}", headers=mine)

    seen = iter(seeded.seen)
    return [
        Probe("collect track: consenting user id / fresh user id", lambda i: track(pick(users, i)),
              lambda i: track(fresh("user"))),
        Probe("collect track: consenting user id / refusing user id", lambda i: track(pick(users, i)),
              lambda i: track(pick(seeded.refused, i))),
        Probe("collect alias: known user id / fresh user id", lambda i: alias(pick(users, i)),
              lambda i: alias(fresh("user"))),
        Probe("consent refusal: known user id / fresh user id", lambda i: refuse(pick(users, i)),
              lambda i: refuse(fresh("user"))),
        Probe("consent grant: linked anonymous id / fresh anonymous id",
              lambda i: grant_anonymous(pick(seeded.anonymous, i)), lambda i: grant_anonymous(fresh("anon"))),
        Probe("consent grant: linked anonymous id / seen, unlinked anonymous id",
              lambda i: grant_anonymous(pick(seeded.anonymous, i)), lambda i: grant_anonymous(next(seen))),
        Probe("consent grant: pending-linked anonymous id / seen, unlinked anonymous id",
              lambda i: grant_anonymous(seeded.pending[i]), lambda i: grant_anonymous(next(seen))),
        Probe("consent grant: pending-linked anonymous id / fresh anonymous id",
              lambda i: grant_anonymous(seeded.pending[-1 - i]), lambda i: grant_anonymous(fresh("anon"))),
        Probe("privacy opt-out: known user id / fresh user id", lambda i: opt_out(pick(users, i)),
              lambda i: opt_out(fresh("user"))),
        Probe("privacy GET, own token: someone's request / unknown id",
              lambda i: privacy_get(pick(seeded.requests, i)),
              lambda i: privacy_get("prq_" + uuid.uuid4().hex[:24])),
        Probe("review GET, no token: someone's reviewed decision / unknown id",
              lambda i: review_get(pick(seeded.reviewed, i), write),
              lambda i: review_get(unknown_decision(), write)),
        Probe("review GET, no token: someone's reviewed / unreviewed decision",
              lambda i: review_get(pick(seeded.reviewed, i), write),
              lambda i: review_get(pick(unreviewed, i), write)),
        Probe("review GET, own token: someone's reviewed decision / unknown id",
              lambda i: review_get(pick(seeded.reviewed, i), mine),
              lambda i: review_get(unknown_decision(), mine)),
        Probe("review GET, own token: someone's reviewed / unreviewed decision",
              lambda i: review_get(pick(seeded.reviewed, i), mine),
              lambda i: review_get(pick(unreviewed, i), mine)),
        Probe("review POST, own token: someone's decision / unknown id",
              lambda i: review_post(pick(decisions, i), mine),
              lambda i: review_post(unknown_decision(), mine)),
        Probe("export HEAD, own token: someone's live link / unknown link",
              lambda i: export_head(pick(seeded.export_tokens, i)), lambda i: export_head(unknown_export())),
        Probe("explanation: logged decision / unknown id (answers differ: 200, 404)",
              lambda i: api.get(f"/v1/decisions/{pick(decisions, i)}/explanation", headers=write),
              lambda i: api.get(f"/v1/decisions/{unknown_decision()}/explanation", headers=write)),
    ]  # fmt: skip


# -- measuring -------------------------------------------------------------------------------------


def answer(response: Response) -> tuple[int, Any]:
    """A response's status and body with what differs between any two requests left out."""
    if not response.content:
        return response.status_code, None
    try:
        body = response.json()
    except ValueError:
        return response.status_code, "<binary>"

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return response.status_code, strip(body)


def auc(slow: list[float], fast: list[float]) -> float:
    """P(one `slow` sample > one `fast` sample), ties counted half (Mann–Whitney U / n·m)."""
    ordered = sorted((v, side) for side, values in ((0, slow), (1, fast)) for v in values)
    ranks: dict[int, float] = {0: 0.0, 1: 0.0}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][0] == ordered[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[ordered[k][1]] += rank
        i = j + 1
    n, m = len(slow), len(fast)
    return (ranks[0] - n * (n + 1) / 2) / (n * m)


def measure(probe: Probe, reps: int, rng: random.Random) -> dict[str, Any]:
    for i in range(5):  # warm both paths
        probe.a(i)
        probe.b(i)
    times: dict[str, list[float]] = {"a": [], "b": []}
    answers: dict[str, set[str]] = {"a": set(), "b": set()}
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(reps):
            order = [("a", probe.a), ("b", probe.b)]
            rng.shuffle(order)
            for side, call in order:
                start = clock()
                response = call(i)
                times[side].append((clock() - start) / 1e6)
                answers[side].add(json.dumps(answer(response), sort_keys=True))
    finally:
        gc.enable()
    a, b = times["a"], times["b"]
    return {
        "probe": probe.name,
        "same_answer": answers["a"] == answers["b"] and len(answers["a"]) == 1,
        "answer_a": sorted(answers["a"])[0][:120],
        "answer_b": sorted(answers["b"])[0][:120],
        "a_ms": {
            "median": round(percentile(a, 50), 3),
            "p10": round(percentile(a, 10), 3),
            "p90": round(percentile(a, 90), 3),
        },
        "b_ms": {
            "median": round(percentile(b, 50), 3),
            "p10": round(percentile(b, 10), 3),
            "p90": round(percentile(b, 90), 3),
        },
        "difference_ms": round(percentile(a, 50) - percentile(b, 50), 3),
        "auc": round(auc(a, b), 3),
        "reps": reps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.public_timing", description=__doc__)
    parser.add_argument("--reps", type=int, default=300, help="interleaved pairs per probe")
    parser.add_argument("--people", type=int, default=40, help="people held")
    parser.add_argument("--only", default=None, help="only probes whose name contains this")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the SQLite files go (/dev/shm: no disk in the figures)"
    )
    parser.add_argument(
        "--unproven-answer-ms",
        type=int,
        default=None,
        help="the floor of a filing without proof (default: the setting's; 0 shows the work alone)",
    )
    args = parser.parse_args(argv)
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory(prefix="tactful-timing-", dir=args.dir) as directory:
        site = build(Path(directory), unproven_answer_ms=args.unproven_answer_ms)
        with site.api:
            seeded = seed(site, args.people, args.reps + 10)
            rows = []
            for probe in probes(site, seeded):
                if args.only and args.only not in probe.name:
                    continue
                row = measure(probe, args.reps, rng)
                rows.append(row)
                print(
                    f"{row['probe']:<72} same={row['same_answer']!s:<5} "
                    f"A {row['a_ms']['median']:7.3f} ms ({row['a_ms']['p10']:.3f}–{row['a_ms']['p90']:.3f})  "
                    f"B {row['b_ms']['median']:7.3f} ms ({row['b_ms']['p10']:.3f}–{row['b_ms']['p90']:.3f})  "
                    f"Δ {row['difference_ms']:+.3f}  AUC {row['auc']:.2f}",
                    flush=True,
                )
                if not row["same_answer"]:
                    print(f"    A: {row['answer_a']}\n    B: {row['answer_b']}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
