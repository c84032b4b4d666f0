"""The decision log's buffer: numbered entries, written in groups by size or time, findable until
written, forgotten for a withdrawn or erased subject, and never lost silently when writing fails."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.decide.logbook import Entry, Logbook

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def entry(subject: uuid.UUID | None = None, n: int = 0) -> Entry:
    return Entry(
        decision_id=f"d-{uuid.uuid4().hex}-{n}",
        subject_id=subject,
        placement="home_hero",
        experience=None,
        experience_version=None,
        variation="default",
        level="1:all",
        strategy="default",
        propensity=1.0,
        atoms_read=(),
        purposes=(),
        legal_basis={},
        explanation={},
        decided_at=NOW,
    )


class Table:
    def __init__(self) -> None:
        self.groups: list[list[Entry]] = []
        self.failing = False
        self.written = threading.Event()

    def __call__(self, group: Sequence[Entry]) -> None:
        if self.failing:
            raise ConnectionError("database away")
        self.groups.append(list(group))
        self.written.set()


def test_entries_are_numbered_and_findable_until_written() -> None:
    table = Table()
    book = Logbook(table)
    first, second = book.add(entry()), book.add(entry())
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.process == second.process == book.process
    assert book.find(first.decision_id) == first

    assert book.flush() == 2
    assert table.groups == [[first, second]]
    assert book.find(first.decision_id) is None
    assert (book.pending, book.written) == (0, 2)


def test_a_full_buffer_is_written_at_once_by_the_background_writer() -> None:
    table = Table()
    book = Logbook(table, interval=60, size=3)  # only the size can wake it within the test
    book.start()
    try:
        for _ in range(3):
            book.add(entry())
        assert table.written.wait(5)
    finally:
        book.stop()
    assert [len(g) for g in table.groups] == [3]


def test_stop_writes_what_is_left() -> None:
    table = Table()
    book = Logbook(table, interval=60)
    book.start()
    book.add(entry())
    book.stop()
    assert [len(g) for g in table.groups] == [1]


def test_forgetting_a_subject_drops_only_their_buffered_entries() -> None:
    table = Table()
    book = Logbook(table)
    gone, kept = uuid.uuid4(), uuid.uuid4()
    dropped = [book.add(entry(gone)) for _ in range(2)]
    stays = book.add(entry(kept))
    assert book.forget(gone) == 2
    assert book.find(dropped[0].decision_id) is None
    book.flush()
    assert table.groups == [[stays]]


def test_a_failing_write_keeps_entries_and_counts_what_it_must_drop() -> None:
    table = Table()
    book = Logbook(table, limit=3)
    table.failing = True
    entries = [book.add(entry(n=n)) for n in range(5)]
    assert book.flush() == 0
    assert (book.pending, book.lost) == (3, 2)
    table.failing = False
    book.flush()
    assert [e.sequence for e in table.groups[0]] == [3, 4, 5]  # the gap 1-2 is what `lost` counted
    assert book.find(entries[0].decision_id) is None


@given(st.lists(st.sampled_from(("add", "flush", "forget")), max_size=40))
def test_every_entry_is_written_forgotten_or_pending_never_twice(steps: list[str]) -> None:
    table = Table()
    book = Logbook(table)
    subjects = [uuid.uuid4(), uuid.uuid4()]
    added: list[Entry] = []
    forgotten = 0
    for n, step in enumerate(steps):
        if step == "add":
            added.append(book.add(entry(subjects[n % 2], n)))
        elif step == "flush":
            book.flush()
        else:
            forgotten += book.forget(subjects[0])
    written = [e for group in table.groups for e in group]
    assert len({e.decision_id for e in written}) == len(written)
    assert len(written) + forgotten + book.pending == len(added)
    assert [e.sequence for e in added] == list(range(1, len(added) + 1))
    assert all(e.sequence < f.sequence for group in table.groups for e, f in itertools.pairwise(group))


def test_an_entry_is_frozen() -> None:
    with pytest.raises(AttributeError):
        entry().variation = "x"  # type: ignore[misc]
