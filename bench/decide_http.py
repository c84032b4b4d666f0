"""`POST /v1/decide` over HTTP against a trivial FastAPI endpoint, each served by one uvicorn process on
one core, loaded from the other core by the same client.

    fresh SQLite files ── migrate, the demo's placements (seed_placements, as `tactful demo`), a server key
    tactful serve (pinned to core 0) ◀── the subjects, through the API: /v1/batch identify, PUT /v1/consent
    python -m bench.trivial (pinned to core 0)
    this process (pinned to core 1): aiohttp keep-alive clients
        sweep     closed loop at each concurrency, both servers: the best concurrency of each
        runs      closed loop at that concurrency, tactful and trivial alternating first: peaks, ratio
        latency   after each tactful peak, an open loop at 70 % of it: p50/p99 from each scheduled start

The subjects, a fixed mix asking for the demo's three placements (home_hero, greeting, picks):

    stranger   40 %  anonymous ids never seen: nothing stored, the Allowance of nobody      → 1:all
    segments   30 %  anonymous ids that granted analytics and personalization.segments, in
                     Sweden on a phone: home_hero's sweden_mobile banner                     → 1:many
    individual 30 %  user ids with a first name (identify) that granted every purpose, on the
                     outdoor category's page: the greeting by name, the trail banner          → 1:1

Every request reads its subject afresh (identities, the consent ledger folded, the atoms): the server
keeps no cache of subject state (DESIGN invariant 3), and decision logging is on (the logbook writes
its groups after the answers, as in production). Before the clock starts each subject decides twice:
the sweden_mobile audience reads the request, so it serves once k subjects matched it in shadow, and
the levels each group reached are recorded beside the figures. The client's CPU time per request is
measured, so that a saturated client would show instead of passing for the server's limit, and so is
each server's (every thread, from /proc): trivial / tactful CPU per request is the ratio of peaks each
would reach alone on an idle core, a figure a shared machine disturbs less than throughput.

`python -m bench.decide_http [--quick] [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.decide_load import Closed, Opened, Served, closed_loop, on_cpu, open_loop, serving
from bench.report import RESULTS, Row, Target, merge, show
from bench.stats import percentile, summary
from bench.stores import SECRET, Stores, fresh_stores
from tactful.api.context import AppContext
from tactful.catalog.loader import load_catalog
from tactful.config import Settings
from tactful.demo.placements import PLACEMENTS, seed_placements
from tactful.keys import service as keys_service
from tactful.keys.schemas import Scope
from tactful.main import default_catalog_path
from tactful.types import Level, utcnow

SECTION = "decide_http"
TITLE = "HTTP POST /v1/decide (SQLite, decision log on) against a trivial FastAPI endpoint"
TARGET_RATIO = 0.40
TARGET_P99_MS = 10.0
LOAD_SHARE = 0.7
SERVER_CPU = 0
CLIENT_CPU = 1
ASKED = [p.key for p in PLACEMENTS]

PYRAMID = (
    "personalization.segments",
    "personalization.behavioral",
    "personalization.predictive",
    "personalization.individual",
)
SWEDEN_MOBILE: dict[str, Any] = {
    "locale": "sv-SE",
    "location": {"country": "SE"},
    "device": {"type": "mobile"},
}
OUTDOOR: dict[str, Any] = {
    "locale": "en-GB",
    "device": {"type": "desktop"},
    "page": {"path": "/c/outdoor/tents"},
}
ELSEWHERE: dict[str, Any] = {"locale": "de-DE", "location": {"country": "DE"}, "device": {"type": "desktop"}}


@dataclass(frozen=True)
class Config:
    runs: int = 5
    subjects: int = 200
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    sweep_seconds: float = 3.0
    run_seconds: float = 10.0
    load_seconds: float = 15.0
    mix: tuple[tuple[str, float], ...] = (("stranger", 0.4), ("segments", 0.3), ("individual", 0.3))


QUICK = Config(runs=2, subjects=170, concurrency=(1, 4), sweep_seconds=0.5, run_seconds=1.0, load_seconds=1.0)


def tactful_env(stores: Stores) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TACTFUL_")}
    return env | {
        "TACTFUL_DATABASE_URL": stores.url,
        "TACTFUL_KEYSTORE_URL": stores.keystore_url,
        "TACTFUL_SECRET_KEY": SECRET,
        "TACTFUL_LOG_LEVEL": "WARNING",
        # One client address at peak: the limiter runs (its cost is in the figures), its windows
        # far above this load.
        "TACTFUL_RATE_LIMITS__PER_KEY": "100000000",
        "TACTFUL_RATE_LIMITS__PER_KEY_AND_ADDRESS": "100000000",
    }


def prepare(directory: Path) -> tuple[Stores, str]:
    """Fresh migrated files with the demo's placements published; a server key."""
    stores = fresh_stores(directory)
    db, keystore = stores.open()
    try:
        context = AppContext(
            settings=Settings(), db=db, keystore=keystore, catalog=load_catalog(default_catalog_path())
        )
        seed_placements(context, catalog=context.catalog, now=utcnow())
        with db.session() as session:
            _, token = keys_service.create_key(
                session, keystore=keystore, name="benchmark", scope=Scope.SERVER, at=utcnow(), actor="bench"
            )
        return stores, token
    finally:
        db.dispose()
        keystore.dispose()


# -- the subjects ----------------------------------------------------------------------------------


def people(config: Config, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """(group, decide body) for each subject, in a shuffled order fixed by `rng`."""
    found: list[tuple[str, dict[str, Any]]] = []
    for group, share in config.mix:
        for _ in range(round(config.subjects * share)):
            tag = uuid.UUID(int=rng.getrandbits(128)).hex
            if group == "individual":
                body = {"user_id": f"bench-user-{tag}", "context": OUTDOOR}
            else:
                context = SWEDEN_MOBILE if group == "segments" else ELSEWHERE
                body = {"anonymous_id": f"bench-anon-{tag}", "context": context}
            found.append((group, {**body, "placements": ASKED}))
    rng.shuffle(found)
    return found


def seed(url: str, token: str, population: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Store the consented subjects through the API, as a site's backend would."""
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)
    names = ("Astrid", "Björn", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas")
    with httpx.Client(base_url=url, headers=headers, timeout=30.0) as client:
        identifies = [
            {"type": "identify", "userId": body["user_id"], "traits": {"first_name": rng.choice(names)}}
            for group, body in population
            if group == "individual"
        ]
        for start in range(0, len(identifies), 100):
            answer = client.post("/v1/batch", json={"batch": identifies[start : start + 100]})
            answer.raise_for_status()
        for group, body in population:
            if group == "stranger":
                continue
            purposes = dict.fromkeys(PYRAMID if group == "individual" else PYRAMID[:1], True)
            ids = {k: body[k] for k in ("user_id", "anonymous_id") if k in body}
            consent = ids | {"purposes": {"analytics": True, **purposes}, "source": "api"}
            client.put("/v1/consent", json=consent).raise_for_status()


def levels_reached(
    url: str, token: str, population: Sequence[tuple[str, dict[str, Any]]]
) -> dict[str, dict[str, int]]:
    """Per group, how many subjects reached each level (the highest among their placements)."""
    order = list(Level)
    reached: dict[str, Counter[str]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as client:
        for group, body in population:
            answer = client.post("/v1/decide", json=body)
            answer.raise_for_status()
            top = max((Level(d["level"]) for d in answer.json()["decisions"]), key=order.index)
            reached.setdefault(group, Counter())[str(top)] += 1
    return {group: dict(sorted(counts.items())) for group, counts in sorted(reached.items())}


# -- the run ---------------------------------------------------------------------------------------


def _cpus() -> tuple[int | None, int | None]:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None  # one core: nothing to pin apart (said in the results)
    return available[SERVER_CPU], available[CLIENT_CPU]


def run(config: Config = Config(), *, log: Any = print) -> dict[str, Any]:
    """Measure; return the section for the results file."""
    server_cpu, client_cpu = _cpus()
    rng = random.Random(20261206)
    population = people(config, rng)
    bodies = [json.dumps(body).encode() for _, body in population]
    with tempfile.TemporaryDirectory(prefix="tactful-bench-http-") as tmp:
        directory = Path(tmp)
        stores, token = prepare(directory)
        tactful_command = [
            sys.executable,
            "-m",
            "tactful",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ]
        trivial_command = [sys.executable, "-m", "bench.trivial", "--port", "{port}"]
        with (
            serving(tactful_command, tactful_env(stores), directory / "tactful.log", cpu=server_cpu) as ours,
            serving(
                trivial_command, tactful_env(stores), directory / "trivial.log", cpu=server_cpu
            ) as theirs,
        ):
            log("decide_http: seeding the subjects through the API")
            seed(ours.url, token, population)
            levels_reached(ours.url, token, population)  # the shadow audience meets its k
            time.sleep(1.5)  # what serves is read again at most a second later
            reached = levels_reached(ours.url, token, population)
            with on_cpu(client_cpu):
                section = _measure(config, ours, theirs, token, bodies, log)
    section["levels_reached"] = reached
    section["config"] = asdict(config)
    section["pinned"] = {"server_cpu": server_cpu, "client_cpu": client_cpu}
    section["notes"] = {
        "mix": "strangers 40 % (anonymous, never seen: 1:all), segments 30 % (anonymous ids that granted "
        "analytics and personalization.segments, Sweden on a phone: 1:many), individual 30 % (user ids "
        "with a first name that granted every purpose, outdoor pages: 1:1); three placements a request",
        "server": "tactful serve (create_app under uvicorn), one process on SQLite (WAL, synchronous=FULL), "
        "decision log on; no cache of subject state: each request reads its subject",
        "trivial": "bench.trivial: a synchronous FastAPI handler with a pydantic body and response model, "
        "served by uvicorn with the same options",
        "client": "aiohttp keep-alive connections from this process, pinned to the other core",
        "ratio": "median of each run's tactful / trivial peak (the two measured back to back)",
        "cpu_ratio": "median of each run's trivial / tactful server CPU time per request (all threads): the "
        "ratio of peaks each would reach alone on an idle core, steadier on a shared machine",
        "latency": "after each tactful peak, an open loop at 70 % of it; from each scheduled start; p50/p99 "
        "are medians of the runs' own percentiles",
    }
    section["targets"] = {name: target.as_json() for name, target in targets(section).items()}
    if config == QUICK:
        section["quick"] = True
    return section


def _best(
    server: Served, token: str, bodies: Sequence[bytes], config: Config
) -> tuple[int, dict[str, float]]:
    probe: dict[str, float] = {}
    for level in config.concurrency:
        result = closed_loop(server, token, bodies, concurrency=level, seconds=config.sweep_seconds)
        probe[str(level)] = round(result.per_second, 1)
    return int(max(probe, key=lambda k: probe[k])), probe


def _measure(
    config: Config, ours: Served, theirs: Served, token: str, bodies: Sequence[bytes], log: Any
) -> dict[str, Any]:
    log("decide_http: concurrency sweep (closed loop)")
    best_ours, sweep_ours = _best(ours, token, bodies, config)
    best_theirs, sweep_theirs = _best(theirs, token, bodies, config)
    peaks: dict[str, list[Closed]] = {"tactful": [], "trivial": []}
    loads: list[Opened] = []
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for index in range(max(config.runs, 1)):
        log(f"decide_http: run {index + 1}/{config.runs} (peaks, then 70 % of tactful's)")
        sides = [("tactful", ours, best_ours), ("trivial", theirs, best_theirs)]
        figures: dict[str, Closed] = {}
        for name, server, level in sides if index % 2 == 0 else sides[::-1]:
            figures[name] = closed_loop(server, token, bodies, concurrency=level, seconds=config.run_seconds)
            peaks[name].append(figures[name])
        ratios.append(figures["tactful"].per_second / figures["trivial"].per_second)
        costs = [_cpu_per_request(figures[name]) for name in ("trivial", "tactful")]
        if costs[0] is not None and costs[1]:
            cpu_ratios.append(costs[0] / costs[1])
        rate = LOAD_SHARE * figures["tactful"].per_second
        loads.append(open_loop(ours, token, bodies, rate=rate, seconds=config.load_seconds))
    return {
        "tactful": _side(peaks["tactful"], best_ours, sweep_ours),
        "trivial": _side(peaks["trivial"], best_theirs, sweep_theirs),
        "ratio": summary(ratios, digits=3),
        # What the ratio would be with each server alone on its core, CPU-bound.
        "cpu_ratio": summary(cpu_ratios, digits=3) if cpu_ratios else None,
        "latency_at_70pct": _latency(loads),
        "subjects": len(bodies),
        "placements": ASKED,
    }


def _cpu_per_request(run: Closed) -> float | None:
    return None if run.server_cpu_seconds is None else run.server_cpu_seconds / run.requests


def _side(runs: list[Closed], concurrency: int, sweep: dict[str, float]) -> dict[str, Any]:
    costs = [c for c in map(_cpu_per_request, runs) if c is not None]
    busy = [r.server_cpu_seconds / r.seconds for r in runs if r.server_cpu_seconds is not None]
    return {
        "requests_per_second": summary([r.per_second for r in runs]),
        "concurrency": concurrency,
        "sweep_requests_per_second": sweep,
        "errors": sum(r.errors for r in runs),
        # The client's own cost: a core near 100 % busy would make the client the limit.
        "client_cpu_us_per_request": summary([r.client_cpu_seconds / r.requests * 1e6 for r in runs]),
        "client_core_busy": summary([r.client_cpu_seconds / r.seconds for r in runs], digits=3),
        # The server's own: CPU per request, and how busy it kept its core (below 1, it waited).
        "server_cpu_us_per_request": summary([c * 1e6 for c in costs]) if costs else None,
        "server_core_busy": summary(busy, digits=3) if busy else None,
    }


def _latency(loads: list[Opened]) -> dict[str, Any]:
    runs = [
        {
            "rate_per_second": round(load.rate, 1),
            "requests": len(load.latencies_ms),
            "errors": load.errors,
            **{f"p{q}_ms": round(percentile(load.latencies_ms, q), 2) for q in (50, 90, 99)},
            "max_ms": round(max(load.latencies_ms), 2),
        }
        for load in loads
    ]
    return {
        "rate_per_second": round(percentile([load.rate for load in loads], 50), 1),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        **{f"p{q}_ms": round(percentile([r[f"p{q}_ms"] for r in runs], 50), 2) for q in (50, 90, 99)},
        "p99_ms_per_run": [r["p99_ms"] for r in runs],
        "runs": runs,
    }


def targets(section: dict[str, Any]) -> dict[str, Target]:
    return {
        "ratio": Target("tactful / trivial", section["ratio"]["median"], ">=", TARGET_RATIO),
        "p99_ms_at_70pct": Target(
            "p99 at 70 % load", section["latency_at_70pct"]["p99_ms"], "<", TARGET_P99_MS, " ms"
        ),
    }


def rows(section: dict[str, Any]) -> list[Row]:
    verdicts = targets(section)
    ours, theirs, latency = section["tactful"], section["trivial"], section["latency_at_70pct"]

    def peak(name: str, side: dict[str, Any]) -> Row:
        figures = side["requests_per_second"]
        return Row(
            f"{name}, {side['concurrency']} clients (requests/s)",
            f"{figures['median']:,.0f}",
            f"{figures['min']:,.0f}-{figures['max']:,.0f}",
        )

    return [
        peak("tactful: POST /v1/decide, 3 placements", ours),
        peak("trivial FastAPI endpoint", theirs),
        Row("tactful / trivial (median of runs)", f"{verdicts['ratio'].value}", "", verdicts["ratio"]),
        Row(
            f"latency at 70 % of peak ({latency['rate_per_second']}/s): p50",
            f"{latency['p50_ms']} ms",
            f"{latency['requests']} requests",
        ),
        Row(
            "latency at 70 % of peak: p99",
            f"{latency['p99_ms']} ms",
            "runs " + " · ".join(f"{p:g}" for p in latency["p99_ms_per_run"]),
            verdicts["p99_ms_at_70pct"],
        ),
        Row(
            "server CPU per request (tactful · trivial)",
            _pair(ours, theirs, "server_cpu_us_per_request", " µs"),
            _pair(ours, theirs, "server_core_busy", "", "core busy "),
        ),
        Row(
            "trivial / tactful server CPU per request",
            "n/a" if section["cpu_ratio"] is None else f"{section['cpu_ratio']['median']}",
            ""
            if section["cpu_ratio"] is None
            else f"{section['cpu_ratio']['min']}-{section['cpu_ratio']['max']}",
        ),
        Row(
            "client CPU per request (tactful · trivial)",
            f"{ours['client_cpu_us_per_request']['median']:.0f} · "
            f"{theirs['client_cpu_us_per_request']['median']:.0f} µs",
            f"client core busy {ours['client_core_busy']['median']:.0%} · "
            f"{theirs['client_core_busy']['median']:.0%}",
        ),
    ]


def _pair(ours: dict[str, Any], theirs: dict[str, Any], key: str, unit: str, prefix: str = "") -> str:
    figures = [side[key] for side in (ours, theirs)]
    if any(f is None for f in figures):
        return "n/a"
    return prefix + " · ".join(f"{f['median']:g}" for f in figures) + unit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decide_http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny configuration, to check that it runs")
    parser.add_argument("--runs", type=int, default=Config().runs)
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file (merged by section)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config(runs=args.runs)
    section = run(config)
    merge(SECTION, section, path=args.output)
    show(TITLE, rows(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
