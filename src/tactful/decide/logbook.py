"""The decision log's buffer: decisions are answered first and written in groups after (DESIGN §3,
invariant 8: at most 100 ms or 500 decisions later).

    decide ──add(entry)──▶ Logbook (this process's buffer, entries numbered 1, 2, 3, ...)
                              │ every `interval`, or at `size` entries, on its own thread
                              ▼
                           write(entries) in one transaction ──▶ decision log table
    explanation ──find(id)──▶ the buffer first, then the table
    erasure ──forget(subject)──▶ drops the subject's buffered entries in this process; the
        writer drops those of a subject erased meanwhile by any process (`log.living`)

Each process numbers its entries, so what was lost shows as a gap in its numbers: a write that keeps
failing drops the oldest entries beyond `limit` and counts them (`lost`). A crash loses at most the
window not yet written, never an event or a consent change (those commit before their answer); the
writer records how far each process has written, so a process that stopped without its last write
is found (`log.stalled`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tactful.records import quick

log = logging.getLogger(__name__)

UNNUMBERED = uuid.UUID(int=0)
"""The process of an entry no logbook has numbered yet."""


@quick
@dataclass(frozen=True)
class Entry:
    """One served decision as the log keeps it (no atom values: names, codes and numbers)."""

    decision_id: str
    subject_id: uuid.UUID | None
    placement: str
    experience: str | None
    experience_version: int | None
    variation: str
    level: str
    strategy: str
    propensity: float
    atoms_read: tuple[str, ...]
    purposes: tuple[str, ...]
    legal_basis: dict[str, str]
    explanation: dict[str, Any]
    decided_at: datetime
    model_version: str | None = None
    forced: bool = False
    process: uuid.UUID = UNNUMBERED
    """The logbook's process that numbered the entry (`sequence`); none has until it is added."""
    sequence: int = 0


Writer = Callable[[Sequence[Entry]], int | None]
"""Writes a group in one transaction; answers how many of its entries it dropped because their
subject was erased meanwhile (None: none)."""


class Logbook:
    """This process's buffer of decisions not yet written."""

    def __init__(self, write: Writer, *, interval: float = 0.1, size: int = 500, limit: int = 10_000) -> None:
        self.process = uuid.uuid4()
        self._write = write
        self.interval = interval
        self.size = size
        self.limit = limit
        self._pending: deque[Entry] = deque()
        self._by_id: dict[str, Entry] = {}
        self._sequence = 0
        self.written = 0
        self.lost = 0
        self.erased = 0
        """Entries the writer dropped: their subject was erased before they were written."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- serving ------------------------------------------------------------------------------

    def add(self, entry: Entry) -> Entry:
        """Number `entry` and buffer it; the number and this process's id go with it."""
        with self._lock:
            self._sequence += 1
            numbered = _numbered(entry, self.process, self._sequence)
            self._pending.append(numbered)
            self._by_id[numbered.decision_id] = numbered
            if len(self._pending) >= self.size:
                self._wake.notify()
        return numbered

    def find(self, decision_id: str) -> Entry | None:
        """A buffered entry (explanations are served from here until it is written)."""
        with self._lock:
            return self._by_id.get(decision_id)

    def entries_of(self, subject_id: uuid.UUID) -> list[Entry]:
        """The subject's entries not yet written (an export includes them)."""
        with self._lock:
            return [e for e in self._pending if e.subject_id == subject_id]

    def forget(self, subject_id: uuid.UUID) -> int:
        """Drop the subject's buffered entries (withdrawal and erasure reach the buffer too)."""
        with self._lock:
            kept = [e for e in self._pending if e.subject_id != subject_id]
            dropped = len(self._pending) - len(kept)
            if dropped:
                self._pending = deque(kept)
                self._by_id = {e.decision_id: e for e in kept}
        return dropped

    @property
    def sequence(self) -> int:
        """The number of the last entry this process served."""
        return self._sequence

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- writing ------------------------------------------------------------------------------

    def flush(self) -> int:
        """Write what is buffered now, in one group; entries stay findable until written."""
        with self._flushing:
            with self._lock:
                group = list(self._pending)
            if not group:
                return 0
            try:
                erased = self._write(group) or 0
            except Exception as error:
                # The database may be briefly away: keep the entries for the next round, up to
                # `limit`, and count what has to go beyond it (never silently). Only the error's
                # type is logged: a driver's message can quote the rows' values.
                log.warning(
                    "writing %d decision log entries failed (%s); kept for the next round",
                    len(group),
                    type(error).__name__,
                )
                with self._lock:
                    overflow = len(self._pending) - self.limit
                    for _ in range(max(overflow, 0)):
                        gone = self._pending.popleft()
                        self._by_id.pop(gone.decision_id, None)
                        self.lost += 1
                return 0
            with self._lock:
                for _ in range(len(group)):
                    written = self._pending.popleft()
                    self._by_id.pop(written.decision_id, None)
                self.written += len(group) - erased
                self.erased += erased
            return len(group) - erased

    def start(self) -> None:
        """Write in the background, every `interval` or at `size` entries."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tactful-decision-log", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is left and stop the background writer."""
        self._stop.set()
        with self._lock:
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if len(self._pending) < self.size:
                    self._wake.wait(self.interval)
            self.flush()


def _numbered(entry: Entry, process: uuid.UUID, sequence: int) -> Entry:
    return replace(entry, process=process, sequence=sequence)
