from __future__ import annotations

from collections.abc import Iterator

import pytest

from tactful.db import Database
from tests.audit.builders import created_database


# Until the migration exists the tables come from the models. Deleting this fixture switches these
# tests to the migrated `database` (and its rolled-back `session`) of tests/conftest.py.
@pytest.fixture(scope="session")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with created_database(backend, tmp_path_factory.mktemp("keys-db")) as db:
        yield db
