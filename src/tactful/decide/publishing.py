"""The publish check: whether an experience may go live, and the level it would serve at.

    definition ──▶ structure (checks.experience_problems: variations, content, schedule)
               ──▶ significant effect: refused until human review exists
               ──▶ audience condition ─┐  PublishChecks.condition: compile, problems + atoms read
               ──▶ each template ──────┤  PublishChecks.template: lint, problems + atoms read
                                       ▼
                   atoms read ──▶ every one declared by the catalog ──▶ level = the highest of theirs

Until the condition language and the templates are wired in, `PublishChecks()` reads no atoms from
either (`no_condition_check`, `no_template_check`): the structure is all that is checked, and the
level is `1:all`. An experience's level is computed from what it reads, never declared (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tactful.catalog.levels import highest
from tactful.catalog.model import Catalog
from tactful.decide.checks import Code, ExperienceData, Path, Problem, experience_problems, where
from tactful.types import Level


@dataclass(frozen=True)
class Analysis:
    """What a check of a condition or a template found: its problems and the atoms it reads."""

    problems: tuple[Problem, ...] = ()
    atoms: frozenset[str] = frozenset()


class ConditionCheck(Protocol):
    """Compiles an audience's condition: its problems (at `path`) and the atoms it reads."""

    def __call__(self, condition: Mapping[str, object], *, path: Path) -> Analysis: ...


class TemplateCheck(Protocol):
    """Lints one template: its problems (at `path`) and the atoms it reads."""

    def __call__(self, source: str, *, path: Path) -> Analysis: ...


def no_condition_check(condition: Mapping[str, object], *, path: Path) -> Analysis:
    """Stands in until the condition language is wired here: no problems, no atoms read."""
    return Analysis()


def no_template_check(source: str, *, path: Path) -> Analysis:
    """Stands in until the template lint is wired here: no problems, no atoms read."""
    return Analysis()


@dataclass(frozen=True)
class PublishChecks:
    """The checks that publishing calls beyond structure. `main` (or the caller) passes the real
    ones; the defaults do nothing."""

    condition: ConditionCheck = no_condition_check
    template: TemplateCheck = no_template_check
    human_review: bool = False
    """Whether human review and its admin queue exist; until then a significant-effect experience
    cannot be published (DESIGN §1, Art. 22)."""


@dataclass(frozen=True)
class PublishVerdict:
    """The outcome: publishable when there are no problems; `level` from the atoms read."""

    problems: tuple[Problem, ...]
    atoms: frozenset[str] = field(default=frozenset())
    level: Level = Level.ALL

    @property
    def ok(self) -> bool:
        return not self.problems


def level_of(atoms: Iterable[str], catalog: Catalog) -> Level:
    """The highest level among the catalog levels of `atoms` (`1:all` when none is read). Atoms the
    catalog does not declare are left out here; `check_publish` refuses them."""
    return highest([Level.ALL, *(catalog.atoms[a].level for a in atoms if a in catalog.atoms)])


def check_publish(
    experience: ExperienceData,
    *,
    channel: str,
    significant_effect: bool,
    audience: Mapping[str, object] | None,
    catalog: Catalog,
    now: datetime,
    checks: PublishChecks | None = None,
) -> PublishVerdict:
    """Whether `experience` may go live now. `audience` is its audience's condition (None: everyone)."""
    checks = checks or PublishChecks()
    problems = list(experience_problems(experience, channel=channel))
    if experience.ends_at is not None and experience.ends_at <= now:
        problems.append(
            Problem(
                ("ends_at",),
                Code.SCHEDULE_ENDED,
                "the schedule has already ended; move `ends_at` into the future, or leave it out",
            )
        )
    if significant_effect and not checks.human_review:
        problems.append(
            Problem(
                ("significant_effect",),
                Code.NEEDS_HUMAN_REVIEW,
                "an experience with a significant effect (a price, an eligibility) needs human review and "
                "a way to contest it, which this deployment does not offer yet; it cannot be published",
            )
        )
    analyses: list[tuple[Path, Analysis]] = []
    # The place where the condition language and the template lint are called.
    if audience is not None:
        analyses.append((("audience",), checks.condition(audience, path=("audience",))))
    for index, variation in enumerate(experience.variations):
        for name, source in variation.templates.items():
            path: Path = ("variations", index, "templates", name)
            analyses.append((path, checks.template(source, path=path)))
    atoms: set[str] = set()
    for path, analysis in analyses:
        problems += analysis.problems
        for atom in sorted(analysis.atoms - atoms - set(catalog.atoms)):
            problems.append(
                Problem(
                    path,
                    Code.UNDECLARED_ATOM,
                    f"{where(path)} reads "
                    f"{atom!r}, which the catalog does not declare; declare it in the catalog or stop "
                    "reading it",
                )
            )
        atoms |= analysis.atoms
    return PublishVerdict(tuple(problems), frozenset(atoms), level_of(atoms, catalog))
