"""One decision request, from the seam's answer to what is served and logged: for each placement the
walk, its explanation in codes, a fresh decision id, and the log entry.

    SubjectAllowance (the seam) ──view()──▶ walk(placement) per placement ──▶ Answer
                                                     │
                                   explain() ◀───────┘──▶ Served(decision id, answer, explanation)
                                                                 └──▶ Entry for the decision log

Pure apart from the random decision ids: no database, no HTTP. The caller reads the subject through
the one seam (`consent.gatekeeper.subject_allowance`), with the experiences a person's review
overturned for them (`decide.overrides`), and hands the entries to the `Logbook`.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tactful.decide.explain import AtomUses, Explanation, explain
from tactful.decide.logbook import Entry
from tactful.decide.walk import Answer, Placement, Steps, walk
from tactful.policy.allowance import Allowance
from tactful.records import quick

DECISION_ID_BYTES = 16
"""128 random bits: a decision id is a capability to read its explanation, so it is unguessable."""


def new_decision_ids(count: int) -> list[str]:
    """`count` decision ids, from one draw of the system's random source (one call per request)."""
    drawn = secrets.token_bytes(DECISION_ID_BYTES * count)
    return [
        "dc_" + base64.urlsafe_b64encode(drawn[i : i + DECISION_ID_BYTES]).rstrip(b"=").decode("ascii")
        for i in range(0, len(drawn), DECISION_ID_BYTES)
    ]


@quick
@dataclass(frozen=True)
class Served:
    decision_id: str
    answer: Answer
    explanation: Explanation
    explained: dict[str, object]
    """The explanation's JSON form, made once with it: the response and the log entry read it."""

    def entry(
        self,
        *,
        subject_id: uuid.UUID | None,
        at: datetime,
        model_version: str | None = None,
        language: str | None = None,
    ) -> Entry:
        """The decision log's entry for this answer (names, codes and numbers; no atom values), with
        the language its explanation is to be read in when the request named a shipped one."""
        answer = self.answer
        explanation = dict(self.explained)
        if language is not None:
            explanation["language"] = language
        return Entry(
            decision_id=self.decision_id,
            subject_id=subject_id,
            placement=answer.placement,
            experience=answer.experience,
            experience_version=answer.experience_version,
            variation=answer.variation,
            level=str(answer.level),
            strategy=str(answer.strategy),
            propensity=answer.propensity,
            atoms_read=tuple(sorted(answer.atoms_read)),
            purposes=tuple(sorted(self.explanation.legal_basis)),
            legal_basis=dict(self.explanation.legal_basis),
            explanation=explanation,
            decided_at=at,
            model_version=model_version,
        )


def decide(
    placements: Sequence[Placement],
    *,
    allowance: Allowance,
    view: Mapping[str, object],
    at: datetime,
    steps: Callable[[Placement], Steps],
    uses: AtomUses,
    overturned: frozenset[str] = frozenset(),
) -> list[Served]:
    """An answer for every placement, in the order asked, each explained and given an id; `steps`
    gives the walk's steps for a placement (rendering depends on its channel), `uses` the atoms of
    explanations (the lineup's, for its catalog); no answer comes from
    an experience in `overturned` (overturned on review for this subject)."""
    served = []
    ids = new_decision_ids(len(placements))
    for decision_id, placement in zip(ids, placements, strict=True):
        answer = walk(
            placement, allowance=allowance, view=view, at=at, steps=steps(placement), overturned=overturned
        )
        explanation = explain(answer, allowance=allowance, uses=uses, answered_atoms=answer.experience_atoms)
        served.append(Served(decision_id, answer, explanation, explanation.to_json()))
    return served
