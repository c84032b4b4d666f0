"""Builders for erasure evidence: a person seeded everywhere through the real services, and a scan of
every table, file and Redis key for their identifiers and hashes of them."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from redis import Redis
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

from tactful.collect import service as collect_service
from tactful.collect.outcomes import Outcome
from tactful.collect.schemas import EventResult, Source, Status
from tactful.config import PolicySettings, PrivacySettings, Settings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import ConsentChange
from tactful.crypto import Keystore, keystore_metadata
from tactful.db import Base, Database
from tactful.decide import log as decision_log
from tactful.decide.logbook import Entry
from tactful.measure import outcomes as measure_outcomes
from tactful.policy.state import ConsentSource
from tactful.profiles import service as profiles_service
from tactful.profiles.counters import Observation, RedisCounters
from tactful.rights.jobs import JobContext
from tactful.tables import import_all_models
from tactful.types import Level, Purpose
from tests.backends import REDIS_URL, fresh_database, redis_prefix
from tests.collect.builders import LIMITS, policy_context
from tests.rights.requesting import DEMO

SECRET = "erasure-evidence-secret-of-enough-length"
OPEN = PolicySettings(establishment_country="US", regimes={"ccpa": {"establishments": ["US"]}})
POLICY = policy_context(DEMO, OPEN)
"""The demo catalog where every visitor falls under CCPA: events are stored until an opt-out."""


@dataclass(frozen=True)
class Person:
    user_id: str
    anonymous_ids: tuple[str, str]
    email: str
    subject_id: uuid.UUID

    def needles(self) -> dict[str, bytes]:
        """What must appear nowhere after erasure: each identifier, and its SHA-256 and MD5 (hex and
        raw), the e-mail address lower-cased."""
        found: dict[str, bytes] = {}
        for value in (self.user_id, *self.anonymous_ids, self.email.lower()):
            raw = value.encode()
            found[value] = raw
            for name in ("sha256", "md5"):
                digest = hashlib.new(name, raw)
                found[f"{name}({value})"] = digest.digest()
                found[f"{name}({value}) hex"] = digest.hexdigest().encode()
        return found


@dataclass(frozen=True)
class Place:
    """A main database and a keystore of a test's own (files on SQLite), with Redis when configured."""

    database: Database
    keystore: Keystore
    settings: Settings
    redis: Redis | None
    files: tuple[Path, ...]

    def jobs(self) -> JobContext:
        return JobContext(
            database=self.database,
            keystore=self.keystore,
            settings=self.settings,
            policy=lambda: POLICY,
            redis=self.redis,
        )


@contextmanager
def place(backend: str, tmp: Path) -> Iterator[Place]:
    with (
        fresh_database(backend, tmp) as main_url,
        fresh_database(backend, tmp, migrated=False, name="keys") as keys_url,
    ):
        database = Database(main_url)
        keystore = Keystore(keys_url, secret_key=SECRET)
        keystore.create_schema()
        redis = Redis.from_url(REDIS_URL) if REDIS_URL else None
        prefix = redis_prefix()
        exports = tmp / "exports"
        settings = Settings(
            database_url=main_url, keystore_url=keys_url, redis_prefix=prefix,
            privacy=PrivacySettings(export_dir=exports),
        )  # fmt: skip
        files: list[Path] = []
        for url in (main_url, keys_url):
            if url.startswith("sqlite:///"):
                path = Path(url.removeprefix("sqlite:///"))
                files += [path, path.with_name(path.name + "-wal")]
        try:
            yield Place(database, keystore, settings, redis, tuple(files))
        finally:
            if redis is not None:
                keys = list(redis.scan_iter(match=f"{prefix}*"))
                if keys:
                    redis.delete(*keys)
                redis.close()
            database.dispose()
            keystore.dispose()


def ingest(place: Place, messages: list[dict[str, object]], *, at: datetime) -> list[EventResult]:
    with place.database.session() as session:
        return collect_service.ingest(
            session,
            keystore=place.keystore,
            messages=messages,
            source=Source(trusted=True, request_id="req-evidence"),
            at=at,
            limits=LIMITS,
            policy=POLICY,
        )


def seed(place: Place, *, at: datetime, tag: str) -> Person:
    """One person everywhere: three identities, traits (an e-mail address among them), consent
    records, events, quarantined messages, real-time counters (Redis), decision log rows."""
    user, first, second = f"user-{tag}-7f3a", f"anon-{tag}-1c9e", f"anon-{tag}-52bd"
    email = f"Ada.Lovelace.{tag}@Example.com"
    when = at.isoformat()
    results = ingest(
        place,
        [
            {"type": "identify", "userId": user, "anonymousId": first, "timestamp": when,
             "messageId": f"m-{tag}-1", "traits": {"email": email, "first_name": "Ada"}},
            {"type": "track", "event": "Product Viewed", "userId": user, "anonymousId": second,
             "timestamp": when, "messageId": f"m-{tag}-2", "properties": {"product_id": "p-1"}},
            {"type": "page", "anonymousId": second, "timestamp": when, "messageId": f"m-{tag}-3",
             "name": "Home"},
            # Quarantined, naming the person: an unreadable time, an unknown type.
            {"type": "track", "event": "Product Viewed", "userId": user, "timestamp": "last tuesday",
             "messageId": f"m-{tag}-4"},
            {"type": "purchase", "anonymousId": first, "messageId": f"m-{tag}-5",
             "traits": {"email": email}},
        ],
        at=at,
    )  # fmt: skip
    statuses = [r.status for r in results]
    assert statuses[:3] == [Status.STORED] * 3, results
    assert statuses[3:] == [Status.QUARANTINED] * 2, results
    with place.database.session() as session:
        subject = profiles_service.find_subject(session, keystore=place.keystore, user_id=user)
        assert subject is not None
        held = profiles_service.identities(session, keystore=place.keystore, subject_id=subject)
        assert {i.value for i in held} == {user, first, second}
        grant = ConsentChange.for_purpose(Purpose.ANALYTICS, ConsentAction.GRANTED, ConsentSource.API)
        consent_service.record(
            session, keystore=place.keystore, subject_id=subject, changes=[grant], at=at, actor="tests"
        )
        decided = _decision(subject, at)
        decision_log.write(session, entries=[decided], at=at)
        clicked = Outcome(
            subject_id=subject, decision_id=decided.decision_id, event="events.promotion_clicked",
            value=None, occurred_at=at, received_at=at, refusal=None, may_learn=True,
            learn_ceiling=Level.ONE,
        )  # fmt: skip
        measure_outcomes.record(session, outcomes=[clicked], at=at)
    if place.redis is not None:
        counters = RedisCounters(place.redis, prefix=place.settings.redis_prefix)
        viewed = Observation("events.product_viewed", (("category", '"outdoor"'),))
        counters.record(subject, [viewed], at=at, version="0")
    return Person(user, (first, second), email, subject)


def _decision(subject: uuid.UUID, at: datetime) -> Entry:
    return Entry(
        decision_id=f"d-{uuid.uuid4().hex}",
        subject_id=subject,
        placement="home_hero",
        experience=None,
        experience_version=None,
        variation="default",
        level="1:all",
        strategy="default",
        propensity=1.0,
        atoms_read=(),
        purposes=(),
        legal_basis={},
        explanation={},
        decided_at=at + timedelta(seconds=1),
        process=uuid.uuid4(),
        sequence=1,
    )


# -- scanning ---------------------------------------------------------------------------------------


def _cells(engine: Engine, metadata: MetaData) -> Iterator[tuple[str, bytes]]:
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.c, row, strict=True):
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    yield f"{table.name}.{column.name}", raw


def found_in_tables(place: Place, needles: dict[str, bytes]) -> list[str]:
    """`table.column: needle` for every cell of both databases holding one."""
    import_all_models()
    hits = []
    for engine, metadata in (
        (place.database.engine, Base.metadata),
        (place.keystore.engine, keystore_metadata),
    ):
        for where, raw in _cells(engine, metadata):
            hits += [f"{where}: {name}" for name, needle in needles.items() if needle in raw]
    return hits


def export_files(place: Place) -> list[Path]:
    folder = place.settings.privacy.export_dir
    return sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []


def found_in_files(place: Place, needles: dict[str, bytes]) -> list[str]:
    """The needles in the bytes of both databases, their write-ahead logs and the export folder."""
    hits = []
    for path in [*place.files, *export_files(place)]:
        if path.exists():
            data = path.read_bytes()
            hits += [f"{path.name}: {name}" for name, needle in needles.items() if needle in data]
    return hits


def found_in_redis(place: Place, needles: dict[str, bytes]) -> list[str]:
    if place.redis is None:
        return []
    hits = []
    for key in place.redis.scan_iter(match=f"{place.settings.redis_prefix}*"):
        dumped = place.redis.dump(key)
        data = key + (dumped if isinstance(dumped, bytes) else b"")
        hits += [f"redis {key!r}: {name}" for name, needle in needles.items() if needle in data]
    return hits


def redis_keys_of(place: Place, subject: uuid.UUID) -> list[bytes]:
    if place.redis is None:
        return []
    return list(place.redis.scan_iter(match=f"{place.settings.redis_prefix}*{subject}*"))


def subject_of(place: Place, *, user_id: str) -> uuid.UUID | None:
    with place.database.session() as session:
        return profiles_service.find_subject(session, keystore=place.keystore, user_id=user_id)


def count(place: Place, table: str) -> int:
    import_all_models()
    with place.database.engine.connect() as conn:
        return len(conn.execute(select(Base.metadata.tables[table])).all())
