"""Removing stored atoms that nothing allows any more (a withdrawal, a denial, an opt-out).

Which atoms go is the consent domain's decision, made through the policy gate; this module only
lists what a subject has stored and deletes the named atoms, traits and computed alike. Identities
are not atoms: they stay until erasure.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Table, delete, select
from sqlalchemy.orm import Session

from tactful.bulk import one_of
from tactful.profiles.models import Computed, Trait


def stored_atoms(session: Session, *, subject_id: uuid.UUID) -> frozenset[str]:
    """The names of the trait and computed atoms stored for exactly this subject id."""
    names: set[str] = set()
    for table in (Trait, Computed):
        names.update(session.scalars(select(table.atom).where(table.subject_id == subject_id)))
    return frozenset(names)


def purge_atoms(session: Session, *, subject_id: uuid.UUID, atoms: Collection[str]) -> int:
    """Delete these atoms of the subject (trait and computed rows); returns the rows deleted."""
    wanted = sorted(set(atoms))
    if not wanted:
        return 0
    removed = 0
    for table in (Trait, Computed):
        statement = delete(table).where(table.subject_id == subject_id, table.atom.in_(wanted))
        removed += cast(CursorResult[Any], session.execute(statement)).rowcount or 0
    return removed


def _deleting(model: type[Trait] | type[Computed]) -> Delete:
    table = cast(Table, model.__table__)
    return delete(table).where(
        one_of(table.c.subject_id, "subjects"),
        one_of(table.c.atom, "atoms"),
    )


_DELETES = {Trait: _deleting(Trait), Computed: _deleting(Computed)}
"""Statements built once (collection purges on every batch): plain table deletes."""


def purge_atoms_many(
    session: Session, *, subject_ids: Sequence[uuid.UUID], atoms: Collection[str], computed_only: bool = False
) -> int:
    """Delete the same atoms of many subjects, a statement per table and 500 subjects (the computed
    table alone with `computed_only`, for atoms that are never traits)."""
    wanted = sorted(set(atoms))
    removed = 0
    models: tuple[type[Trait] | type[Computed], ...] = (Computed,) if computed_only else (Trait, Computed)
    if wanted and subject_ids:
        session.flush()  # rows this transaction added through the ORM are deleted too
    for start in range(0, len(subject_ids) if wanted else 0, 500):
        chunk = list(subject_ids[start : start + 500])
        for model in models:
            result = session.connection().execute(_DELETES[model], {"subjects": chunk, "atoms": wanted})
            removed += cast(CursorResult[Any], result).rowcount or 0
    if removed:
        # A plain delete leaves ORM copies of the rows behind: they must not be read as present.
        subjects, names = set(subject_ids), set(wanted)
        for obj in list(session.identity_map.values()):
            if isinstance(obj, models) and obj.subject_id in subjects and obj.atom in names:
                session.expunge(obj)
    return removed
