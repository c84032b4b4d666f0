"""Seed a fresh database with the demo shop, once.

    seeded already? (audit entry `demo.seeded`) ── yes ──▶ SeedReport(seeded=False), no new keys
        │ no
        ▼
    one key per scope (write, server, admin)      plaintext only in the report, never stored
        ▼
    DemoShop(config, now).batches(500) ──▶ collect.service.ingest, one transaction per batch
        ▼                                  (as if sent with the write key)
    audit `demo.seeded` with the counts
        ▼
    placements.seed_placements: placements and experiences at every level (also when the shop was
                                seeded before the demo had them), audit `demo.placements_seeded`

The marker is written after the last batch, so an interrupted seed is not taken for a finished one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.audit.models import AuditEntry
from tactful.collect import service as collect_service
from tactful.collect.schemas import Source, Status
from tactful.config import Settings
from tactful.consent.gatekeeper import PolicyContext
from tactful.crypto import Keystore
from tactful.demo.generate import DemoConfig, DemoShop
from tactful.demo.placements import seed_placements
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.policy import Regime

log = logging.getLogger("tactful.demo")

MARKER = "demo.seeded"
ACTOR = "demo"
KEY_NAMES: dict[Scope, str] = {
    Scope.WRITE: "demo shop (web pages)",
    Scope.SERVER: "demo shop (backend)",
    Scope.ADMIN: "demo shop (administration)",
}

Progress = Callable[[int, int], None]


class SeedContext(Protocol):
    """What seeding needs of the process context (`tactful.api.context.AppContext` fits)."""

    @property
    def keystore(self) -> Keystore: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def regimes(self) -> tuple[Regime, ...]: ...

    def session(self) -> AbstractContextManager[Session]: ...

    def policy_context(self) -> PolicyContext: ...


@dataclass(frozen=True)
class SeedReport:
    """What seeding did. `keys` holds each new key once, for printing; it is empty when already seeded."""

    seeded: bool
    products: int = 0
    customers: int = 0
    received: int = 0
    statuses: Mapping[str, int] = field(default_factory=dict)
    dropped_fields: Mapping[str, int] = field(default_factory=dict)
    keys: Mapping[Scope, str] = field(default_factory=dict)
    seconds: float = 0.0
    definitions: int = 0
    """Placements, audiences and experiences made now (`demo.placements`; 0 when they were there)."""

    def summary(self) -> str:
        if not self.seeded:
            return (
                "the demo shop is already seeded: keys are not shown again "
                "(create one with `tactful keys create`)"
            )
        outcomes = ", ".join(f"{self.statuses.get(s.value, 0):,} {s.value}" for s in Status)
        dropped = sum(self.dropped_fields.values())
        return (
            f"seeded the demo shop in {self.seconds:.0f} s: {self.products} products, "
            f"{self.customers:,} customers, {self.received:,} messages ({outcomes}); "
            f"{dropped:,} undeclared fields dropped"
        )


def already_seeded(session: Session) -> bool:
    return (
        session.execute(select(AuditEntry.seq).where(AuditEntry.action == MARKER).limit(1)).first()
        is not None
    )


def seed(
    context: SeedContext,
    *,
    now: datetime,
    progress: Progress | None = None,
    config: DemoConfig | None = None,
    batch_size: int = 500,
) -> SeedReport:
    """Seed the demo shop unless the database already holds it; its placements either way (once)."""
    started = time.perf_counter()
    with context.session() as session:
        seeded = already_seeded(session)
    if seeded:
        made = seed_placements(context, catalog=context.policy_context().catalog, now=now)
        return SeedReport(seeded=False, definitions=made)
    config = config or DemoConfig()
    shop = DemoShop(config, now=now)
    total = shop.count()
    if progress:
        progress(0, total)

    keys: dict[Scope, str] = {}
    with context.session() as session:
        for scope, name in KEY_NAMES.items():
            row, keys[scope] = keys_service.create_key(
                session, keystore=context.keystore, name=name, scope=scope, at=now, actor=ACTOR
            )
            if scope is Scope.SERVER:
                server_key_id = row.id
    # As if the shop's backend had relayed the traffic with its server-scope key, whose word about
    # who a user is counts as proof (a page's write key would only claim it: DESIGN §4).
    source = Source(write_key_id=server_key_id, request_id="demo-seed", trusted=True)
    policy = context.policy_context()

    statuses: Counter[str] = Counter()
    done = 0
    for batch in shop.batches(batch_size):
        with context.session() as session:
            results = collect_service.ingest(
                session,
                keystore=context.keystore,
                messages=batch,
                source=source,
                at=now,
                limits=context.settings.limits,
                policy=policy,
            )
        statuses.update(r.status.value for r in results)
        done += len(batch)
        if progress:
            progress(done, total)
    with context.session() as session:
        dropped = dict(collect_service.ingest_stats(session).dropped_fields)
        audit_service.append(
            session,
            keystore=context.keystore,
            action=MARKER,
            actor=ACTOR,
            at=now,
            details={"seed": config.seed, "customers": config.customers, "messages": done},
        )
    made = seed_placements(context, catalog=policy.catalog, now=now)
    log.info("demo seeded: %d messages, %s; %d definitions", done, dict(statuses), made)
    return SeedReport(
        seeded=True,
        products=len(shop.products),
        customers=len(shop.customers),
        received=done,
        statuses=dict(statuses),
        dropped_fields=dropped,
        keys=keys,
        seconds=time.perf_counter() - started,
        definitions=made,
    )
