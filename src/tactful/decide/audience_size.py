"""Audience size and singling out (DESIGN §3, invariant 7): a `1:many` audience serves only once it
has matched k distinct people in the last 30 days; until then it is in shadow (evaluated and
counted, never served).

    decide ──walk──▶ answers
       └──held_matches: each audience held to k of an experience that is otherwise a candidate
          (live, in schedule, within the Allowance), in shadow or serving, its condition over the
          SubjectView ──match──▶ AudienceSizes.record(sketch key, subject id, day)   (in memory,
                                                                 hashed when flushed)
    stored profiles ──audience_count (daily, and when an audience changes)──▶ the same sketches
    LineupHolder, at most once per interval ──flush──▶ SizeStore (a sketch per audience per day)
        ──count (union of the last 30 days)──▶ shadow audiences at k serve; once a day (UTC) and
          after a reload, every audience held to k is counted again: one below k goes back to shadow

Only `1:many` audiences are held to k: that level may rest on a legitimate interest, for coarse
attributes that must not single a person out. An audience that reads something higher rests on the
person's consent to be personalised at that level; one that reads nothing (`1:all`) cannot single
anyone out. A serving audience goes on being counted, so that its count stays a count of the last
30 days rather than decaying once it serves.

Counting keeps no row per subject: each match adds a keyed hash (HMAC under a system key of the
keystore, the same on every process) to a HyperLogLog sketch (`sketch.py`, or Redis's own). Sketches
are kept by the audience's key and a digest of its condition, so a changed condition starts in
shadow again.

**One person, one count.** What is hashed is the stored subject's internal id: Tactful's one
canonical identifier of a person. It keeps its value as identifiers join it (an anonymous visitor
who signs up keeps their subject), and a merge leaves the survivor's, one of the ids the person
already had, so no link ever makes a new label. A stranger (nothing stored under the ids the request
names) is not counted at all: their user id or anonymous id would be a second label once the first
event stores them as a subject. The estimate from stored profiles (`audience_count`) hashes the same
subject id, so a person it counts and a decision counts is one. What remains is what Tactful does
not know yet: a person whose ids were stored as two subjects (a second device used before signing in
on it, an anonymous id whose link to the user is pending) counts at most once per such subject, and
exactly once when their ids were stored as one. Everything left out errs low: an audience stays in
shadow longer, never shorter.

Where the sketches live (`audience_store.py`): Redis (PFADD, PFCOUNT over the day keys) when Redis is
configured, so processes share them at once; otherwise a table of compressed registers in the main
database, which every process of one database shares and which survives a restart (a sketch held in
process would start from zero at every restart and differ between workers). Matches wait in this
process's memory between flushes (a second at most), deduplicated, as subject ids that the flush
hashes; beyond `limit` new ones are dropped (counted too low, the safe side).

Erasure has nothing here to reach (`rights.registry` says why): registers cannot be told apart per
person, and a match waits in memory for a second at most before it is folded in. An erased person
stays counted in the days they matched until those days leave the window, as a number, not a
record; the next pass over stored profiles no longer finds them, nor does any decision.
"""

from __future__ import annotations

import hmac
import logging
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from tactful.catalog.model import Catalog
from tactful.decide import conditions
from tactful.decide.conditions import Match
from tactful.decide.levels import held_to_k, reach
from tactful.decide.sketch import sketch_key
from tactful.decide.walk import Placement, Skip, refusal
from tactful.policy.allowance import Allowance
from tactful.types import Level

log = logging.getLogger(__name__)

WINDOW_DAYS = 30
HASH_KEY_NAME = "audience-sizes"
"""The keystore's system key under which subjects are hashed before they are counted."""

Batch = Mapping[tuple[str, date], Collection[bytes]]
"""Keyed hashes of subjects, by (sketch key, day)."""


@dataclass(frozen=True)
class Size:
    """What the management API says of an audience: its estimated distinct subjects (30 days) and
    whether it may serve."""

    estimated: int
    serving: bool


class SizeStore(Protocol):
    """Where the sketches are kept: one per sketch key and day."""

    def add(self, session: Session, batch: Batch) -> None: ...

    def count(self, session: Session, keys: Collection[str], *, today: date) -> dict[str, float]:
        """The estimated distinct subjects of each sketch key over the window ending `today`."""
        ...


class Sizing(Protocol):
    """By audience key, given its condition: its size and whether it serves."""

    def __call__(
        self, session: Session, audiences: Mapping[str, Mapping[str, Any]]
    ) -> Mapping[str, Size]: ...


NOT_MEASURED = Size(0, False)
"""What a caller that does not measure sizes reports."""


class AudienceSizes:
    """This process's matches not yet stored, the store, and the threshold `k`. `secret` reads the
    hashing key (once, when first needed)."""

    def __init__(
        self, store: SizeStore, *, k: int, secret: Callable[[], bytes], limit: int = 100_000
    ) -> None:
        self.store, self.k, self.limit = store, k, limit
        self._secret_of = secret
        self._secret: bytes | None = None
        self._pending: dict[tuple[str, date], set[uuid.UUID]] = {}
        self._held = 0
        self.dropped = 0
        self._lock = threading.Lock()

    def digest(self, subject_id: uuid.UUID) -> bytes:
        """The keyed hash that counts this subject (only a stored subject is counted)."""
        if self._secret is None:
            self._secret = self._secret_of()
        return hmac.digest(self._secret, b"subject:" + subject_id.bytes, "sha256")

    def record(self, keys: Iterable[str], subject_id: uuid.UUID, *, day: date) -> None:
        """Note that this subject matched these sketch keys' audiences on `day` (hashed when flushed,
        so that a subject matching again before then costs a set lookup)."""
        with self._lock:
            for key in keys:
                held = self._pending.setdefault((key, day), set())
                if subject_id in held:
                    continue
                if self._held >= self.limit:
                    self.dropped += 1
                    continue
                held.add(subject_id)
                self._held += 1

    @property
    def waiting(self) -> bool:
        """Whether matches wait in this process to be stored (`flush`)."""
        with self._lock:
            return bool(self._pending)

    def held_for(self, subject_id: uuid.UUID) -> int:
        """How many of the subject's matches wait in this process, not yet counted (an export says so)."""
        with self._lock:
            return sum(1 for held in self._pending.values() if subject_id in held)

    def forget(self, subject_id: uuid.UUID) -> int:
        """Drop the subject's matches waiting in this process (erasure reaches them): what was
        counted already is a register in a sketch, no longer theirs; what waits is still their id."""
        with self._lock:
            dropped = 0
            for held in self._pending.values():
                if subject_id in held:
                    held.discard(subject_id)
                    dropped += 1
            self._held -= dropped
            return dropped

    def flush(self, session: Session) -> None:
        """Add the matches held in memory to the store (on failure they are dropped: counted low)."""
        with self._lock:
            pending, self._pending, self._held = self._pending, {}, 0
        if pending:
            self.store.add(
                session, {where: {self.digest(s) for s in held} for where, held in pending.items()}
            )

    def counts(self, session: Session, keys: Collection[str], *, today: date) -> dict[str, float]:
        return self.store.count(session, keys, today=today) if keys else {}

    def sizes(
        self, session: Session, audiences: Mapping[str, tuple[str, Level]], *, today: date
    ) -> dict[str, Size]:
        """By audience key, given its sketch key and level: its size and whether it serves."""
        counted = self.counts(session, {key for key, _ in audiences.values()}, today=today)
        sizes = {}
        for audience, (key, level) in audiences.items():
            estimate = counted.get(key, 0.0)
            serving = estimate >= self.k if held_to_k(level) else True
            sizes[audience] = Size(round(estimate), serving)
        return sizes

    def sizing(self, catalog: Catalog, *, today: date) -> Sizing:
        """Sizes as the management API reports them, with levels computed under `catalog` (an
        audience whose condition no longer compiles serves nobody)."""

        def measure(session: Session, audiences: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Size]:
            levels: dict[str, tuple[str, Level]] = {}
            for audience, condition in audiences.items():
                made = conditions.compile(condition)
                if isinstance(made, conditions.Problems):
                    continue
                levels[audience] = (sketch_key(audience, condition), reach(catalog, made.atoms).level)
            sized = self.sizes(session, levels, today=today)
            return {audience: sized.get(audience, NOT_MEASURED) for audience in audiences}

        return measure


def held_matches(
    placements: Sequence[Placement],
    *,
    sketches: Mapping[str, str],
    compiled: Mapping[str, conditions.Compiled],
    allowance: Allowance,
    view: Mapping[str, object],
    at: datetime,
    known: Mapping[str, Match],
) -> frozenset[str]:
    """The sketch keys of the audiences held to k that this subject matches, in shadow or serving,
    among the experiences of `placements` that would otherwise be candidates. `sketches` maps an
    experience to its audience's sketch key; `compiled` an experience to its audience's condition;
    `known` what the walk's evaluations over this `view` answered, by experience key (those are
    not evaluated again)."""
    matched: set[str] = set()
    seen: set[str] = set()
    for placement in placements:
        for experience in placement.experiences:
            key = sketches.get(experience.key)
            if key is None or key in seen:
                continue
            why = refusal(experience, allowance=allowance, channel=placement.channel, at=at)
            if why is not None and why is not Skip.AUDIENCE_NOT_SERVED:
                continue  # not a candidate for this subject: their match would say nothing
            seen.add(key)
            condition = compiled.get(experience.key)
            if condition is None:
                continue
            match = known.get(experience.key)
            if match is None:
                match = condition.evaluate(view).match
            if match is Match.MATCH:
                matched.add(key)
    return frozenset(matched)
