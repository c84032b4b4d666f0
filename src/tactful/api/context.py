"""What every request handler may reach: settings, the databases, the keystore, the catalog, Redis,
and the policy gate compiled from the catalog and the regimes.

`main.create_app` builds one `AppContext` per process and keeps it on `app.state`; handlers receive it
through the `get_context` dependency, never from a global. The compiled gate is held by `gates`: each
`policy_context()` takes the current one, which is replaced when another process publishes a new
catalog version (through Redis, `RedisBoard`; checked at most once a second).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from redis import Redis, RedisError
from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.collect.outcomes import OutcomeHook, ignore_outcomes
from tactful.config import Settings
from tactful.consent.gatekeeper import PolicyContext, WithdrawalHook, keep_records
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import log as decision_log
from tactful.decide.audience_count import StoredCount
from tactful.decide.audience_size import HASH_KEY_NAME, AudienceSizes, Sizing
from tactful.decide.audience_store import RedisSizes, TableSizes
from tactful.decide.lineup import Lineup
from tactful.decide.lineup_store import LineupHolder
from tactful.decide.logbook import Logbook
from tactful.policy import AgePolicy, Gate, Regime, compile_gate
from tactful.policy.holder import GateHolder
from tactful.profiles.counters import RealtimeCounters, make_counters
from tactful.types import utcnow

log = logging.getLogger("tactful.catalog")

CATALOG_VERSION_KEY = "catalog:version"
"""The Redis key (after the configured prefix) holding the catalog version in force."""


class RedisBoard:
    """The catalog version in force, in one Redis key every process reads. Should Redis not answer,
    the process goes on with the gate it has (one warning a time), and compares again later."""

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis, self._key = redis, key

    def read(self) -> str | None:
        try:
            value = self._redis.get(self._key)
        except RedisError as exc:
            log.warning(
                "catalog version not read from Redis (%s); the compiled gate stays", type(exc).__name__
            )
            return None
        return value.decode("ascii") if isinstance(value, bytes) else None

    def publish(self, version: str) -> None:
        try:
            self._redis.set(self._key, version.encode("ascii"))
        except RedisError as exc:
            log.warning("catalog version not published to Redis (%s)", type(exc).__name__)


def compile_for(settings: Settings, regimes: tuple[Regime, ...], catalog: Catalog) -> Gate:
    """The gate for `catalog` under a process's regimes and the age policy of its settings."""
    policy = settings.policy
    age_policy = AgePolicy(policy.minor_age, policy.assume_minor_when_age_unknown)
    return compile_gate(catalog, regimes=regimes, age_policy=age_policy)


@dataclass
class AppContext:
    settings: Settings
    db: Database
    keystore: Keystore
    catalog: Catalog
    redis: Redis | None = None
    regimes: tuple[Regime, ...] = ()
    extras: dict[str, object] = field(default_factory=dict)
    on_withdrawal: WithdrawalHook = keep_records
    """What a consent refusal does to collection's stored events; `main.build_context` wires it."""
    gates: GateHolder | None = None
    """The compiled gate; without one given, the gate of `catalog`, never reloaded."""
    withdrawal_for: Callable[[Catalog], WithdrawalHook] | None = None
    """Makes `on_withdrawal` again for a catalog that replaced the first one (`main` wires it)."""
    lineups: LineupHolder | None = None
    """What serves (placements, live experiences), built again when the model or catalog changes."""
    logbook: Logbook | None = None
    """This process's buffer of the decision log; the application's lifespan writes it in the
    background (a context built for a test writes when the test flushes it)."""
    on_outcome: OutcomeHook = ignore_outcomes
    """What collection does with a track event naming a decision; `main` wires measure's."""
    counters: RealtimeCounters | None = None
    """The session counters (`1:some`): in Redis when configured, shared by every process; else in
    this process's memory, which is why `tactful serve` refuses several workers without Redis."""

    def __post_init__(self) -> None:
        # Built once per process from the settings; a bad regime refuses to start.
        if not self.regimes:
            self.regimes = configured_regimes(self.settings.policy)
        if self.gates is None:
            settings, regimes, catalog = self.settings, self.regimes, self.catalog
            self.gates = GateHolder(
                load=lambda: compile_for(settings, regimes, catalog), clock=time.monotonic
            )
        if self.lineups is None:
            self.lineups = LineupHolder(
                session=self.db.session,
                clock=time.monotonic,
                sizes=self.audience_sizes(),
                reading=self.db.reading,
            )
        if self.logbook is None:
            self.logbook = Logbook(decision_log.writer(self.db))
        if self.counters is None:
            self.counters = make_counters(redis=self.redis, prefix=self.settings.redis_prefix)

    def audience_sizes(self) -> AudienceSizes:
        """Audience size counting (invariant 7): in Redis when configured, else in the database."""
        redis, keystore = self.redis, self.keystore
        store = TableSizes() if redis is None else RedisSizes(redis, prefix=self.settings.redis_prefix)
        return AudienceSizes(
            store,
            k=self.settings.decide.audience_k,
            secret=lambda: keystore.system.read_or_create(HASH_KEY_NAME)[0],
        )

    def audience_sizing(self) -> Sizing | None:
        """How the management API measures audiences now."""
        sizes = self.lineups.sizes if self.lineups is not None else None
        return None if sizes is None else sizes.sizing(self.gate().catalog, today=utcnow().date())

    def audience_counting(self) -> StoredCount | None:
        """How audience sizes are estimated from stored profiles (into the sketches decisions count
        into); None when this process does not measure sizes."""
        sizes = self.lineups.sizes if self.lineups is not None else None
        return (
            None
            if sizes is None
            else StoredCount(keystore=self.keystore, policy=self.policy_context, sizes=sizes)
        )

    def gate(self) -> Gate:
        """The compiled gate to use now (after another process changed the catalog, the new one)."""
        assert self.gates is not None  # set when the context is made
        gate = self.gates.current()
        if gate.catalog is not self.catalog:
            self.catalog = gate.catalog
            if self.withdrawal_for is not None:
                self.on_withdrawal = self.withdrawal_for(gate.catalog)
        return gate

    def lineup(self) -> Lineup:
        """What serves now, built for the catalog in force."""
        assert self.lineups is not None  # set when the context is made
        gate = self.gate()
        return self.lineups.current(catalog=gate.catalog, catalog_version=gate.version)

    def policy_context(self) -> PolicyContext:
        """The gate's inputs for this process, with its compiled gate and withdrawal hook."""
        gate = self.gate()
        return PolicyContext(gate.catalog, self.settings.policy, self.regimes, self.on_withdrawal, gate)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, before any response is sent."""
        with self.db.session() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads (`Database.reading`): it waits for no writer."""
        with self.db.reading() as session:
            yield session

    @contextmanager
    def changing(self) -> Iterator[Session]:
        """A unit of work that changes what serves: this process reads the lineup again once it
        commits (other processes within a second, `LineupHolder`)."""
        with self.session() as session:
            yield session
        assert self.lineups is not None
        self.lineups.invalidate()


async def get_context(request: Request) -> AppContext:
    # async: a plain attribute read, which a synchronous dependency would send to the thread pool
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]
