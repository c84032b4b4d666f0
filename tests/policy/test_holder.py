"""The gate a process holds is replaced when another process publishes a new catalog version, within
the checking interval, and never reloaded in a loop."""

from __future__ import annotations

from tactful.catalog.model import Catalog
from tactful.policy import GDPR, Gate, compile_gate
from tactful.policy.holder import GateHolder
from tests.policy.builders import catalog_from
from tests.policy.test_cases import CATALOGS, SPEC


class Board:
    """One published version for every holder, as a Redis key is; counts its reads."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.reads = 0

    def read(self) -> str | None:
        self.reads += 1
        return self.version

    def publish(self, version: str) -> None:
        self.version = version


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """What a process's catalog source gives when read again (a file, in a deployment)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.loads = 0

    def load(self) -> Gate:
        self.loads += 1
        return compile_gate(self.catalog, regimes=(GDPR,))


def other_catalog() -> Catalog:
    fragment = SPEC["catalogs"]["shop"]
    atoms = dict(fragment["atoms"])
    atoms["context.locale"] = {**atoms["context.locale"], "purposes": ["analytics"]}
    return catalog_from({**fragment, "atoms": atoms})


def process(source: Source, board: Board, clock: Clock) -> GateHolder:
    holder = GateHolder(load=source.load, clock=clock, board=board, interval=1.0)
    holder.publish()
    return holder


def test_a_new_catalog_reaches_the_other_process_within_the_interval() -> None:
    board, clock = Board(), Clock()
    files = Source(CATALOGS["shop"])  # both processes read the same catalog file
    first, second = process(files, board, clock), process(files, board, clock)
    old = second.current()
    assert old.catalog is CATALOGS["shop"]

    files.catalog = other_catalog()
    assert first.reload()
    assert first.current().catalog is files.catalog
    assert second.current() is old  # checked at most once per interval
    clock.now += 1.0
    new = second.current()
    assert new.catalog is files.catalog
    assert new.version == first.version == board.version != old.version


def test_the_board_is_read_at_most_once_per_interval() -> None:
    board, clock = Board(), Clock()
    holder = process(Source(CATALOGS["shop"]), board, clock)
    for _ in range(100):  # 25 seconds, four calls a second
        holder.current()
        clock.now += 0.25
    assert board.reads == 24  # from the first second after start


def test_reading_the_same_catalog_again_changes_nothing() -> None:
    board, clock = Board(), Clock()
    source = Source(CATALOGS["shop"])
    holder = process(source, board, clock)
    gate = holder.current()
    assert not holder.reload()
    assert holder.current() is gate


def test_a_process_whose_catalog_differs_from_the_published_one_reloads_once_per_change() -> None:
    board, clock = Board(), Clock()
    behind = Source(CATALOGS["shop"])  # this process's file was not updated
    holder = process(behind, board, clock)
    board.publish("sha256:elsewhere")
    for _ in range(5):
        clock.now += 1.0
        holder.current()
    assert behind.loads == 2  # at start, then once for the new version, not every second
    assert holder.current().catalog is CATALOGS["shop"]


def test_a_process_alone_never_reloads() -> None:
    clock = Clock()
    source = Source(CATALOGS["shop"])
    holder = GateHolder(load=source.load, clock=clock)
    holder.publish()
    clock.now += 10
    assert holder.current().catalog is CATALOGS["shop"]
    assert source.loads == 1
