"""What serves now: every placement with its live experiences, built from plain data into the walk's
plain types once, then reused by every decision until something changes (`lineup_store` reads the
model's tables and holds the lineup).

    placements (their defaults) ───────────────────┐
    experiences: the published version's snapshot ─┼─build─▶ Lineup: walk.Placement per key, each
    audiences' conditions by key ──────────────────┘         experience's compiled condition and
                                                             Allocation, its atoms and level (catalog)

An experience's atoms and level are computed here again, from its audience as it is now and the
catalog in force (`publishing.reads`), not taken from the snapshot of when it was published: an
audience can change after the experiences that use it were published, and an atom the catalog
stopped declaring is never in an Allowance, so an experience reading one never applies.

Namespaces: the model names an experience's namespace but no range in it; the live experiences of
one namespace share [0, 1) equally, in the order they were created. Publishing or pausing one of
them divides it again, which moves some subjects between them.

Pure: no database, so a test or a benchmark builds a lineup from snapshots as `load` does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tactful.catalog.model import Catalog
from tactful.decide import assignment, conditions
from tactful.decide.checks import ExperienceData, VariationData
from tactful.decide.explain import AtomUses
from tactful.decide.levels import held_to_k, reach
from tactful.decide.publishing import reads, reads_special
from tactful.decide.schemas import Status
from tactful.decide.sketch import sketch_key
from tactful.decide.walk import Experience, Placement, Variation
from tactful.render import Renderer

Mark = tuple[int, str | None]
"""The model's versions: how many, and the time of the latest (every change makes one)."""


@dataclass(frozen=True)
class Lineup:
    """Everything that serves, by key, built for the catalog of `catalog_version`."""

    placements: Mapping[str, Placement]
    conditions: Mapping[str, conditions.Compiled]
    """By experience key: its audience's condition (an experience for everyone has none)."""
    allocations: Mapping[str, assignment.Allocation]
    mark: Mark
    catalog_version: str
    renderer: Renderer
    """The template sandbox over the catalog's atoms (compiled templates are cached in it)."""
    atom_uses: AtomUses
    """The atoms of explanations, with the catalog's categories (made once per pair of atom sets)."""
    sketches: Mapping[str, str]
    """By experience key: the sketch key of its audience, when that audience is held to k."""
    shadow: frozenset[str]
    """The sketch keys of audiences in shadow (their experiences are not served); after `load`,
    every audience held to k, until its count is read."""


def with_shadow(lineup: Lineup, shadow: frozenset[str]) -> Lineup:
    """`lineup` with only the audiences of `shadow` kept from serving."""
    if shadow == lineup.shadow:
        return lineup
    placements = {
        key: replace(
            placement,
            experiences=tuple(
                replace(e, audience_served=lineup.sketches.get(e.key) not in shadow)
                for e in placement.experiences
            ),
        )
        for key, placement in lineup.placements.items()
    }
    return replace(lineup, placements=placements, shadow=shadow)


def _time(raw: object) -> datetime | None:
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def _variations(snapshot: Mapping[str, Any]) -> tuple[Variation, ...]:
    return tuple(
        Variation(v["key"], v["content"], float(v["weight"]), dict(v.get("templates") or {}))
        for v in snapshot["variations"]
    )


@dataclass(frozen=True)
class Published:
    """One experience as it serves: its key, when it was created, and its published version's snapshot
    (the experience as the management API shows it, its status included)."""

    key: str
    created_at: datetime
    version: int
    snapshot: Mapping[str, Any]


def _namespaces(live: list[Published]) -> dict[str, assignment.Namespace]:
    members: dict[str, list[str]] = defaultdict(list)
    for published in sorted(live, key=lambda p: (p.created_at, p.key)):
        if published.snapshot.get("namespace"):
            members[published.snapshot["namespace"]].append(published.key)
    ranges: dict[str, assignment.Namespace] = {}
    for name, keys in members.items():
        width = 1.0 / len(keys)
        for index, key in enumerate(keys):
            end = 1.0 if index == len(keys) - 1 else (index + 1) * width
            ranges[key] = assignment.Namespace(name, index * width, end)
    return ranges


def build(
    placements: Mapping[str, Placement],
    published: Sequence[Published],
    audiences: Mapping[str, Mapping[str, object]],
    *,
    catalog: Catalog,
    catalog_version: str,
    mark: Mark,
) -> Lineup:
    """The lineup from plain data: `placements` by key (their defaults; their experiences are added
    here), every published experience (only live ones serve), audiences' conditions by key."""
    live = [p for p in published if p.snapshot.get("status") == Status.LIVE.value]
    namespaces = _namespaces(live)
    compiled: dict[str, conditions.Compiled] = {}
    allocations: dict[str, assignment.Allocation] = {}
    sketches: dict[str, str] = {}
    experiences: dict[str, list[Experience]] = defaultdict(list)
    for row in live:
        snapshot = row.snapshot
        placement = placements.get(snapshot["placement"])
        if placement is None:
            continue
        condition = audiences.get(snapshot["audience"]) if snapshot.get("audience") else None
        variations = _variations(snapshot)
        data = ExperienceData(
            strategy=snapshot["strategy"],
            starts_at=_time(snapshot.get("starts_at")),
            ends_at=_time(snapshot.get("ends_at")),
            variations=[VariationData(v.key, v.content, v.templates, v.weight) for v in variations],
        )
        read = reads(data, channel=placement.channel, audience=condition, catalog=catalog)
        if condition is not None:
            made = conditions.compile(condition)
            if isinstance(made, conditions.Problems):
                continue  # saved audiences compile; one that no longer does (new caps) serves nobody
            compiled[row.key] = made
            if held_to_k(reach(catalog, made.atoms).level):
                sketches[row.key] = sketch_key(snapshot["audience"], condition)
        allocations[row.key] = assignment.Allocation(
            row.key,
            snapshot["seed"],
            tuple(assignment.Variation(v.key, v.weight) for v in variations),
            holdout=float(snapshot["holdout"]),
            namespace=namespaces.get(row.key),
        )
        experiences[placement.key].append(
            Experience(
                key=row.key,
                level=reach(catalog, read.atoms).level,
                priority=int(snapshot["priority"]),
                created_at=row.created_at,
                atoms=read.atoms,
                variations=variations,
                strategy=assignment.Strategy(snapshot["strategy"]),
                starts_at=data.starts_at,
                ends_at=data.ends_at,
                significant=bool(snapshot["significant_effect"]),
                reads_special=reads_special(catalog, read.atoms),
                version=row.version,
                audience_served=row.key not in sketches,
            )
        )
    return Lineup(
        placements={
            key: replace(placement, experiences=tuple(experiences.get(key, ())))
            for key, placement in placements.items()
        },
        conditions=compiled,
        allocations=allocations,
        mark=mark,
        catalog_version=catalog_version,
        renderer=Renderer(catalog.atoms.keys()),
        atom_uses=AtomUses(catalog),
        sketches=sketches,
        shadow=frozenset(sketches.values()),
    )
