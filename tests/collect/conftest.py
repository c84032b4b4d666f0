from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tactful.db import Database
from tests.backends import migrated_database


@pytest.fixture
def fresh_db(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A database of its own, for tests that commit (HTTP) or count totals exactly."""
    with migrated_database(backend, tmp_path) as db:
        yield db
