"""Database plumbing: the declarative base, portable column types, engines and sessions.

SQLite is the embedded default (WAL, `synchronous=FULL`, writers serialised with `BEGIN IMMEDIATE` so
that concurrent processes wait instead of failing); PostgreSQL through psycopg 3 is the production store.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator, Uuid

from tactful.errors import DatabaseNotMigrated

_log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere, JSONB on PostgreSQL."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        uuid.UUID: Uuid(),
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level so that SQLAlchemy's "begin" event below decides how a
    # transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # Deleted rows are overwritten with zeros, in the database and in the log, rather than left in
    # free space (a withdrawal or an erasure must leave no copy: `truncate_log_after_commit`).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


_READING = "tactful_reading"
"""The execution option of a unit of work that only reads (`Database.reading`)."""


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that later writes fails with
    # SQLITE_BUSY without waiting, which would turn concurrency into errors. A unit of work that
    # only reads (and is refused any write) begins DEFERRED: it reads the last commit beside the
    # writer (WAL) and waits for nobody.
    reading = conn.get_execution_options().get(_READING, False)
    conn.exec_driver_sql("BEGIN DEFERRED" if reading else "BEGIN IMMEDIATE")


class ReadOnlyViolation(RuntimeError):
    """A unit of work opened to read (`Database.reading`) tried to write: a programming error."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyViolation("a unit of work opened with Database.reading() tried to write")


def _refuse_writes(
    conn: Any, _cursor: Any, _statement: Any, _parameters: Any, context: Any, _executemany: bool
) -> None:
    # At the connection of the reading engine alone, so that a Core statement
    # (`session.connection().execute`) is refused as an ORM one is: any INSERT, UPDATE or DELETE
    # that SQLAlchemy built (a textual statement is not parsed) in a reading unit of work.
    if context is None:
        return
    if context.isinsert or context.isupdate or context.isdelete:
        raise ReadOnlyViolation("a unit of work opened with Database.reading() tried to write")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for `url` with the per-backend settings above."""
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False},
            poolclass=StaticPool if in_memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class _Checkpointer:
    """Copies a SQLite write-ahead log back into the database on a thread of its own.

    By default the commit that fills the log past 1,000 pages does this, and the request behind it
    waits hundreds of milliseconds; here requests only append. PASSIVE never blocks a writer or a
    reader; SQLite releases the GIL while it works, so the thread runs beside the requests.
    """

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine, self.interval = engine, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tactful-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def checkpoint(self) -> None:
        # The driver's own connection, in autocommit: SQLAlchemy would begin a transaction first
        # (BEGIN IMMEDIATE here), and a checkpoint cannot run inside one.
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except Exception:  # a failed round is retried at the next one
                _log.warning("background WAL checkpoint failed; retrying", exc_info=True)


_BUSY_SECONDS = 10.0  # as `busy_timeout` above
_TRUNCATE_LOG = "tactful.truncate_log"


def truncate_log(engine: Engine) -> bool:
    """Copy SQLite's write-ahead log back into the database and truncate it to zero bytes, so that
    no earlier version of a page (a deleted row, say) stays in the `-wal` file. Waits for readers
    and writers as the busy timeout allows; False when one kept it from finishing (the log then
    keeps frames until the next truncation). True at once on other databases."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return True
    raw = engine.raw_connection()
    try:
        # The driver's own connection, in autocommit: a checkpoint cannot run inside a transaction.
        row = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()  # type: ignore[union-attr]
    finally:
        raw.close()
    done = row is not None and row[0] == 0
    if not done:
        _log.warning("write-ahead log truncation could not finish: a reader or writer held it")
    return done


def truncate_log_after_commit(session: Session) -> None:
    """Have the write-ahead log truncated once `session`'s transaction commits (SQLite files; nothing
    elsewhere). Callers that delete or rewrite personal data ask for it: with `secure_delete` the
    database's pages hold zeros where the rows were, and the truncation removes the log's copies."""
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        return  # bound to a connection whose owner commits (tests' rolled-back transactions)
    if engine.dialect.name != "sqlite" or session.info.get(_TRUNCATE_LOG):
        return
    session.info[_TRUNCATE_LOG] = True

    def after_commit(committed: Session) -> None:
        committed.info.pop(_TRUNCATE_LOG, None)
        truncate_log(engine)

    event.listen(session, "after_commit", after_commit, once=True)


class Database:
    """An engine and its session factory. Built once per process from the settings."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        reading = self.engine.execution_options(**{_READING: True})
        self._readers = sessionmaker(reading, expire_on_commit=False)
        event.listen(self._readers, "before_flush", _refuse_flush)
        event.listen(reading, "before_cursor_execute", _refuse_writes)
        # SQLite lets one transaction in at a time (every one begins IMMEDIATE) and makes the others
        # poll, sleeping up to 100 ms between tries: under load the database sits idle while queued
        # requests sleep, and latency grows by seconds. This process's sessions queue here instead
        # and each is let in the moment the one before has committed; other processes still wait
        # in SQLite's busy handler.
        #
        # SQLAlchemy's pool can queue sessions too (QueuePool, pool_size=1, max_overflow=0, and
        # pool_timeout for the wait): tried, and no faster on the ingest benchmark, but not simpler,
        # because the pool's one connection is every user's, not only the sessions'. The background
        # checkpointer then needs an engine of its own, or each checkpoint holds up the requests;
        # `truncate_log` after a commit would wait for the very connection its session still holds
        # (SQLAlchemy runs after_commit before it gives the connection back) until the timeout, so
        # it must move to after_transaction_end and queue behind every waiting session before the
        # erasing request can answer; and readers outside sessions (`/readyz`, `schema_status`)
        # queue behind the requests, so a readiness probe fails under a backlog. The lock serialises
        # the sessions alone and leaves the pool's other connections to those readers (WAL mode).
        self._turns = threading.Lock() if self.engine.dialect.name == "sqlite" else None
        self._checkpointer: _Checkpointer | None = None

    def checkpoint_in_background(self, *, interval: float = 0.25) -> None:
        """For a long-running process on a SQLite file (the server): commits stop checkpointing the
        log, and a thread does it every `interval` seconds instead. Nothing for other databases."""
        if self._checkpointer is not None or self.engine.dialect.name != "sqlite":
            return
        if self.url in ("sqlite://", "sqlite:///:memory:"):
            return
        event.listen(self.engine, "connect", _no_autocheckpoint)
        self.engine.dispose()  # pooled connections were opened with the default: open new ones
        self._checkpointer = _Checkpointer(self.engine, interval)
        self._checkpointer.start()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        turns = self._turns
        if turns is None:
            with self.sessionmaker() as session, session.begin():
                yield session
            return
        if not turns.acquire(timeout=_BUSY_SECONDS):
            raise OperationalError("BEGIN IMMEDIATE", None, Exception("database is locked"))
        held = [True]

        def release(_session: Session | None = None, transaction: SessionTransaction | None = None) -> None:
            # The turn ends with the outermost transaction, committed or not (a caller may commit
            # early and go on waiting for another session).
            if held and (transaction is None or transaction.parent is None):
                held.clear()
                turns.release()

        try:
            with self.sessionmaker() as session:
                event.listen(session, "after_transaction_end", release)
                with session.begin():
                    yield session
        finally:
            release()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads, refused any write through the session. On SQLite it
        takes no turn and no write lock: it reads the last commit (WAL) while a writer works, so a
        request that only reads never queues behind one that writes. On PostgreSQL, a session as
        any other (READ COMMITTED reads never wait for writers)."""
        with self._readers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer.checkpoint()  # leave the log folded into the database
            self._checkpointer = None
        self.engine.dispose()


# -- migrations ---------------------------------------------------------------------------------


def migrations_path() -> Path:
    """Alembic's script directory: inside the installed package, or the source tree's `migrations/`."""
    packaged = Path(__file__).parent / "_migrations"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "migrations"


def _alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_path()))
    config.attributes["url"] = url
    return config


def migrate(url: str, *, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision`."""
    command.upgrade(_alembic_config(url), revision)


def schema_status(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision of the database, head revision of the code)."""
    script = ScriptDirectory.from_config(_alembic_config(str(engine.url)))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, script.get_current_head()


def require_migrated(engine: Engine) -> None:
    """Refuse to serve a database whose schema is behind the code, and say how to fix it."""
    current, head = schema_status(engine)
    if current != head:
        raise DatabaseNotMigrated(
            f"the database is at migration {current or 'none'} but the code needs {head}: "
            "run `tactful migrate` (or `make migrate`) against TACTFUL_DATABASE_URL"
        )
