"""The results file and the table: each benchmark adds its section, merged by name.

    bench/results/latest.json = {"sections": {"ingest": {...}, ...}, "machine": {...}, "at": "..."}

Targets are compared with the measured figures when the table is drawn; no figure is ever written
by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass(frozen=True)
class Target:
    """A figure, the bound it should meet, and whether it does."""

    name: str
    value: float | None
    op: str  # ">=", "<" or "<="
    bound: float
    unit: str = ""

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        if self.op == ">=":
            return self.value >= self.bound
        return self.value <= self.bound if self.op == "<=" else self.value < self.bound

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "MISS", None: "n/a"}[self.passed]

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "target": f"{self.op} {self.bound:g}{self.unit}",
            "passed": self.passed,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Row:
    label: str
    figure: str
    spread: str = ""
    target: Target | None = None


def figure_row(
    section: dict[str, Any], label: str, key: str, *, unit: str = " µs", target: Target | None = None
) -> Row:
    """A row of one summarised figure of `section`: its median, and its range as the spread."""
    figures = section[key]
    return Row(label, f"{figures['median']}{unit}", f"{figures['min']}-{figures['max']}{unit}", target)


def pairs_main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str | None,
    run: Callable[..., dict[str, Any]],
    section: str,
    title: str,
    rows: Callable[[dict[str, Any]], list[Row]],
) -> int:
    """The command line of a benchmark timed in interleaved pairs: `--quick`, `--pairs N`; the
    results merged into the results file and shown as a table."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args(argv)
    results = run(pairs=args.pairs, quick=args.quick)
    merge(section, results)
    show(title, rows(results))
    return 0


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "sqlite": sqlite3.sqlite_version,
    }


def merge(section: str, data: dict[str, Any], *, path: Path = RESULTS) -> dict[str, Any]:
    """Write `data` as `section` of the results file, keeping the other sections; return the whole file."""
    document: dict[str, Any] = {"sections": {}}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("sections"), dict):
                document = loaded
        except (OSError, json.JSONDecodeError):
            pass  # a damaged file is replaced, not merged
    document["sections"][section] = data
    document["machine"] = machine()
    document["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so that an interrupted run never leaves half a file.
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
    ) as tmp:
        json.dump(document, tmp, indent=2, sort_keys=True)
        tmp.write("\n")
    os.replace(tmp.name, path)
    return document


def table(title: str, rows: Sequence[Row]) -> Table:
    result = Table(title=title, title_justify="left")
    result.add_column("measure")
    result.add_column("median", justify="right")
    result.add_column("spread", justify="right")
    result.add_column("target", justify="right")
    result.add_column("", justify="center")
    colours = {"PASS": "green", "MISS": "red", "n/a": "yellow"}
    for row in rows:
        target = row.target
        verdict = "" if target is None else f"[{colours[target.verdict]}]{target.verdict}[/]"
        bound = "" if target is None else f"{target.op} {target.bound:g}{target.unit}"
        result.add_row(row.label, row.figure, row.spread, bound, verdict)
    return result


def show(title: str, rows: Sequence[Row], console: Console | None = None) -> None:
    (console or Console()).print(table(title, rows))
