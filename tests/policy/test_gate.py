"""The gate's own shortcuts against the plain readings they stand for: the table of the pyramid's
climb, the one-step making of an Allowance, and the parts of it worked out only when asked."""

from __future__ import annotations

import dataclasses
from itertools import product

import pytest
from hypothesis import given

from tactful.catalog.model import Catalog
from tactful.consent.fold import ConsentEvent, fold
from tactful.policy import CCPA, GDPR, Allowance, Regime, RequestSignals, SubjectFacts, evaluate
from tactful.policy.gate import _CLIMB, _PYRAMID, _Refusals
from tactful.policy.index import PERSONALIZATION
from tactful.policy.purposes import Evaluation
from tactful.policy.verdicts import Code, Reason
from tactful.records import ORIGINAL_INIT
from tests.policy.builders import grants
from tests.policy.strategies import AT, catalogs, facts, ledgers, regime_sets, signals
from tests.policy.test_cases import CATALOGS

# Every kind of pyramid evaluation the climb tells apart.
KINDS = tuple(
    Evaluation(allowed, Reason(Code.NOT_ALLOWED), request_only=request_only, device_ok=device_ok)
    for allowed, request_only, device_ok in product((False, True), repeat=3)
)


def climbed(pyramid: tuple[Evaluation, ...]) -> tuple[int, int, int, int]:
    """DESIGN §2 read plainly: the ceiling is the highest level whose purpose and every purpose below
    hold; learning reaches as far up as purposes that hold for stored data, not the request only."""
    ceiling = 0
    while ceiling < len(pyramid) and pyramid[ceiling].allowed:
        ceiling += 1
    below = pyramid[:ceiling]
    learn_ceiling = 0
    while learn_ceiling < ceiling and not below[learn_ceiling].request_only:
        learn_ceiling += 1
    request_only = sum(1 << k for k, e in enumerate(below) if e.request_only)
    device_ok = sum(1 << k for k, e in enumerate(below) if e.device_ok)
    return ceiling, learn_ceiling, request_only, device_ok


def test_the_climb_table_answers_as_the_pyramid_reads_for_every_combination() -> None:
    assert len(_PYRAMID) == len(PERSONALIZATION)
    for pyramid in product(KINDS, repeat=len(PERSONALIZATION)):
        key = sum(e.flags << 3 * k for k, e in enumerate(pyramid))
        assert _CLIMB[key] == climbed(pyramid), pyramid


def test_an_evaluations_flags_are_its_three_booleans() -> None:
    for evaluation in KINDS:
        assert evaluation.flags == (
            evaluation.allowed + 2 * evaluation.request_only + 4 * evaluation.device_ok
        )


@given(catalogs(), ledgers, regime_sets, facts(), signals)
def test_an_allowance_made_in_one_step_is_the_one_dataclasses_constructor_makes(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
) -> None:
    allowance = evaluate(
        catalog=catalog, consent=fold(events), regimes=regimes, facts=subject, signals=request, at=AT
    )
    fields = {f.name: getattr(allowance, f.name) for f in dataclasses.fields(Allowance)}
    assert list(vars(allowance)) == list(fields)
    slow = object.__new__(Allowance)
    ORIGINAL_INIT[Allowance](slow, **fields)
    made = Allowance(**fields)
    assert vars(made) == vars(slow)
    assert made == slow == allowance
    assert repr(made) == repr(slow)
    assert dataclasses.replace(made) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.may_learn = not made.may_learn  # type: ignore[misc]


def test_refusals_are_worked_out_when_asked_from_one_reading_of_the_rules() -> None:
    catalog = CATALOGS["shop"]
    allowance = evaluate(
        catalog=catalog,
        consent=fold([]),
        regimes=[GDPR],
        facts=SubjectFacts(),
        signals=RequestSignals(),
        at=AT,
    )
    refusals = allowance.refusals
    assert isinstance(refusals, _Refusals)
    assert refusals._rules is None
    assert refusals._keys is None
    refused = sorted(refusals)
    assert refused
    assert set(refused) == set(catalog.atoms) - allowance.decide_atoms
    assert refusals._rules is None  # naming the refused atoms needs no reasons
    reasons = [refusals[name] for name in refused]
    rules = refusals._rules
    assert rules is not None
    assert reasons == [rules.refusal(name) for name in refused]
    assert refusals[refused[0]] == reasons[0]
    assert refusals._rules is rules
    with pytest.raises(KeyError):
        refusals["traits.undeclared"]


def test_a_device_identifier_may_be_read_only_where_a_served_purpose_allows_it() -> None:
    """ePrivacy: under GDPR reading a device identifier (hashing an anonymous id for a split) needs a
    granted purpose; under CCPA no consent is asked for it."""
    catalog = CATALOGS["shop"]

    def allowance(regime: Regime, *granted: str) -> Allowance:
        return evaluate(
            catalog=catalog,
            consent=fold(grants(granted, AT)),
            regimes=[regime],
            facts=SubjectFacts(),
            signals=RequestSignals(),
            at=AT,
        )

    assert allowance(GDPR).device_identifiers is False
    assert allowance(GDPR, "personalization.segments").device_identifiers is True
    assert allowance(CCPA).device_identifiers is True
