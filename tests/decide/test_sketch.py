"""The HyperLogLog sketch counts distinct items: repeats count once, a union merges, small counts
are close to exact and never above the truth, and the stored form round-trips."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from tactful.decide.sketch import Sketch


def _digest(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


@given(st.sets(st.integers(min_value=0, max_value=10**9), max_size=200), st.integers(1, 5))
def test_repeats_count_once_and_small_counts_err_low(items: set[int], repeats: int) -> None:
    sketch = Sketch().update(_digest(i) for _ in range(repeats) for i in items)
    estimate = sketch.estimate()
    assert estimate <= len(items) * 1.01 + 0.5  # collisions hide items; linear counting adds <1%
    assert estimate >= len(items) - 2


@given(st.sets(st.integers(0, 10**6), max_size=100), st.sets(st.integers(0, 10**6), max_size=100))
def test_merging_is_the_union(left: set[int], right: set[int]) -> None:
    merged = Sketch().update(map(_digest, left)).merge(Sketch().update(map(_digest, right)))
    assert merged.registers == Sketch().update(map(_digest, left | right)).registers
    assert Sketch.from_bytes(merged.to_bytes()).registers == merged.registers


def test_large_counts_are_within_a_few_percent() -> None:
    estimate = Sketch().update(map(_digest, range(100_000))).estimate()
    assert abs(estimate - 100_000) / 100_000 < 0.03
