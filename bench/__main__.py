"""`python -m bench [--quick] [--output PATH]`: run the benchmarks, print the table, merge the results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from bench import decide, decide_http, decide_path, gate, ingest, report, rights_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny configuration, to check that it runs")
    parser.add_argument(
        "--output", type=Path, default=report.RESULTS, help="results file (merged by section)"
    )
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    config = ingest.QUICK if args.quick else ingest.Config()
    section, rows = ingest.run(config, log=lambda text: console.print(f"[dim]{text}[/]"))
    if args.quick:
        section["quick"] = True
    report.merge(ingest.SECTION, section, path=args.output)
    out = Console()
    if not out.is_terminal:
        out = Console(width=120)  # a log file or a pipe: wide enough for one line per row
    out.print(report.table("Ingestion (SQLite, durable)", rows))
    console.print("[dim]gate: timing the policy gate and the consent fold[/]")
    gate_section = gate.run(runs=5, quick=args.quick)
    report.merge(gate.SECTION, gate_section, path=args.output)
    out.print(report.table("Policy gate and consent fold", gate.rows(gate_section)))
    console.print("[dim]decide: conditions and assignment against GrowthBook, interleaved pairs[/]")
    decide_section = decide.run(pairs=5, quick=args.quick)
    report.merge(decide.SECTION, decide_section, path=args.output)
    out.print(report.table(decide.TITLE, decide.rows(decide_section)))
    console.print("[dim]decide_path: the whole decision path against GrowthBook, interleaved pairs[/]")
    path_section = decide_path.run(pairs=5, quick=args.quick)
    report.merge(decide_path.SECTION, path_section, path=args.output)
    out.print(report.table(decide_path.TITLE, decide_path.rows(path_section)))
    console.print("[dim]decide_http: POST /v1/decide against a trivial endpoint, one core each[/]")
    http_config = decide_http.QUICK if args.quick else decide_http.Config()
    http_section = decide_http.run(http_config, log=lambda text: console.print(f"[dim]{text}[/]"))
    report.merge(decide_http.SECTION, http_section, path=args.output)
    out.print(report.table(decide_http.TITLE, decide_http.rows(http_section)))
    console.print("[dim]rights_scale: erase and export one subject among 100,000[/]")
    size = rights_scale.QUICK if args.quick else rights_scale.FULL
    rights_section = rights_scale.run(size, log=lambda text: console.print(f"[dim]{text}[/]"))
    report.merge(rights_scale.SECTION, rights_section, path=args.output)
    out.print(report.table(rights_scale.TITLE, rights_scale.rows(rights_section)))
    console.print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
