"""The HTTP decision benchmark asks what it says it asks (the stated mix of subjects, valid requests
for the demo's placements), its figures are summarised as stated, and a quick run reaches the level
each group of the mix claims, through a real server."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench import decide_http, trivial
from bench.decide_load import Opened, process_cpu_seconds
from tactful.decide.schemas import DecideRequest
from tactful.demo.placements import PLACEMENTS

ROOT = Path(__file__).resolve().parents[2]


def test_the_mix_is_the_stated_shares_of_valid_requests_for_the_demo_placements() -> None:
    config = decide_http.Config(subjects=200)
    population = decide_http.people(config, random.Random(1))
    groups = Counter(group for group, _ in population)
    assert groups == {"stranger": 80, "segments": 60, "individual": 60}
    for group, body in population:
        request = DecideRequest.model_validate(body)  # what the route itself accepts
        assert request.placements == [p.key for p in PLACEMENTS]
        if group == "individual":
            assert request.user_id is not None
            assert request.anonymous_id is None
        else:
            assert request.user_id is None
            assert request.anonymous_id is not None
    assert len({json.dumps(body, sort_keys=True) for _, body in population}) == len(population)
    assert decide_http.people(config, random.Random(1)) == population  # fixed by its seed


def test_the_trivial_endpoint_answers_the_same_body_with_one_answer_per_placement() -> None:
    population = decide_http.people(decide_http.Config(subjects=10), random.Random(2))
    with TestClient(trivial.app) as client:
        for _, body in population:
            answer = client.post("/v1/decide", json=body)
            assert answer.status_code == 200
            assert [d["placement"] for d in answer.json()["decisions"]] == body["placements"]
        assert client.post("/v1/decide", json={"placements": []}).status_code == 422


def test_the_latency_figures_are_medians_of_each_runs_own_percentiles() -> None:
    loads = [
        Opened(rate=100.0, seconds=1.0, latencies_ms=tuple(float(v) for v in range(1, 101)), errors=0),
        Opened(rate=110.0, seconds=1.0, latencies_ms=tuple(float(v) for v in range(1, 201)), errors=1),
        Opened(rate=90.0, seconds=1.0, latencies_ms=(5.0,) * 50, errors=0),
    ]
    figures = decide_http._latency(loads)
    assert figures["p99_ms_per_run"] == [99.01, 198.01, 5.0]
    assert figures["p99_ms"] == 99.01
    assert figures["rate_per_second"] == 100.0
    assert (figures["requests"], figures["errors"]) == (350, 1)


def test_the_targets_are_judged_from_the_figures() -> None:
    section = {"ratio": {"median": 0.41}, "latency_at_70pct": {"p99_ms": 10.0}}
    verdicts = decide_http.targets(section)
    assert verdicts["ratio"].verdict == "PASS"
    assert verdicts["p99_ms_at_70pct"].verdict == "MISS"  # the bound is strict


def test_a_process_cpu_time_counts_what_it_spends() -> None:
    before = process_cpu_seconds(os.getpid())
    assert before is not None
    spent = time.process_time()
    while time.process_time() - spent < 0.2:
        sum(range(10_000))
    after = process_cpu_seconds(os.getpid())
    assert after is not None
    assert after - before >= 0.1  # clock ticks: coarser than process_time, never below half of it


@pytest.mark.slow
def test_a_quick_run_reaches_each_groups_level_without_errors(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.decide_http", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    section = json.loads(output.read_text())["sections"]["decide_http"]
    assert section["levels_reached"] == {
        "individual": {"1:1": 51},
        "segments": {"1:many": 51},
        "stranger": {"1:all": 68},
    }
    for side in ("tactful", "trivial"):
        assert section[side]["errors"] == 0
        assert section[side]["requests_per_second"]["median"] > 0
        assert section[side]["client_cpu_us_per_request"]["median"] > 0
        assert section[side]["server_cpu_us_per_request"]["median"] > 0
        assert 0 < section[side]["server_core_busy"]["median"] <= 1.05
    ratios = section["ratio"]
    assert ratios["min"] <= ratios["median"] <= ratios["max"]
    assert len(section["cpu_ratio"]["runs"]) == len(ratios["runs"])
    assert section["latency_at_70pct"]["errors"] == 0
    assert set(section["targets"]) == {"ratio", "p99_ms_at_70pct"}
    assert "tactful / trivial" in done.stdout
