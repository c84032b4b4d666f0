"""Invariants 1-6 of DESIGN §3 as properties of the gate and the fold, over random catalogs,
ledgers, facts and signals."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentAction, ConsentEvent, fold, merge_states
from tactful.policy import (
    AgePolicy,
    Allowance,
    AtomNotAllowed,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    ProfileSnapshot,
    Regime,
    RequestSignals,
    SubjectFacts,
    build_view,
    evaluate,
)
from tactful.types import Level, Purpose
from tests.policy.strategies import (
    AT,
    EXPLICIT_NAMES,
    INSTANTS,
    PURPOSES,
    T0,
    catalogs,
    consent_events,
    facts,
    ledgers,
    regime_sets,
    signals,
)

LATER = AT + timedelta(hours=1)


def gate(
    catalog: Catalog,
    state: ConsentState,
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
) -> Allowance:
    return evaluate(catalog=catalog, consent=state, regimes=regimes, facts=subject, signals=request, at=LATER)


def covered(state: ConsentState, category: str) -> bool:
    parts = category.split(".")
    names = {".".join(parts[:i]) for i in range(3, len(parts) + 1)}  # below user.sensitive only
    return any(state.explicit_state(n, at=LATER).granted for n in names)


# -- invariant 1 (and 2): a view holds only what the Allowance allows ----------------------------------


@given(catalogs(), ledgers, regime_sets, facts(), signals, st.data())
def test_a_view_holds_only_atoms_of_its_allowance(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
    data: st.DataObject,
) -> None:
    allowance = gate(catalog, fold(events), regimes, subject, request)
    names = sorted(catalog.atoms)
    stored = {n: f"stored {n}" for n in data.draw(st.lists(st.sampled_from(names), unique=True))}
    stored["traits.undeclared"] = "never declared"
    from_request = {n: f"request {n}" for n in data.draw(st.lists(st.sampled_from(names), unique=True))}
    profile = ProfileSnapshot(values=stored, request=from_request)

    view = build_view(allowance, profile)
    assert set(view) <= allowance.decide_atoms
    for name in view:
        assert view[name] == from_request.get(name, stored.get(name))
        if name in allowance.request_only:
            assert view[name] == from_request[name]
    assert view.atoms_read <= allowance.decide_atoms
    assert all(catalog.atoms[n].level.rank <= allowance.ceiling.rank for n in allowance.decide_atoms)
    for name in set(names) - allowance.decide_atoms:
        with pytest.raises(AtomNotAllowed):
            view[name]
        assert name not in view

    learning = build_view(allowance, profile, learning=True)
    assert set(learning) <= allowance.learn_atoms <= allowance.decide_atoms
    assert all(catalog.atoms[n].level.rank <= allowance.learn_ceiling.rank for n in allowance.learn_atoms)
    if not allowance.may_learn:
        assert not allowance.learn_atoms


# -- monotonicity: removing consent never raises the level ------------------------------------------


@given(catalogs(), ledgers, regime_sets, facts(), signals, st.data())
def test_removing_consent_never_raises_the_level(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
    data: st.DataObject,
) -> None:
    before = gate(catalog, fold(events), regimes, subject, request)
    refusal = data.draw(
        consent_events(instants=(AT,)).filter(lambda e: e.action is not ConsentAction.GRANTED)
    )
    narrowed = [
        gate(catalog, fold([*events, refusal]), regimes, subject, request),
        gate(catalog, fold(events), regimes, subject, RequestSignals(gpc=True)),
        gate(catalog, fold(events), regimes, _with(subject, objection=True), request),
        gate(catalog, fold(events), regimes, _with(subject, restriction=True), request),
        gate(catalog, fold(events), regimes, _with(subject, minor=True), request),
        gate(catalog, fold(events), regimes, _with(subject, limit_sensitive=True), request),
    ]
    for after in narrowed:
        assert after.ceiling.rank <= before.ceiling.rank
        assert after.decide_atoms <= before.decide_atoms
        assert after.learn_atoms <= before.learn_atoms
        allowed_after = {p for p, v in after.purposes.items() if v.allowed}
        assert allowed_after <= {p for p, v in before.purposes.items() if v.allowed}


def _with(subject: SubjectFacts, **changes: object) -> SubjectFacts:
    values = {name: getattr(subject, name) for name in SubjectFacts.__slots__}  # type: ignore[attr-defined]
    values.update(changes)
    return SubjectFacts(**values)  # type: ignore[arg-type]


# -- invariant 4: GPC always ends in an opt-out of sale_or_share -----------------------------------


def _explicit_sale_grant_after(state: ConsentState) -> bool:
    record = state.state(Purpose.SALE_OR_SHARE, at=LATER).record
    return (
        state.gpc_first_at is not None
        and record is not None
        and record.status is ConsentStatus.GRANTED
        and record.source in (ConsentSource.API, ConsentSource.BANNER)
        and record.at > state.gpc_first_at
    )


@given(catalogs(), ledgers, ledgers, regime_sets, facts())
def test_gpc_always_ends_in_an_opt_out_of_sale_or_share(
    catalog: Catalog,
    events: list[ConsentEvent],
    other: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
) -> None:
    state = fold(events)
    on_request = gate(catalog, state, regimes, subject, RequestSignals(gpc=True))
    if not _explicit_sale_grant_after(state):
        assert not on_request.purposes[Purpose.SALE_OR_SHARE].allowed
    recorded = fold(
        [*events, ConsentEvent(ConsentAction.WITHDRAWN, AT, ConsentSource.GPC, purpose=Purpose.SALE_OR_SHARE)]
    )
    for final in (recorded, merge_states(recorded, fold(other)), merge_states(fold(other), recorded)):
        assert final.gpc_first_at is not None
        assert final.sale_or_share_opted_out(at=LATER) or _explicit_sale_grant_after(final)
        if not _explicit_sale_grant_after(final):
            later = gate(catalog, final, regimes, subject, RequestSignals(gpc=False))
            assert not later.purposes[Purpose.SALE_OR_SHARE].allowed


# -- invariant 5: minors ---------------------------------------------------------------------------


@given(catalogs(), ledgers, regime_sets, facts(), signals, st.integers(0, 17), st.booleans())
def test_minors_never_exceed_one_to_many_and_are_never_learned_from(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
    age: int,
    flagged: bool,
) -> None:
    minor = _with(subject, minor=True) if flagged else _with(subject, age=age, minor=None)
    allowance = gate(catalog, fold(events), regimes, minor, request)
    assert allowance.ceiling.rank <= Level.MANY.rank
    assert allowance.minor
    assert not allowance.may_learn
    assert not allowance.learn_atoms
    for purpose in (Purpose.BEHAVIORAL, Purpose.PREDICTIVE, Purpose.INDIVIDUAL, Purpose.SALE_OR_SHARE):
        assert not allowance.purposes[purpose].allowed
    assert not allowance.significant_decisions.allowed


@given(catalogs(), ledgers, regime_sets, facts(), signals)
def test_unknown_age_is_adult_unless_configured(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
) -> None:
    unknown = _with(subject, age=None, minor=None)
    state = fold(events)
    assert not gate(catalog, state, regimes, unknown, request).minor
    policy = AgePolicy(assume_minor_when_age_unknown=True)
    cautious = evaluate(
        catalog=catalog,
        consent=state,
        regimes=regimes,
        facts=unknown,
        signals=request,
        at=LATER,
        age_policy=policy,
    )
    assert cautious.minor
    assert cautious.ceiling.rank <= Level.MANY.rank


# -- invariant 6: special categories ---------------------------------------------------------------


@given(catalogs(), ledgers, regime_sets, facts(), signals)
def test_special_categories_never_without_explicit_consent(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
) -> None:
    state = fold(events)
    allowance = gate(catalog, state, regimes, subject, request)
    for name in allowance.decide_atoms | allowance.learn_atoms:
        atom = catalog.atoms[name]
        needed = {c.name for c in atom.categories if c.special}
        for item in atom.inputs:
            needed |= {c.name for c in catalog.atoms[item.atom].categories if c.special}
        for category in needed:
            assert covered(state, category), (name, category)
        if any(c.special for c in atom.categories):
            assert allowance.ceiling is Level.ONE


# -- the fold and the merge ---------------------------------------------------------------------------


@given(st.lists(consent_events(), max_size=20, unique_by=lambda e: e.at), st.randoms(use_true_random=False))
def test_fold_is_order_independent_for_distinct_times(
    events: list[ConsentEvent], shuffle: random.Random
) -> None:
    shuffled = list(events)
    shuffle.shuffle(shuffled)
    assert fold(shuffled) == fold(events)


@given(ledgers, st.randoms(use_true_random=False))
def test_fold_is_order_independent_whatever_the_times(
    events: list[ConsentEvent], shuffle: random.Random
) -> None:
    shuffled = list(events)
    shuffle.shuffle(shuffled)
    assert fold(shuffled) == fold(events)


@given(ledgers, ledgers)
def test_merge_is_commutative_and_never_grants_what_either_side_refused(
    left: list[ConsentEvent], right: list[ConsentEvent]
) -> None:
    a, b = fold(left), fold(right)
    merged = merge_states(a, b)
    assert merged == merge_states(b, a)
    for moment in (T0 - timedelta(hours=1), *INSTANTS, LATER):
        for purpose in PURPOSES:
            sa, sb, sm = (s.state(purpose, at=moment).status for s in (a, b, merged))
            if sa.refused or sb.refused:
                assert sm.refused
            if sm is ConsentStatus.GRANTED:
                assert ConsentStatus.GRANTED in (sa, sb)
        for name in EXPLICIT_NAMES:
            if (
                a.explicit_state(name, at=moment).status.refused
                or b.explicit_state(name, at=moment).status.refused
            ):
                assert merged.explicit_state(name, at=moment).status.refused
        if a.objected(at=moment) or b.objected(at=moment):
            assert merged.objected(at=moment)
        assert merged.gpc_applied(at=moment) == (a.gpc_applied(at=moment) or b.gpc_applied(at=moment))


@given(ledgers)
def test_merging_with_nothing_changes_nothing(events: list[ConsentEvent]) -> None:
    state = fold(events)
    assert merge_states(state, fold([])) == state


# -- nothing carries over from one answer to the next -------------------------------------------------


@given(catalogs(), ledgers, regime_sets, facts(), signals)
def test_an_answer_from_a_state_read_before_equals_one_from_a_new_state(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
) -> None:
    state = fold(events)
    first = gate(catalog, state, regimes, subject, request)
    # The state keeps its reading of the present; a new state of the same ledger has none yet.
    assert gate(catalog, state, regimes, subject, request) == first
    assert gate(catalog, fold(events), regimes, subject, request) == first
    assert first.refusals == dict(first.refusals.items())
