"""Databases with the tables made straight from the models, for tests that run before a migration
exists, and small helpers for audit tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import tactful.audit.models
import tactful.keys.models  # noqa: F401 - registers the tables on Base.metadata
from tactful.db import Base, Database
from tests.backends import fresh_database

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@contextmanager
def created_url(backend: str, tmp_dir: Path, *, name: str = "main") -> Iterator[str]:
    """The URL of a fresh database holding every model's table (no migrations involved)."""
    with fresh_database(backend, tmp_dir, migrated=False, name=name) as url:
        db = Database(url)
        try:
            Base.metadata.create_all(db.engine)
        finally:
            db.dispose()
        yield url


@contextmanager
def created_database(backend: str, tmp_dir: Path) -> Iterator[Database]:
    with created_url(backend, tmp_dir) as url:
        db = Database(url)
        try:
            yield db
        finally:
            db.dispose()
