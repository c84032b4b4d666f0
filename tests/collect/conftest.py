from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tactful.db import Database
from tests.collect.builders import StandInCatalog, created_database


# Until the migration exists the tables come from the models. Deleting this fixture switches these
# tests to the migrated `database` (and its rolled-back `session`) of tests/conftest.py.
@pytest.fixture(scope="session")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with created_database(backend, tmp_path_factory.mktemp("collect-db")) as db:
        yield db


@pytest.fixture
def fresh_db(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A database of its own, for tests that commit (HTTP) or count totals exactly."""
    with created_database(backend, tmp_path) as db:
        yield db


@pytest.fixture
def catalog() -> StandInCatalog:
    return StandInCatalog()
