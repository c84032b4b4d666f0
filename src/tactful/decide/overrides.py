"""What a person's review decided binds that person's later decisions (DESIGN §1, GDPR Art. 22(3)):
an experience whose decision about them a person overturned is not made about them again.

    decisions.decide ──the subject found──▶ significant experiences among the placements asked?
        none (most lineups) ──▶ nothing read
        some ──▶ Overturns(session, subject, those keys): one indexed query, in the decision's unit
                 of work, beside the seam's reads ──▶ frozenset of keys ──▶ engine.decide ──▶ walk
                 passes each over (`Skip.OVERTURNED`) and goes on down

The reviews are kept by `rights` (above `decide` in the layers), so this module names the read as a
`Protocol` and the HTTP shell hands `rights.review_records.overturned` in: no import runs upward,
and decision code still receives plain data, never a store. A read for a stranger (nobody found) is
never made: no review can name someone Tactful holds nothing about.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from tactful.decide.walk import Placement


class Overturns(Protocol):
    """The keys among `experiences` that a person's review overturned for `subject_id` (and every
    profile merged into it), read in the caller's session."""

    def __call__(
        self, session: Session, *, subject_id: uuid.UUID, experiences: frozenset[str]
    ) -> frozenset[str]: ...


def none(session: Session, *, subject_id: uuid.UUID, experiences: frozenset[str]) -> frozenset[str]:
    """The do-nothing reader: where no reviews are kept (a benchmark, a test of the walk alone)."""
    return frozenset()


def significant_of(placements: Sequence[Placement]) -> frozenset[str]:
    """The significant experiences among `placements`: the only ones a review can have overturned."""
    return frozenset[str]().union(*(p.significant for p in placements))


def overturned_for(
    session: Session,
    *,
    reader: Overturns,
    subject_id: uuid.UUID | None,
    placements: Sequence[Placement],
) -> frozenset[str]:
    """What `reader` says was overturned for the subject among the placements' significant
    experiences; no read at all for a stranger or when none of them is significant."""
    if subject_id is None:
        return frozenset()
    wanted = significant_of(placements)
    if not wanted:
        return frozenset()
    return reader(session, subject_id=subject_id, experiences=wanted)
