"""Erasing and exporting one subject from a database of 1,000,000 events and 100,000 subjects.

    bench.rights_seed ──▶ a copy of the cached SQLite files (PostgreSQL: schemas of its own, seeded)
    per measured subject (identified, ten events, two decisions, a consent ledger):
        erase    file_request(erasure) ──▶ JobRunner.run: lease, erase_stores, destroy_keys, receipt
        export   file_request(access)  ──▶ JobRunner.run: lease, export (registry.export_all), receipt

The time is the job's run, end to end, as the server's job thread runs it (each step its own
transaction with its audit entry, the receipt; on SQLite an erasure also truncates the write-ahead
log, so no copy of the deleted rows stays). Filing is timed apart. Each subject is used once; the
figures are medians over the subjects, with their spread. Every erasure is checked: the subject has
no event, identity or key left.

`python -m bench.rights_scale [--quick] [--subjects N]`; `TACTFUL_BENCH_POSTGRES_URL` adds PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import func, select

from bench.report import RESULTS, Row, Target, figure_row, merge, show
from bench.rights_seed import Size, cached_sqlite, seed, user_id
from bench.stats import summary
from bench.stores import Stores, create_schema
from tactful.catalog.loader import load_catalog
from tactful.collect.models import Event
from tactful.config import Settings, normalise_database_url
from tactful.consent.gatekeeper import PolicyContext
from tactful.consent.regimes import configured_regimes
from tactful.crypto import Keystore
from tactful.db import Database, make_engine
from tactful.main import default_catalog_path
from tactful.profiles.models import Identity
from tactful.rights import requests as requests_service
from tactful.rights.due import BusinessCalendar, RequestType
from tactful.rights.jobs import JobContext, JobRunner, RunOutcome
from tactful.rights.models import PrivacyRequest
from tactful.rights.schemas import NamedBy, VerifiedBy
from tactful.types import utcnow

SECTION = "rights_scale"
TITLE = "Privacy rights at scale: erase and export one subject"
TARGET_ERASE_MS = 1000.0
TARGET_EXPORT_MS = 2000.0
FULL = Size(subjects=100_000, events=1_000_000)
QUICK = Size(subjects=2_000, events=20_000)
POSTGRES_ENV = "TACTFUL_BENCH_POSTGRES_URL"

Log = Callable[[str], None]


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def postgres_stores(base_url: str) -> Iterator[Stores]:
    """Two fresh schemas (the main database, the keystore) on the server; dropped afterwards."""
    base = normalise_database_url(base_url)
    tag = f"{os.getpid()}_{secrets.token_hex(4)}"
    schemas = (f"tactful_bench_rights_{tag}", f"tactful_bench_keys_{tag}")
    admin = make_engine(base)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        stores = Stores(_with_search_path(base, schemas[0]), _with_search_path(base, schemas[1]))
        create_schema(stores.url)
        yield stores
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _runner(db: Database, keystore: Keystore) -> tuple[JobRunner, PolicyContext]:
    settings = Settings()
    catalog = load_catalog(default_catalog_path())
    policy = PolicyContext(catalog, settings.policy, configured_regimes(settings.policy))
    jobs = JobContext(database=db, keystore=keystore, settings=settings, policy=lambda: policy)
    return JobRunner(jobs), policy


def _file(
    db: Database, keystore: Keystore, policy: PolicyContext, kind: RequestType, user: str
) -> tuple[uuid.UUID, uuid.UUID]:
    """File a verified request naming `user`, as an operator would; (request id, subject id)."""
    with db.session() as session:
        record = requests_service.file_request(
            session, keystore=keystore, policy=policy, calendar=BusinessCalendar(), kind=kind,
            named_by=NamedBy.USER_ID, value=user, verified_by=VerifiedBy.OPERATOR, key_id=None,
            at=utcnow(), actor="bench",
        )  # fmt: skip
    if record.subject_id is None:
        raise RuntimeError("a measured subject was not found")
    return record.id, record.subject_id


def _gone(db: Database, keystore: Keystore, subject_id: uuid.UUID) -> bool:
    with db.session() as session:
        events = session.scalar(select(func.count()).where(Event.subject_id == subject_id))
        identities = session.scalar(select(func.count()).where(Identity.subject_id == subject_id))
    return events == 0 and identities == 0 and not keystore.has_subject(subject_id)


def _exported(db: Database, request_id: uuid.UUID) -> dict[str, Any]:
    """What the export's receipt says each store held."""
    with db.session() as session:
        receipt = session.scalar(select(PrivacyRequest.receipt).where(PrivacyRequest.id == request_id))
    held: dict[str, Any] = (receipt or {})["steps"]["export"]["held"]
    return held


def _timed_run(runner: JobRunner, request_id: uuid.UUID, steps: dict[str, list[float]]) -> float:
    """The job's run in milliseconds; each step's share added to `steps` (the last one's includes
    the receipt's transaction)."""
    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    outcome = runner.run(request_id, on_step=lambda name, *_: marks.append((name, time.perf_counter())))
    ended = time.perf_counter()
    if outcome is not RunOutcome.COMPLETED:
        raise RuntimeError(f"a job ended {outcome}")
    last = started
    for index, (name, at) in enumerate(marks):
        until = ended if index == len(marks) - 1 else at
        steps.setdefault(name, []).append((until - last) * 1000)
        last = at
    return (ended - started) * 1000


def measure(stores: Stores, size: Size, *, subjects: int, log: Log) -> dict[str, Any]:
    """Erase `subjects` identified subjects and export as many others, alternating; the figures."""
    rng = random.Random(20261207)
    picked = rng.sample(range(0, size.subjects, 2), 2 * subjects)  # even indices are identified
    db, keystore = stores.open()
    runner, policy = _runner(db, keystore)
    timings: dict[str, list[float]] = {"erase": [], "export": [], "file": []}
    steps: dict[str, list[float]] = {}
    held: list[dict[str, Any]] = []
    try:
        for n, index in enumerate(picked):
            kind = RequestType.ERASURE if n % 2 == 0 else RequestType.ACCESS
            user = user_id(index)
            assert user is not None
            started = time.perf_counter()
            request_id, subject_id = _file(db, keystore, policy, kind, user)
            timings["file"].append((time.perf_counter() - started) * 1000)
            elapsed = _timed_run(runner, request_id, steps)
            if kind is RequestType.ERASURE:
                timings["erase"].append(elapsed)
                if not _gone(db, keystore, subject_id):
                    raise RuntimeError("an erased subject still has events, identities or a key")
            else:
                timings["export"].append(elapsed)
                held.append(_exported(db, request_id))
            log(f"rights: {kind.value} {n // 2 + 1}/{subjects}: {elapsed:.0f} ms")
        with db.session() as session:
            left = {
                "events": session.scalar(select(func.count()).select_from(Event)),
                "identities": session.scalar(select(func.count()).select_from(Identity)),
            }
    finally:
        db.dispose()
        keystore.dispose()
    return {
        "erase_ms": summary(timings["erase"]),
        "export_ms": summary(timings["export"]),
        "file_ms": summary(timings["file"]),
        "steps_ms": {name: summary(values) for name, values in sorted(steps.items())},
        "export_held": held[0] if held else {},
        "subjects_measured": subjects,
        "rows_after": left,
    }


def run(size: Size = FULL, *, subjects: int = 5, log: Log = print) -> dict[str, Any]:
    """Measure on SQLite (cached seed) and, when configured, PostgreSQL; the section."""
    section: dict[str, Any] = {"size": asdict(size)}
    with tempfile.TemporaryDirectory(prefix="tactful-bench-rights-") as tmp:
        started = time.perf_counter()
        stores, key = cached_sqlite(Path(tmp), size, log=log)
        log(f"rights: SQLite ready in {time.perf_counter() - started:.0f} s (cache {key})")
        section["sqlite"] = measure(stores, size, subjects=subjects, log=log) | {"cache_key": key}
    postgres = os.environ.get(POSTGRES_ENV)
    if postgres:
        with postgres_stores(postgres) as stores:
            started = time.perf_counter()
            seed(stores, size, log=log)
            seeded = time.perf_counter() - started
            log(f"rights: PostgreSQL seeded in {seeded:.0f} s")
            section["postgres"] = measure(stores, size, subjects=subjects, log=log) | {
                "seed_seconds": round(seeded, 1)
            }
    section["notes"] = {
        "erase": "an erasure request's job run end to end (lease, erase_stores, destroy_keys, receipt), "
        "filed beforehand by an operator (verified)",
        "export": "an access request's job run end to end (lease, export: registry.export_all over every "
        "store, decrypted, receipt)",
        "subjects": "identified subjects, each with ten events, two decisions, a consent ledger of six "
        "grants, four traits (e-mail and name sealed); each used once",
        "steps_ms": "each step from the end of the one before: the first includes taking the lease, the "
        "last the receipt's transaction",
        "cold": "nothing is warmed: the first request of a run meets the page cache as the copy left it",
    }
    section["targets"] = {name: target.as_json() for name, target in targets(section).items()}
    if size == QUICK:
        section["quick"] = True
    return section


def targets(section: dict[str, Any]) -> dict[str, Target]:
    found: dict[str, Target] = {}
    for backend in ("sqlite", "postgres"):
        if backend in section:
            figures = section[backend]
            found[f"{backend}_erase_ms"] = Target(
                f"{backend}: erase", figures["erase_ms"]["median"], "<", TARGET_ERASE_MS, " ms"
            )
            found[f"{backend}_export_ms"] = Target(
                f"{backend}: export", figures["export_ms"]["median"], "<", TARGET_EXPORT_MS, " ms"
            )
    return found


def rows(section: dict[str, Any]) -> list[Row]:
    verdicts = targets(section)
    size = section["size"]
    found: list[Row] = []
    for backend in ("sqlite", "postgres"):
        if backend not in section:
            continue
        figures = section[backend]
        scale = f"{size['subjects']:,} subjects, {size['events']:,} events"
        for name in ("erase", "export"):
            found.append(
                figure_row(
                    figures,
                    f"{backend}: {name} one subject ({scale})",
                    f"{name}_ms",
                    unit=" ms",
                    target=verdicts[f"{backend}_{name}_ms"],
                )
            )
        found.append(figure_row(figures, f"{backend}: filing the request (apart)", "file_ms", unit=" ms"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rights_scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 subjects and 20,000 events")
    parser.add_argument("--subjects", type=int, default=5, help="subjects erased, and as many exported")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file (merged by section)")
    args = parser.parse_args(argv)
    section = run(QUICK if args.quick else FULL, subjects=args.subjects)
    merge(SECTION, section, path=args.output)
    show(TITLE, rows(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
