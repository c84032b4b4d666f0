"""The policy gate benchmark: time per Allowance for a 60-atom catalog, and time to fold a ledger.

    gate_warm   Gate.evaluate() (the gate compiled once) from an already folded state, the same
                state object again (its reading at a moment after its last change is kept on it)
    gate_cold   Gate.evaluate() of a new state object before every call (made outside the timing, equal
                to the folded one): a subject never seen before, nothing cached that depends on it
    view        build_view() of a 30-value profile from an Allowance
    fold_20     fold() of a 20-event ledger

Each call is timed on its own with `time.perf_counter_ns`; a run gives the p50 and p99 of its calls,
and every figure is the median of the runs, with the spread. `python -m bench.gate [--quick]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from bench.report import Row, Target, merge, show
from bench.stats import percentile, summary
from tactful.catalog.loader import parse_catalog
from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.policy import (
    CCPA,
    GDPR,
    ConsentSource,
    ConsentState,
    ProfileSnapshot,
    RequestSignals,
    SubjectFacts,
    build_view,
    compile_gate,
)
from tactful.types import Purpose

SECTION = "gate"
TARGET_P50_US = 10.0
TARGET_P99_US = 50.0
AT = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)

# (prefix, category, purposes, extra) cycled to 60 atoms: every level, special and precise ones,
# device identifiers and computed atoms.
_KINDS: tuple[tuple[str, str, list[str], dict[str, Any]], ...] = (
    ("context", "user.location.imprecise", ["essential", "analytics", "personalization.segments"], {}),
    ("context", "user.device", ["analytics", "personalization.segments"], {"retention": "request"}),
    (
        "context",
        "user.behavior.browsing",
        ["analytics", "personalization.behavioral"],
        {"device_identifier": True},
    ),
    ("context", "user.location.precise", ["personalization.individual"], {"retention": "request"}),
    ("traits", "user.demographic.age_range", ["personalization.segments"], {}),
    ("traits", "user.name", ["personalization.individual", "marketing.email"], {"identifier": True}),
    ("traits", "user.sensitive.health", ["personalization.individual"], {"explicit_consent": True}),
    ("traits", "user.workplace", ["personalization.predictive"], {}),
    ("events", "user.behavior.browsing", ["analytics", "personalization.behavioral"], {}),
    ("events", "user.behavior.purchase", ["essential", "analytics", "personalization.individual"], {}),
)


def catalog_60() -> Catalog:
    atoms: dict[str, dict[str, Any]] = {}
    for i in range(50):
        prefix, category, purposes, extra = _KINDS[i % len(_KINDS)]
        atoms[f"{prefix}.a{i:02d}"] = {
            "category": category,
            "purposes": purposes,
            "retention": "30d",
            **extra,
        }
    for i in range(10):
        inputs = [f"events.a{j:02d}" for j in (8 + 10 * (i % 5), 9 + 10 * ((i + 1) % 5))]
        atoms[f"computed.c{i:02d}"] = {"inputs": inputs, "purposes": ["personalization.predictive"]}
    document = {
        "controller": {"name": "Bench", "contact": "privacy@bench.example.com", "establishment": "DE"},
        "data_subjects": [{"name": "visitors"}],
        "atoms": atoms,
    }
    catalog, problems = parse_catalog(yaml.safe_dump(document, sort_keys=False), file="bench")
    if catalog is None:
        raise RuntimeError("; ".join(str(p) for p in problems))
    assert len(catalog.atoms) == 60
    return catalog


def ledger_20() -> list[ConsentEvent]:
    """Twenty events as a real subject collects them: a banner, a TC string, a withdrawal, GPC."""
    t0 = AT - timedelta(days=30)
    pyramid = [p for p in Purpose if p.value.startswith("personalization.")]
    events = [
        ConsentEvent(ConsentAction.GRANTED, t0 + timedelta(minutes=i), ConsentSource.BANNER, purpose=p)
        for i, p in enumerate([Purpose.ANALYTICS, *pyramid, Purpose.MARKETING_EMAIL])
    ]
    events += [
        ConsentEvent(ConsentAction.GRANTED, t0 + timedelta(days=1, minutes=i), ConsentSource.TCF, purpose=p)
        for i, p in enumerate([Purpose.ANALYTICS, *pyramid])
    ]
    events += [
        ConsentEvent(
            ConsentAction.GRANTED, t0 + timedelta(days=2), ConsentSource.API, explicit="user.sensitive.health"
        ),
        ConsentEvent(
            ConsentAction.GRANTED, t0 + timedelta(days=2), ConsentSource.TCF, explicit="special_feature_1"
        ),
        ConsentEvent(
            ConsentAction.WITHDRAWN,
            t0 + timedelta(days=3),
            ConsentSource.API,
            purpose=Purpose.MARKETING_EMAIL,
        ),
        ConsentEvent(
            ConsentAction.WITHDRAWN, t0 + timedelta(days=4), ConsentSource.GPC, purpose=Purpose.SALE_OR_SHARE
        ),
    ]
    events += [
        ConsentEvent(
            ConsentAction.GRANTED, t0 + timedelta(days=5, minutes=i), ConsentSource.BANNER, purpose=p
        )
        for i, p in enumerate(pyramid)
    ]
    events.append(
        ConsentEvent(
            ConsentAction.DENIED, t0 + timedelta(days=6), ConsentSource.API, purpose=Purpose.SALE_OR_SHARE
        )
    )
    assert len(events) == 20
    return events


def _samples(
    call: Callable[[], object], iterations: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Per-call times in microseconds (the collector is paused so that its pauses do not land on one call)."""
    clock = time.perf_counter_ns
    out: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(iterations):
            if before is not None:
                before()
            start = clock()
            call()
            out.append((clock() - start) / 1000)
    finally:
        gc.enable()
    return out


def _figure(runs: list[list[float]]) -> dict[str, Any]:
    p50 = [percentile(r, 50) for r in runs]
    p99 = [percentile(r, 99) for r in runs]
    return {
        "p50_us": round(percentile(p50, 50), 2),
        "p99_us": round(percentile(p99, 50), 2),
        "p50": summary(p50, digits=2),
        "p99": summary(p99, digits=2),
        "calls_per_run": len(runs[0]),
    }


def run(*, runs: int = 5, quick: bool = False) -> dict[str, Any]:
    """Measure; return the section for the results file."""
    iterations = 500 if quick else 20_000
    catalog = catalog_60()
    events = ledger_20()
    state = fold(events)
    regimes = (GDPR, CCPA)
    facts = SubjectFacts(age=34)
    signals = RequestSignals(gpc=False, country="DE")
    current = [state]
    compiled = compile_gate(catalog, regimes=regimes)

    def gate() -> object:
        return compiled.evaluate(consent=state, regimes=regimes, facts=facts, signals=signals, at=AT)

    unseen: list[ConsentState] = []

    def renew() -> None:
        # A state object never evaluated has no reading of its own yet: the gate starts from its
        # timelines. (They are made before the timed calls, so that making them does not stir
        # the processor's caches between two calls any more than emptying a memo did.)
        current[0] = unseen.pop()

    def cold_gate() -> object:
        return compiled.evaluate(consent=current[0], regimes=regimes, facts=facts, signals=signals, at=AT)

    allowance = compiled.evaluate(consent=state, regimes=regimes, facts=facts, signals=signals, at=AT)
    profile = ProfileSnapshot(values={name: i for i, name in enumerate(sorted(catalog.atoms)[:30])})

    warm, cold, view, folds = [], [], [], []
    for _ in range(max(runs, 1)):
        gate()
        warm.append(_samples(gate, iterations))
        unseen[:] = [dataclasses.replace(state) for _ in range(max(iterations // 10, 50))]
        cold.append(_samples(cold_gate, len(unseen), before=renew))
        view.append(_samples(lambda: build_view(allowance, profile), iterations))
        folds.append(_samples(lambda: fold(events), max(iterations // 10, 50)))
    section: dict[str, Any] = {
        "atoms": len(catalog.atoms),
        "ledger_events": len(events),
        "runs": max(runs, 1),
        "ceiling": allowance.ceiling.value,
        "gate_warm": _figure(warm),
        "gate_cold": _figure(cold),
        "view": _figure(view),
        "fold_20": _figure(folds),
    }
    targets = _targets(section)
    section["targets"] = {name: t.as_json() for name, t in targets.items()}
    if quick:
        section["quick"] = True
    return section


def _targets(section: dict[str, Any]) -> dict[str, Target]:
    # Both paths are held to the targets: the warm one is what a second decision from the same
    # state pays, the cold one what a subject with a consent state not seen before pays.
    found: dict[str, Target] = {}
    for key in ("gate_warm", "gate_cold"):
        figure = section[key]
        found[f"{key}_p50"] = Target(f"{key} p50", figure["p50_us"], "<", TARGET_P50_US, " µs")
        found[f"{key}_p99"] = Target(f"{key} p99", figure["p99_us"], "<", TARGET_P99_US, " µs")
    return found


def rows(section: dict[str, Any]) -> list[Row]:
    targets = _targets(section)
    out: list[Row] = []
    for key, label in (
        ("gate_warm", "gate, per Allowance (60 atoms)"),
        ("gate_cold", "gate, state never seen before"),
        ("view", "build_view, 30 values"),
        ("fold_20", "fold, 20-event ledger"),
    ):
        figure = section[key]
        spread = f"p50 {figure['p50']['min']}-{figure['p50']['max']} µs"
        out.append(
            Row(
                f"{label}: p50",
                f"{figure['p50_us']} µs",
                spread,
                targets.get(f"{key}_p50"),
            )
        )
        out.append(
            Row(
                f"{label}: p99",
                f"{figure['p99_us']} µs",
                "",
                targets.get(f"{key}_p99"),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    section = run(runs=args.runs, quick=args.quick)
    merge(SECTION, section)
    show("Policy gate and consent fold", rows(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
