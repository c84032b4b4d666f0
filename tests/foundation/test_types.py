from __future__ import annotations

import itertools
import time

from hypothesis import given
from hypothesis import strategies as st

from tactful.types import Level, new_row_id

LEVELS = list(Level)


def test_levels_are_ordered_up_the_pyramid() -> None:
    assert LEVELS == [Level.ALL, Level.MANY, Level.SOME, Level.FEW, Level.ONE]
    assert max(Level.ONE, Level.SOME) is Level.ONE
    assert Level.ONE > Level.SOME >= Level.SOME
    assert Level.ALL <= Level.MANY
    assert sorted([Level.ONE, Level.ALL, Level.FEW]) == [Level.ALL, Level.FEW, Level.ONE]
    assert Level.from_rank(Level.FEW.rank) is Level.FEW


@given(st.sampled_from(LEVELS), st.sampled_from(LEVELS))
def test_every_comparison_agrees_with_rank(a: Level, b: Level) -> None:
    assert (a < b) == (a.rank < b.rank)
    assert (a <= b) == (a.rank <= b.rank)
    assert (a > b) == (a.rank > b.rank)
    assert (a >= b) == (a.rank >= b.rank)
    assert (a == b) == (a.rank == b.rank)


def test_levels_stay_usable_as_strings_and_keys() -> None:
    assert {level: level.rank for level in LEVELS}[Level("1:few")] == 3
    assert all(str(a) != str(b) for a, b in itertools.combinations(LEVELS, 2))


def test_row_ids_are_uuid7_carrying_the_millisecond_of_their_creation() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_row_id() for _ in range(200)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for row_id in ids:
        assert row_id.version == 7
        assert row_id.variant == "specified in RFC 4122"
        assert before <= row_id.int >> 80 <= after


def test_row_ids_made_in_later_milliseconds_sort_after_earlier_ones() -> None:
    first = new_row_id()
    time.sleep(0.002)
    second = new_row_id()
    assert first < second
    assert first.hex < second.hex  # as SQLite stores them: the index grows at its end
