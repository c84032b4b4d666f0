"""A large database for the privacy rights benchmark: 100,000 subjects and 1,000,000 events, made
through the real tables and sealing, quickly, and kept between runs.

    template   collect.service.ingest of demo shop messages into a throwaway file: the event rows
               ingestion stores (filtered properties, context, purposes), used as shapes
    per chunk of subjects, one transaction:
        profiles.resolve_many     subjects, identities (sealed under new per-subject keys, digests)
        profiles.apply_traits_many  names, e-mail (sealed, blind index), country, age range
        consent.record_many       the banner's grants (ledger rows, audit entries)
        bulk.insert_rows          ten events each (template shapes under new ids and times) and
                                  their message ids (keyed digests, as collection writes them)
        bulk.insert_rows          two decision log rows each, copies of decisions the real path
                                  made for the first subjects (decisions.decide, log.write)

Subject i has the anonymous id `anon-{i}`; the even ones are identified, with the user id `user-{i}`
and the e-mail `person{i}@example.com`. SQLite files are cached under `bench/.cache/`, keyed by the
schema (the migrations' head and text), the sizes and this module's version, so that reruns only copy
them. PostgreSQL is seeded afresh into schemas of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select

from bench import ingest
from bench.stores import SECRET, Stores, create_schema, demo_messages
from tactful.api.context import AppContext
from tactful.bulk import insert_rows
from tactful.catalog.loader import load_catalog
from tactful.collect.models import Event, MessageId
from tactful.config import Settings
from tactful.consent import service as consent_service
from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import ConsentChange
from tactful.db import Database, migrations_path, schema_status, truncate_log
from tactful.decide import decisions
from tactful.decide import log as decision_log
from tactful.decide.logbook import Entry
from tactful.decide.models import DecisionLog
from tactful.demo.placements import PLACEMENTS, seed_placements
from tactful.main import default_catalog_path
from tactful.policy import ConsentSource
from tactful.profiles import service as profiles_service
from tactful.types import Purpose, new_row_id

VERSION = 1
"""Bump when what is seeded changes: cached files of another version are not used."""
CACHE = Path(__file__).resolve().parent / ".cache"
GRANTED = (
    Purpose.ANALYTICS,
    Purpose.SEGMENTS,
    Purpose.BEHAVIORAL,
    Purpose.PREDICTIVE,
    Purpose.INDIVIDUAL,
    Purpose.MARKETING_EMAIL,
)
DECISIONS_PER_SUBJECT = 2
FIRST_NAMES = ("Astrid", "Björn", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas")
COUNTRIES = ("SE", "DE", "FR", "US", "GB", "NL")


@dataclass(frozen=True)
class Size:
    subjects: int
    events: int
    chunk: int = 1000


def anonymous_id(index: int) -> str:
    return f"anon-{index:07d}"


def user_id(index: int) -> str | None:
    return f"user-{index:07d}" if index % 2 == 0 else None


def _schema_key(url: str, size: Size) -> str:
    database = Database(url)
    try:
        _, head = schema_status(database.engine)
    finally:
        database.dispose()
    text = hashlib.sha256()
    for path in sorted(migrations_path().rglob("*.py")):
        text.update(path.read_bytes())
    return f"{head}-{text.hexdigest()[:12]}-v{VERSION}-{size.subjects}x{size.events}"


# -- templates ---------------------------------------------------------------------------------------


def event_templates(at: datetime, *, messages: int = 4000) -> list[dict[str, Any]]:
    """The event rows ingestion stored for demo shop messages (consent applied, fields filtered)."""
    pool = demo_messages(messages, now=at, customers=400)
    with tempfile.TemporaryDirectory(prefix="tactful-bench-template-") as tmp:
        _, rows = ingest.in_process_run(pool, Path(tmp), batch=100, at=at)
    if not rows:
        raise RuntimeError("ingestion stored no events for the template")
    return rows


def _decision_templates(
    context: AppContext, subjects: Sequence[tuple[int, uuid.UUID]], at: datetime
) -> list[dict[str, Any]]:
    """Decisions the real path makes for these (consented, identified) subjects, written to the log
    and read back as rows."""
    lineup, policy = context.lineup(), context.policy_context()
    entries: list[Entry] = []
    for index, _ in subjects:
        ask = decisions.Ask(
            placements=tuple(p.key for p in PLACEMENTS),
            user_id=user_id(index),
            anonymous_id=anonymous_id(index),
            context={"locale": "sv-SE", "location": {"country": "SE"}, "device": {"type": "mobile"}},
        )
        with context.reading() as session:
            decided = decisions.decide(
                session, keystore=context.keystore.cached(), policy=policy, lineup=lineup, ask=ask, at=at,
                sizes=None,
            )  # fmt: skip
        entries.extend(decided.entries)
    # Numbered as a serving process's logbook numbers its entries.
    process = uuid.uuid4()
    entries = [dataclasses.replace(e, process=process, sequence=n) for n, e in enumerate(entries, start=1)]
    with context.session() as session:
        decision_log.write(session, entries=entries, at=at)
    with context.session() as session:
        rows = session.execute(select(DecisionLog.__table__)).mappings().all()
    return [dict(row) for row in rows]


# -- one chunk of subjects ---------------------------------------------------------------------------


@dataclass
class Seeder:
    context: AppContext
    size: Size
    templates: list[dict[str, Any]]
    at: datetime
    rng: random.Random
    decisions: list[dict[str, Any]]
    process: uuid.UUID
    sequence: int = 0

    def subjects(self, start: int, count: int) -> list[tuple[int, uuid.UUID]]:
        """Create subjects `start`… with their identities, traits and consent; (index, subject id)."""
        indices = range(start, start + count)
        asks = [(anonymous_id(i), user_id(i), None) for i in indices]
        context = self.context
        with context.session() as session:
            keystore = context.keystore.cached()
            resolved = profiles_service.resolve_many(session, keystore=keystore, identities=asks, at=self.at)
            ids = [r.subject_id for r in resolved]
            updates = [
                (
                    sid,
                    {
                        "first_name": self.rng.choice(FIRST_NAMES),
                        "email": f"person{i}@example.com",
                        "country": self.rng.choice(COUNTRIES),
                        "age_range": "25-34",
                    },
                    self.at,
                )
                for i, sid in zip(indices, ids, strict=True)
                if user_id(i) is not None
            ]
            profiles_service.apply_traits_many(
                session, keystore=keystore, catalog=context.catalog, updates=updates
            )
            changes = {
                sid: [
                    ConsentChange.for_purpose(
                        p, ConsentAction.GRANTED, ConsentSource.BANNER, notice_version="v3"
                    )
                    for p in GRANTED
                ]
                for sid in ids
            }
            consent_service.record_many(
                session, keystore=keystore, changes=changes, at=self.at, actor="bench"
            )
            keystore.write_before_commit(session)
        return list(zip(indices, ids, strict=True))

    def events(self, subjects: Sequence[tuple[int, uuid.UUID]]) -> int:
        """Each subject's share of the events (and their message ids), as ingestion stores them."""
        base, extra = divmod(self.size.events, self.size.subjects)
        rows: list[dict[str, Any]] = []
        seen: list[dict[str, Any]] = []
        keystore = self.context.keystore
        for index, sid in subjects:
            for _ in range(base + (index < extra)):
                template = self.rng.choice(self.templates)
                at = self.at - timedelta(seconds=self.rng.randrange(60 * 86_400))
                message = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
                rows.append(
                    template | {
                        "id": new_row_id(), "subject_id": sid, "message_id": message, "timestamp": at,
                        "original_timestamp": at, "received_at": at + timedelta(milliseconds=120),
                        "write_key_id": None, "request_id": None,
                    }
                )  # fmt: skip
                seen.append(
                    {
                        "digest": keystore.digest("message_id", f"bench\x00{message}"),
                        "fingerprint": keystore.digest("event_content", message),
                        "subject_id": sid,
                        "first_seen_at": at,
                        "erased": False,
                    }
                )
        with self.context.session() as session:
            insert_rows(session, cast(Table, Event.__table__), rows)
            insert_rows(session, cast(Table, MessageId.__table__), seen)
        return len(rows)

    def decided(self, subjects: Sequence[tuple[int, uuid.UUID]]) -> None:
        rows = []
        for _, sid in subjects:
            for _ in range(DECISIONS_PER_SUBJECT):
                self.sequence += 1
                at = self.at - timedelta(seconds=self.rng.randrange(30 * 86_400))
                rows.append(
                    self.rng.choice(self.decisions) | {
                        "id": new_row_id(), "decision_id": "dc_" + secrets.token_urlsafe(16),
                        "subject_id": sid, "process": self.process, "sequence": self.sequence,
                        "decided_at": at,
                    }
                )  # fmt: skip
        with self.context.session() as session:
            insert_rows(session, cast(Table, DecisionLog.__table__), rows)


def seed(stores: Stores, size: Size, *, log: Callable[[str], None] = print) -> dict[str, int]:
    """Fill migrated, empty stores; what was made."""
    at = datetime.now(UTC).replace(microsecond=0)
    log("rights: the template (ingestion of demo messages)")
    templates = event_templates(at)
    db, keystore = stores.open()
    catalog = load_catalog(default_catalog_path())
    context = AppContext(settings=Settings(), db=db, keystore=keystore, catalog=catalog)
    made = {"subjects": 0, "events": 0, "decisions": 0}
    try:
        seed_placements(context, catalog=catalog, now=at)
        seeder = Seeder(context, size, templates, at, random.Random(20261206), [], uuid.uuid4())
        for start in range(0, size.subjects, size.chunk):
            chunk = seeder.subjects(start, min(size.chunk, size.subjects - start))
            if not seeder.decisions:
                identified = [(i, s) for i, s in chunk if user_id(i) is not None][:20]
                seeder.decisions = _decision_templates(context, identified, at)
                made["decisions"] += len(seeder.decisions)
            made["events"] += seeder.events(chunk)
            seeder.decided(chunk)
            made["subjects"] += len(chunk)
            made["decisions"] += len(chunk) * DECISIONS_PER_SUBJECT
            if start // size.chunk % 10 == 0:
                log(f"rights: {made['subjects']:,} subjects, {made['events']:,} events")
        if db.engine.dialect.name == "sqlite":
            truncate_log(db.engine)
            truncate_log(keystore.engine)
    finally:
        db.dispose()
        keystore.dispose()
    return made


def cached_sqlite(directory: Path, size: Size, *, log: Callable[[str], None] = print) -> tuple[Stores, str]:
    """A copy in `directory` of the seeded SQLite files (seeded and cached first when missing); the
    cache key."""
    probe = directory / "probe.db"
    create_schema(f"sqlite:///{probe}")
    key = _schema_key(f"sqlite:///{probe}", size)
    probe.unlink()
    cached = CACHE / f"rights-{key}"
    if not (cached / "complete").is_file():
        shutil.rmtree(cached, ignore_errors=True)
        building = CACHE / f"building-{uuid.uuid4().hex[:8]}"
        building.mkdir(parents=True)
        stores = Stores(f"sqlite:///{building / 'main.db'}", f"sqlite:///{building / 'keys.db'}")
        try:
            create_schema(stores.url)
            seed(stores, size, log=log)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        (building / "complete").write_text(f"{key}\n")
        building.rename(cached)
    for name in ("main.db", "keys.db"):
        for suffix in ("", "-wal"):
            source = cached / f"{name}{suffix}"
            if source.is_file():
                shutil.copyfile(source, directory / f"{name}{suffix}")
    return Stores(f"sqlite:///{directory / 'main.db'}", f"sqlite:///{directory / 'keys.db'}"), key


__all__ = ["SECRET", "Size", "anonymous_id", "cached_sqlite", "seed", "user_id"]
