"""Who holds which identifier: the reads of identity resolution, nothing written.

    identifiers ──keyed digests (keystore)──▶ identities: owner of each digest ─┐
                                               subjects: merged into whom ◀─────┘ one read per hop
        ──▶ Known (digest, owner, parent) ──survivor──▶ the subject that stands for them now

Every subject an identity leads to is read up front, so one missing from `parent` does not exist.
`identity` resolves on top of this (`identity._Batch` is a `Lookup` that also decides and writes);
a decision (`find_subject`) and collection's judgment of claims (`read_known`) only read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from tactful.bulk import one_of
from tactful.crypto import Keystore
from tactful.profiles.models import Identity, Subject
from tactful.profiles.schemas import IdentityKind
from tactful.profiles.traits import EMAIL_INDEX, normalise_email

MAX_HOPS = 64
CHUNK = 500

IdentityRequest = tuple[str | None, str | None, str | None]
"""(anonymous_id, user_id, previous_id) of one message; previous_id is Segment's alias `previousId`."""


def canonical(session: Session, subject_id: uuid.UUID) -> uuid.UUID | None:
    """The surviving subject for `subject_id` (itself unless merged), or None if there is none."""
    current = subject_id
    for _ in range(MAX_HOPS):
        subject = session.get(Subject, current)
        if subject is None:
            return None
        if subject.merged_into is None:
            return current
        current = subject.merged_into
    return None  # a cycle would be corruption: refuse to guess


def family(session: Session, subject_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    """The survivor for `subject_id` first, then every tombstone merged into it (for erasure)."""
    survivor = canonical(session, subject_id)
    if survivor is None:
        return ()
    found = [survivor]
    frontier = [survivor]
    while frontier:
        sources = session.scalars(select(Subject.subject_id).where(Subject.merged_into.in_(frontier))).all()
        frontier = [s for s in sources if s not in found]
        found.extend(frontier)
    return tuple(found)


def find_subject(
    session: Session,
    *,
    keystore: Keystore,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    email: str | None = None,
) -> uuid.UUID | None:
    """The subject known by any of these identifiers (the `user_id` first), following merges.

    The ids are read as collection reads them (`read_known`: one Core read of their owners, one
    per hop of merges), not as ORM objects: every decision starts here."""
    asked = [
        (k, v) for k, v in ((IdentityKind.USER_ID, user_id), (IdentityKind.ANONYMOUS_ID, anonymous_id)) if v
    ]
    if asked:
        known = read_known(session, keystore=keystore, identities=[(anonymous_id, user_id, None)])
        for kind, value in asked:
            if known.digests[(kind, value)] in known.owner:
                return known.survivor(kind, value)
    if email and email.strip():
        indexed = keystore.lookup_index(kind=EMAIL_INDEX, value=normalise_email(email))
        if indexed is not None:
            return canonical(session, indexed)
    return None


def table_of(model: type[Subject] | type[Identity]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# Built once, of plain table columns (no ORM work per call); lists bind as one expanding parameter.
_OWNERS = select(table_of(Identity).c.digest, table_of(Identity).c.subject_id).where(
    one_of(table_of(Identity).c.digest, "digests")
)
_PARENTS = select(table_of(Subject).c.subject_id, table_of(Subject).c.merged_into).where(
    one_of(table_of(Subject).c.subject_id, "ids")
)


@dataclass(frozen=True)
class Known:
    """What a read of the identities found (`read_known`): the digest of each identifier asked
    about, the subject holding each digest that exists, and every subject those lead to through
    merges (the one it was merged into; None for a survivor)."""

    digests: Mapping[tuple[IdentityKind, str], str]
    owner: Mapping[str, uuid.UUID]
    parent: Mapping[uuid.UUID, uuid.UUID | None]

    def survivor(self, kind: IdentityKind, value: str) -> uuid.UUID | None:
        """The surviving subject holding this identifier (None when none holds it, or it was not
        asked about)."""
        digest = self.digests.get((kind, value))
        return None if digest is None else _survivor(self.parent, self.owner.get(digest))


def _survivor(parent: Mapping[uuid.UUID, uuid.UUID | None], subject_id: uuid.UUID | None) -> uuid.UUID | None:
    """Where `subject_id` leads through the merges in `parent` (None for a subject not in it)."""
    current = subject_id
    for _ in range(MAX_HOPS):
        if current is None or current not in parent:
            return None  # no such subject: a dangling identity
        up = parent[current]
        if up is None:
            return current
        current = up
    return None  # a cycle would be corruption: refuse to guess


class Lookup:
    """What the database says of some identifiers, read once: `owner` maps a digest to the subject
    its identity row points at; `parent` maps each subject met to the one it was merged into (None
    for a survivor). `known`: what an earlier read in the same transaction found (not asked again)."""

    def __init__(self, session: Session, keystore: Keystore, known: Known | None = None) -> None:
        self.session, self.keystore = session, keystore
        self._digests: dict[tuple[IdentityKind, str], str] = {}
        self.owner: dict[str, uuid.UUID] = {}
        self.parent: dict[uuid.UUID, uuid.UUID | None] = {}
        self._read: set[str] = set()  # digests whose owners were read (by `known`): not asked again
        if known is not None:
            self._digests.update(known.digests)
            self.owner.update(known.owner)
            self.parent.update(known.parent)
            self._read.update(known.digests.values())

    def digest(self, kind: IdentityKind, value: str) -> str:
        key = (kind, value)
        found = self._digests.get(key)
        if found is None:
            found = self._digests[key] = self.keystore.digest(kind, value)
        return found

    def load(self, requests: Sequence[IdentityRequest]) -> None:
        for anonymous_id, user_id, previous_id in requests:
            if user_id:
                self.digest(IdentityKind.USER_ID, user_id)
            if anonymous_id:
                self.digest(IdentityKind.ANONYMOUS_ID, anonymous_id)
            if previous_id:
                self.digest(IdentityKind.USER_ID, previous_id)
                self.digest(IdentityKind.ANONYMOUS_ID, previous_id)
        self.load_digests(sorted(set(self._digests.values()) - self._read))

    def load_digests(self, digests: Sequence[str]) -> None:
        """The owners of these digests, and every subject they lead to through merges."""
        for start in range(0, len(digests), CHUNK):
            rows = self.session.connection().execute(_OWNERS, {"digests": digests[start : start + CHUNK]})
            self.owner.update((row.digest, row.subject_id) for row in rows)
        self._read.update(digests)
        self._load_subjects(set(self.owner.values()))

    def known(self) -> Known:
        """What has been read so far, for a later batch in the same transaction."""
        return Known(dict(self._digests), dict(self.owner), dict(self.parent))

    def _load_subjects(self, wanted: set[uuid.UUID]) -> None:
        for _ in range(MAX_HOPS):
            wanted -= self.parent.keys()
            if not wanted:
                return
            ordered = sorted(wanted, key=str)
            for start in range(0, len(ordered), CHUNK):
                rows = self.session.connection().execute(_PARENTS, {"ids": ordered[start : start + CHUNK]})
                self.parent.update((row.subject_id, row.merged_into) for row in rows)
            wanted = {p for s in wanted if (p := self.parent.get(s)) is not None}

    def canonical(self, subject_id: uuid.UUID | None) -> uuid.UUID | None:
        return _survivor(self.parent, subject_id)


def known_identifiers(
    session: Session, *, keystore: Keystore, identifiers: Sequence[tuple[IdentityKind, str]]
) -> frozenset[tuple[IdentityKind, str]]:
    """Those of `identifiers` that some subject already holds: one read, nothing written (collection
    asks before it creates anyone)."""
    digests = {keystore.digest(kind, value): (kind, value) for kind, value in dict.fromkeys(identifiers)}
    found: set[tuple[IdentityKind, str]] = set()
    wanted = sorted(digests)
    for start in range(0, len(wanted), CHUNK):
        rows = session.connection().execute(_OWNERS, {"digests": wanted[start : start + CHUNK]})
        found.update(digests[row.digest] for row in rows)
    return frozenset(found)


def read_known(session: Session, *, keystore: Keystore, identities: Sequence[IdentityRequest]) -> Known:
    """Who holds each identifier these requests name: one read of the identities, one per hop of
    merges, nothing written. `resolve_many` of requests naming no other identifier, later in the same
    transaction, reads nothing again (collection judges its claims by owners, then resolves them)."""
    lookup = Lookup(session, keystore)
    lookup.load(identities)
    return lookup.known()
