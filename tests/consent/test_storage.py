"""What newly received data may be stored for (consent.storage), without collection: the purposes
of each atom under a subject's Allowance, links as `essential`, newcomers' defaults per regime, and
what a claim that may not widen keeps."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.consent import ledger
from tactful.consent.gatekeeper import PolicyContext, allowance_from
from tactful.consent.schemas import SubjectFlags
from tactful.consent.storage import LINK_PURPOSES, Decisions, Item, NeedsProof, newcomer
from tactful.types import Purpose
from tests.collect.builders import T0, demo_policy, open_policy

SUBJECT = uuid.UUID(int=11)
OTHERS = (uuid.UUID(int=12), uuid.UUID(int=13))


def decisions(policy: PolicyContext, traits: dict[str, object] | None = None) -> Decisions:
    """One subject never asked about consent, with the gate traits `traits` stored."""
    stored = traits or {}
    allowance = allowance_from(
        policy, consent=ledger.fold_entries(()), flags=SubjectFlags(), traits=stored, at=T0
    )
    return Decisions(policy, {SUBJECT: allowance}, at=T0, traits={SUBJECT: stored})


def test_a_newcomers_events_follow_the_regime_of_the_deployment() -> None:
    gdpr, ccpa = newcomer(demo_policy(), T0), newcomer(open_policy(), T0)
    # GDPR: nothing without a grant but what the catalog marks essential.
    assert gdpr("events.product_viewed") == frozenset()
    assert gdpr("events.order_completed") == {Purpose.ESSENTIAL}
    # CCPA: allowed until an opt-out.
    assert ccpa("events.product_viewed") == {Purpose.ANALYTICS}
    # No atom (an event the catalog does not declare, or one without a name): no purpose anywhere.
    for purposes in (gdpr, ccpa):
        assert purposes("events.wishlist_shared") == frozenset()
        assert purposes(None) == frozenset()


@pytest.mark.parametrize("policy", [demo_policy, open_policy])
def test_the_decision_for_a_known_subject_without_a_ledger_is_the_newcomers(
    policy: Callable[[], PolicyContext],
) -> None:
    context = policy()
    first = newcomer(context, T0)
    under = decisions(context)
    for atom in ("events.product_viewed", "events.page_viewed", "events.order_completed", None):
        assert under.decide(Item(SUBJECT, atom, {})).purposes == first(atom)


def test_linking_identities_is_essential_whatever_the_atom() -> None:
    under = decisions(demo_policy())
    assert under.decide(Item(SUBJECT, None, {}, links=True)).purposes == LINK_PURPOSES
    assert under.decide(Item(SUBJECT, "events.product_viewed", {}, links=True)).purposes == LINK_PURPOSES


def test_traits_are_kept_for_their_own_atoms_purposes_only() -> None:
    under = decisions(open_policy())
    traits = {"first_name": "Ada", "age_range": "25-34", "shoe_size": 38}
    decision = under.decide(Item(SUBJECT, None, traits, links=True))
    assert decision.traits == {"first_name", "age_range"}  # an undeclared trait has no purpose
    assert decision.needs_proof == ()


def test_a_claim_that_may_not_widen_keeps_no_identifier_and_no_older_age() -> None:
    under = decisions(open_policy(), {"traits.age_range": "13-15"})
    claim = {"first_name": "Ada", "age_range": "25-34"}
    decision = under.decide(Item(SUBJECT, None, claim, links=True, may_widen=False))
    assert decision.traits == frozenset()
    assert decision.needs_proof == (NeedsProof.IDENTIFIER, NeedsProof.AGE)
    # A younger age protects more: it is kept, and the caller records how it was declared.
    unknown = decisions(open_policy())
    younger = Item(SUBJECT, None, {"age_range": "13-15"}, links=True, may_widen=False)
    kept = unknown.decide(younger)
    assert kept.traits == {"age_range"}
    assert kept.needs_proof == ()
    assert unknown.age_declared(younger, kept)
    # With proof, the same claim keeps both.
    proven = under.decide(Item(SUBJECT, None, claim, links=True))
    assert proven.traits == {"first_name", "age_range"}
    assert proven.needs_proof == ()


_items = st.lists(
    st.builds(
        Item,
        st.just(SUBJECT),
        st.sampled_from(("events.product_viewed", "events.order_completed", None)),
        st.sampled_from(({}, {"first_name": "Ada"}, {"age_range": "13-15"}, {"age_range": "25-34"})),
        links=st.booleans(),
        may_widen=st.booleans(),
    ),
    max_size=12,
)


@given(items=_items)
def test_subjects_answered_alike_share_decisions_that_are_each_ones_own(items: list[Item]) -> None:
    # Every subject gets the one answer the gate keeps for an empty ledger; only the first has an
    # age stored, which a claim that may not widen is judged against.
    policy = open_policy()
    allowance = allowance_from(
        policy, consent=ledger.fold_entries(()), flags=SubjectFlags(), traits={}, at=T0
    )
    stored: dict[uuid.UUID, dict[str, object]] = {SUBJECT: {"traits.age_range": "13-15"}}
    subjects = (SUBJECT, *OTHERS)
    shared = Decisions(policy, dict.fromkeys(subjects, allowance), at=T0, traits=stored)
    for item in items:
        for subject in subjects:
            asked = replace(item, subject_id=subject)
            alone = Decisions(policy, {subject: allowance}, at=T0, traits=stored)
            assert shared.decide(asked) == alone.decide(asked)
