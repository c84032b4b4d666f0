"""The gate's reading of a consent state (`ConsentState.snapshot`) against the state's own answers,
one question at a time.

The snapshot is read in one pass over the latest records, and a moment before the last change is
read from the state as it stood then (`as_of`); these properties ask the state the slow way
(`state`, `explicit_state`, `parental_state`, `objected`, `gpc_applied`) and compare.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tactful.consent.fold import ConsentAction, ConsentEvent, fold, merge_states
from tactful.policy import ConsentSource, ConsentState, ConsentStatus
from tactful.policy.state import EMPTY_TIMELINE, EXPLICIT_SOURCES, ConsentSnapshot, Timeline
from tactful.types import Purpose
from tests.policy.strategies import INSTANTS, T0, ledgers

# Before, between and after the instants the ledgers use (events at exactly a moment count).
MOMENTS = (T0 - timedelta(hours=1), *INSTANTS, INSTANTS[-1] + timedelta(days=1))


def asked_one_by_one(state: ConsentState, at: datetime) -> ConsentSnapshot:
    gpc_at = state.gpc_first_at if state.gpc_applied(at=at) else None
    ordered: list[ConsentStatus] = []
    tcf = after_gpc = 0
    for i, purpose in enumerate(Purpose):
        answer = state.state(purpose, at=at)
        ordered.append(answer.status)
        record = answer.record
        if record is None:
            continue
        if record.source is ConsentSource.TCF:
            tcf |= 1 << i
        elif (
            answer.granted and record.source in EXPLICIT_SOURCES and gpc_at is not None and record.at > gpc_at
        ):
            after_gpc |= 1 << i
    explicit = {name: state.explicit_state(name, at=at) for name in state.explicit}
    parental = state.parental_state(at=at)
    return ConsentSnapshot(
        tuple(ordered),
        tcf,
        frozenset(n for n, s in explicit.items() if s.granted),
        frozenset(n for n, s in explicit.items() if s.record is not None and not s.granted),
        parental.record.method if parental.granted and parental.record is not None else None,
        state.objected(at=at),
        gpc_at,
        after_gpc,
    )


@given(ledgers, st.sampled_from(MOMENTS))
def test_a_snapshot_says_what_the_state_answers_at_that_moment(
    events: list[ConsentEvent], at: datetime
) -> None:
    state = fold(events)
    expected = asked_one_by_one(state, at)
    assert state.snapshot(at=at) == expected
    assert state.snapshot(at=at) == expected  # and again, once the present is kept on the state
    assert state.as_of(at).snapshot(at=at) == expected


@given(ledgers, ledgers, st.sampled_from(MOMENTS))
def test_a_merged_state_is_read_as_it_answers(
    first: list[ConsentEvent], second: list[ConsentEvent], at: datetime
) -> None:
    # A merge makes a record the deciding one later than its own time: the timelines' times count.
    state = merge_states(fold(first), fold(second))
    assert state.snapshot(at=at) == asked_one_by_one(state, at)


@given(ledgers, st.sampled_from(MOMENTS))
def test_the_state_as_of_a_moment_answers_every_question_as_the_state_does_then(
    events: list[ConsentEvent], at: datetime
) -> None:
    state = fold(events)
    then = state.as_of(at)
    for moment in (at, at + timedelta(days=30)):
        assert [then.state(p, at=moment) for p in Purpose] == [state.state(p, at=at) for p in Purpose]
        assert then.parental_state(at=moment) == state.parental_state(at=at)
        assert then.objected(at=moment) == state.objected(at=at)
        assert then.gpc_applied(at=moment) == state.gpc_applied(at=at)
        for name in state.explicit:
            assert then.explicit_state(name, at=moment) == state.explicit_state(name, at=at)


def test_a_timeline_without_records_is_left_out_of_the_state() -> None:
    grant = fold([ConsentEvent(ConsentAction.GRANTED, T0, ConsentSource.API, purpose=Purpose.ANALYTICS)])
    padded = ConsentState(
        purposes={**grant.purposes, Purpose.SEGMENTS: EMPTY_TIMELINE},
        explicit={"special_feature_1": Timeline()},
    )
    assert padded == grant
    assert Purpose.SEGMENTS not in padded.purposes
    assert not padded.explicit
    snapshot = padded.snapshot(at=T0)
    assert snapshot.status(Purpose.SEGMENTS) is ConsentStatus.NOT_SET
    assert snapshot.status(Purpose.ANALYTICS) is ConsentStatus.GRANTED


def test_a_timeline_until_a_moment_keeps_what_took_effect_by_then() -> None:
    later = T0 + timedelta(hours=1)
    state = fold(
        [
            ConsentEvent(ConsentAction.GRANTED, T0, ConsentSource.API, purpose=Purpose.ANALYTICS),
            ConsentEvent(ConsentAction.WITHDRAWN, later, ConsentSource.API, purpose=Purpose.ANALYTICS),
        ]
    )
    timeline = state.purposes[Purpose.ANALYTICS]
    assert timeline.until(later) is timeline
    assert [r.status for r in timeline.until(later - timedelta(seconds=1)).records] == [ConsentStatus.GRANTED]
    assert not timeline.until(T0 - timedelta(seconds=1))
