"""Fixtures shared by every test: databases per backend and rolled-back sessions. Builders live in
`tests/builders.py`; fixtures for one domain live beside its tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.db import Database
from tests.backends import backends, fresh_database

# The server's own schedule (the retention sweep, the count of audiences over stored profiles) stays
# off in tests unless a test (or the environment) turns it on.
os.environ.setdefault("TACTFUL_RETENTION__SCHEDULE", "false")
os.environ.setdefault("TACTFUL_DECIDE__AUDIENCE_COUNT_SCHEDULE", "false")
# Privacy packages go to a folder of this run's own, never beside the working directory (where the
# default puts them for a database that is not a file).
os.environ.setdefault("TACTFUL_PRIVACY__EXPORT_DIR", tempfile.mkdtemp(prefix="tactful-test-exports-"))

hypothesis_settings.register_profile("ci", deadline=None, max_examples=60)
hypothesis_settings.register_profile("dev", deadline=None, max_examples=30)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session", params=backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole run; tests roll back what they write."""
    with fresh_database(backend, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def keystore(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystore]:
    with fresh_database(backend, tmp_path_factory.mktemp("keys"), migrated=False, name="keys") as url:
        store = Keystore(url, secret_key="test-secret-key-of-sufficient-length-000")
        store.create_schema()
        yield store
        store.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = database.engine.connect()
    transaction = connection.begin()
    db_session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db_session
    finally:
        db_session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path
