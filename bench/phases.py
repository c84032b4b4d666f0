"""`python -m bench.phases [--events N] [--runs R] [--cpu]`: where a batch's time goes, phase by phase.

Each phase is a function that ingestion calls through a module attribute; it is wrapped with a
timer for the run, and the median time per 100-event batch is printed for each (inclusive: a phase
that calls another contains it; indented names run inside the one above). A batch that does not
reach a phase counts zero for it. For finding what to change, not for the results file: timers cost
a little, and `python -m bench` gives the figures.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import ingest
from bench.stats import percentile
from bench.stores import demo_messages
from tactful.main import settle_garbage_collector

# (module, attribute, depth): the attribute as ingestion looks it up, and how deep it nests.
PHASES: tuple[tuple[str, str, int], ...] = (
    ("tactful.collect.service", "ingest", 0),
    ("tactful.collect.trust", "take_proof", 1),
    ("tactful.collect.checks", "check", 1),
    ("tactful.collect.store", "seen_messages", 1),
    ("tactful.collect.service", "suppress_unheard", 1),
    ("tactful.profiles.service", "known_identifiers", 2),
    ("tactful.consent.intake", "carried_kinds", 2),
    ("tactful.collect.plans", "identifiers", 2),
    ("tactful.collect.purposes", "newcomer", 2),
    ("tactful.collect.plans.Subjects", "resolve", 1),
    ("tactful.profiles.service", "read_known", 2),
    ("tactful.profiles.service", "resolve_many", 2),
    ("tactful.profiles.links", "record", 2),
    ("tactful.collect.store", "reserve_messages", 1),
    ("tactful.collect.service", "_decide", 1),
    ("tactful.collect.trust", "grants_and_widenings", 2),
    ("tactful.profiles.links", "identified", 3),
    ("tactful.profiles.links", "pending", 3),
    ("tactful.profiles.links", "speaking", 3),
    ("tactful.collect.purposes", "decide", 2),
    ("tactful.consent.intake", "record_arrivals", 3),
    ("tactful.consent.ledger", "histories", 4),
    ("tactful.consent.service", "record_many", 4),
    ("tactful.audit.service", "append_records", 5),
    ("tactful.consent.gatekeeper", "read_inputs", 3),
    ("tactful.consent.gatekeeper", "allowances", 3),
    ("tactful.collect.keep", "event", 1),
    ("tactful.profiles.service", "apply_traits_many", 1),
    ("tactful.profiles.service", "record_events", 1),
    ("tactful.collect.purposes", "purge_computed", 1),
    ("tactful.collect.service", "_write", 1),
    ("tactful.collect.store", "add_counts", 2),
    ("tactful.audit.service", "append_many", 2),
)


def _label(path: str, name: str) -> str:
    return f"{path.removeprefix('tactful.')}.{name}"


def _owner(path: str) -> Any:
    """The module (or a class in it) that holds a phase's attribute."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name)
        return found
    raise ImportError(path)


@contextmanager
def timed(
    per_batch: dict[str, list[float]], clock: Callable[[], float] = time.perf_counter
) -> Iterator[None]:
    """Wrap every phase for the duration; each call of the outermost one (a batch) appends the
    milliseconds each phase took in it to `per_batch[label]`, by `clock`."""
    spent: dict[str, float] = {}
    undo: list[Callable[[], None]] = []
    labels = [_label(p, n) for p, n, _ in PHASES if hasattr(_owner(p), n)]
    try:
        for path, name, depth in PHASES:
            owner = _owner(path)
            if not hasattr(owner, name):
                continue  # not in this version of the code (the harness also times older commits)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)

            def wrapper(
                *args: Any, _f: Any = original, _mine: str = _label(path, name), _top: bool = depth == 0,
                **kwargs: Any,
            ) -> Any:  # fmt: skip
                if _top:
                    spent.clear()
                started = clock()
                try:
                    return _f(*args, **kwargs)
                finally:
                    spent[_mine] = spent.get(_mine, 0.0) + clock() - started
                    if _top:
                        for label in labels:
                            per_batch.setdefault(label, []).append(spent.get(label, 0.0) * 1000)

            functools.update_wrapper(wrapper, original)
            setattr(owner, name, wrapper)
            undo.append(functools.partial(setattr, owner, name, original))
        yield
    finally:
        for step in reversed(undo):
            step()


def measure(
    events: int, runs: int, batch: int = 100, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Milliseconds per batch for every phase, over `runs` fresh runs of `events` demo messages."""
    at = datetime.now(UTC)
    pool = demo_messages(events, now=at, customers=ingest.Config().customers)
    settle_garbage_collector()
    per_batch: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tactful-phases-") as tmp, timed(per_batch, clock):
        for _ in range(runs):
            ingest.in_process_run(pool, Path(tmp), batch=batch, at=at)
    return per_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="this thread's CPU time instead of wall time: steadier on a shared machine, blind to waits",
    )
    args = parser.parse_args(argv)
    per_batch = measure(args.events, args.runs, clock=time.thread_time if args.cpu else time.perf_counter)
    batches = len(per_batch[_label(*PHASES[0][:2])])
    table = Table(title=f"ms per 100-event batch ({batches} batches)")
    table.add_column("phase")
    table.add_column("median", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("p90", justify="right")
    depth = {_label(p, n): d for p, n, d in PHASES}
    for label, values in per_batch.items():
        table.add_row(
            "  " * depth[label] + label,
            f"{percentile(values, 50):.2f}",
            f"{sum(values) / len(values):.2f}",
            f"{percentile(values, 90):.2f}",
        )
    Console(width=120).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
