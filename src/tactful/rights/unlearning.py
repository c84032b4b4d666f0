"""Models forget an erased subject: the unlearning hooks an erasure calls (DESIGN invariant 11).

    erasure job ─ suppress ─ erase_stores ─▶ unlearn: each hook's `forget(subject ids)`
                                                ├─ FINISHED: the model equals one trained without them
                                                └─ PENDING:  still working; the job waits and asks again
                                              ─▶ destroy_keys ─▶ … ─▶ completed

Serving excludes the subject at once: its rows are gone when `unlearn` runs, so no decision can
read it even while a model is still forgetting in the background. The request is `completed` only
once every hook has said FINISHED. Until models are wired (the learning issue), `NO_MODELS` holds
no hook and the step finishes at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Unlearned(StrEnum):
    FINISHED = "finished"
    """The model no longer reflects the subjects (retrained, or the contribution subtracted)."""
    PENDING = "pending"
    """Forgetting is under way (a retraining in the background): ask again later."""


class Unlearning(Protocol):
    """One model's unlearning hook. `forget` is called again, with the same subjects, until it
    answers FINISHED: it must be idempotent, and cheap when asked again while still working."""

    @property
    def name(self) -> str: ...

    def forget(self, *, subject_ids: Sequence[uuid.UUID], at: datetime) -> Unlearned: ...


@dataclass(frozen=True)
class NothingLearned:
    """The do-nothing hook: a model that learned nothing from subjects has nothing to forget."""

    name: str = "none"

    def forget(self, *, subject_ids: Sequence[uuid.UUID], at: datetime) -> Unlearned:
        return Unlearned.FINISHED


NO_MODELS: tuple[Unlearning, ...] = ()
"""The hooks an erasure calls while no model learns from subjects."""
