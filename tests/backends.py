"""Test databases: a fresh SQLite file always, and a fresh PostgreSQL schema and Redis key prefix
when `TACTFUL_TEST_POSTGRES_URL` / `TACTFUL_TEST_REDIS_URL` are set (the servers are shared)."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from tactful.config import normalise_database_url
from tactful.db import Database, make_engine, migrate

POSTGRES_URL = os.environ.get("TACTFUL_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("TACTFUL_TEST_REDIS_URL")


def backends() -> list[str]:
    """The database backends this run covers."""
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_database(
    backend: str, tmp_dir: Path, *, migrated: bool = True, name: str = "main"
) -> Iterator[str]:
    """Yield the URL of an empty database (migrated unless told otherwise); drop it afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'{name}-{uuid.uuid4().hex[:8]}.db'}"
        if migrated:
            migrate(url)
        yield url
        return
    assert POSTGRES_URL, "PostgreSQL tests need TACTFUL_TEST_POSTGRES_URL"
    base = normalise_database_url(POSTGRES_URL)
    schema = f"tactful_test_{name}_{os.getpid()}_{secrets.token_hex(4)}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = _with_search_path(base, schema)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def redis_prefix() -> str:
    return f"tactful-test:{os.getpid()}:{secrets.token_hex(4)}:"


@contextmanager
def migrated_database(backend: str, tmp_dir: Path, *, name: str = "main") -> Iterator[Database]:
    """A fresh, migrated database of its own, for tests that commit or count totals exactly."""
    with fresh_database(backend, tmp_dir, name=name) as url:
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()
