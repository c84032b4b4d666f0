"""The consent state: what the fold of a subject's ledger says, at any moment.

    ConsentState                       one Timeline per purpose, per explicit consent (special
        │                              categories, `significant_decisions`, `special_feature_1`), for
        │                              parental consent and for legitimate interest (an objection)
        │ .state(purpose, at=T)        the deciding record at T: status, source, proof
        │ .snapshot(at=T)              everything the gate reads, in one small value (cached for
        ▼                              any T after the last change; before it, read from .as_of(T))
    ConsentSnapshot

The state is built by `tactful.consent.fold` and never by hand in production code; it holds no
subject id, so it can be logged or cached without naming anyone.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple

from tactful.types import Purpose

SIGNIFICANT_DECISIONS = "significant_decisions"
"""The explicit consent that Art. 22(2)(c) asks for a decision with a significant effect."""

SPECIAL_FEATURE_1 = "special_feature_1"
"""TCF special feature 1 (precise geolocation), kept as an explicit opt-in flag."""

_EMPTY: Mapping[str, str] = MappingProxyType({})


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    NOT_SET = "not_set"

    @property
    def refused(self) -> bool:
        return self is ConsentStatus.DENIED or self is ConsentStatus.WITHDRAWN


class ConsentSource(StrEnum):
    API = "api"
    BANNER = "banner"
    TCF = "tcf"
    GPC = "gpc"
    SEGMENT_CONTEXT = "segment_context"
    RUDDERSTACK_CONTEXT = "rudderstack_context"
    IMPORT = "import"


EXPLICIT_SOURCES: frozenset[ConsentSource] = frozenset({ConsentSource.API, ConsentSource.BANNER})
"""Sources that record a person's own, deliberate choice. TC strings and event context are re-sent
with every request, so a grant from them after a GPC signal may only replay an older choice: it
does not lift what GPC set."""


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One folded ledger event: the choice, when the server received it, and its proof."""

    status: ConsentStatus
    at: datetime
    source: ConsentSource
    notice_version: str | None = None
    proof: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    method: str | None = None
    """For parental consent: how the parent was verified (`credit_card`, `signed_form`, ...)."""
    sequence: int = 0

    @property
    def proof_ref(self) -> str | None:
        """A short reference to the proof: the request id when recorded, else the first entry."""
        if "request_id" in self.proof:
            return self.proof["request_id"]
        return next(iter(self.proof.values()), None)

    @property
    def explicit(self) -> bool:
        return self.source in EXPLICIT_SOURCES

    def order_key(self) -> tuple[object, ...]:
        """A total order on records, so that ties break the same way whatever the input order.
        (Members of these enums are strings, so they compare without `.value`.)"""
        proof = tuple(sorted(self.proof.items())) if self.proof else ()
        return (self.at, self.sequence, self.status, self.source, self.notice_version or "",
                self.method or "", proof)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PurposeState:
    """The answer to "what was the state of P at T?": the status and the record that decided it."""

    status: ConsentStatus
    record: ConsentRecord | None = None

    @property
    def granted(self) -> bool:
        return self.status is ConsentStatus.GRANTED

    @property
    def at(self) -> datetime | None:
        return self.record.at if self.record else None

    @property
    def source(self) -> ConsentSource | None:
        return self.record.source if self.record else None

    @property
    def proof_ref(self) -> str | None:
        return self.record.proof_ref if self.record else None


NOT_SET = PurposeState(ConsentStatus.NOT_SET)
_RECORD_AT = attrgetter("at")


@dataclass(frozen=True, slots=True)
class Timeline:
    """Records in the order they took effect. `times[i]` is when `records[i]` took effect: the
    record's own time after a fold, or the moment a merge made it the deciding one."""

    times: tuple[datetime, ...] = ()
    records: tuple[ConsentRecord, ...] = ()

    @classmethod
    def of(cls, records: tuple[ConsentRecord, ...]) -> Timeline:
        return cls(tuple(map(_RECORD_AT, records)), records)

    def at(self, when: datetime) -> ConsentRecord | None:
        """The record in effect at `when` (events at exactly `when` count), or None."""
        times = self.times
        if not times:
            return None
        if when >= times[-1]:
            return self.records[-1]
        index = bisect_right(times, when)
        return self.records[index - 1] if index else None

    def until(self, when: datetime) -> Timeline:
        """The timeline as it stood at `when`: the records that took effect later left out."""
        kept = bisect_right(self.times, when)
        return self if kept == len(self.times) else Timeline(self.times[:kept], self.records[:kept])

    @property
    def latest(self) -> ConsentRecord | None:
        return self.records[-1] if self.records else None

    def __bool__(self) -> bool:
        return bool(self.records)


EMPTY_TIMELINE = Timeline()


PURPOSE_BIT: Mapping[Purpose, int] = MappingProxyType({p: 1 << i for i, p in enumerate(Purpose)})
"""Sets of purposes as integers: bit i is the i-th purpose in `Purpose` order."""


class ConsentSnapshot(NamedTuple):
    """What the gate reads of a consent state at one moment.

    Made on every evaluation of a state not seen before, so it is a plain immutable tuple (cheaper
    to make than a frozen dataclass) and sets of purposes are `PURPOSE_BIT` masks.
    """

    ordered: tuple[ConsentStatus, ...]
    """Each purpose's status, in `Purpose` order."""
    tcf: int
    """Purposes whose deciding record came from a TC string (special feature 1 then gates
    precise location)."""
    explicit_given: frozenset[str]
    explicit_refused: frozenset[str]
    parental_method: str | None
    """The verification method of the parental consent in effect; None when there is none."""
    objected: bool
    gpc_at: datetime | None
    explicit_after_gpc: int
    """Purposes granted by the subject's own act (API or banner) after GPC was first applied."""

    def status(self, purpose: Purpose) -> ConsentStatus:
        return self.ordered[_POSITION[purpose]]


_POSITION: Mapping[Purpose, int] = MappingProxyType({p: i for i, p in enumerate(Purpose)})
_NOTHING: frozenset[str] = frozenset()
_GRANTED, _NOT_SET, _TCF = ConsentStatus.GRANTED, ConsentStatus.NOT_SET, ConsentSource.TCF
_UNSET = (_NOT_SET,) * len(_POSITION)
_new_tuple = tuple.__new__
_POSITIONS = dict(_POSITION)
"""`_POSITION` without the proxy, for the loop that reads a state."""


def _snapshot(state: ConsentState) -> ConsentSnapshot:
    """What the gate reads of `state` after its last change (`ConsentState.as_of` gives the state
    at an earlier moment)."""
    # On every cold evaluation of the gate: one pass over the timelines the state has (never
    # empty), nothing built for what it never recorded, each latest record read in line.
    gpc_at = state.gpc_first_at
    ordered = list(_UNSET)
    tcf = after_gpc = 0
    for purpose, timeline in state._purposes.items():
        record = timeline.records[-1]
        position = _POSITIONS[purpose]
        ordered[position] = status = record.status
        source = record.source
        if source is _TCF:
            tcf |= 1 << position
        elif (
            gpc_at is not None
            and status is _GRANTED
            and source in EXPLICIT_SOURCES
            and (record.at, record.sequence) > (gpc_at, state.gpc_first_sequence)
        ):
            # Ordered by receipt: a choice made in the same request as the signal, recorded after
            # it, counts as after it.
            after_gpc |= 1 << position
    given = refused = _NOTHING
    if state._explicit:
        granted: list[str] = []
        not_granted: list[str] = []
        for name, timeline in state._explicit.items():
            (granted if timeline.records[-1].status is _GRANTED else not_granted).append(name)
        given = frozenset(granted) if granted else _NOTHING
        refused = frozenset(not_granted) if not_granted else _NOTHING
    records = state.parental.records
    method = records[-1].method if records and records[-1].status is _GRANTED else None
    records = state.legitimate_interest.records
    objected = bool(records) and records[-1].status.refused
    # The fields in order, made as a tuple: the named tuple's own constructor is a Python function
    # that would cost more than a tenth of this one.
    return _new_tuple(
        ConsentSnapshot, (tuple(ordered), tcf, given, refused, method, objected, gpc_at, after_gpc)
    )


@dataclass(frozen=True)
class ConsentState:
    """The folded consent ledger of one subject. Answers for any moment, not only for now."""

    purposes: Mapping[Purpose, Timeline] = field(default_factory=dict)
    explicit: Mapping[str, Timeline] = field(default_factory=dict)
    """Explicit consents by name: a special category (`user.sensitive.health`),
    `significant_decisions`, or `special_feature_1`."""
    parental: Timeline = EMPTY_TIMELINE
    legitimate_interest: Timeline = EMPTY_TIMELINE
    """Refused = the subject objects to processing on legitimate interest (Art. 21)."""
    gpc_first_at: datetime | None = None
    """When a Global Privacy Control signal was first applied to this subject."""
    gpc_first_sequence: int = 0
    """The ledger sequence of that first signal: what was received at the same moment but recorded
    after it came after it."""
    _last_change: datetime | None = field(init=False, repr=False, compare=False, default=None)
    _current: list[ConsentSnapshot] = field(init=False, repr=False, compare=False, default_factory=list)
    _purposes: dict[Purpose, Timeline] = field(init=False, repr=False, compare=False, default_factory=dict)
    _explicit: dict[str, Timeline] = field(init=False, repr=False, compare=False, default_factory=dict)
    """The dicts behind `purposes` and `explicit`, which `_snapshot` walks without the proxy's toll."""

    def __post_init__(self) -> None:
        # A timeline without records says nothing: leaving it out keeps the reading of the state
        # (`_snapshot`) free of a check per timeline.
        purposes = {p: t for p, t in self.purposes.items() if t.records}
        explicit = {n: t for n, t in self.explicit.items() if t.records}
        object.__setattr__(self, "purposes", MappingProxyType(purposes))
        object.__setattr__(self, "explicit", MappingProxyType(explicit))
        object.__setattr__(self, "_purposes", purposes)
        object.__setattr__(self, "_explicit", explicit)
        every = [*self.purposes.values(), *self.explicit.values(), self.parental, self.legitimate_interest]
        times = [t.times[-1] for t in every if t.times]
        if self.gpc_first_at is not None:
            times.append(self.gpc_first_at)
        object.__setattr__(self, "_last_change", max(times, default=None))

    # -- questions ---------------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        """Nothing recorded (no choice, no signal): the same snapshot at every moment."""
        return self._last_change is None

    def state(self, purpose: Purpose, *, at: datetime) -> PurposeState:
        record = self.purposes.get(purpose, EMPTY_TIMELINE).at(at)
        return NOT_SET if record is None else PurposeState(record.status, record)

    def granted(self, purpose: Purpose, *, at: datetime) -> bool:
        return self.state(purpose, at=at).granted

    def explicit_state(self, name: str, *, at: datetime) -> PurposeState:
        record = self.explicit.get(name, EMPTY_TIMELINE).at(at)
        return NOT_SET if record is None else PurposeState(record.status, record)

    def parental_state(self, *, at: datetime) -> PurposeState:
        record = self.parental.at(at)
        return NOT_SET if record is None else PurposeState(record.status, record)

    def objected(self, *, at: datetime) -> bool:
        record = self.legitimate_interest.at(at)
        return record is not None and record.status.refused

    def gpc_applied(self, *, at: datetime) -> bool:
        return self.gpc_first_at is not None and self.gpc_first_at <= at

    def sale_or_share_opted_out(self, *, at: datetime) -> bool:
        """Opted out by a refusal, or by GPC until `sale_or_share` itself is explicitly granted after it."""
        snapshot = self.snapshot(at=at)
        if snapshot.status(Purpose.SALE_OR_SHARE).refused:
            return True
        lifted = snapshot.explicit_after_gpc & PURPOSE_BIT[Purpose.SALE_OR_SHARE]
        return snapshot.gpc_at is not None and not lifted

    def snapshot(self, *, at: datetime) -> ConsentSnapshot:
        """What the gate reads at `at`. The state never changes, so the answer for any moment after
        the last change is computed once."""
        if self._last_change is None or at >= self._last_change:
            if not self._current:
                self._current.append(_snapshot(self))
            return self._current[0]
        return _snapshot(self.as_of(at))

    def as_of(self, when: datetime) -> ConsentState:
        """The state as it stood at `when`: every record that took effect later left out, and the
        GPC signal if it came later."""
        gpc_at = self.gpc_first_at
        return ConsentState(
            purposes={p: t.until(when) for p, t in self.purposes.items()},
            explicit={n: t.until(when) for n, t in self.explicit.items()},
            parental=self.parental.until(when),
            legitimate_interest=self.legitimate_interest.until(when),
            gpc_first_at=gpc_at if gpc_at is not None and gpc_at <= when else None,
            gpc_first_sequence=self.gpc_first_sequence if gpc_at is not None and gpc_at <= when else 0,
        )


EMPTY_STATE = ConsentState()
