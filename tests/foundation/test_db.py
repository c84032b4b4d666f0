from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tactful.db import Base, Database, UTCDateTime, make_engine, require_migrated, schema_status
from tactful.errors import DatabaseNotMigrated
from tactful.schema import import_all_models
from tests.backends import fresh_database


def test_sqlite_is_durable_and_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_datetimes_come_back_aware_in_utc(backend: str, tmp_path: Path) -> None:
    table = sa.Table(
        "t_times",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime()),
    )
    with fresh_database(backend, tmp_path, migrated=False) as url:
        engine = make_engine(url)
        table.metadata.create_all(engine)
        paris = timezone(timedelta(hours=1))
        with engine.begin() as conn:
            conn.execute(table.insert().values(id=1, at=datetime(2026, 3, 3, 15, 2, tzinfo=paris)))
            value = conn.execute(sa.select(table.c.at)).scalar_one()
        assert value == datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
        assert value.tzinfo is not None
        with pytest.raises(sa.exc.StatementError, match="naive"), engine.begin() as conn:
            conn.execute(table.insert().values(id=2, at=datetime(2026, 3, 3)))
        engine.dispose()


def test_unmigrated_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with pytest.raises(DatabaseNotMigrated, match="tactful migrate"):
        require_migrated(engine)
    engine.dispose()


def test_migrations_are_current_and_match_the_models(database: Database) -> None:
    current, head = schema_status(database.engine)
    assert head is not None
    assert current == head
    require_migrated(database.engine)
    import_all_models()
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"
