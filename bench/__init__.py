"""Benchmarks, run with `python -m bench` (or `make bench`) from the repository root.

    python -m bench ──▶ ingest.run()  floor · in_process · http (+ latency at 70 % of peak)
                    ──▶ gate.run()    the policy gate per Allowance, the consent fold
                    ──▶ decide.run()  conditions + assignment against GrowthBook, interleaved pairs
                    ──▶ decide_path.run()  gate, view, walk, render, explain, entries against GrowthBook
                    ──▶ decide_http.run()  POST /v1/decide against a trivial endpoint, a core each
                    ──▶ rights_scale.run() erase and export one subject of 100,000 (1,000,000 events)
                            │
                            ▼
                     report.merge()  ──▶  bench/results/latest.json  {"sections": {...}, "machine", "at"}
                     report.table()  ──▶  a Rich table with PASS/MISS against each target

Each benchmark module owns one section of the results file; later benchmarks add their section
without touching the others; `python -m bench.decide_path`, `bench.decide_http` and
`bench.rights_scale` (each with `--quick`) run one alone and merge its section. `python -m
bench.phases` writes nothing: it shows where an in-process batch's time goes, phase by phase, to
find what to change.
"""
