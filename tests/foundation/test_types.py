from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tactful.types import Level

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
