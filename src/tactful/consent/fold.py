"""The pure fold of a consent ledger into `tactful.policy`'s consent state, and the merge of two
states when two profiles turn out to be one person.

    ConsentEvent, ConsentEvent, ...      append-only, as stored (no subject id here)
        │ fold()                         per target, ordered by server time, then ledger sequence
        ▼
    ConsentState                         answers "was P granted at T?" for any T
        │ merge_states(a, b)             per purpose the stricter state wins;
        ▼                                GPC, sale_or_share refusals and objections carry over
    ConsentState

No database, no clock: time comes with the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType

from tactful.policy.state import (
    EMPTY_TIMELINE,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    Timeline,
)
from tactful.types import Purpose

__all__ = ["ConsentAction", "ConsentEvent", "fold", "merge_states"]


class ConsentAction(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One ledger entry. Exactly one target: a `purpose`, an `explicit` consent (a special
    category, `significant_decisions`, `special_feature_1`), `parental` consent (with its
    verification `method`), or `legitimate_interest` (refusing it is an objection, Art. 21;
    granting it lifts the objection)."""

    action: ConsentAction
    at: datetime
    source: ConsentSource
    purpose: Purpose | None = None
    explicit: str | None = None
    parental: bool = False
    legitimate_interest: bool = False
    notice_version: str | None = None
    proof: Mapping[str, str] = field(default_factory=dict)
    method: str | None = None
    sequence: int = 0
    """The ledger's own order, which breaks ties between events received at the same time."""

    def __post_init__(self) -> None:
        targets = (
            self.purpose is not None,
            self.explicit is not None,
            self.parental,
            self.legitimate_interest,
        )
        if sum(targets) != 1:
            raise ValueError(
                "a consent event has exactly one target: purpose, explicit, parental or legitimate_interest"
            )
        if self.at.tzinfo is None:
            raise ValueError("consent events carry timezone-aware server times")

    def record(self) -> ConsentRecord:
        # Positional: made for every event of every fold (status, at, source, notice_version,
        # proof, method, sequence).
        return ConsentRecord(
            _STATUS[self.action],
            self.at,
            self.source,
            self.notice_version,
            MappingProxyType(dict(self.proof)) if self.proof else _NO_PROOF,
            self.method,
            self.sequence,
        )


_STATUS: Mapping[ConsentAction, ConsentStatus] = MappingProxyType(
    {action: ConsentStatus(action.value) for action in ConsentAction}
)
_NO_PROOF: Mapping[str, str] = MappingProxyType({})


def _order(record: ConsentRecord) -> tuple[object, ...]:
    # At the same time and sequence, a refusal sorts last and so decides: the cautious reading.
    key = record.order_key()
    return (key[0], key[1], record.status is not ConsentStatus.GRANTED, *key[2:])


_WHEN = attrgetter("at", "sequence")


def _timeline(records: list[ConsentRecord]) -> Timeline:
    """One target's records in `_order`. Time and sequence decide almost always; only a ledger
    with two records of one target at the same time and sequence pays for the full order."""
    if len(records) > 1:
        records.sort(key=_WHEN)
        if len(set(map(_WHEN, records))) < len(records):
            records.sort(key=_order)
    return Timeline.of(tuple(records))


def fold(events: Iterable[ConsentEvent]) -> ConsentState:
    """The consent state a ledger describes, whatever order the events are given in."""
    purposes: dict[Purpose, list[ConsentRecord]] = {}
    explicit: dict[str, list[ConsentRecord]] = {}
    parental: list[ConsentRecord] = []
    interest: list[ConsentRecord] = []
    gpc_first: tuple[datetime, int] | None = None
    for event in events:
        record = event.record()
        if event.source is ConsentSource.GPC and (
            gpc_first is None or (event.at, event.sequence) < gpc_first
        ):
            gpc_first = (event.at, event.sequence)
        if event.purpose is not None:
            purposes.setdefault(event.purpose, []).append(record)
        elif event.explicit is not None:
            explicit.setdefault(event.explicit, []).append(record)
        elif event.parental:
            parental.append(record)
        else:
            interest.append(record)
    return ConsentState(
        purposes={p: _timeline(rs) for p, rs in purposes.items()},
        explicit={n: _timeline(rs) for n, rs in explicit.items()},
        parental=_timeline(parental) if parental else EMPTY_TIMELINE,
        legitimate_interest=_timeline(interest) if interest else EMPTY_TIMELINE,
        gpc_first_at=None if gpc_first is None else gpc_first[0],
        gpc_first_sequence=0 if gpc_first is None else gpc_first[1],
    )


# -- merging two subjects' states ---------------------------------------------------------------


def _strictness(record: ConsentRecord | None) -> int:
    if record is None:
        return 0
    return 2 if record.status.refused else 1


def _stricter(a: ConsentRecord | None, b: ConsentRecord | None) -> ConsentRecord | None:
    """Refused over granted over not set. Not set is the absence of a choice, so it does not cancel
    the other side's grant; equally strict records are ordered by value, so that the merge does not
    depend on which side is which."""
    sa, sb = _strictness(a), _strictness(b)
    if sa != sb:
        return a if sa > sb else b
    if a is None or b is None:
        return a or b
    return a if a.order_key() >= b.order_key() else b


def _merge(a: Timeline, b: Timeline) -> Timeline:
    if not b:
        return a
    if not a:
        return b
    times: list[datetime] = []
    records: list[ConsentRecord] = []
    for moment in sorted(set(a.times) | set(b.times)):
        chosen = _stricter(a.at(moment), b.at(moment))
        if chosen is not None and (not records or records[-1] != chosen):
            times.append(moment)
            records.append(chosen)
    return Timeline(tuple(times), tuple(records))


def merge_states(a: ConsentState, b: ConsentState) -> ConsentState:
    """The consent state of one person known as two subjects. Commutative; never grants at any
    moment what either side refused at that moment; the earlier GPC signal carries over."""
    gpc = [
        (state.gpc_first_at, state.gpc_first_sequence) for state in (a, b) if state.gpc_first_at is not None
    ]
    first = min(gpc, default=None)
    return ConsentState(
        purposes={
            p: _merge(a.purposes.get(p, EMPTY_TIMELINE), b.purposes.get(p, EMPTY_TIMELINE))
            for p in Purpose
            if p in a.purposes or p in b.purposes
        },
        explicit={
            n: _merge(a.explicit.get(n, EMPTY_TIMELINE), b.explicit.get(n, EMPTY_TIMELINE))
            for n in sorted(set(a.explicit) | set(b.explicit))
        },
        parental=_merge(a.parental, b.parental),
        legitimate_interest=_merge(a.legitimate_interest, b.legitimate_interest),
        gpc_first_at=None if first is None else first[0],
        gpc_first_sequence=0 if first is None else first[1],
    )
