"""What a decision says about itself: a structured explanation made from codes when the decision is
made (and logged), turned into sentences only when someone reads it (`decide/wording.py`).

    Answer + Allowance + AtomUses ──explain()──▶ Explanation (codes, parameters, atoms, categories)
                                                    │ stored in the decision log
                                                    ▼
                                 GET /v1/decisions/{id}/explanation ──sentences()──▶ plain language

It names atoms and categories, purposes and legal bases, never an atom's value (DESIGN §4). "Why
not higher" lists, for each level above the answer, the reason: the gate's reason when the level is
above the ceiling, else what kept each experience there from answering. "What would have changed
the result" lists the consent choices that would have let a higher experience apply. "Overturned"
lists the experiences passed over, at any level, because a person's review overturned an earlier
decision of theirs about this subject: it is why the answer is what it is even when it is not why
it is no higher.

An answer's atoms, with their categories and weights, depend only on the atoms the walk read and
those of the experience that answered: `AtomUses` makes them once per such pair for one catalog and
shares them (a lineup holds one, beside its renderer), so a decision builds only what is its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tactful.catalog.model import Catalog
from tactful.decide.assignment import Strategy
from tactful.decide.walk import Answer, Skip
from tactful.policy.allowance import Allowance
from tactful.policy.verdicts import Code, Params, Reason, params_of
from tactful.records import quick
from tactful.types import LEVEL_PURPOSE, Level

_CONSENT_CODES = frozenset(
    {Code.CONSENT_MISSING, Code.OPTED_OUT, Code.EXPLICIT_MISSING, Code.STORING_NEEDS_CONSENT}
)
"""Reasons a person can change by a consent choice (the others are law, age or their own objection);
`decide.wording.CHANGES` words each."""
_LEVELS = tuple(Level.from_rank(rank) for rank in range(len(Level)))
_PURPOSES_UP_TO = {
    level: tuple(LEVEL_PURPOSE[above] for above in _LEVELS[1 : level.rank + 1]) for level in _LEVELS
}
"""The purposes an answer at each level rests on: those of every level from `1:many` up to it."""
_ABOVE = {level: _LEVELS[level.rank + 1 :] for level in _LEVELS}


@quick
@dataclass(frozen=True)
class AtomUse:
    """One atom the decision read: its category, the purposes it was read for, and its weight in the
    answer (an equal share among the atoms of the experience that answered; 0 for atoms read only
    to rule an experience out)."""

    atom: str
    category: str
    weight: float


def atom_uses(
    categories: Mapping[str, str], read: frozenset[str], answered: frozenset[str]
) -> tuple[AtomUse, ...]:
    """The atoms of an answer in name order: those read (weight 0 unless the answering experience
    reads them) and `answered`, the atoms of the experience that answered, in equal shares."""
    share = 1 / len(answered) if answered else 0.0
    return tuple(
        AtomUse(atom, categories.get(atom, "undeclared"), share if atom in answered else 0.0)
        for atom in sorted(read | answered)
    )


_USES_HELD = 4096
"""How many (read, answered) pairs keep their atoms (a lineup's experiences make far fewer)."""


class AtomUses:
    """`atom_uses` over one catalog's categories, made once per pair of atom sets and shared: the
    tuples are immutable, and the same experiences answer decision after decision."""

    def __init__(self, catalog: Catalog) -> None:
        self._categories = {name: str(atom.category) for name, atom in catalog.atoms.items()}
        self._made: dict[tuple[frozenset[str], frozenset[str]], tuple[AtomUse, ...]] = {}

    def __call__(self, read: frozenset[str], answered: frozenset[str]) -> tuple[AtomUse, ...]:
        made = self._made.get((read, answered))
        if made is None:
            made = atom_uses(self._categories, read, answered)
            if len(self._made) < _USES_HELD:
                self._made[read, answered] = made
        return made


@quick
@dataclass(frozen=True)
class Step:
    """Why the decision did not reach `level`: a code of the gate (`Code`) or of the walk (`Skip`)."""

    level: Level
    code: str
    params: Params = ()
    experience: str | None = None


@quick
@dataclass(frozen=True)
class Explanation:
    level: Level
    ceiling: Level
    strategy: Strategy
    exploration: bool
    """The answer was drawn at random (a split or a bandit's exploration), not chosen for the person."""
    holdout: bool
    atoms: tuple[AtomUse, ...]
    legal_basis: Mapping[str, str]
    """The purposes the answer rests on, each with its legal basis."""
    not_higher: tuple[Step, ...]
    would_change: tuple[Reason, ...]
    consent_downgrade: bool
    significant: bool = False
    """The answer has a significant effect (DESIGN §1): the person may ask for human review and
    contest it. In the JSON form only when true, so that every other explanation reads as before."""
    overturned: tuple[Step, ...] = ()
    """Experiences passed over because a person's review overturned an earlier decision of theirs
    about this subject (`Skip.OVERTURNED`), at any level. In the JSON form only when there are any."""

    def to_json(self) -> dict[str, object]:
        made: dict[str, object] = {
            "level": str(self.level),
            "ceiling": str(self.ceiling),
            "strategy": str(self.strategy),
            "exploration": self.exploration,
            "holdout": self.holdout,
            "atoms": [{"atom": a.atom, "category": a.category, "weight": a.weight} for a in self.atoms],
            "legal_basis": dict(self.legal_basis),
            "not_higher": [
                {"level": str(s.level), "code": s.code, "params": dict(s.params), "experience": s.experience}
                for s in self.not_higher
            ],
            "would_change": [{"code": str(r.code), "params": dict(r.params)} for r in self.would_change],
            "consent_downgrade": self.consent_downgrade,
        }
        if self.significant:
            made["significant"] = True
        if self.overturned:
            made["overturned"] = [
                {"level": str(s.level), "code": s.code, "experience": s.experience} for s in self.overturned
            ]
        return made

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Explanation:
        """The explanation `to_json` wrote (as the decision log keeps it)."""
        return cls(
            level=Level(raw["level"]),
            ceiling=Level(raw["ceiling"]),
            strategy=Strategy(raw["strategy"]),
            exploration=bool(raw["exploration"]),
            holdout=bool(raw["holdout"]),
            atoms=tuple(AtomUse(a["atom"], a["category"], float(a["weight"])) for a in raw["atoms"]),
            legal_basis={str(k): str(v) for k, v in raw["legal_basis"].items()},
            not_higher=tuple(
                Step(Level(s["level"]), s["code"], params_of(s["params"]), s.get("experience"))
                for s in raw["not_higher"]
            ),
            would_change=tuple(Reason(Code(c["code"]), params_of(c["params"])) for c in raw["would_change"]),
            consent_downgrade=bool(raw["consent_downgrade"]),
            significant=bool(raw.get("significant", False)),
            overturned=tuple(
                Step(Level(s["level"]), s["code"], (), s.get("experience")) for s in raw.get("overturned", ())
            ),
        )


def explain(
    answer: Answer, *, allowance: Allowance, uses: AtomUses, answered_atoms: frozenset[str]
) -> Explanation:
    """The explanation of `answer`; `answered_atoms` are the atoms of the experience that answered,
    `uses` the catalog's `AtomUses`."""
    basis: dict[str, str] = {}
    for purpose in _PURPOSES_UP_TO[answer.level]:
        verdict = allowance.purposes.get(purpose)
        if verdict is not None and verdict.allowed:
            basis[str(purpose)] = verdict.legal_basis or str(verdict.code)
    steps: list[Step] = []
    changes: dict[Reason, None] = {}
    for level in _ABOVE[answer.level]:
        here = [p for p in answer.passed if p.level is level]
        if level > allowance.ceiling:
            reason = allowance.level_reasons.get(level)
            if reason is not None:
                steps.append(Step(level, str(reason.code), reason.params))
            if here:
                # An experience waited at this level: every consent choice missing from the ceiling
                # up to here would have let it apply (a level needs the ones below it too).
                for below in range(allowance.ceiling.rank + 1, level.rank + 1):
                    missing = allowance.level_reasons.get(Level.from_rank(below))
                    if missing is not None and missing.code in _CONSENT_CODES:
                        changes[missing] = None
            continue
        for passed in here:
            if passed.skip is Skip.ATOMS_WITHHELD or passed.skip is Skip.CHANNEL_CONSENT:
                for reason in passed.reasons:
                    steps.append(Step(level, str(reason.code), reason.params, passed.experience))
                    if reason.code in _CONSENT_CODES:
                        changes[reason] = None
            else:
                steps.append(Step(level, str(passed.skip), (), passed.experience))
    return Explanation(
        level=answer.level,
        ceiling=answer.ceiling,
        strategy=answer.strategy,
        exploration=answer.strategy in (Strategy.SPLIT, Strategy.BANDIT),
        holdout=answer.strategy is Strategy.HOLDOUT,
        atoms=uses(answer.atoms_read, answered_atoms),
        legal_basis=basis,
        not_higher=tuple(steps),
        would_change=tuple(changes),
        consent_downgrade=answer.downgraded,
        significant=answer.significant,
        overturned=tuple(
            Step(p.level, str(p.skip), (), p.experience) for p in answer.passed if p.skip is Skip.OVERTURNED
        )
        if answer.passed
        else (),
    )
