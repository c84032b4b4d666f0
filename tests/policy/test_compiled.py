"""The compiled gate against the plain one: a gate compiled once for a deployment's regimes answers
what a gate built for each call's regimes alone answers; its version follows the catalog's content."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentEvent, fold
from tactful.policy import (
    CCPA,
    GDPR,
    Regime,
    RequestSignals,
    SubjectFacts,
    catalog_version,
    compile_gate,
    evaluate,
)
from tactful.policy.compiled import DEFAULT_REGIMES, regime_sets
from tactful.policy.purposes import build_table
from tests.policy.builders import catalog_from
from tests.policy.strategies import AT, INSTANTS, REGIMES, catalogs, facts, ledgers, signals
from tests.policy.test_cases import CATALOGS, SPEC

DIGEST = (
    "from tactful.policy import catalog_version; from tests.policy.test_cases import CATALOGS; "
    'print(catalog_version(CATALOGS["shop"]))'
)


@given(catalogs(), ledgers, facts(), signals, st.sets(st.sampled_from(REGIMES), min_size=1))
def test_a_compiled_gate_answers_what_the_plain_gate_answers(
    catalog: Catalog,
    events: list[ConsentEvent],
    subject: SubjectFacts,
    request: RequestSignals,
    chosen: set[Regime],
) -> None:
    gate = compile_gate(catalog, regimes=REGIMES)
    applying = tuple(r for r in REGIMES if r in chosen)  # in configured order, as applicable_regimes gives
    state = fold(events)
    compiled = gate.evaluate(consent=state, regimes=applying, facts=subject, signals=request, at=AT)
    plain = evaluate(catalog=catalog, consent=state, regimes=applying, facts=subject, signals=request, at=AT)
    assert compiled == plain
    assert dict(compiled.refusals) == dict(plain.refusals)
    assert dict(compiled.purposes) == dict(plain.purposes)


@given(
    catalogs(),
    facts(),
    st.none() | st.dates(date(1950, 1, 1), date(2020, 1, 1)),
    signals,
    st.sets(st.sampled_from(REGIMES), min_size=1),
    st.lists(st.sampled_from(INSTANTS), min_size=1, max_size=4),
)
def test_the_answer_a_gate_keeps_for_an_empty_ledger_is_the_one_it_computes(
    catalog: Catalog,
    subject: SubjectFacts,
    born: date | None,
    request: RequestSignals,
    chosen: set[Regime],
    moments: list[datetime],
) -> None:
    gate = compile_gate(catalog, regimes=REGIMES)
    applying = tuple(r for r in REGIMES if r in chosen)
    subject = replace(subject, birthdate=born)
    for at in moments:  # the first call computes the answer, the later ones may read it kept
        kept = gate.evaluate(consent=fold([]), regimes=applying, facts=subject, signals=request, at=at)
        plain = evaluate(
            catalog=catalog, consent=fold([]), regimes=applying, facts=subject, signals=request, at=at
        )
        assert kept == plain
        assert dict(kept.refusals) == dict(plain.refusals)
        assert dict(kept.purposes) == dict(plain.purposes)
        assert dict(kept.purpose_atoms) == dict(plain.purpose_atoms)
    assert bool(gate.unrecorded) == (born is None)  # an age from a birthdate needs the date


def test_a_gate_keeps_a_bounded_number_of_answers_for_empty_ledgers() -> None:
    gate = compile_gate(CATALOGS["shop"], regimes=(GDPR,))
    for country in range(300):  # facts come from what subjects send: a trait's country
        subject = SubjectFacts(country=f"c{country}")
        gate.evaluate(consent=fold([]), regimes=(GDPR,), facts=subject, signals=RequestSignals(), at=AT)
    assert len(gate.unrecorded) == 256


def test_the_compiled_tables_are_those_the_rule_builds_for_each_set_of_regimes() -> None:
    gate = compile_gate(CATALOGS["shop"], regimes=(GDPR, CCPA))
    assert set(gate.tables) == {DEFAULT_REGIMES, (GDPR,), (CCPA,), (GDPR, CCPA)}
    for chosen, table in gate.tables.items():
        assert table.rows == build_table(chosen).rows
        assert table.names == tuple(r.name for r in chosen)


def test_a_set_of_regimes_not_compiled_gets_its_table_from_the_same_rule() -> None:
    many = tuple(CCPA for _ in range(7))
    assert list(regime_sets(many)) == [DEFAULT_REGIMES]
    gate = compile_gate(CATALOGS["shop"], regimes=many)
    state = fold([])
    answer = gate.evaluate(
        consent=state, regimes=(CCPA,), facts=SubjectFacts(), signals=RequestSignals(), at=AT
    )
    assert answer.regimes == ("ccpa",)
    assert (CCPA,) in gate.tables
    with pytest.raises(ValueError, match="at least one regime"):
        gate.evaluate(consent=state, regimes=(), facts=SubjectFacts(), signals=RequestSignals(), at=AT)


def test_the_gate_carries_the_catalogs_version() -> None:
    catalog = CATALOGS["shop"]
    assert compile_gate(catalog, regimes=(GDPR,)).version == catalog_version(catalog)
    assert compile_gate(catalog, regimes=(GDPR,), version="v7").version == "v7"


def test_equal_catalogs_have_one_version_and_any_change_makes_another() -> None:
    fragment = SPEC["catalogs"]["shop"]
    assert catalog_version(catalog_from(fragment)) == catalog_version(CATALOGS["shop"])
    atoms = dict(fragment["atoms"])
    changed = {**atoms, "context.locale": {**atoms["context.locale"], "purposes": ["analytics"]}}
    assert catalog_version(catalog_from({**fragment, "atoms": changed})) != catalog_version(CATALOGS["shop"])
    longer = {**atoms, "context.locale": {**atoms["context.locale"], "retention": "30d"}}
    assert catalog_version(catalog_from({**fragment, "atoms": longer})) != catalog_version(CATALOGS["shop"])


def test_a_catalogs_version_is_the_same_in_every_process() -> None:
    # Sets inside a catalog iterate in an order that depends on the process's hash seed.
    root = Path(__file__).parents[2]
    versions = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", DIGEST], cwd=root, env=env, capture_output=True, text=True, check=True
        )
        versions.add(done.stdout.strip())
    assert versions == {catalog_version(CATALOGS["shop"])}
