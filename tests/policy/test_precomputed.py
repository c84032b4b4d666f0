"""The gate's precomputed paths against straightforward readings of the same rules.

The gate answers from tables (purposes per set of regimes) and masks (atoms per catalog); these
properties rebuild each answer the slow way, one purpose and one atom at a time, and compare.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.policy import (
    AgePolicy,
    Allowance,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    Regime,
    RequestSignals,
    SubjectFacts,
    evaluate,
    regime_from_config,
)
from tactful.policy.allowance import Deferred
from tactful.policy.index import PERSONALIZATION, PURPOSE_LEVEL, build_index
from tactful.policy.purposes import (
    PURPOSES,
    Evaluation,
    Subject,
    _cap,
    _combined,
    _with_parent,
    build_table,
    evaluate_purposes,
)
from tactful.policy.reasons import AtomRules
from tactful.policy.state import ConsentSnapshot
from tactful.policy.verdicts import Code, Reason
from tactful.types import Purpose
from tests.policy.strategies import AT, REGIMES, catalogs, facts, ledgers, regime_sets, signals
from tests.policy.test_cases import CATALOGS

LATER = AT + timedelta(hours=1)


def reading(
    snapshot: ConsentSnapshot, facts: SubjectFacts, request: RequestSignals, policy: AgePolicy
) -> Subject:
    """The subject as the gate reads it (DESIGN §1: age, GPC, objection, restriction)."""
    age = facts.lowest_age(LATER)
    if facts.minor is not None:
        minor = facts.minor
    else:
        minor = policy.assume_minor_when_age_unknown if age is None else age < policy.minor_age
    recorded = snapshot.gpc_at is not None
    return Subject(
        age=age,
        minor=minor,
        objected=facts.objection or snapshot.objected,
        restricted=facts.restriction,
        gpc=recorded or request.gpc,
        explicit_after_gpc=snapshot.explicit_after_gpc if recorded else 0,
    )


def purposes_one_by_one(
    snapshot: ConsentSnapshot, regimes: list[Regime], subject: Subject
) -> list[Evaluation]:
    caps_gpc = subject.gpc and any(r.gpc_caps_personalization for r in regimes)
    method = snapshot.parental_method
    out: list[Evaluation] = []
    for purpose, status in zip(PURPOSES, snapshot.ordered, strict=True):
        cap = _cap(purpose, subject, caps_gpc)
        if cap is not None:
            out.append(cap)
            continue
        outcome = _combined(purpose, status, regimes, subject, method is not None)
        out.append(_with_parent(outcome, method) if outcome.parental and method is not None else outcome)
    return out


def atoms_one_by_one(
    catalog: Catalog,
    snapshot: ConsentSnapshot,
    outcomes: list[Evaluation],
    subject: Subject,
    *,
    limit_sensitive: bool,
) -> dict[str, object]:
    """The Allowance's atom sets as the rules say them atom by atom."""
    index = build_index(catalog)
    evals = dict(zip(PURPOSES, outcomes, strict=True))
    ceiling = 0
    while ceiling < len(PERSONALIZATION) and evals[PERSONALIZATION[ceiling]].allowed:
        ceiling += 1
    rules = AtomRules(
        index, snapshot, evals, ceiling, limit_sensitive=limit_sensitive, restricted=subject.restricted
    )
    decide: set[str] = set()
    request_only: set[str] = set()
    for atom in catalog.atom_list:
        if rules.decide_refusal(atom.name) is not None:
            continue
        decide.add(atom.name)
        usable = [p for p in index.routes[atom.name] if evals[p].allowed and PURPOSE_LEVEL[p] <= ceiling]
        if all(evals[p].request_only for p in usable):
            request_only.add(atom.name)
    learn_ceiling = 0
    while learn_ceiling < ceiling and not evals[PERSONALIZATION[learn_ceiling]].request_only:
        learn_ceiling += 1
    may_learn = not subject.restricted and not subject.minor and evals[Purpose.ANALYTICS].allowed
    learn = {n for n in decide if index.rank[n] <= learn_ceiling} - request_only if may_learn else set()
    purpose_atoms: dict[Purpose, set[str]] = {}
    for purpose, verdict in evals.items():
        if not verdict.allowed:
            continue
        declared = {a.name for a in catalog.atom_list if purpose in a.purposes}
        if purpose in PURPOSE_LEVEL:
            purpose_atoms[purpose] = declared & decide
        elif purpose is Purpose.ESSENTIAL:
            purpose_atoms[purpose] = declared
        else:
            purpose_atoms[purpose] = {n for n in declared if rules.atom_refusal(n, (purpose,)) is None}
    return {
        "ceiling": ceiling,
        "decide": decide,
        "request_only": request_only,
        "learn": learn,
        "purpose_atoms": purpose_atoms,
        "refusals": {n: rules.decide_refusal(n) for n in index.names if n not in decide},
    }


@given(catalogs(), ledgers, regime_sets, facts(), signals)
def test_the_grouped_atom_sets_are_the_rules_read_atom_by_atom(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject_facts: SubjectFacts,
    request: RequestSignals,
) -> None:
    state = fold(events)
    allowance = evaluate(
        catalog=catalog, consent=state, regimes=regimes, facts=subject_facts, signals=request, at=LATER
    )
    snapshot = state.snapshot(at=LATER)
    subject = reading(snapshot, subject_facts, request, AgePolicy())
    outcomes = purposes_one_by_one(snapshot, regimes, subject)
    assert [e.verdict for e in outcomes] == [allowance.purposes[p] for p in PURPOSES]
    slow = atoms_one_by_one(
        catalog, snapshot, outcomes, subject, limit_sensitive=subject_facts.limit_sensitive
    )
    assert allowance.ceiling.rank == slow["ceiling"]
    assert allowance.decide_atoms == slow["decide"]
    assert allowance.request_only == slow["request_only"]
    assert allowance.learn_atoms == slow["learn"]
    assert {p: set(a) for p, a in allowance.purpose_atoms.items()} == slow["purpose_atoms"]
    # Every refused atom has the reason the rules give, never the stand-in for a disagreement.
    assert dict(allowance.refusals) == slow["refusals"]


_custom_regimes = st.builds(
    lambda consent_age, opt_in_age, coppa, basis, opt_in: regime_from_config(
        {
            "name": "custom",
            "default_basis": basis,
            "consent_age": consent_age,
            "opt_in_age": opt_in_age,
            "coppa": coppa,
            "opt_in_purposes": opt_in,
        }
    ),
    st.integers(0, 21),
    st.none() | st.integers(0, 21),
    st.booleans(),
    st.sampled_from(("consent", "legitimate_interest", "contract")),
    st.lists(st.sampled_from([p.value for p in Purpose]), max_size=3, unique=True),
)


@given(
    st.lists(st.sampled_from(REGIMES) | _custom_regimes, min_size=1, max_size=3),
    st.none() | st.integers(0, 30),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, 255),
    st.lists(st.sampled_from(tuple(ConsentStatus)), min_size=len(PURPOSES), max_size=len(PURPOSES)),
    st.sampled_from((None, "credit_card")),
)
def test_the_purpose_table_answers_what_each_regime_says(
    regimes: list[Regime],
    age: int | None,
    minor: bool,
    objected: bool,
    restricted: bool,
    gpc: bool,
    lifted: int,
    statuses: list[ConsentStatus],
    method: str | None,
) -> None:
    snapshot = ConsentSnapshot(tuple(statuses), 0, frozenset(), frozenset(), method, objected, None, lifted)
    subject = Subject(age, minor, objected, restricted, gpc, lifted)
    table = build_table(tuple(regimes))
    assert evaluate_purposes(snapshot, table, subject) == purposes_one_by_one(snapshot, regimes, subject)


@given(catalogs(), st.data())
def test_a_mask_turns_back_into_exactly_its_atoms(catalog: Catalog, data: st.DataObject) -> None:
    index = build_index(catalog)
    mask = data.draw(st.integers(0, index.everything))
    expected = {name for i, name in enumerate(index.names) if mask >> i & 1}
    assert index.atoms(mask) == expected
    assert index.atoms(mask) == expected  # again, as met before
    other = data.draw(st.integers(0, index.everything))
    assert index.atoms(other) == {name for i, name in enumerate(index.names) if other >> i & 1}
    named = index.named(mask)
    assert list(named) == [n for n in index.names if n in expected]
    assert len(named) == len(expected)
    assert all(n in named for n in expected)
    assert "traits.undeclared" not in named


# -- the mapping the gate fills in when asked ------------------------------------------------------


def test_a_deferred_mapping_works_each_value_out_once_and_only_when_asked() -> None:
    asked: list[str] = []

    def value(key: str) -> int:
        asked.append(key)
        return len(key)

    lazy: Deferred[str, int] = Deferred(lambda: ("a", "bb"), value)
    assert asked == []
    assert lazy["bb"] == 2
    assert lazy["bb"] == 2
    assert asked == ["bb"]
    assert "a" in lazy
    assert "c" not in lazy
    assert lazy.get("c") is None
    with pytest.raises(KeyError):
        lazy["c"]
    assert asked == ["bb"]
    assert list(lazy) == ["a", "bb"]
    assert len(lazy) == 2
    assert lazy == {"a": 1, "bb": 2}
    assert repr(lazy) == "{'a': 1, 'bb': 2}"
    assert sorted(asked) == ["a", "bb"]


def test_an_allowance_compares_by_value_whatever_was_asked_of_it() -> None:
    catalog_events = [
        ConsentEvent(ConsentAction.GRANTED, AT, ConsentSource.BANNER, purpose=p) for p in Purpose
    ]
    state = fold(catalog_events)

    def answer(consent: ConsentState) -> Allowance:
        return evaluate(
            catalog=CATALOGS["shop"],
            consent=consent,
            regimes=REGIMES[:1],
            facts=SubjectFacts(),
            signals=RequestSignals(),
            at=LATER,
        )

    asked, untouched = answer(state), answer(fold(catalog_events))
    assert asked.refusals.get("traits.health_interest") == Reason.of(
        Code.EXPLICIT_MISSING, category="user.sensitive.health"
    )
    assert asked.atoms_for(Purpose.ANALYTICS)
    assert asked == untouched
    assert "traits.health_interest" in repr(untouched)


# -- the fold's order ------------------------------------------------------------------------------


@pytest.mark.parametrize("refusal", [ConsentAction.DENIED, ConsentAction.WITHDRAWN])
def test_a_refusal_and_a_grant_at_the_same_moment_end_in_the_refusal(refusal: ConsentAction) -> None:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    grant = ConsentEvent(ConsentAction.GRANTED, moment, ConsentSource.API, purpose=Purpose.ANALYTICS)
    refuse = ConsentEvent(refusal, moment, ConsentSource.API, purpose=Purpose.ANALYTICS)
    for ledger in ([grant, refuse], [refuse, grant]):
        state = fold(ledger)
        assert state.state(Purpose.ANALYTICS, at=moment).status == ConsentStatus(refusal.value)
        assert [r.status for r in state.purposes[Purpose.ANALYTICS].records] == [
            ConsentStatus.GRANTED,
            ConsentStatus(refusal.value),
        ]
