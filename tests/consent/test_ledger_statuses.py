"""`ledger.statuses_at` answers what the fold answers, ties and late entries included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tactful.consent import ledger
from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import LedgerEntry, TargetKind
from tactful.policy.state import ConsentSource
from tactful.types import Purpose, new_id

T0 = datetime(2026, 3, 3, 14, 2, tzinfo=UTC)
# Few distinct times, sequences and purposes, so that ties are common.
_TIMES = st.integers(0, 2).map(lambda m: T0 + timedelta(minutes=m))
_PURPOSES = st.sampled_from([Purpose.ANALYTICS, Purpose.SALE_OR_SHARE, Purpose.SEGMENTS])


@st.composite
def _entry(draw: st.DrawFn) -> LedgerEntry:
    kind = draw(st.sampled_from([TargetKind.PURPOSE, TargetKind.PURPOSE, TargetKind.LEGITIMATE_INTEREST]))
    return LedgerEntry(
        id=new_id(),
        sequence=draw(st.integers(1, 2)),
        at=draw(_TIMES),
        kind=kind,
        target=draw(_PURPOSES).value if kind is TargetKind.PURPOSE else None,
        action=draw(st.sampled_from(list(ConsentAction))),
        source=draw(st.sampled_from([ConsentSource.API, ConsentSource.GPC, ConsentSource.TCF])),
        notice_version=draw(st.sampled_from([None, "v1", "v2"])),
        method=None,
        proof=draw(st.sampled_from([{}, {"request_id": "a"}, {"request_id": "b"}])),
    )


@settings(max_examples=300)
@given(entries=st.lists(_entry(), max_size=8), at=_TIMES)
def test_statuses_at_match_the_fold(entries: list[LedgerEntry], at: datetime) -> None:
    folded = ledger.fold_entries(entries)
    assert ledger.statuses_at(entries, at) == {p: folded.state(p, at=at).status for p in Purpose}
