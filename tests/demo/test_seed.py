"""Seeding: a fresh database is seeded once, with a key of each scope, through collection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tactful.api.context import AppContext
from tactful.audit import verification as audit_verification
from tactful.catalog.loader import load_catalog
from tactful.collect import service as collect_service
from tactful.collect.models import Event
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.demo.generate import DemoConfig, DemoShop
from tactful.demo.seed import MARKER, SeedReport, already_seeded, seed
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.main import default_catalog_path
from tests.backends import fresh_database

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
TINY = DemoConfig(seed=5, customers=20, days=7)


@pytest.fixture
def context(backend: str, tmp_path: Path) -> Iterator[AppContext]:
    """A process context over an empty database and keystore (seeding commits, so no rolled-back session)."""
    with (
        fresh_database(backend, tmp_path) as url,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as keys_url,
    ):
        db = Database(url)
        keystore = Keystore(keys_url, secret_key="test-secret-key-of-sufficient-length-000")
        keystore.create_schema()
        catalog = load_catalog(default_catalog_path())
        try:
            yield AppContext(settings=Settings(), db=db, keystore=keystore, catalog=catalog)
        finally:
            db.dispose()
            keystore.dispose()


def test_a_fresh_database_is_seeded_once(context: AppContext) -> None:
    calls: list[tuple[int, int]] = []
    first = seed(
        context, now=NOW, config=TINY, batch_size=50, progress=lambda done, total: calls.append((done, total))
    )
    expected = DemoShop(TINY, now=NOW).count()

    assert first.seeded
    assert set(first.keys) == set(Scope)
    assert first.received == expected
    assert sum(first.statuses.values()) == expected
    assert first.customers == TINY.customers
    assert calls[0] == (0, expected)
    assert calls[-1] == (expected, expected)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    second = seed(context, now=NOW, config=TINY, batch_size=50)
    assert not second.seeded
    assert second.keys == {}
    assert "already seeded" in second.summary()

    with context.session() as session:
        assert already_seeded(session)
        stats = collect_service.ingest_stats(session)
        assert stats.received == expected
        assert stats.balanced
        stored = session.execute(select(func.count()).select_from(Event)).scalar_one()
        assert stored == first.statuses.get("stored", 0) > 0
        # Visitors under GDPR without a recorded choice: their browsing is not stored, only counted.
        assert stats.suppressed == first.statuses.get("suppressed", 0) > 0
        assert stats.suppressed_by_reason.get("no_purpose", 0) > 0
        assert set(stats.suppressed_by_reason) <= {"no_purpose", "erased_subject"}
        assert audit_verification.verify(session, keystore=context.keystore).ok


def test_the_keys_work_and_are_stored_hashed(context: AppContext) -> None:
    report = seed(context, now=NOW, config=TINY, batch_size=200)
    with context.session() as session:
        for scope, token in report.keys.items():
            assert keys_service.authenticate(session, token=token).scope is scope
        listed = keys_service.list_keys(session)
    assert {k.scope for k in listed} == set(Scope)
    assert all(token not in repr(listed) for token in report.keys.values())


def test_the_summary_counts_what_happened(context: AppContext) -> None:
    report = seed(context, now=NOW, config=TINY)
    text = report.summary()
    assert f"{report.received:,} messages" in text
    assert f"{TINY.customers} customers" in text


def test_an_empty_report_says_it_did_nothing() -> None:
    assert SeedReport(seeded=False).keys == {}


def test_the_marker_is_an_audit_entry(context: AppContext) -> None:
    seed(context, now=NOW, config=TINY)
    with context.session() as session:
        from tactful.audit.models import AuditEntry

        entries = session.execute(select(AuditEntry).where(AuditEntry.action == MARKER)).scalars().all()
    assert len(entries) == 1
    assert entries[0].details["customers"] == TINY.customers


def test_seeding_uses_the_configured_limits(backend: str, tmp_path: Path) -> None:
    # A deployment's configured limits reach the demo's own ingestion: with events of at most 1 KiB
    # configured, the shop's larger events are quarantined (the default allows 32 KiB).
    with (
        fresh_database(backend, tmp_path) as url,
        fresh_database(backend, tmp_path, migrated=False, name="keys") as keys_url,
    ):
        db = Database(url)
        keystore = Keystore(keys_url, secret_key="test-secret-key-of-sufficient-length-000")
        keystore.create_schema()
        settings = Settings.model_validate({"limits": {"max_event_bytes": 1024}})
        context = AppContext(
            settings=settings, db=db, keystore=keystore, catalog=load_catalog(default_catalog_path())
        )
        try:
            report = seed(context, now=NOW, config=TINY)
            assert report.statuses.get("quarantined", 0) > 0  # events over the configured 1 KiB
        finally:
            db.dispose()
            keystore.dispose()
