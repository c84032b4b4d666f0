from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tactful import db as db_module
from tactful.db import Base, Database, UTCDateTime, make_engine, require_migrated, schema_status
from tactful.errors import DatabaseNotMigrated
from tactful.tables import import_all_models
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


def _counter_db(tmp_path: Path) -> tuple[Database, sa.Table]:
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    table = sa.Table("counter", sa.MetaData(), sa.Column("n", sa.Integer, nullable=False))
    table.create(db.engine)
    with db.session() as session:
        session.execute(table.insert().values(n=0))
    return db, table


def test_sessions_of_many_threads_take_turns_and_all_commit(tmp_path: Path) -> None:
    db, table = _counter_db(tmp_path)

    def bump(_: int) -> None:
        for _ in range(20):
            with db.session() as session:
                current = session.execute(sa.select(table.c.n)).scalar_one()
                session.execute(table.update().values(n=current + 1))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(8)))
    with db.session() as session:
        assert session.execute(sa.select(table.c.n)).scalar_one() == 160  # no update lost, none refused
    db.dispose()


def test_a_failed_or_early_committed_session_gives_its_turn_back(tmp_path: Path) -> None:
    db, table = _counter_db(tmp_path)

    def fail() -> None:
        with db.session() as session:
            session.execute(table.update().values(n=1))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        fail()
    with db.session() as session, ThreadPoolExecutor(1) as pool:
        session.execute(table.update().values(n=2))
        session.commit()  # the turn ends here: another thread's session may go on while this waits
        other = pool.submit(lambda: _bump_once(db, table))
        assert other.result(timeout=5) == 3
    db.dispose()


def test_a_session_kept_waiting_past_the_busy_timeout_is_told_the_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "_BUSY_SECONDS", 0.2)
    db, table = _counter_db(tmp_path)
    with db.session() as session, ThreadPoolExecutor(1) as pool:
        session.execute(table.update().values(n=1))
        waiting = pool.submit(lambda: _bump_once(db, table))
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            waiting.result(timeout=10)
    assert _bump_once(db, table) == 2  # the waiter changed nothing; the next session goes in
    db.dispose()


def _bump_once(db: Database, table: sa.Table) -> int:
    with db.session() as session:
        current = int(session.execute(sa.select(table.c.n)).scalar_one())
        session.execute(table.update().values(n=current + 1))
        return current + 1


def test_a_server_process_checkpoints_the_log_on_its_own_thread(tmp_path: Path) -> None:
    db, _ = _counter_db(tmp_path)
    db.checkpoint_in_background(interval=0.05)
    with db.engine.connect() as conn:  # commits no longer checkpoint
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
    main_file = tmp_path / "turns.db"
    before = main_file.stat().st_size
    blobs = sa.Table("blobs", sa.MetaData(), sa.Column("b", sa.Text, nullable=False))
    blobs.create(db.engine)
    for _ in range(20):
        with db.session() as session:
            session.execute(blobs.insert(), [{"b": "x" * 4000} for _ in range(10)])
    threads = [t for t in threading.enumerate() if t.name == "tactful-checkpoint"]
    assert len(threads) == 1
    # Pages reach the database file only through a checkpoint, and only the thread makes one.
    deadline = time.monotonic() + 10
    while main_file.stat().st_size <= before + 400_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main_file.stat().st_size > before + 400_000
    db.dispose()  # stops the thread
    assert not threads[0].is_alive()


def test_a_reading_unit_of_work_reads_the_last_commit_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    db, table = _counter_db(tmp_path)
    _bump_once(db, table)
    with db.session() as writer, ThreadPoolExecutor(1) as pool:
        writer.execute(table.update().values(n=99))  # the write lock is held, not yet committed

        def read() -> int:
            with db.reading() as session:
                return int(session.execute(sa.select(table.c.n)).scalar_one())

        assert pool.submit(read).result(timeout=2) == 1  # no wait for the writer's turn or lock
    with db.reading() as session:
        assert session.execute(sa.select(table.c.n)).scalar_one() == 99
    db.dispose()


def test_a_reading_unit_of_work_is_refused_any_write_through_the_session(tmp_path: Path) -> None:
    db, table = _counter_db(tmp_path)
    with pytest.raises(db_module.ReadOnlyViolation), db.reading() as session:
        session.execute(table.update().values(n=5))
    with pytest.raises(db_module.ReadOnlyViolation), db.reading() as session:
        session.connection().execute(table.insert().values(n=6))  # Core, past the ORM
    with db.reading() as session:
        assert session.execute(sa.select(table.c.n)).scalar_one() == 0
    db.dispose()
