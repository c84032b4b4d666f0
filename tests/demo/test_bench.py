"""`python -m bench --quick` runs end to end (server included) and writes every figure; the pieces it
is built from (percentiles, merging, verdicts) behave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import Target, merge
from bench.stats import percentile, summary

ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 10) == pytest.approx(1.4)
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_keeps_every_run() -> None:
    figures = summary([10.0, 30.0, 20.0])
    assert figures["median"] == 20.0
    assert figures["min"] == 10.0
    assert figures["max"] == 30.0
    assert figures["runs"] == [10.0, 30.0, 20.0]


def test_targets_give_verdicts_from_the_figures() -> None:
    assert Target("r", 0.31, ">=", 0.30).verdict == "PASS"
    assert Target("r", 0.29, ">=", 0.30).verdict == "MISS"
    assert Target("p99", 49.9, "<", 50).verdict == "PASS"
    assert Target("p99", 50.0, "<", 50).verdict == "MISS"
    assert Target("p99", None, "<", 50).verdict == "n/a"


def test_sections_merge_by_name(tmp_path: Path) -> None:
    path = tmp_path / "results" / "latest.json"
    merge("ingest", {"a": 1}, path=path)
    merge("decide", {"b": 2}, path=path)
    merge("ingest", {"a": 3}, path=path)
    document = json.loads(path.read_text())
    assert document["sections"] == {"ingest": {"a": 3}, "decide": {"b": 2}}
    assert {"machine", "at"} <= document.keys()


def test_a_damaged_results_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "latest.json"
    path.write_text("{not json")
    merge("ingest", {"a": 1}, path=path)
    assert json.loads(path.read_text())["sections"] == {"ingest": {"a": 1}}


@pytest.mark.slow
def test_quick_bench_writes_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    output.write_text(json.dumps({"sections": {"other": {"kept": True}}}))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(output.read_text())
    assert document["sections"]["other"] == {"kept": True}
    assert {"cpus", "python", "platform", "sqlite"} <= document["machine"].keys()
    ingest = document["sections"]["ingest"]
    for name in ("floor", "in_process", "http"):
        figures = ingest[name]["events_per_second"]
        assert {"median", "p10", "p90", "min", "max", "runs"} <= figures.keys()
        assert figures["median"] > 0
        assert len(figures["runs"]) == ingest["config"]["runs"]
    assert ingest["http"]["errors"] == 0
    latency = ingest["latency_at_70pct"]
    assert latency["errors"] == 0
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert len(latency["runs"]) == len(latency["p99_ms_per_run"]) == ingest["config"]["runs"]
    per_run = sorted(latency["p99_ms_per_run"])
    assert latency["p99_ms"] == per_run[len(per_run) // 2]  # the median of the runs' own p99s
    assert sum(run["batches"] for run in latency["runs"]) == latency["batches"]
    assert set(ingest["ratios"]) == {"in_process_over_floor", "http_over_in_process"}
    paired = ingest["in_process_over_floor_per_run"]
    assert len(paired) == ingest["config"]["runs"]
    assert min(paired) <= ingest["ratios"]["in_process_over_floor"] <= max(paired)
    assert set(ingest["targets"]) == {"in_process_over_floor", "http_over_in_process", "p99_ms_at_70pct"}
    for target in ingest["targets"].values():
        assert target["verdict"] in ("PASS", "MISS")
        assert target["passed"] == (target["verdict"] == "PASS")
    assert "in process / floor" in done.stdout
    decide = document["sections"]["decide"]
    assert decide["targets"]["ratio"]["verdict"] in ("PASS", "MISS")
    assert "tactful walk / growthbook" in done.stdout
    path = document["sections"]["decide_path"]
    assert path["targets"]["ratio"]["verdict"] in ("PASS", "MISS")
    assert "tactful path / growthbook" in done.stdout
    http = document["sections"]["decide_http"]
    assert http["quick"] is True
    assert {target["verdict"] for target in http["targets"].values()} <= {"PASS", "MISS"}
    assert "tactful / trivial" in done.stdout
    rights = document["sections"]["rights_scale"]
    assert rights["quick"] is True
    assert {"sqlite_erase_ms", "sqlite_export_ms"} <= rights["targets"].keys()
    assert "sqlite: erase one subject" in done.stdout
