"""A database with every model's tables, made with `create_all` until the migration exists.

`conftest.py` in tests/profiles and tests/rights imports `database_url` from here, which overrides
the shared (migrated) one; deleting that one import line switches to the shared fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tactful.db import Base, make_engine
from tactful.schema import import_all_models
from tests.backends import fresh_database


def create_tables(url: str) -> None:
    import_all_models()
    engine = make_engine(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(backend, tmp_path_factory.mktemp("tables"), migrated=False) as url:
        create_tables(url)
        yield url
