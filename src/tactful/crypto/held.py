"""Held writes: the keystore's half of a unit of work that spans two databases.

A request's keystore view may hold back its keystore writes, the keys of new subjects and blind-index
entries, and write them in one transaction just before the main session commits (`commit.py` ties
them to that commit), or start that write early on a worker thread (`write_held_soon`) and join it
there: the key is durable before anything sealed with it is.

    hold_key / hold_entries ──▶ this view's held writes, and `Unwritten` (every view's, shared)
    write_held_soon ──▶ a worker thread writes them, one keystore transaction (which first reads
                        the keys the request will use next: `read_keys` waits for that read only)
    write_held ──▶ waits for that worker, then writes what was held since
    drop_held ──▶ the main transaction rolled back: forget them, and never use the held keys again

While held, the rest of the process reads them through `Unwritten` as if written: only the holding
session can know those subjects yet.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from tactful.crypto.blind_index import write_entries
from tactful.crypto.material import Wrapping

_Writing = tuple["Future[None]", dict[uuid.UUID, bytes], dict[str, uuid.UUID]]
"""A background write of held keys and index entries: the work, and what it writes."""


@dataclass
class Unwritten:
    """Every view's held writes, shared by a keystore and all its views."""

    keys: dict[uuid.UUID, bytes] = field(default_factory=dict)
    index: dict[str, uuid.UUID] = field(default_factory=dict)

    def forget(self, keys: Mapping[uuid.UUID, bytes], index: Mapping[str, uuid.UUID]) -> None:
        """Written or dropped: no longer held."""
        for subject_id in keys:
            self.keys.pop(subject_id, None)
        for digest, subject_id in index.items():
            if self.index.get(digest) == subject_id:
                self.index.pop(digest, None)

    def erase(self, subject_id: uuid.UUID) -> None:
        """An erasure: whichever view holds the subject's key or entries drops them, never writes them."""
        self.keys.pop(subject_id, None)
        for digest in [d for d, s in self.index.items() if s == subject_id]:
            self.index.pop(digest, None)


class HeldWrites:
    """One view's held keys and index entries. `materials` is the view's cache of unwrapped keys
    (None outside a view): a held key that never becomes durable is taken out of it."""

    def __init__(
        self,
        wrapping: Wrapping,
        unwritten: Unwritten,
        materials: dict[uuid.UUID, tuple[bytes, bytes]] | None,
    ) -> None:
        self._wrapping = wrapping
        self._unwritten = unwritten
        self._materials = materials
        self._keys: dict[uuid.UUID, bytes] = {}
        self._index: dict[str, uuid.UUID] = {}
        self._writing: _Writing | None = None
        self._reading: tuple[Future[dict[uuid.UUID, bytes]], frozenset[uuid.UUID]] | None = None

    def holds_key(self, subject_id: uuid.UUID) -> bool:
        return subject_id in self._keys

    def hold_key(self, subject_id: uuid.UUID, material: bytes) -> None:
        self._keys[subject_id] = self._unwritten.keys[subject_id] = material

    def hold_entries(self, latest: Mapping[str, uuid.UUID]) -> None:
        for digest, subject_id in latest.items():
            self._index.pop(digest, None)  # a later entry wins, as in the table
            self._index[digest] = self._unwritten.index[digest] = subject_id

    @property
    def holds_keys(self) -> bool:
        return bool(self._keys)

    def write_held_soon(self, reading: Iterable[uuid.UUID] = ()) -> None:
        if self._writing is not None:
            return
        keys, index = self._take()
        wanted = frozenset(reading)
        if not (keys or index or wanted):
            return
        reads: Future[dict[uuid.UUID, bytes]] | None = None
        if wanted:
            reads = Future()
            self._reading = (reads, wanted)
        self._writing = (_writer().submit(self._write, keys, index, wanted, reads), keys, index)

    def forget_read(self, subject_id: uuid.UUID) -> None:
        """An erasure through this view: the key the started write read is gone."""
        if self._reading is not None:
            future, wanted = self._reading
            self._reading = (future, wanted - {subject_id})

    def read_keys(self, subject_id: uuid.UUID) -> bytes | None:
        """The subject's material as the started write read it (waiting for that read, never for
        the commit), or None when it was not asked for or has no key."""
        reading = self._reading
        if reading is None or subject_id not in reading[1]:
            return None
        return reading[0].result().get(subject_id)

    def write_held(self) -> None:
        self._finish_writing()
        keys, index = self._take()
        if not keys and not index:
            return
        try:
            self._write(keys, index)
        except BaseException:
            self._unusable(keys)  # keys that never became durable must not stay usable
            raise
        finally:
            self._unwritten.forget(keys, index)

    def drop_held(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            future, keys, index = writing
            # Waited for all the same: the worker must not outlive the request that started it.
            # Keys it made durable seal nothing now; they stay as keys of no subject.
            future.exception()
            self._unusable(keys)
            self._unwritten.forget(keys, index)
        keys, index = self._keys, self._index
        self._keys, self._index = {}, {}
        self._unusable(keys)
        self._unwritten.forget(keys, index)

    def _take(self) -> tuple[dict[uuid.UUID, bytes], dict[str, uuid.UUID]]:
        keys, index = self._keys, self._index
        self._keys, self._index = {}, {}
        # An erasure since they were held took them out of `Unwritten`: those stay unwritten.
        keys = {s: m for s, m in keys.items() if s in self._unwritten.keys}
        index = {d: s for d, s in index.items() if self._unwritten.index.get(d) == s}
        return keys, index

    def _write(
        self,
        keys: Mapping[uuid.UUID, bytes],
        index: Mapping[str, uuid.UUID],
        reading: frozenset[uuid.UUID] = frozenset(),
        reads: Future[dict[uuid.UUID, bytes]] | None = None,
    ) -> None:
        # Database work only: it may run on the worker thread, so the bookkeeping stays with the
        # caller (`_finish_writing`, `write_held`). The reads come first and are handed over at
        # once: whoever waits for them does not wait for the commit's flush.
        try:
            with self._wrapping.engine.begin() as conn:
                if reads is not None:
                    reads.set_result(self._wrapping.read_many(conn, sorted(reading, key=str)))
                self._wrapping.insert(conn, keys)
                if index:
                    write_entries(conn, index)
        except BaseException as exc:
            if reads is not None and not reads.done():
                reads.set_exception(exc)  # never leave a reader waiting
            raise

    def _finish_writing(self) -> None:
        writing, self._writing = self._writing, None
        if writing is None:
            return
        future, keys, index = writing
        try:
            future.result()
        except BaseException:
            self._unusable(keys)
            raise
        finally:
            self._unwritten.forget(keys, index)

    def _unusable(self, keys: Iterable[uuid.UUID]) -> None:
        if self._materials is not None:
            for subject_id in keys:
                self._materials.pop(subject_id, None)


@functools.cache
def _writer() -> ThreadPoolExecutor:
    # Made on first use, shared by the process: a few threads, each mostly waiting for a disk flush.
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="tactful-keystore")
