"""Age claims judged by their effect on the gate's age protections (DESIGN §4: a public key may make
a person more protected, never less)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from tactful.policy import AgePolicy, lifts_age_protection

AT = datetime(2026, 6, 1, tzinfo=UTC)
LIMITS = (13, 16)
ages = st.none() | st.integers(min_value=0, max_value=120)
policies = st.builds(AgePolicy, st.integers(min_value=14, max_value=21), st.booleans())


def _values(age: int | None) -> dict[str, object]:
    return {} if age is None else {"traits.age": age}


def _below(age: int | None, limit: int, policy: AgePolicy) -> bool:
    return policy.assume_minor_when_age_unknown if age is None else age < limit


@given(before=ages, after=ages, policy=policies)
def test_a_claim_lifts_exactly_when_some_age_limit_stops_holding(
    before: int | None, after: int | None, policy: AgePolicy
) -> None:
    limits = (policy.minor_age, *LIMITS)
    expected = any(_below(before, t, policy) and not _below(after, t, policy) for t in limits)
    found = lifts_age_protection(_values(before), _values(after), at=AT, limits=LIMITS, age_policy=policy)
    assert found is expected


@given(before=st.integers(0, 120), lower=st.integers(0, 120), policy=policies)
def test_a_younger_age_never_lifts_a_protection(before: int, lower: int, policy: AgePolicy) -> None:
    after = min(before, lower)
    assert not lifts_age_protection(_values(before), _values(after), at=AT, limits=LIMITS, age_policy=policy)


@given(claimed=st.integers(0, 120), minor_age=st.integers(14, 21))
def test_an_unknown_age_counts_as_adult_unless_minors_are_assumed(claimed: int, minor_age: int) -> None:
    adult_default = AgePolicy(minor_age, assume_minor_when_age_unknown=False)
    assert not lifts_age_protection({}, _values(claimed), at=AT, limits=LIMITS, age_policy=adult_default)
    assumed = AgePolicy(minor_age, assume_minor_when_age_unknown=True)
    lifts = lifts_age_protection({}, _values(claimed), at=AT, limits=LIMITS, age_policy=assumed)
    assert lifts is (claimed >= min(minor_age, *LIMITS))


def test_a_birthdate_or_a_range_is_read_as_the_gate_reads_it() -> None:
    policy = AgePolicy(18, assume_minor_when_age_unknown=False)
    teen = {"traits.age_range": "13-17"}
    assert lifts_age_protection(
        teen, {"traits.birthdate": "1990-01-01"}, at=AT, limits=LIMITS, age_policy=policy
    )
    # The lowest age any atom allows is what counts: adding an adult birthdate to a teen range lifts nothing.
    both = teen | {"traits.birthdate": "1990-01-01"}
    assert not lifts_age_protection(teen, both, at=AT, limits=LIMITS, age_policy=policy)
