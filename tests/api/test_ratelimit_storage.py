"""The rate limiter's memory storage on its own: fixed windows that open at a key's first hit and
close `expiry` seconds later, one count per key, expired windows swept without a thread; and, driven
through limits' `FixedWindowRateLimiter`, the same answers as limits' own memory storage."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from tactful.api.ratelimit import SweptMemoryStorage


@dataclass
class Clock:
    """Wall-clock seconds that move only when a test moves them."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_window_opens_at_the_first_hit_and_closes_after_its_expiry() -> None:
    clock = Clock()
    storage = SweptMemoryStorage(clock=clock)
    assert [storage.incr("k", 10) for _ in range(3)] == [1, 2, 3]
    assert storage.get_expiry("k") == clock.now + 10
    clock.now += 9.5
    assert storage.incr("k", 10) == 4  # the same window: it opened at the first hit
    assert storage.get("k") == 4
    clock.now += 0.5
    assert storage.get("k") == 0  # closed at exactly first hit + expiry
    assert storage.get_expiry("k") == clock.now  # no window open: it would reset now
    assert storage.incr("k", 10, amount=2) == 2
    assert storage.get_expiry("k") == clock.now + 10


def test_each_key_counts_on_its_own() -> None:
    clock = Clock()
    storage = SweptMemoryStorage(clock=clock)
    storage.incr("a", 5)
    clock.now += 3
    storage.incr("b", 5)
    storage.incr("b", 5)
    assert (storage.get("a"), storage.get("b"), storage.get("c")) == (1, 2, 0)
    clock.now += 2
    assert (storage.get("a"), storage.get("b")) == (0, 2)  # a's window closed, b's has 3 s left
    storage.clear("b")
    assert storage.get("b") == 0
    storage.incr("a", 5)
    assert storage.reset() == 1
    assert storage.get("a") == 0


def test_expired_windows_are_swept_by_an_increment_at_most_once_per_period() -> None:
    clock = Clock()
    start = clock.now
    storage = SweptMemoryStorage(clock=clock)  # the first sweep is due SWEEP_EVERY from now
    every = SweptMemoryStorage.SWEEP_EVERY
    threads = set(threading.enumerate())
    clock.now = start + every / 2
    for key in range(20):
        storage.incr(f"address-{key}", 1)  # closes at start + every / 2 + 1
    assert set(threading.enumerate()) == threads  # limits' own storage starts a timer thread here
    clock.now = start + every
    storage.incr("due", 1)  # a sweep, with nothing expired yet
    clock.now = start + every / 2 + 1
    storage.incr("late", 3)  # twenty windows closed, and the next sweep is not due
    assert len(storage.windows) == 22
    clock.now = start + 2 * every
    storage.incr("later", 5)
    assert set(storage.windows) == {"late", "later"}  # swept unread; "due" closed too


def test_reading_an_expired_window_drops_it() -> None:
    clock = Clock()
    storage = SweptMemoryStorage(clock=clock)
    storage.incr("k", 1)
    clock.now += 1
    assert "k" in storage.windows  # no sweep is due yet
    assert storage.get("k") == 0
    assert "k" not in storage.windows


# -- against limits' own storage ----------------------------------------------------------------

_LONG = 3600
"""Every window of the comparison outlives the test: limits' own memory storage reads the wall clock
and offers no way to move it, so the two are compared within one window."""

_ITEMS = [RateLimitItemPerSecond(amount, _LONG) for amount in (1, 2, 5)]
_Op = tuple[str, int, str, int]  # (what, item index, identifier, cost)
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["hit", "hit", "hit", "test", "stats", "clear"]),
        st.integers(0, len(_ITEMS) - 1),
        st.sampled_from(["a", "b", "c"]),
        st.integers(1, 3),
    ),
    max_size=40,
)


def _apply(limiter: FixedWindowRateLimiter, item: RateLimitItem, op: _Op) -> object:
    what, _, identifier, cost = op
    if what == "hit":
        return limiter.hit(item, identifier, cost=cost)
    if what == "test":
        return limiter.test(item, identifier, cost=cost)
    if what == "stats":
        return limiter.get_window_stats(item, identifier).remaining
    limiter.clear(item, identifier)
    return None


@given(ops=_OPS)
def test_through_the_fixed_window_limiter_it_answers_as_limits_memory_storage_does(ops: list[_Op]) -> None:
    ours = FixedWindowRateLimiter(SweptMemoryStorage())
    stock = MemoryStorage()
    theirs = FixedWindowRateLimiter(stock)
    try:
        for op in ops:
            item = _ITEMS[op[1]]
            assert _apply(ours, item, op) == _apply(theirs, item, op), op
    finally:
        stock.reset()


@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 3), st.floats(0, 4, allow_nan=False)),
        max_size=40,
    ),
    expiry=st.integers(1, 3),
)
def test_over_time_each_hit_counts_in_the_window_its_key_opened_last(
    steps: list[tuple[str, int, float]], expiry: int
) -> None:
    """With a clock that moves: a hit opens a window when its key has none open at that time, and
    the count is the sum of the hits since; a window is open for `expiry` seconds exactly."""
    clock = Clock()
    storage = SweptMemoryStorage(clock=clock)
    opened: dict[str, tuple[float, int]] = {}
    for key, amount, wait in steps:
        clock.now += wait
        start, count = opened.get(key, (float("-inf"), 0))
        if clock.now >= start + expiry:
            start, count = clock.now, 0
        opened[key] = (start, count + amount)
        assert storage.incr(key, expiry, amount=amount) == count + amount
        assert storage.get_expiry(key) == start + expiry
    for key in ("a", "b", "c"):
        start, count = opened.get(key, (float("-inf"), 0))
        assert storage.get(key) == (count if clock.now < start + expiry else 0)
