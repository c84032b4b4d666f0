"""Which fields of an event are stored: each only for a purpose it is declared for that holds for this
person and that the event itself is stored for (DESIGN §3, invariant 10).

    event purposes (storage.Decision) ──┐
    the subject's Allowance ────────────┼─▶ Cut, once per subject and event purposes in a request
    catalog.stored_context, trait_atoms ┘        │
                         filtered message ───────┴─▶ kept fields ─▶ the event row; the rest named

A field's purposes are its atom's: a context field (`context.page.url`) or a user trait
(`traits.city`, in an identify's traits or repeated in `context.traits`) has its own atom; an event's
properties are its event atom's, whose purposes the event is stored for, so they stay with it. An
event stored as `essential` alone thus keeps its essential fields only. A withdrawal removes the
fields whose purposes are all gone (`store.forget_withdrawn_purposes`), by the same declarations.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tactful.catalog.model import Atom, Catalog
from tactful.consent import intake
from tactful.consent.storage import Decision, Decisions
from tactful.types import Purpose

Tree = dict[str, Any]
"""Nested keys: a subtree, or None for a value that goes whole."""


@dataclass(frozen=True, slots=True)
class Cut:
    """The declared fields an event of one subject, stored for given purposes, may not keep."""

    context: tuple[tuple[str, ...], ...] = ()
    """Paths below `context`."""
    tree: Tree = field(default_factory=dict)
    """The same paths as nested keys: None where the value goes."""
    traits: frozenset[str] = frozenset()
    """User trait names (an identify's `traits`, and `context.traits`)."""

    def __bool__(self) -> bool:
        return bool(self.context or self.traits)


class FieldPurposes:
    """One request's per-field rule, under the allowances its purposes were decided with."""

    def __init__(self, catalog: Catalog, decisions: Decisions) -> None:
        self.catalog = catalog
        self.decisions = decisions
        self._finders: dict[uuid.UUID, intake.Purposes] = {}
        self._cuts: dict[tuple[uuid.UUID, frozenset[Purpose]], Cut] = {}

    def cut(self, subject_id: uuid.UUID, purposes: frozenset[Purpose]) -> Cut:
        key = (subject_id, purposes)
        found = self._cuts.get(key)
        if found is None:
            found = self._cuts[key] = self._cut(subject_id, purposes)
        return found

    def _cut(self, subject_id: uuid.UUID, purposes: frozenset[Purpose]) -> Cut:
        finder = self._finders.get(subject_id)
        if finder is None:
            finder = self._finders[subject_id] = intake.Purposes(self.decisions.allowances[subject_id])

        def refused(atom: Atom) -> bool:
            return not (atom.purposes & purposes and finder.of(atom) & purposes)

        context = tuple(path for path, atom in self.catalog.stored_context if refused(atom))
        traits = frozenset(key for key, atom in self.catalog.trait_atoms.items() if refused(atom))
        return Cut(context=context, traits=traits, tree=_tree(context))

    def keep(
        self, subject_id: uuid.UUID, decision: Decision, kept: dict[str, Any], *, user_traits: bool
    ) -> tuple[dict[str, Any], list[str]]:
        """`kept` (the filtered message, left unchanged) without the fields the event may not keep,
        and their paths. `user_traits`: whether `kept["traits"]` holds user traits (an identify's)
        rather than a group's."""
        cut = self.cut(subject_id, decision.purposes)
        if not cut:
            return kept, []
        removed: list[str] = []
        result = dict(kept)
        context = kept.get("context")
        if isinstance(context, dict) and context:
            context = _without(context, cut.tree, removed, "context.")
            carried = context.get("traits")
            if isinstance(carried, dict) and carried.keys() & cut.traits:
                removed.extend(f"context.traits.{name}" for name in carried if name in cut.traits)
                context = {**context, "traits": {k: v for k, v in carried.items() if k not in cut.traits}}
            result["context"] = context
        traits = kept.get("traits")
        if user_traits and isinstance(traits, dict) and traits.keys() & cut.traits:
            removed.extend(f"traits.{name}" for name in traits if name in cut.traits)
            result["traits"] = {k: v for k, v in traits.items() if k not in cut.traits}
        return result, removed


def _tree(paths: tuple[tuple[str, ...], ...]) -> Tree:
    root: dict[str, Any] = {}
    for path in paths:
        level = root
        for part in path[:-1]:
            inner = level.setdefault(part, {})
            if inner is None:  # a field above this one goes whole
                break
            level = inner
        else:
            level[path[-1]] = None
    return root


def _without(value: dict[str, Any], tree: Tree, removed: list[str], prefix: str) -> dict[str, Any]:
    """`value` without the paths of `tree`, nor the objects that leaves empty; a copy if anything
    went, else `value` itself. One pass over the keys present."""
    changed: dict[str, Any] | None = None
    for key, item in value.items():
        if key not in tree:
            continue
        below = tree[key]
        if below is None:
            narrowed = None
            removed.append(prefix + key)
        elif isinstance(item, dict):
            narrowed = _without(item, below, removed, f"{prefix}{key}.")
            if narrowed is item:
                continue
        else:
            continue
        if changed is None:
            changed = dict(value)
        if narrowed:
            changed[key] = narrowed
        else:
            del changed[key]
    return value if changed is None else changed
