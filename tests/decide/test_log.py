"""The decision log in the database: groups written with each process's mark, entries read back for
explanations, a subject's decisions exported and erased (buffered ones too, through the registry),
and a process that stopped mid-window found."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.orm import Session

from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.decide import log
from tactful.decide.logbook import Logbook
from tactful.decide.models import DecisionLogProcess
from tactful.rights.registry import STORES, RightsContext
from tactful.rights.retention import run_retention
from tests.decide.test_engine import DEMO
from tests.decide.test_logbook import NOW, entry


def _numbered(book: Logbook, subject: uuid.UUID | None, n: int) -> list:  # type: ignore[type-arg]
    return [book.add(entry(subject, i)) for i in range(n)]


def test_a_group_is_written_with_its_process_mark_and_read_back(session: Session) -> None:
    book = Logbook(lambda group: None)
    subject = uuid.uuid4()
    written = _numbered(book, subject, 3)

    log.write(session, entries=written, at=NOW)

    assert log.find(session, decision_id=written[1].decision_id) == written[1]
    assert log.find(session, decision_id="dc_unknown") is None
    mark = session.get(DecisionLogProcess, book.process)
    assert mark is not None
    assert (mark.written_through, mark.stopped_at) == (3, None)

    later = _numbered(book, subject, 2)
    log.write(session, entries=later, at=NOW + timedelta(seconds=1))
    session.refresh(mark)
    assert mark.written_through == 5


def test_a_process_that_stopped_without_saying_so_is_found(session: Session) -> None:
    quiet, clean = Logbook(lambda group: None), Logbook(lambda group: None)
    log.write(session, entries=_numbered(quiet, None, 1) + _numbered(clean, None, 1), at=NOW)
    log.stopped(session, process=clean.process, at=NOW)
    session.flush()
    found = log.stalled(session, at=NOW + timedelta(minutes=5), quiet=timedelta(minutes=1))
    assert quiet.process in found
    assert clean.process not in found
    assert quiet.process not in log.stalled(
        session, at=NOW + timedelta(seconds=10), quiet=timedelta(minutes=1)
    )


def test_the_registry_exports_and_erases_written_and_buffered_decisions(
    session: Session, keystore: Keystore
) -> None:
    book = Logbook(lambda group: log.write(session, entries=group, at=NOW))
    subject, other = uuid.uuid4(), uuid.uuid4()
    _numbered(book, subject, 2)
    _numbered(book, other, 1)
    book.flush()
    buffered = book.add(entry(subject, 9))
    ctx = RightsContext(session=session, keystore=keystore, settings=Settings(), logbook=book)
    [store] = [s for s in STORES if s.name == "decisions"]

    exported = store.export(ctx, subject)
    assert len(exported["decisions"]) == 2  # type: ignore[arg-type]
    assert [d["decision_id"] for d in exported["not_yet_written"]] == [buffered.decision_id]  # type: ignore[attr-defined]

    assert store.erase(ctx, subject) == 3
    assert store.export(ctx, subject) == {}
    assert len(store.export(ctx, other)["decisions"]) == 1  # type: ignore[arg-type]
    assert book.pending == 0


def test_decisions_past_their_retention_are_deleted_by_the_sweep(
    session: Session, keystore: Keystore
) -> None:
    book = Logbook(lambda group: None)
    old = replace(entry(None, 0), decided_at=NOW - timedelta(days=400))
    recent = replace(entry(None, 1), decided_at=NOW - timedelta(days=10))
    log.write(session, entries=[book.add(old), book.add(recent)], at=NOW)
    log.stopped(session, process=book.process, at=NOW - timedelta(days=400))
    session.flush()

    removed = run_retention(session, catalog=DEMO, settings=Settings(), at=NOW, keystore=keystore)

    assert removed.total("decisions") == 1
    assert log.find(session, decision_id=old.decision_id) is None
    assert log.find(session, decision_id=recent.decision_id) is not None
    assert session.get(DecisionLogProcess, book.process) is None
    kept = Settings(decision_log_retention_days=500)
    assert (
        run_retention(session, catalog=DEMO, settings=kept, at=NOW, keystore=keystore).total("decisions") == 0
    )
