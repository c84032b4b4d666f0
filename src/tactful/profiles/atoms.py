"""Stored atoms as the policy gate's seam reads them: for many subjects in one query per table,
sealed values left sealed until someone reads them.

    traits, computed ──(one read per 500 subjects)──▶ SealedAtoms per subject
                                                        │ plain values as stored
                                                        └ sealed values (direct identifiers):
                                                          decrypted on first read, never before

A decision that greets someone by first name opens the sealed first name and nothing else; the gate,
which reads only age and place, opens nothing it does not read.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, literal, select
from sqlalchemy.orm import Session

from tactful.bulk import one_of
from tactful.crypto import Keystore
from tactful.profiles.models import Computed, Trait
from tactful.profiles.traits import unseal

_CHUNK = 500
_TRAITS = cast(Table, Trait.__table__)
_COMPUTED = cast(Table, Computed.__table__)
_STATEMENTS: dict[tuple[str, frozenset[str] | None], Select[Any]] = {}
"""Reads built once per table and set of names (collection asks for the gate's few on every batch)."""


def _statement(table: Table, names: frozenset[str] | None) -> Select[Any]:
    key = (table.name, names)
    found = _STATEMENTS.get(key)
    if found is None:
        columns = [table.c.subject_id, table.c.atom, table.c.value]
        if table is _TRAITS:
            columns.append(table.c.value_enc)
        found = select(*columns).where(
            one_of(table.c.subject_id, "subjects"), table.c.expires_at > bindparam("at")
        )
        if names is not None:
            # The names as fixed parameters: an `in_` list of bound values expands on every execution.
            found = found.where(table.c.atom.in_([literal(n, table.c.atom.type) for n in sorted(names)]))
        _STATEMENTS[key] = found
    return found


class SealedAtoms(Mapping[str, object]):
    """One subject's stored atoms by name; a sealed value is decrypted when it is first read."""

    __slots__ = ("_keystore", "_opened", "_plain", "_sealed", "_subject_id")

    def __init__(
        self,
        keystore: Keystore,
        subject_id: uuid.UUID,
        plain: dict[str, object] | None = None,
        sealed: dict[str, bytes] | None = None,
    ) -> None:
        self._keystore, self._subject_id = keystore, subject_id
        self._plain: dict[str, object] = plain if plain is not None else {}
        self._sealed: dict[str, bytes] = sealed if sealed is not None else {}
        self._opened: dict[str, object] = {}

    def __getitem__(self, atom: str) -> object:
        if atom in self._plain:
            return self._plain[atom]
        if atom in self._opened:
            return self._opened[atom]
        token = self._sealed[atom]  # KeyError for an atom not stored, as a mapping does
        value = self._opened[atom] = unseal(self._keystore, self._subject_id, atom, token)
        return value

    def __iter__(self) -> Iterator[str]:
        yield from self._plain
        yield from (atom for atom in self._sealed if atom not in self._plain)

    def __len__(self) -> int:
        return len(self._plain.keys() | self._sealed.keys())

    def __contains__(self, atom: object) -> bool:
        return atom in self._plain or atom in self._sealed

    @property
    def opened(self) -> frozenset[str]:
        """The sealed atoms decrypted so far (what a read actually needed)."""
        return frozenset(self._opened)

    def __repr__(self) -> str:
        # Names only: values are personal data.
        return f"SealedAtoms({sorted(self)})"


def read_atoms(
    session: Session,
    *,
    keystore: Keystore,
    subject_ids: Sequence[uuid.UUID],
    at: datetime,
    names: Collection[str] | None = None,
    computed: bool = True,
) -> dict[uuid.UUID, SealedAtoms]:
    """The unexpired stored atoms of each subject at `at` (only `names`, when given; traits alone
    without `computed`), nothing decrypted yet."""
    plain: dict[uuid.UUID, dict[str, object]] = {s: {} for s in subject_ids}
    sealed: dict[uuid.UUID, dict[str, bytes]] = {s: {} for s in subject_ids}
    wanted = None if names is None else frozenset(names)
    traits, computed_atoms = _statement(_TRAITS, wanted), _statement(_COMPUTED, wanted)
    session.flush()  # rows this transaction wrote through the ORM (a merge) are read too
    connection = session.connection()
    for start in range(0, len(subject_ids), _CHUNK):
        chunk = list(subject_ids[start : start + _CHUNK])
        for row in connection.execute(traits, {"subjects": chunk, "at": at}):
            if row.value_enc is None:
                plain[row.subject_id][row.atom] = row.value
            else:
                sealed[row.subject_id][row.atom] = row.value_enc
        if computed:
            for row in connection.execute(computed_atoms, {"subjects": chunk, "at": at}):
                plain[row.subject_id][row.atom] = row.value
    return {s: SealedAtoms(keystore, s, plain[s], sealed[s]) for s in subject_ids}
