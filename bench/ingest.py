"""The ingestion benchmark: what a durable SQLite file allows, what ingestion achieves, what HTTP adds.

    floor       bare inserts of the rows ingestion stored, same table, same durability, 100 a transaction
    in_process  collect.service.ingest of 100 demo events a transaction
    http        POST /v1/batch of 100 events to one uvicorn process, a few clients: the peak
    latency     after each peak run, an open loop at 70 % of that peak: p50/p99 of a batch in each

floor and in_process alternate run by run on fresh files, so that drift of the machine (caches, other
load) falls on both; every figure is the median of the runs, with its spread.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select

from bench.load import OpenLoop, bodies, closed_loop, open_loop
from bench.report import Row, Target
from bench.server import running_server
from bench.stats import percentile, summary
from bench.stores import demo_messages, fresh_stores, renamed
from tactful.api.context import AppContext
from tactful.catalog.loader import load_catalog
from tactful.collect import service as collect_service
from tactful.collect import store as collect_store
from tactful.collect.models import Event
from tactful.collect.schemas import Source
from tactful.config import Settings
from tactful.db import make_engine
from tactful.demo.generate import Message
from tactful.main import default_catalog_path, settle_garbage_collector

SECTION = "ingest"
TARGET_IN_PROCESS_OVER_FLOOR = 0.30
TARGET_HTTP_OVER_IN_PROCESS = 0.50
TARGET_P99_MS = 50.0
LOAD_SHARE = 0.7


@dataclass(frozen=True)
class Config:
    runs: int = 5
    events: int = 5000  # per floor and in-process run
    batch: int = 100
    http_batches: int = 80  # per HTTP run
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    probe_batches: int = 16  # per concurrency level
    load_seconds: float = 15.0
    customers: int = 600


QUICK = Config(
    runs=3, events=300, http_batches=4, concurrency=(1, 2), probe_batches=3, load_seconds=1.0, customers=40
)


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


# -- in process and floor ---------------------------------------------------------------------


def in_process_run(
    messages: list[Message], directory: Path, *, batch: int, at: datetime
) -> tuple[float, list[dict[str, Any]]]:
    """(events/s, the event rows stored) for one ingestion of `messages` into fresh files."""
    catalog = load_catalog(default_catalog_path())
    db, keystore = fresh_stores(directory).open()
    source = Source()
    # The process's settings and one policy context for the run, as a server process holds them
    # (its gate compiled once).
    context = AppContext(
        settings=Settings(), db=db, keystore=keystore, catalog=catalog,
        on_withdrawal=collect_store.withdrawal_hook(catalog),
    )  # fmt: skip
    policy = context.policy_context()
    try:
        started = time.perf_counter()
        for chunk in _chunks(messages, batch):
            with db.session() as session:
                collect_service.ingest(
                    session,
                    keystore=keystore,
                    messages=chunk,
                    source=source,
                    at=at,
                    limits=context.settings.limits,
                    policy=policy,
                )
        seconds = time.perf_counter() - started
        with db.session() as session:
            rows = [dict(row) for row in session.execute(select(Event.__table__)).mappings()]
    finally:
        db.dispose()
        keystore.dispose()
    return len(messages) / seconds, rows


def floor_run(rows: list[dict[str, Any]], directory: Path, *, batch: int) -> float:
    """Rows/s for a bare insert of `rows` into a fresh `events` table, one transaction per batch."""
    engine = make_engine(f"sqlite:///{directory / f'floor-{time.monotonic_ns()}.db'}")
    table = cast(Table, Event.__table__)
    try:
        table.create(engine)
        statement = insert(table)
        started = time.perf_counter()
        for chunk in _chunks(rows, batch):
            with engine.begin() as conn:
                conn.execute(statement, chunk)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return len(rows) / seconds


# -- HTTP -------------------------------------------------------------------------------------


def _payloads(pool: list[Message], count: int, batch: int, offset: int) -> tuple[list[bytes], int]:
    """`count` batch bodies cycling through `pool` under fresh message ids, and the next offset."""
    batches = []
    for _ in range(count):
        positions = range(offset, offset + batch)
        batches.append([renamed(pool[p % len(pool)], cycle=p // len(pool)) for p in positions])
        offset += batch
    return bodies(batches), offset


def http_runs(pool: list[Message], directory: Path, config: Config) -> dict[str, Any]:
    stores = fresh_stores(directory)
    with running_server(stores, directory / "server.log") as server:
        offset = 0
        warm, offset = _payloads(pool, 2, config.batch, offset)
        closed_loop(server.url, server.write_key, warm, events=2 * config.batch, concurrency=1)
        probe: dict[str, float] = {}
        errors = 0
        for level in config.concurrency:
            payloads, offset = _payloads(pool, config.probe_batches, config.batch, offset)
            result = closed_loop(
                server.url, server.write_key, payloads, events=len(payloads) * config.batch, concurrency=level
            )
            probe[str(level)] = round(result.events_per_second, 1)
            errors += result.errors
        best = int(max(probe, key=lambda k: probe[k]))
        # Round after round: the peak as the server is now, then an open loop at 70 % of it. The
        # database grows with every round, and each load is a share of the peak of its own state.
        rates, peaks, loads = [], [], []
        for _ in range(config.runs):
            payloads, offset = _payloads(pool, config.http_batches, config.batch, offset)
            result = closed_loop(
                server.url, server.write_key, payloads, events=len(payloads) * config.batch, concurrency=best
            )
            rates.append(result.events_per_second)
            errors += result.errors
            peaks.append(result.events_per_second / config.batch)
            rate = LOAD_SHARE * peaks[-1]
            payloads, offset = _payloads(
                pool, max(1, math.ceil(rate * config.load_seconds)), config.batch, offset
            )
            loads.append(open_loop(server.url, server.write_key, payloads, rate=rate))
    return {
        "http": {
            "events_per_second": summary(rates),
            "concurrency": best,
            "probe_events_per_second": probe,
            "batches_per_run": config.http_batches,
            "errors": errors,
        },
        "latency_at_70pct": _latency(loads, peaks=peaks),
    }


def _latency(loads: list[OpenLoop], *, peaks: list[float]) -> dict[str, Any]:
    """Each open-loop run's percentiles, and their medians: the figures, as every other one here."""
    runs = [
        {
            "peak_batches_per_second": round(peak, 2),
            "rate_batches_per_second": round(load.rate, 2),
            "batches": len(load.latencies_ms),
            "seconds": round(load.seconds, 2),
            "errors": load.errors,
            **{f"p{q}_ms": round(percentile(load.latencies_ms, q), 2) for q in (50, 90, 99)},
            "max_ms": round(max(load.latencies_ms), 2),
        }
        for peak, load in zip(peaks, loads, strict=True)
    ]
    pooled = [latency for load in loads for latency in load.latencies_ms]
    return {
        "peak_batches_per_second": round(percentile(peaks, 50), 2),
        "rate_batches_per_second": round(percentile([load.rate for load in loads], 50), 2),
        "batches": len(pooled),
        "errors": sum(run["errors"] for run in runs),
        **{f"p{q}_ms": round(percentile([run[f"p{q}_ms"] for run in runs], 50), 2) for q in (50, 90, 99)},
        "p99_ms_per_run": [run["p99_ms"] for run in runs],
        "p99_ms_pooled": round(percentile(pooled, 99), 2),
        "max_ms": round(max(pooled), 2),
        "runs": runs,
    }


# -- the section --------------------------------------------------------------------------------


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def run(config: Config = Config(), *, log: Any = print) -> tuple[dict[str, Any], list[Row]]:
    """Measure; return the results section and the table's rows."""
    at = datetime.now(UTC)
    pool = demo_messages(config.events, now=at, customers=config.customers)
    # The collector as a server process runs it (`tactful serve` settles it after start-up), for the
    # floor and in-process runs alike.
    settle_garbage_collector()
    floor: list[float] = []
    in_process: list[float] = []
    stored: list[int] = []
    with tempfile.TemporaryDirectory(prefix="tactful-bench-") as tmp:
        directory = Path(tmp)
        for index in range(config.runs):
            log(f"ingest: run {index + 1}/{config.runs} (floor, in process)")
            rate, rows = in_process_run(pool, directory, batch=config.batch, at=at)
            in_process.append(rate)
            stored.append(len(rows))
            floor.append(floor_run(rows, directory, batch=config.batch))
        log("ingest: HTTP (peak, then latency at 70 % of it)")
        http = http_runs(pool, directory, config)
    floor_median, in_median = percentile(floor, 50), percentile(in_process, 50)
    # Each run's two figures were taken back to back, on the machine as it was at that moment: their
    # ratio cancels the drift between runs that a ratio of the two medians keeps.
    paired = [i / f for i, f in zip(in_process, floor, strict=True)]
    http_median = float(http["http"]["events_per_second"]["median"])
    p99 = float(http["latency_at_70pct"]["p99_ms"])
    targets = {
        "in_process_over_floor": Target(
            "in_process / floor", round(percentile(paired, 50), 3), ">=", TARGET_IN_PROCESS_OVER_FLOOR
        ),
        "http_over_in_process": Target(
            "http / in_process", _ratio(http_median, in_median), ">=", TARGET_HTTP_OVER_IN_PROCESS
        ),
        "p99_ms_at_70pct": Target("p99 at 70 % load", p99, "<", TARGET_P99_MS, " ms"),
    }
    section: dict[str, Any] = {
        "config": asdict(config),
        "notes": {
            "floor": "rows inserted per second: the rows ingestion stored, 100 a transaction",
            "in_process": "messages received per second by collect.service.ingest, 100 a transaction",
            "http": "messages received per second on POST /v1/batch (100 a request) at the best concurrency",
            "latency_at_70pct": "rounds of a closed-loop run (the peak as the server is then) and an open "
            "loop at 70 % of it; latency from each request's scheduled start; p50/p90/p99 are medians of "
            "the rounds' own percentiles",
            "gc": "floor and in-process runs use the collector settings of a server process",
            "in_process_over_floor": "median of each run's ratio (floor and in-process back to back)",
        },
        "floor": {
            "events_per_second": summary(floor),
            "rows_per_run": stored,
        },
        "in_process": {"events_per_second": summary(in_process), "events_per_run": len(pool)},
        **http,
        "ratios": {name: targets[name].value for name in ("in_process_over_floor", "http_over_in_process")},
        "in_process_over_floor_per_run": [round(r, 3) for r in paired],
        "in_process_over_floor_of_medians": _ratio(in_median, floor_median),
        "targets": {name: target.as_json() for name, target in targets.items()},
    }
    return section, _rows(section, targets)


def _spread(figures: dict[str, Any], unit: str = "") -> str:
    return f"p10 {figures['p10']:,.0f}{unit} · p90 {figures['p90']:,.0f}{unit}"


def _rows(section: dict[str, Any], targets: dict[str, Target]) -> list[Row]:
    latency = section["latency_at_70pct"]
    floor, inproc, http = (section[k]["events_per_second"] for k in ("floor", "in_process", "http"))
    ratio = targets["in_process_over_floor"]
    http_ratio = targets["http_over_in_process"]
    return [
        Row("floor: bare inserts (rows/s)", f"{floor['median']:,.0f}", _spread(floor)),
        Row("in process: ingest (events/s)", f"{inproc['median']:,.0f}", _spread(inproc)),
        Row(
            f"http: POST /v1/batch, {section['http']['concurrency']} clients (events/s)",
            f"{http['median']:,.0f}",
            _spread(http),
        ),
        Row("in process / floor", f"{ratio.value}", "", ratio),
        Row("http / in process", f"{http_ratio.value}", "", http_ratio),
        Row(
            f"batch latency at 70 % load ({latency['rate_batches_per_second']}/s): p50",
            f"{latency['p50_ms']} ms",
            f"{latency['batches']} batches in {len(latency['runs'])} runs",
        ),
        Row(
            "batch latency at 70 % load: p99",
            f"{latency['p99_ms']} ms",
            "runs " + " · ".join(f"{p:g}" for p in latency["p99_ms_per_run"]),
            targets["p99_ms_at_70pct"],
        ),
    ]
