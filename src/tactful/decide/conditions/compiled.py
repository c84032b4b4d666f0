"""A compiled condition, evaluated against a subject's view: match, no match, or withheld."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from tactful.policy.allowance import AtomNotAllowed

Test = Callable[[Mapping[str, object]], bool]
"""A condition over one record: the atoms read from a view, or the fields of an array's element."""


class Match(StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    WITHHELD = "withheld"
    """The condition names an atom the Allowance holds back: never a match, whatever the condition
    says (`$ne`, `$nin`, `$not` and `$exists: false` must not turn a refusal into a signal)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one evaluation found, and which atoms it read (for the decision log)."""

    match: Match
    atoms_read: frozenset[str]
    """The permitted atoms looked up, whether they had a value or not: an absent value decides too."""
    withheld: str | None = None
    """The first atom the view refused, when `match` is WITHHELD."""

    @property
    def matched(self) -> bool:
        return self.match is Match.MATCH


@dataclass(frozen=True, slots=True)
class Compiled:
    """A valid condition, ready to evaluate many times.

    `atoms` is every atom the condition names, found without evaluating it: what the condition can
    ever read, hence its level (`decide.levels`). Evaluation reads each of them once, in name order,
    before testing anything, so the answer never depends on which branch of an `$or` came first,
    and any withheld atom makes the whole condition WITHHELD.
    """

    atoms: frozenset[str]
    nodes: int
    """JSON values in the document (the size the caps measure)."""
    _order: tuple[str, ...] = field(repr=False)
    _test: Test = field(repr=False, compare=False)
    _answers: tuple[Outcome, Outcome] = field(init=False, repr=False, compare=False)
    """The two outcomes of an evaluation that reads every atom: NO_MATCH, MATCH (made once)."""

    def __post_init__(self) -> None:
        answers = (Outcome(Match.NO_MATCH, self.atoms), Outcome(Match.MATCH, self.atoms))
        object.__setattr__(self, "_answers", answers)

    def evaluate(self, view: Mapping[str, object]) -> Outcome:
        """Evaluate against `view` (a SubjectView, or any mapping of atom names to values).

        A view raises `AtomNotAllowed` for an atom outside its Allowance, and `KeyError` for a
        permitted atom with no value; a null value counts as no value."""
        values: dict[str, object] = {}
        for i, atom in enumerate(self._order):
            try:
                value = view[atom]
            except AtomNotAllowed:
                return Outcome(Match.WITHHELD, frozenset(self._order[:i]), atom)
            except KeyError:
                continue
            if value is not None:
                values[atom] = value
        return self._answers[1] if self._test(values) else self._answers[0]

    def matches(self, view: Mapping[str, object]) -> bool:
        """Whether the condition matches: False when it does not, and when an atom is withheld."""
        return self.evaluate(view).matched
