"""Regimes, subject facts and the SubjectView contract, beyond the JSON cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tactful.consent.fold import fold
from tactful.errors import ConfigurationError
from tactful.policy import (
    CCPA,
    GDPR,
    Allowance,
    AtomNotAllowed,
    Code,
    LegalBasis,
    ProfileSnapshot,
    RequestSignals,
    SubjectFacts,
    applicable_regimes,
    build_view,
    evaluate,
    facts_from_profile,
    regime_from_config,
)
from tactful.types import Purpose
from tests.policy.builders import grants
from tests.policy.test_cases import CATALOGS

AT = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("establishment", "country", "region", "expected"),
    [
        ("DE", "US", "CA", ("gdpr", "ccpa")),  # an EU controller covers everyone; California adds CCPA
        ("US", "FR", None, ("gdpr",)),  # a subject in the EU
        ("US", "US", "US-CA", ("ccpa",)),
        ("US", "US", "NY", ("gdpr",)),  # none applies: the cautious default
        ("US", None, None, ("gdpr",)),
        ("US", "NO", None, ("gdpr",)),  # the EEA, not only the EU
    ],
)
def test_applicable_regimes(
    establishment: str, country: str | None, region: str | None, expected: tuple[str, ...]
) -> None:
    assert tuple(r.name for r in applicable_regimes(establishment, country, region)) == expected


def test_custom_regimes_apply_by_their_own_coverage() -> None:
    lgpd = regime_from_config({"name": "lgpd", "extends": "gdpr", "countries": ["br"], "consent_age": 18})
    assert lgpd.consent_age == 18
    assert lgpd.legal_basis == GDPR.legal_basis
    found = applicable_regimes("US", "BR", None, regimes=(GDPR, CCPA, lgpd), default=())
    assert [r.name for r in found] == ["lgpd"]
    assert applicable_regimes("US", "US", "TX", regimes=(lgpd,), default=()) == ()


def test_builtin_regimes_follow_the_design() -> None:
    assert all(GDPR.legal_basis[p] is LegalBasis.CONSENT for p in Purpose if p is not Purpose.ESSENTIAL)
    assert GDPR.legal_basis[Purpose.ESSENTIAL] is LegalBasis.NOT_REQUIRED
    assert all(
        CCPA.legal_basis[p] is LegalBasis.LEGITIMATE_INTEREST for p in Purpose if p is not Purpose.ESSENTIAL
    )
    assert CCPA.basis(Purpose.SALE_OR_SHARE, age=15) is LegalBasis.CONSENT
    assert CCPA.basis(Purpose.SALE_OR_SHARE, age=16) is LegalBasis.LEGITIMATE_INTEREST
    assert GDPR.gpc_caps_personalization
    assert CCPA.gpc_caps_personalization


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "legal_basis": {"analytics": "maybe"}}, "not one of"),
        ({"name": "x", "legal_basis": {"advertising": "consent"}}, "unknown purpose"),
        ({"name": "x", "extends": "hipaa"}, "extends"),
        ({"name": "x", "consent_age": 40}, "age"),
        ({"name": "x", "gpc_caps_personalization": "yes"}, "true or false"),
        ({"name": "x", "countries": "DE"}, "list of strings"),
        ({"name": "x", "colour": "blue"}, "unknown keys"),
    ],
)
def test_bad_regime_configuration_is_refused_with_the_reason(config: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        regime_from_config(config)


def test_regimes_are_hashable_and_equal_by_value() -> None:
    a = regime_from_config({"name": "strict"})
    b = regime_from_config({"name": "strict"})
    assert a == b
    assert hash(a) == hash(b)
    assert a != regime_from_config({"name": "strict", "consent_age": 13})


def test_age_is_read_from_the_age_atoms() -> None:
    profile = ProfileSnapshot(values={"traits.birthdate": "2010-03-04", "traits.age_range": "16-20"})
    facts = facts_from_profile(profile)
    assert facts.birthdate == date(2010, 3, 4)
    assert facts.age_range == (16, 20)
    assert facts.lowest_age(AT) == 15
    assert (
        facts_from_profile(ProfileSnapshot(values={"traits.age": 40, "traits.age_range": "65+"})).lowest_age(
            AT
        )
        == 40
    )
    junk = ProfileSnapshot(
        values={"traits.age": "forty", "traits.birthdate": "soon", "traits.age_range": "20-10"}
    )
    assert facts_from_profile(junk).lowest_age(AT) is None


def _full_view_allowance() -> Allowance:
    state = fold(grants(["analytics", "personalization.segments", "personalization.behavioral"], AT))
    return evaluate(
        catalog=CATALOGS["shop"],
        consent=state,
        regimes=[GDPR],
        facts=SubjectFacts(),
        signals=RequestSignals(),
        at=AT,
    )


def test_a_view_refuses_atoms_outside_its_allowance_and_records_what_was_read() -> None:
    allowance = _full_view_allowance()
    profile = ProfileSnapshot(
        values={"traits.age_range": "25-34", "traits.first_name": "Ada", "events.product_viewed": 3},
        request={"context.location.country": "DE"},
    )
    view = build_view(allowance, profile)
    assert dict(view.items()) == {
        "traits.age_range": "25-34",
        "events.product_viewed": 3,
        "context.location.country": "DE",
    }
    view = build_view(allowance, profile)
    assert view["traits.age_range"] == "25-34"
    assert view.get("context.locale") is None  # allowed, but no value
    with pytest.raises(AtomNotAllowed) as refused:
        view["traits.first_name"]
    assert refused.value.reason.code is Code.CONSENT_MISSING
    assert refused.value.reason.parameters == {
        "purpose": "personalization.predictive",
        "status": "not_set",
        "regime": "gdpr",
    }
    with pytest.raises(AtomNotAllowed):
        view.get("traits.first_name")
    assert "traits.first_name" not in view
    assert view.atoms_read == {"traits.age_range"}
    assert "Ada" not in repr(view)
    assert "25-34" not in repr(view)
    with pytest.raises(AttributeError):
        view.level = allowance.ceiling  # type: ignore[misc]


def test_learning_views_hold_only_learnable_atoms() -> None:
    state = fold(grants(["personalization.segments"], AT))
    allowance = evaluate(
        catalog=CATALOGS["shop"],
        consent=state,
        regimes=[GDPR],
        facts=SubjectFacts(),
        signals=RequestSignals(),
        at=AT,
    )
    profile = ProfileSnapshot(values={"traits.age_range": "25-34"})
    assert dict(build_view(allowance, profile).items()) == {"traits.age_range": "25-34"}
    assert dict(build_view(allowance, profile, learning=True).items()) == {}  # analytics not granted


def test_evaluate_needs_a_regime() -> None:
    with pytest.raises(ValueError, match="regime"):
        evaluate(
            catalog=CATALOGS["shop"],
            consent=fold([]),
            regimes=[],
            facts=SubjectFacts(),
            signals=RequestSignals(),
            at=AT,
        )
