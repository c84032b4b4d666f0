"""One process's compiled gate, replaced when the catalog's published version changes.

    process A: catalog changed ──▶ GateHolder.reload() ──▶ board.publish(version)
    process B: GateHolder.current() ── at most once per `interval` ──▶ board.read()
                 published ≠ last seen ──▶ load() (read the catalog again, compile) ──▶ new gate

The board is where processes meet (a Redis key, DESIGN §5); a process alone needs none. The holder
reads it at most once per `interval` seconds, so the check costs one lookup a second whatever the
load, and a change reaches every process within about that time. A process whose own catalog does
not match the published version after reloading keeps what it loaded and waits for the next change
(it never reloads in a loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tactful.policy.compiled import Gate


class VersionBoard(Protocol):
    """Where the catalog version in force is published for every process."""

    def read(self) -> str | None: ...

    def publish(self, version: str) -> None: ...


class NoBoard:
    """A process alone: nothing to publish, nothing published."""

    def read(self) -> str | None:
        return None

    def publish(self, version: str) -> None:
        return None


class GateHolder:
    """The compiled gate a process uses, checked against the published catalog version. `clock` is
    the process's monotonic clock in seconds (passed in: the policy package reads no clock)."""

    def __init__(
        self,
        *,
        load: Callable[[], Gate],
        clock: Callable[[], float],
        board: VersionBoard | None = None,
        interval: float = 1.0,
        gate: Gate | None = None,
    ) -> None:
        self._load, self._board = load, board if board is not None else NoBoard()
        self._interval, self._clock = interval, clock
        self._gate = gate if gate is not None else load()
        self._seen: str | None = None
        self._next = clock() + interval

    @property
    def version(self) -> str:
        return self._gate.version

    def publish(self) -> None:
        """Announce this process's catalog version to the others (at start, after a change)."""
        self._board.publish(self._gate.version)
        self._seen = self._gate.version

    def replace(self, gate: Gate) -> None:
        """Use `gate` from now on, and have every other process reload."""
        self._gate = gate
        self.publish()

    def reload(self) -> bool:
        """Read the catalog again (`load`); when its version changed, use it and have every other
        process reload too. Whether it changed. (The hook for whatever changes a catalog at run
        time: today the catalog is a file read at start.)"""
        gate = self._load()
        if gate.version == self._gate.version:
            return False
        self.replace(gate)
        return True

    def current(self) -> Gate:
        """The gate to use now: reloaded first if another process published a new catalog version."""
        now = self._clock()
        if now < self._next:
            return self._gate
        self._next = now + self._interval
        published = self._board.read()
        if published is None or published == self._seen:
            return self._gate
        self._seen = published
        if published != self._gate.version:
            self._gate = self._load()
        return self._gate
