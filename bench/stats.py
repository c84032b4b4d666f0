"""Small summaries of repeated measurements: medians and spreads, never a single run."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 ≤ q ≤ 100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError("q is a percentage")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float], *, digits: int = 1) -> dict[str, object]:
    """Median, p10/p90, min/max and every run, rounded for reading."""
    return {
        "median": round(percentile(values, 50), digits),
        "p10": round(percentile(values, 10), digits),
        "p90": round(percentile(values, 90), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(v, digits) for v in values],
    }


def median_us(call: Callable[[int], object], iterations: int) -> float:
    """The median time of `call(i)` over `iterations` calls, each timed on its own, in microseconds
    (the collector is paused so that its pauses do not land on one side of a comparison)."""
    clock = time.perf_counter_ns
    out: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for i in range(iterations):
            start = clock()
            call(i)
            out.append((clock() - start) / 1000)
    finally:
        gc.enable()
    return percentile(out, 50)
