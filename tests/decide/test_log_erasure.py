"""The decision log's buffer under erasure across processes: an erasure made through one process is
not undone when another process writes the decisions it still held for that subject."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Database
from tactful.decide import log
from tactful.decide.logbook import Logbook
from tactful.decide.models import DecisionLog, DecisionLogProcess
from tactful.profiles import service as profiles_service
from tactful.profiles.models import Subject
from tactful.rights.registry import RightsContext, erase_stores
from tests.backends import migrated_database
from tests.measure.builders import decision, visitor


@pytest.fixture
def db(backend: str, tmp_path: Path) -> Iterator[Database]:
    with migrated_database(backend, tmp_path) as database:
        yield database


def _person(db: Database, keystore: Keystore) -> uuid.UUID:
    with db.session() as session:
        _, subject = visitor(session, keystore)
    return subject


def _erase(db: Database, keystore: Keystore, subject: uuid.UUID, book: Logbook) -> None:
    """Erase `subject` through the process that holds `book` (its registry reaches that buffer only)."""
    with db.session() as session:
        ctx = RightsContext(session=session, keystore=keystore, settings=Settings(), logbook=book)
        erase_stores(ctx, profiles_service.family(session, subject))


def _logged(db: Database, subject: uuid.UUID) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).where(DecisionLog.subject_id == subject)) or 0


def test_another_process_drops_the_buffered_decisions_of_a_subject_erased_meanwhile(
    db: Database, keystore: Keystore
) -> None:
    here, there = Logbook(log.writer(db)), Logbook(log.writer(db))
    erased, kept = _person(db, keystore), _person(db, keystore)
    here.add(decision(erased))
    here.flush()
    waiting = [there.add(decision(erased)), there.add(decision(kept)), there.add(decision(None))]

    _erase(db, keystore, erased, here)
    assert _logged(db, erased) == 0

    assert there.flush() == 2  # the other subject's and the unknown visitor's
    assert (there.written, there.erased, there.lost, there.pending) == (2, 1, 0, 0)
    assert _logged(db, erased) == 0, "a later write brought erased decisions back"
    assert _logged(db, kept) == 1
    with db.session() as session:
        mark = session.get(DecisionLogProcess, there.process)
        assert mark is not None
        # The dropped entry is accounted for: no gap that would read as a lost window.
        assert mark.written_through == waiting[-1].sequence == 3


def test_a_merged_subjects_decisions_are_still_written(db: Database, keystore: Keystore) -> None:
    """A tombstone of a merge still exists: its decisions are its survivor's history, not erased."""
    book = Logbook(log.writer(db))
    subject, survivor = _person(db, keystore), _person(db, keystore)
    with db.session() as session:
        tombstone = session.get(Subject, subject)
        assert tombstone is not None
        tombstone.merged_into = survivor
    book.add(decision(subject))
    assert book.flush() == 1
    assert _logged(db, subject) == 1


def test_an_erasure_racing_a_write_leaves_nothing_behind(db: Database, keystore: Keystore) -> None:
    """The writer holds the subject (a share lock on PostgreSQL; SQLite's writers take turns) while
    it writes: the erasure waits for that commit and then deletes what was written."""
    subject = _person(db, keystore)
    book = Logbook(lambda group: None)
    writing = book.add(decision(subject))
    erasing = threading.Thread(target=_erase, args=(db, keystore, subject, Logbook(lambda group: None)))
    with db.session() as session:
        kept, gone = log.living(session, [writing])
        assert (kept, gone) == ([writing], [])
        log.write(session, entries=kept, at=writing.decided_at)
        erasing.start()
        if db.engine.dialect.name == "postgresql":
            _until_waiting(db)
    erasing.join()
    assert _logged(db, subject) == 0


def _until_waiting(db: Database) -> None:
    """Until another connection waits for a lock (the erasure, for the writer's)."""
    with db.engine.connect() as probe:
        for _ in range(10_000):
            waiting = probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database() AND query LIKE '%subjects%'"
                )
            ).scalar()
            if waiting:
                return
            probe.commit()
    raise AssertionError("the erasure never waited for the writer")
