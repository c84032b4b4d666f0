"""`tactful simulate`: realistic traffic driven through the engine's public HTTP API, in process.

    open_run: the run's number (earlier runs in the audit log), a key of each scope for it
        ▼
    simulate(transport_for, keys, ...)            the caller hands in the app's ASGI transport
        │ GET /metrics (admin key): the engine's counters before (events by outcome, refused
        │     claims, outcomes kept: what a page's write key is never told)
        │ every visit of every visitor, in time order (`journeys.Visit`):
        │     page ──(write key)──▶ consent, collection, explanations
        │     backend ──(server key)──▶ decide
        │ GET /metrics: the counters after
        ▼
    Summary (`tally`): visitors, messages by outcome, decisions per level, consent choices with the
        ceilings the engine reported, click rates per level and per variation
        ▼
    close_run: the keys revoked, an audit entry `demo.simulated` with the run's figures

Deterministic from (seed, run number, now): visitors, choices, visits and every random draw. The
run number makes a second run on the same database bring new visitors (their ids and message ids
differ) instead of replaying the first one's messages as duplicates; on a fresh database the same
seed gives the same visitors. What the engine answers depends on the database too: each database
draws its own assignment seeds, so the variation a visitor sees (and so their clicks) can differ.

Each visitor's requests come from their own client address (a documentation address), as a
browser's would, so the per-address rate limit of the write key applies to them one by one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit.models import AuditEntry
from tactful.crypto import Keystore
from tactful.demo import behaviour
from tactful.demo.journeys import Shop, Visit
from tactful.demo.shop import by_category, make_products
from tactful.demo.tally import OUTCOMES, OUTCOMES_RECEIVED, REFUSED, Sent, Summary, Tally, summarise
from tactful.demo.visitors import Visitor, make_visitors
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.keys.tokens import issue_subject_token
from tactful.sdk import AsyncClient, Backoff
from tactful.sdk.errors import APIError

MARKER = "demo.simulated"
ACTOR = "simulate"
BASE_URL = "http://tactful.simulated"
BACKEND_ADDRESS = "10.0.0.10"
"""Where the shop's backend calls from (decisions): one address for all of them."""

Progress = Callable[[int, int], None]
TransportFor = Callable[[str], httpx.AsyncBaseTransport]
"""A client address ──▶ a transport to the engine presenting it (`httpx.ASGITransport(app, client=...)`)."""


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 7
    visitors: int = 300
    days: float = 7.0

    def __post_init__(self) -> None:
        if self.visitors < 1 or self.days <= 0:
            raise ValueError("a simulation needs at least one visitor and a window of time")


@dataclass(frozen=True)
class Keys:
    """The run's keys (plaintext, in memory only): one of each scope."""

    write: str
    server: str
    admin: str

    def scope_of(self, token: str) -> str:
        found = {self.write: "write", self.server: "server", self.admin: "admin"}
        return found.get(token, "unknown")


@dataclass(frozen=True)
class Run:
    number: int
    keys: Keys
    key_ids: tuple[str, ...]


class RunContext(Protocol):
    """What opening and closing a run needs of the process context (`AppContext` fits)."""

    @property
    def keystore(self) -> Keystore: ...

    def session(self) -> AbstractContextManager[Session]: ...


def open_run(context: RunContext, *, at: datetime) -> Run:
    """The next run's number and a fresh key of each scope for it."""
    with context.session() as session:
        number = session.scalar(select(func.count()).where(AuditEntry.action == MARKER)) or 0
        made: dict[Scope, str] = {}
        ids: list[str] = []
        for scope in (Scope.WRITE, Scope.SERVER, Scope.ADMIN):
            row, made[scope] = keys_service.create_key(
                session, keystore=context.keystore, name=f"simulation {number} ({scope})",
                scope=scope, at=at, actor=ACTOR,
            )  # fmt: skip
            ids.append(str(row.id))
    return Run(number, Keys(made[Scope.WRITE], made[Scope.SERVER], made[Scope.ADMIN]), tuple(ids))


def close_run(
    context: RunContext, *, run: Run, config: SimulationConfig, summary: Summary | None, at: datetime
) -> None:
    """Revoke the run's keys and record the run (its figures, no personal data) in the audit log."""
    with context.session() as session:
        for key_id in run.key_ids:
            keys_service.revoke_key(
                session, keystore=context.keystore, key_id=uuid.UUID(key_id), at=at, actor=ACTOR
            )
        details: dict[str, str | int | float | bool | None] = {
            "run": run.number, "seed": config.seed, "visitors": config.visitors, "days": config.days,
            "completed": summary is not None,
        }  # fmt: skip
        if summary is not None:
            details |= {"messages": summary.messages, "decisions": sum(summary.decisions_by_level.values())}
        audit_service.append(
            session, keystore=context.keystore, action=MARKER, actor=ACTOR, at=at, details=details
        )


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the engine and notes each one's path, key scope and answer status."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, keys: Keys, tally: Tally) -> None:
        self.inner, self.keys, self.tally = inner, keys, tally

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.tally.sent(
            Sent(request.method, request.url.path, self.keys.scope_of(token), response.status_code)
        )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _visits(visitors: tuple[Visitor, ...]) -> Iterator[tuple[datetime, Visitor, int]]:
    """Every visit of every visitor, in the order they happen."""
    found = [(at, v, n) for v in visitors for n, at in enumerate(v.visits)]
    yield from sorted(found, key=lambda item: (item[0], item[1].index, item[2]))


def counters(text: str) -> dict[str, float]:
    """The engine's counters from a `/metrics` page: events by outcome (`tactful_events_total`),
    refused claims by reason (`refused:<reason>`) and stored outcomes (`outcomes_received`)."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tactful_events_total" and sample.labels.get("outcome") in OUTCOMES:
                found[sample.labels["outcome"]] = sample.value
            elif sample.name == "tactful_claims_refused_total" and "reason" in sample.labels:
                found[REFUSED + sample.labels["reason"]] = sample.value
            elif sample.name == "tactful_outcomes_received_total":
                found[OUTCOMES_RECEIVED] = sample.value
    return found


async def _read_counters(transport_for: TransportFor, keys: Keys, tally: Tally) -> dict[str, float]:
    transport = Recorder(transport_for(BACKEND_ADDRESS), keys=keys, tally=tally)
    headers = {"Authorization": f"Bearer {keys.admin}"}
    async with httpx.AsyncClient(base_url=BASE_URL, transport=transport, headers=headers) as client:
        response = await client.get("/metrics")
    response.raise_for_status()
    return counters(response.text)


async def simulate(
    *,
    transport_for: TransportFor,
    keys: Keys,
    token_secret: str,
    config: SimulationConfig,
    run: int,
    now: datetime,
    progress: Progress | None = None,
    tally: Tally | None = None,
) -> Summary:
    """Drive `config.visitors` visitors over the `config.days` before `now` through the engine;
    `tally` (a fresh one if not given) receives every answer as it arrives."""
    tally = Tally() if tally is None else tally
    visitors = make_visitors(
        config.seed, run, config.visitors, start=now - timedelta(days=config.days), end=now
    )
    planned = list(_visits(visitors))
    products = by_category(make_products(config.seed))

    def mint(user_id: str) -> str:
        # Minted at the real time of the call: the engine checks a token against its own clock.
        return issue_subject_token(secret=token_secret, user_id=user_id, at=datetime.now(now.tzinfo))

    def client(key: str, address: str) -> AsyncClient:
        transport = Recorder(transport_for(address), keys=keys, tally=tally)
        return AsyncClient(base_url=BASE_URL, api_key=key, transport=transport, backoff=Backoff(retries=2))

    tally.counters_before = await _read_counters(transport_for, keys, tally)
    async with client(keys.server, BACKEND_ADDRESS) as backend:
        shop = Shop(products=products, backend=backend, mint=mint, tally=tally)
        for done, (at, visitor, number) in enumerate(planned, start=1):
            async with client(keys.write, visitor.ip) as browser:
                try:
                    await Visit(shop, visitor, number, at, seed=config.seed, run=run).run(browser)
                except APIError as error:
                    # Counted with its status among the requests; the visit stops as a page would.
                    tally.failures[error.code] += 1
            if progress is not None:
                progress(done, len(planned))
    tally.counters_after = await _read_counters(transport_for, keys, tally)
    return summarise(tally, clickable=behaviour.CLICKABLE, visits=len(planned))
