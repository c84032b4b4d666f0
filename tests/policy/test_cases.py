"""The gate's specification: every case in tests/cases/gate.json, one test each.

A case's `flags` are ledger entries of the flags the fold does not carry (restriction, the limit on
sensitive data); they reach the gate's facts as the gatekeeper reads them (`consent.ledger.flags_at`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tactful.consent.fold import ConsentAction, ConsentEvent, fold, merge_states
from tactful.consent.ledger import flags_at
from tactful.consent.schemas import LedgerEntry, TargetKind
from tactful.policy import (
    AgePolicy,
    Allowance,
    Code,
    ConsentSource,
    ConsentState,
    Reason,
    RequestSignals,
    SubjectFacts,
    Verdict,
    evaluate,
)
from tactful.types import Level, Purpose
from tests.policy.builders import birthdate, catalog_from, event, regime, when

SPEC = json.loads((Path(__file__).parents[1] / "cases" / "gate.json").read_text(encoding="utf-8"))
DEFAULTS: Mapping[str, Any] = SPEC["defaults"]
SETS: Mapping[str, list[str]] = SPEC["sets"]
CATALOGS = {name: catalog_from(fragment) for name, fragment in SPEC["catalogs"].items()}


def expand(items: list[str]) -> set[str]:
    out: set[str] = set()
    for item in items:
        out |= expand(SETS[item]) if item.startswith("$") else {item}
    return out


def ledger(spec: Mapping[str, Any]) -> list[ConsentEvent]:
    events = [
        event(
            {"purpose": p, "action": "granted"},
            default_at=DEFAULTS["grant_at"],
            default_source=DEFAULTS["source"],
        )
        for p in sorted(expand(spec.get("granted", [])))
    ]
    events += [
        event(e, default_at=DEFAULTS["grant_at"], default_source=DEFAULTS["source"])
        for e in spec.get("ledger", [])
    ]
    return events


def state_of(case: Mapping[str, Any]) -> ConsentState:
    state = fold(ledger(case))
    if "merge_with" in case:
        state = merge_states(state, fold(ledger(case["merge_with"])))
    return state


def facts_of(spec: Mapping[str, Any]) -> SubjectFacts:
    values = dict(spec)
    values["birthdate"] = birthdate(values.get("birthdate"))
    if "age_range" in values:
        values["age_range"] = tuple(values["age_range"])
    return SubjectFacts(**values)


FLAG_KINDS = frozenset({TargetKind.RESTRICTION, TargetKind.LIMIT_SENSITIVE})


def flag_entries(specs: list[Mapping[str, Any]]) -> list[LedgerEntry]:
    entries = []
    for order, spec in enumerate(specs, start=1):
        kind = TargetKind(spec["flag"])
        assert kind in FLAG_KINDS, f"`flags` holds {sorted(FLAG_KINDS)}; other targets go in `ledger`"
        source = ConsentSource(spec.get("source", DEFAULTS["source"]))
        entries.append(
            LedgerEntry(
                id=uuid.UUID(int=order), sequence=int(spec.get("sequence", order)),
                at=when(spec.get("at", DEFAULTS["grant_at"])), kind=kind, target=None,
                action=ConsentAction(spec["action"]), source=source, notice_version=None, method=None,
                proof={},
            )
        )  # fmt: skip
    return entries


def with_flags(facts: SubjectFacts, case: Mapping[str, Any], at: datetime) -> SubjectFacts:
    """The case's facts with its stored flags in force at `at` (either source sets a flag)."""
    if "flags" not in case:
        return facts
    stored = flags_at(flag_entries(case["flags"]), at)
    return replace(
        facts,
        restriction=facts.restriction or stored.restriction,
        limit_sensitive=facts.limit_sensitive or stored.limit_sensitive,
    )


def run(case: Mapping[str, Any]) -> tuple[Allowance, ConsentState]:
    state = state_of(case)
    at = when(case.get("at", DEFAULTS["at"]))
    allowance = evaluate(
        catalog=CATALOGS[case.get("catalog", DEFAULTS["catalog"])],
        consent=state,
        regimes=[regime(r) for r in case.get("regimes", DEFAULTS["regimes"])],
        facts=with_flags(facts_of(case.get("facts", {})), case, at),
        signals=RequestSignals(**case.get("signals", {})),
        at=at,
        age_policy=AgePolicy(**case.get("age_policy", {})),
    )
    return allowance, state


def coded(reason: Reason | Verdict | None) -> dict[str, Any] | None:
    """A reason as the cases write it: its code and parameters."""
    return None if reason is None else {"code": str(reason.code), "params": dict(reason.params)}


def check(case: Mapping[str, Any], allowance: Allowance, state: ConsentState) -> None:
    expect = case["expect"]
    at = when(case.get("at", DEFAULTS["at"]))
    if "level" in expect:
        assert allowance.ceiling == Level(expect["level"])
    for key, attr in (("decide", "decide_atoms"), ("learn", "learn_atoms"), ("request_only", "request_only")):
        if key in expect:
            assert set(getattr(allowance, attr)) == expand(expect[key]), key
    for key in ("may_learn", "minor"):
        if key in expect:
            assert getattr(allowance, key) == expect[key], key
    if "learn_reason" in expect:
        assert coded(allowance.learn_reason) == expect["learn_reason"]
    if "learn_ceiling" in expect:
        assert allowance.learn_ceiling == Level(expect["learn_ceiling"])
    if "regimes" in expect:
        assert list(allowance.regimes) == expect["regimes"]
    for purpose, want in expect.get("purposes", {}).items():
        verdict = allowance.purposes[Purpose(purpose)]
        assert verdict.allowed == want["allowed"], (purpose, verdict)
        if "basis" in want:
            assert verdict.legal_basis == want["basis"], (purpose, verdict)
        if "reason" in want:
            assert coded(verdict) == want["reason"], purpose
        assert verdict.request_only == (verdict.code is Code.REQUEST_CONTEXT_ONLY), purpose
    for atom, reason in expect.get("refusals", {}).items():
        assert coded(allowance.refusals.get(atom)) == reason, atom
    if "level_reasons" in expect:
        want_levels = {Level(k): v for k, v in expect["level_reasons"].items()}
        got = {k: coded(v) for k, v in allowance.level_reasons.items() if k in want_levels or not want_levels}
        assert got == want_levels
    for purpose, atoms in expect.get("atoms_for", {}).items():
        assert set(allowance.atoms_for(Purpose(purpose))) == expand(atoms), purpose
    if "significant" in expect:
        assert allowance.significant_decisions.allowed == expect["significant"]
    for purpose, status in expect.get("state", {}).items():
        assert state.state(Purpose(purpose), at=at).status == status, purpose
    if "sale_or_share_opted_out" in expect:
        assert state.sale_or_share_opted_out(at=at) == expect["sale_or_share_opted_out"]


@pytest.mark.parametrize("case", SPEC["cases"], ids=[c["name"] for c in SPEC["cases"]])
def test_gate_case(case: Mapping[str, Any]) -> None:
    allowance, state = run(case)
    check(case, allowance, state)
    # Every refusal has a reason, and nothing is both allowed and refused.
    catalog = CATALOGS[case.get("catalog", DEFAULTS["catalog"])]
    assert set(allowance.refusals) | allowance.decide_atoms == set(catalog.atoms)
    assert not set(allowance.refusals) & allowance.decide_atoms
    assert allowance.learn_atoms <= allowance.decide_atoms


def test_the_specification_is_large_enough() -> None:
    assert len(SPEC["cases"]) >= 60
    assert len({c["name"] for c in SPEC["cases"]}) == len(SPEC["cases"])
