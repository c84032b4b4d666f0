"""A choice received in the same request as a GPC signal is ordered by the ledger, not by a clock
trick: recorded after the signal, a person's own grant lifts the cap the signal sets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tactful.consent.fold import ConsentAction, ConsentEvent, fold, merge_states
from tactful.policy.state import ConsentSource
from tactful.types import Purpose

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def events(grant_sequence: int, source: ConsentSource = ConsentSource.BANNER) -> list[ConsentEvent]:
    signal = ConsentEvent(
        ConsentAction.DENIED, AT, ConsentSource.GPC, purpose=Purpose.SALE_OR_SHARE, sequence=5
    )
    grants = [
        ConsentEvent(ConsentAction.GRANTED, AT, source, purpose=p, sequence=grant_sequence + i)
        for i, p in enumerate((Purpose.SALE_OR_SHARE, Purpose.SEGMENTS))
    ]
    return [signal, *grants]


@pytest.mark.parametrize(("sequence", "lifted"), [(6, True), (1, False)])
def test_a_grant_at_the_signals_moment_counts_after_it_only_when_recorded_after_it(
    sequence: int, lifted: bool
) -> None:
    state = fold(events(sequence))
    assert state.gpc_first_at == AT
    assert state.sale_or_share_opted_out(at=AT) is not lifted
    assert bool(state.snapshot(at=AT).explicit_after_gpc) is lifted


def test_a_replayed_grant_recorded_after_the_signal_lifts_nothing() -> None:
    state = fold(events(6, source=ConsentSource.SEGMENT_CONTEXT))
    assert state.sale_or_share_opted_out(at=AT)
    assert state.snapshot(at=AT).explicit_after_gpc == 0


def test_a_merge_keeps_the_first_signal_and_its_place_in_order() -> None:
    a, b = fold(events(6)), fold(events(1))
    assert merge_states(a, b).gpc_first_sequence == merge_states(b, a).gpc_first_sequence == 5
    assert merge_states(a, b).gpc_first_at == AT
