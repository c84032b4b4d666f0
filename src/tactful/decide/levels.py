"""The level of what a decision reads, computed from the catalog, never declared (DESIGN §2).

An audience's condition, an experience's templates and its strategy's features each read atoms;
the level of the whole is the highest level among them, as the catalog derives it
(`catalog.levels`). An atom the catalog does not declare has no level, no purposes and no category:
nothing may read it, so whatever names one cannot be published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tactful.catalog.levels import highest
from tactful.catalog.model import Catalog
from tactful.decide.conditions import Compiled
from tactful.types import Level


@dataclass(frozen=True, slots=True)
class Reach:
    """How high a set of atoms reaches in the pyramid."""

    level: Level
    """The highest level among the declared atoms (`1:all` when there are none)."""
    top: frozenset[str]
    """The declared atoms at that level: what to name when saying why it is that high."""
    undeclared: frozenset[str]
    """Atoms the catalog does not declare: while there are any, nothing reading them is published."""

    @property
    def publishable(self) -> bool:
        return not self.undeclared


def reach(catalog: Catalog, atoms: Iterable[str]) -> Reach:
    """The level of reading `atoms` under `catalog`, and which of them it does not declare."""
    known = catalog.atoms
    names = frozenset(atoms)
    declared = {name: known[name].level for name in names if name in known}
    level = highest((Level.ALL, *declared.values()))
    top = frozenset(name for name, at in declared.items() if at is level and at is not Level.ALL)
    return Reach(level=level, top=top, undeclared=names - declared.keys())


def condition_reach(catalog: Catalog, condition: Compiled) -> Reach:
    """The level of a compiled condition: that of every atom it can read, evaluated or not."""
    return reach(catalog, condition.atoms)


def held_to_k(level: Level) -> bool:
    """Whether an audience of this level must reach k subjects before it serves."""
    return level is Level.MANY
