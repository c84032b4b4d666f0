"""Identity resolution: one subject per person, found by keyed digests of its identifiers.

    anonymous_id ─┐                           ┌─ one subject: attach the identifiers it lacks
    user_id ──────┼─ digest ─▶ identities ─▶──┤
    previous_id ──┘   (keystore)              └─ two or more: merge into the survivor

The survivor of a merge is the subject that carries a `user_id`, else the older one. Two subjects
that both carry a `user_id` are merged only when the client says so explicitly (an alias with
`previousId`): an anonymous id shared by two logins is a shared device, not one person, so the
anonymous id simply moves to whoever logged in last.

A batch is resolved as if its items came one by one, but with the round trips of one: a single
lookup of every digest and of the subjects they name, decisions in memory, then one keystore
transaction for the new subjects' keys and bulk inserts. Only a merge, which is rare, touches the
database on its own (after the batch so far is written, so that it moves every row).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.bulk import insert_rows, one_of
from tactful.crypto import Keystore
from tactful.errors import InvalidInput
from tactful.profiles.lookup import CHUNK, IdentityRequest, Known, Lookup, table_of
from tactful.profiles.merge import identity_context, merge_subjects, move_identity
from tactful.profiles.models import Identity, Subject
from tactful.profiles.schemas import IdentityKind, Merge, Resolution
from tactful.types import new_id

_RETRIES = 3


def _has_user_id(session: Session, subject_id: uuid.UUID) -> bool:
    query = exists().where(Identity.subject_id == subject_id, Identity.kind == IdentityKind.USER_ID)
    return bool(session.scalar(select(query)))


_SEEN = (
    update(table_of(Subject))
    .where(
        one_of(table_of(Subject).c.subject_id, "ids"),
        table_of(Subject).c.last_seen_at < bindparam("before"),
    )
    .values(last_seen_at=bindparam("at"))
)


@dataclass
class _Pending:
    """An identity decided in this batch, written (and encrypted) when the batch settles."""

    kind: IdentityKind
    value: str
    subject_id: uuid.UUID


class _Batch(Lookup):
    """One `resolve_many` run: what the database said once (the `Lookup` it is), and every decision
    made since, written when the batch settles."""

    def __init__(
        self, session: Session, keystore: Keystore, at: datetime, known: Known | None = None
    ) -> None:
        super().__init__(session, keystore, known)
        self.at = at
        self.with_user: dict[uuid.UUID, bool] = {}
        self.new_subjects: list[uuid.UUID] = []
        self.pending: dict[str, _Pending] = {}
        self.touched: set[uuid.UUID] = set()
        self.created: set[uuid.UUID] = set()

    def has_user_id(self, subject_id: uuid.UUID) -> bool:
        known = self.with_user.get(subject_id)
        if known is None:
            known = self.with_user[subject_id] = _has_user_id(self.session, subject_id)
        return known

    # -- decisions ------------------------------------------------------------------------------

    def new_subject(self) -> uuid.UUID:
        subject_id = new_id()
        self.parent[subject_id] = None
        self.with_user[subject_id] = False
        self.new_subjects.append(subject_id)
        self.created.add(subject_id)
        return subject_id

    def attach(self, subject_id: uuid.UUID, kind: IdentityKind, value: str) -> None:
        digest = self.digest(kind, value)
        current = self.owner.get(digest)
        if kind is IdentityKind.USER_ID:
            self.with_user[subject_id] = True
        if current == subject_id:
            return
        self.owner[digest] = subject_id
        pending = self.pending.get(digest)
        if pending is not None:
            pending.subject_id = subject_id  # not written yet: it is encrypted for its final owner
        elif current is None:
            self.pending[digest] = _Pending(kind, value, subject_id)
        else:
            self.settle()
            identity = self.session.get(Identity, digest)
            target = self.session.get(Subject, subject_id)
            assert identity is not None
            assert target is not None
            move_identity(self.keystore, identity, target)
            self.session.flush()  # a later merge selects identities by subject: it must see this move

    def merge(self, a: uuid.UUID, b: uuid.UUID) -> tuple[uuid.UUID, Merge | None]:
        if a == b:
            return a, None
        self.settle()  # the merge reads and moves rows: the batch so far must be in the database
        first, second = self.session.get(Subject, a), self.session.get(Subject, b)
        assert first is not None
        assert second is not None
        survivor, loser = self._survivor_first(first, second)
        done = merge_subjects(self.session, keystore=self.keystore, source=loser, target=survivor, at=self.at)
        for subject_id, parent in self.parent.items():
            if parent == done.source:
                self.parent[subject_id] = done.target
        self.parent[done.source] = done.target
        for digest, owner in self.owner.items():
            if owner == done.source:
                self.owner[digest] = done.target
        if self.has_user_id(done.source):
            self.with_user[done.target] = True
        return done.target, done

    def _survivor_first(self, a: Subject, b: Subject) -> tuple[Subject, Subject]:
        def rank(subject: Subject) -> tuple[bool, datetime, str]:
            return (not self.has_user_id(subject.subject_id), subject.created_at, str(subject.subject_id))

        return (a, b) if rank(a) <= rank(b) else (b, a)

    # -- writes ---------------------------------------------------------------------------------

    def settle(self) -> None:
        """Write the new subjects and identities decided so far: keys in one keystore transaction,
        rows in one insert per table."""
        if not self.new_subjects and not self.pending:
            return
        # New subjects' ids are fresh random draws: their keys need no read, and a request's view
        # writes them with its other keystore writes before the session commits.
        self.keystore.new_subjects(self.new_subjects, before_commit_of=self.session)
        self.keystore.ensure_subjects([p.subject_id for p in self.pending.values()])
        if self.new_subjects:
            insert_rows(
                self.session,
                table_of(Subject),
                [
                    {"subject_id": s, "created_at": self.at, "last_seen_at": self.at, "merged_into": None}
                    for s in self.new_subjects
                ],
            )
        if self.pending:
            insert_rows(
                self.session,
                table_of(Identity),
                [
                    {
                        "digest": digest,
                        "subject_id": p.subject_id,
                        "kind": p.kind.value,
                        "value_enc": self.keystore.encrypt(
                            p.subject_id, p.value, context=identity_context(p.kind)
                        ),
                        "created_at": self.at,
                    }
                    for digest, p in sorted(self.pending.items())
                ],
            )
        self.new_subjects, self.pending = [], {}

    def finish(self) -> None:
        self.settle()
        # Subjects created by this batch were inserted as seen now.
        seen = sorted(self.touched.difference(self.created), key=str)
        for start in range(0, len(seen), CHUNK):
            self.session.connection().execute(
                _SEEN, {"ids": seen[start : start + CHUNK], "at": self.at, "before": self.at}
            )
        # A Core update leaves ORM copies stale; those this batch touched reload on their next read.
        for obj in list(self.session.identity_map.values()):
            if isinstance(obj, Subject) and obj.subject_id in self.touched:
                self.session.expire(obj, ["last_seen_at"])

    # -- one item -------------------------------------------------------------------------------

    def _found(self, kind: IdentityKind, value: str | None) -> tuple[bool, uuid.UUID | None]:
        """(an identity exists, its surviving subject) for one identifier."""
        if not value:
            return False, None
        owner = self.owner.get(self.digest(kind, value))
        return owner is not None, self.canonical(owner)

    def resolve(self, anonymous_id: str | None, user_id: str | None, previous_id: str | None) -> Resolution:
        merges: list[Merge] = []
        created = False

        def merged(a: uuid.UUID, b: uuid.UUID) -> uuid.UUID:
            survivor, merge = self.merge(a, b)
            if merge is not None:
                merges.append(merge)
            return survivor

        _, target = self._found(IdentityKind.USER_ID, user_id)
        _, anon_subject = self._found(IdentityKind.ANONYMOUS_ID, anonymous_id)
        if anon_subject is not None and anon_subject != target:
            if user_id and self.has_user_id(anon_subject):
                # A device shared by two logins: the anonymous id follows the newest login, no merge.
                if target is None:
                    target, created = self.new_subject(), True
            else:
                target = anon_subject if target is None else merged(target, anon_subject)
        previous_known, previous_subject = self._found(IdentityKind.USER_ID, previous_id)
        if previous_id and not previous_known:
            previous_known, previous_subject = self._found(IdentityKind.ANONYMOUS_ID, previous_id)
        if previous_subject is not None:
            # An alias is an explicit statement that both identifiers are one person.
            target = previous_subject if target is None else merged(target, previous_subject)
        if target is None:
            target, created = self.new_subject(), True
        if user_id:
            self.attach(target, IdentityKind.USER_ID, user_id)
        if anonymous_id:
            self.attach(target, IdentityKind.ANONYMOUS_ID, anonymous_id)
        if previous_id and not previous_known and previous_id not in (user_id, anonymous_id):
            self.attach(target, IdentityKind.ANONYMOUS_ID, previous_id)
        self.touched.add(target)
        return Resolution(subject_id=target, created=created, merges=tuple(merges))


def _resolve_batch(
    session: Session,
    keystore: Keystore,
    requests: Sequence[IdentityRequest],
    at: datetime,
    known: Known | None = None,
) -> list[Resolution]:
    batch = _Batch(session, keystore, at, known)
    # Pending subjects and identities live in the batch until it settles; an autoflush could only
    # write half-built rows.
    with session.no_autoflush:
        batch.load(requests)
        resolutions = [batch.resolve(*request) for request in requests]
        batch.finish()
    return resolutions


def resolve_many(
    session: Session,
    *,
    keystore: Keystore,
    identities: Sequence[IdentityRequest],
    at: datetime,
    known: Known | None = None,
) -> list[Resolution]:
    """Resolve each (anonymous_id, user_id, previous_id) in order, as `resolve` would one by one.

    Callers move their own per-subject rows for each returned merge, source to target; a subject
    returned for an early item may be merged into another by a later one. `known`: what `read_known`
    found earlier in this transaction, nothing about identities written since; only identifiers it
    does not cover are read.
    """
    if not identities:
        return []
    if any(not (a or u or p) for a, u, p in identities):
        raise InvalidInput("an anonymous id, a user id or a previous id is needed", code="missing_identity")
    # A keystore view that keeps the keys this batch unwraps (new subjects, merges). The caller's
    # own view may hold new keys until its session commits; one made here writes them on return.
    keys = keystore if keystore.caching else keystore.cached()
    if session.get_bind().dialect.name == "sqlite":
        # Every SQLite transaction begins IMMEDIATE (`tactful.db`): it has held the write lock since
        # before the identities were read, so no race can be lost and no savepoint is needed.
        resolutions = _resolve_batch(session, keys, identities, at, known)
        if keys is not keystore:
            keys.write_held()
        return resolutions
    for attempt in range(_RETRIES):
        try:
            # A savepoint, so that losing a race to create the same identity leaves the caller's
            # transaction usable: the retry then finds the rows the other transaction wrote.
            with session.begin_nested():
                # A retry reads again: the race it lost wrote identities that `known` cannot hold.
                resolutions = _resolve_batch(session, keys, identities, at, known if attempt == 0 else None)
            if keys is not keystore:
                keys.write_held()
            return resolutions
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def resolve(
    session: Session,
    *,
    keystore: Keystore,
    anonymous_id: str | None,
    user_id: str | None,
    at: datetime,
    previous_id: str | None = None,
) -> Resolution:
    """Find or create the one subject of these identifiers, merging subjects they show to be one.

    `previous_id` is Segment's alias `previousId`: an earlier id (anonymous or not) of `user_id`.
    Callers move their own per-subject rows for each returned merge, source to target.
    """
    return resolve_many(session, keystore=keystore, identities=[(anonymous_id, user_id, previous_id)], at=at)[
        0
    ]
