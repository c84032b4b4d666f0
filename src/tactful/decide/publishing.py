"""The publish check: whether an experience may go live, and the level it would serve at.

    definition ──▶ structure (checks.experience_problems: variations, content, schedule)
               ──▶ significant effect: only where human review exists, never reading a
                   special category (DESIGN §1; the walk holds the rest: explicit consent, adults,
                   a fallback that is not significant)
               ──▶ audience condition ─┐  conditions.compile: problems, and the atoms it can read
               ──▶ each variation ─────┤  render.lint_variation / check_email: problems, atoms read
                                       ▼
                   atoms read ──▶ every one declared by the catalog ──▶ level (`levels.reach`)

An experience's level is computed from what it reads, never declared (DESIGN §2). `reads` is the
same analysis without the structural checks: serving uses it to compute the level again from the
audience as it is now (audiences change without a new version of the experiences that use them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from tactful.catalog.model import Catalog
from tactful.decide import conditions
from tactful.decide.checks import Code, ExperienceData, Path, Problem, experience_problems, where
from tactful.decide.levels import reach
from tactful.render import JSON, TemplateProblem, check_email, lint_variation
from tactful.types import Level


@dataclass(frozen=True)
class PublishChecks:
    """What the deployment offers beyond the checks themselves."""

    human_review: bool = False
    """Whether human review and its admin queue exist; until then a significant-effect experience
    cannot be published (DESIGN §1, Art. 22)."""


@dataclass(frozen=True)
class Reads:
    """What an experience reads: its atoms (audience and templates) and the problems found on the way."""

    problems: tuple[Problem, ...] = ()
    atoms: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PublishVerdict:
    """The outcome: publishable when there are no problems; `level` from the atoms read."""

    problems: tuple[Problem, ...]
    atoms: frozenset[str] = field(default=frozenset())
    level: Level = Level.ALL

    @property
    def ok(self) -> bool:
        return not self.problems


def condition_problems(condition: object, *, path: Path) -> tuple[conditions.Compiled | None, list[Problem]]:
    """A condition compiled, or its problems at `path` (each with the JSON pointer inside it)."""
    compiled = conditions.compile(condition)
    if isinstance(compiled, conditions.Problems):
        return None, [
            Problem((*path, *p.path), Code.CONDITION_INVALID, f"{p.message} ({p.code})")
            for p in compiled.items
        ]
    return compiled, []


def _template_problem(problem: TemplateProblem, path: Path) -> Problem:
    inside: Path = (*path, "templates", problem.field) if problem.field else path
    code = Code.UNDECLARED_ATOM if problem.code == "undeclared_atom" else Code.TEMPLATE_INVALID
    return Problem(inside, code, str(problem))


def reads(
    experience: ExperienceData, *, channel: str, audience: Mapping[str, object] | None, catalog: Catalog
) -> Reads:
    """Every atom `experience` reads under its audience's condition (None: everyone) and its
    variations' templates, with the problems of each and an atom the catalog does not declare."""
    problems: list[Problem] = []
    atoms: set[str] = set()
    if audience is not None:
        compiled, found = condition_problems(audience, path=("audience",))
        problems += found
        if compiled is not None:
            for atom in sorted(reach(catalog, compiled.atoms).undeclared):
                problems.append(
                    Problem(
                        ("audience",),
                        Code.UNDECLARED_ATOM,
                        f"{where(('audience',))} reads {atom!r}, which the catalog does not declare; "
                        "declare it in the catalog or stop reading it",
                    )
                )
            atoms |= compiled.atoms
    for index, variation in enumerate(experience.variations):
        # Plain content is linted too: a placeholder pasted into copy would reach people (invariant 9).
        # An e-mail's shape is a structural check; the e-mail lint adds which fields take templates.
        lint = check_email if channel == "email" and variation.templates else lint_variation
        check = lint(cast(JSON, variation.content), variation.templates, catalog=catalog)
        problems += [_template_problem(p, ("variations", index)) for p in check.problems]
        atoms |= check.atoms
    return Reads(tuple(problems), frozenset(atoms))


def reads_special(catalog: Catalog, atoms: frozenset[str]) -> bool:
    """Whether any of `atoms` is of a special category (GDPR Art. 9) in `catalog`."""
    declared = catalog.atoms
    return any((atom := declared.get(name)) is not None and atom.special for name in atoms)


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
    read = reads(experience, channel=channel, audience=audience, catalog=catalog)
    problems += read.problems
    if significant_effect and reads_special(catalog, read.atoms):
        special = sorted(a for a in read.atoms if a in catalog.atoms and catalog.atoms[a].special)
        problems.append(
            Problem(
                ("significant_effect",),
                Code.SIGNIFICANT_SPECIAL,
                f"an experience with a significant effect never reads a special category of data, and "
                f"this one reads {', '.join(special)}; stop reading it, or clear `significant_effect`",
            )
        )
    return PublishVerdict(tuple(problems), read.atoms, reach(catalog, read.atoms).level)
