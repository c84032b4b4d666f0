"""The one place that decides what a key's scope sees of each collected message (`api/answers.py`):
a write key's answer is a function of what the message itself shows, a server key's is the engine's."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tactful.api import answers
from tactful.collect import proof
from tactful.collect.schemas import EventResult, Refusal, Status
from tactful.collect.validate import Reason

REFUSALS = [*(code.value for code in Refusal), proof.INVALID_TOKEN]

results = st.builds(
    EventResult,
    message_id=st.one_of(st.none(), st.text(max_size=8)),
    status=st.sampled_from(Status),
    reason=st.one_of(st.none(), st.sampled_from(Reason)),
    detail=st.one_of(st.none(), st.text(max_size=8)),
    refused=st.lists(st.sampled_from(REFUSALS), unique=True).map(tuple),
    undeclared=st.booleans(),
)


def message_facts(result: EventResult) -> tuple[object, ...]:
    """What a result says that the message alone decides: its id, whether the catalog declares its
    event, a fault validation found in it, and a token it carried that proved nothing."""
    fault = result.status is Status.QUARANTINED and result.reason in answers.MESSAGE_FAULTS
    return (
        result.message_id,
        result.undeclared,
        (result.reason, result.detail) if fault and not result.undeclared else None,
        proof.INVALID_TOKEN in result.refused,
    )


@given(results, results)
def test_a_public_answer_depends_on_the_message_alone(first: EventResult, second: EventResult) -> None:
    if message_facts(first) == message_facts(second):
        assert answers.public(first) == answers.public(second)


@given(results)
def test_a_public_answer_says_accepted_quarantined_for_a_fault_or_dropped(result: EventResult) -> None:
    shown = answers.public(result)
    assert shown["status"] in {answers.ACCEPTED, "quarantined", "dropped"}
    assert set(shown["refused"]) <= answers.MESSAGE_REFUSALS
    if shown["status"] == "quarantined":
        assert Reason(shown["reason"]) in answers.MESSAGE_FAULTS
    if shown["status"] == answers.ACCEPTED:
        assert (shown["reason"], shown["detail"]) == (None, None)


@given(results)
def test_a_server_key_reads_the_engines_answer(result: EventResult) -> None:
    [shown] = answers.results([result], trusted=True)
    assert shown == {
        "messageId": result.message_id,
        "status": result.status.value,
        "reason": None if result.reason is None else result.reason.value,
        "detail": result.detail,
        "refused": list(result.refused),
    }


def test_every_reason_is_classified_as_the_messages_or_the_stored_states() -> None:
    """A new reason must be placed: shown to public keys only if the message alone decides it."""
    assert answers.MESSAGE_FAULTS.isdisjoint(answers.STATE_REASONS)
    assert set(Reason) == answers.MESSAGE_FAULTS | answers.STATE_REASONS


def test_a_public_key_sees_an_engine_outcome_folded_into_accepted() -> None:
    for status, reason in (
        (Status.STORED, None),
        (Status.DUPLICATE, None),
        (Status.SUPPRESSED, Reason.NO_PURPOSE),
        (Status.SUPPRESSED, Reason.ERASED_SUBJECT),
        (Status.QUARANTINED, Reason.DUPLICATE_CONFLICT),
    ):
        result = EventResult("m-1", status, reason, "a detail", (Refusal.LINK_UNVERIFIED.value,))
        assert answers.public(result) == {
            "messageId": "m-1", "status": "accepted", "reason": None, "detail": None, "refused": [],
        }  # fmt: skip
