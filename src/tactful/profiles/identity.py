"""Identity resolution: one subject per person, found by keyed digests of its identifiers.

    anonymous_id ─┐                           ┌─ one subject: attach the identifiers it lacks
    user_id ──────┼─ digest ─▶ identities ─▶──┤
    previous_id ──┘   (keystore)              └─ two or more: merge into the survivor

The survivor of a merge is the subject that carries a `user_id`, else the older one. Two subjects
that both carry a `user_id` are merged only when the client says so explicitly (an alias with
`previousId`): an anonymous id shared by two logins is a shared device, not one person, so the
anonymous id simply moves to whoever logged in last.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.errors import InvalidInput
from tactful.profiles.merge import identity_context, merge_subjects, move_identity
from tactful.profiles.models import Identity, Subject
from tactful.profiles.schemas import IdentityKind, Merge, Resolution
from tactful.profiles.traits import EMAIL_INDEX, normalise_email
from tactful.types import new_id

_MAX_HOPS = 64
_RETRIES = 3


def canonical(session: Session, subject_id: uuid.UUID) -> uuid.UUID | None:
    """The surviving subject for `subject_id` (itself unless merged), or None if there is none."""
    current = subject_id
    for _ in range(_MAX_HOPS):
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
    """The subject known by any of these identifiers (the `user_id` first), following merges."""
    for kind, value in ((IdentityKind.USER_ID, user_id), (IdentityKind.ANONYMOUS_ID, anonymous_id)):
        if value:
            identity = session.get(Identity, keystore.digest(kind, value))
            if identity is not None:
                return canonical(session, identity.subject_id)
    if email and email.strip():
        indexed = keystore.lookup_index(kind=EMAIL_INDEX, value=normalise_email(email))
        if indexed is not None:
            return canonical(session, indexed)
    return None


def _has_user_id(session: Session, subject_id: uuid.UUID) -> bool:
    query = exists().where(Identity.subject_id == subject_id, Identity.kind == IdentityKind.USER_ID)
    return bool(session.scalar(select(query)))


def _survivor_first(session: Session, a: Subject, b: Subject) -> tuple[Subject, Subject]:
    def rank(subject: Subject) -> tuple[bool, datetime, str]:
        return (not _has_user_id(session, subject.subject_id), subject.created_at, str(subject.subject_id))

    return (a, b) if rank(a) <= rank(b) else (b, a)


class _Resolver:
    """One resolution: the subjects found so far, the merges made, the identities to attach."""

    def __init__(self, session: Session, keystore: Keystore, at: datetime) -> None:
        self.session, self.keystore, self.at = session, keystore, at
        self.merges: list[Merge] = []
        self.created = False

    def lookup(self, pairs: Iterable[tuple[IdentityKind, str]]) -> dict[tuple[IdentityKind, str], Identity]:
        digests = {self.keystore.digest(kind, value): (kind, value) for kind, value in pairs}
        rows = self.session.scalars(select(Identity).where(Identity.digest.in_(digests))).all()
        return {digests[row.digest]: row for row in rows}

    def subject_of(self, identity: Identity | None) -> Subject | None:
        if identity is None:
            return None
        survivor = canonical(self.session, identity.subject_id)
        return None if survivor is None else self.session.get(Subject, survivor)

    def new_subject(self) -> Subject:
        subject = Subject(subject_id=new_id(), created_at=self.at, last_seen_at=self.at, merged_into=None)
        self.session.add(subject)
        self.created = True
        return subject

    def merge(self, a: Subject, b: Subject) -> Subject:
        if a.subject_id == b.subject_id:
            return a
        survivor, loser = _survivor_first(self.session, a, b)
        self.merges.append(
            merge_subjects(self.session, keystore=self.keystore, source=loser, target=survivor, at=self.at)
        )
        return survivor

    def attach(self, subject: Subject, kind: IdentityKind, value: str, existing: Identity | None) -> None:
        if existing is None:
            self.session.add(
                Identity(
                    digest=self.keystore.digest(kind, value),
                    subject_id=subject.subject_id,
                    kind=kind,
                    value_enc=self.keystore.encrypt(
                        subject.subject_id, value, context=identity_context(kind)
                    ),
                    created_at=self.at,
                )
            )
        elif existing.subject_id != subject.subject_id:
            move_identity(self.keystore, existing, subject)


def _known(
    session: Session, keystore: Keystore, *, anonymous_id: str | None, user_id: str | None, at: datetime
) -> Resolution | None:
    """The common case without a savepoint: every identifier is known and names one subject."""
    pairs = [
        (kind, value)
        for kind, value in ((IdentityKind.USER_ID, user_id), (IdentityKind.ANONYMOUS_ID, anonymous_id))
        if value
    ]
    found = _Resolver(session, keystore, at).lookup(pairs)
    if len(found) != len(pairs):
        return None
    survivors = {canonical(session, identity.subject_id) for identity in found.values()}
    if len(survivors) != 1 or None in survivors:
        return None
    subject = session.get(Subject, survivors.pop())
    if subject is None:  # pragma: no cover - canonical() just read it
        return None
    subject.last_seen_at = max(subject.last_seen_at, at)
    return Resolution(subject_id=subject.subject_id, created=False)


def _resolve_once(
    session: Session,
    keystore: Keystore,
    *,
    anonymous_id: str | None,
    user_id: str | None,
    previous_id: str | None,
    at: datetime,
) -> Resolution:
    run = _Resolver(session, keystore, at)
    wanted: list[tuple[IdentityKind, str]] = []
    if user_id:
        wanted.append((IdentityKind.USER_ID, user_id))
    if anonymous_id:
        wanted.append((IdentityKind.ANONYMOUS_ID, anonymous_id))
    if previous_id:
        wanted += [(IdentityKind.USER_ID, previous_id), (IdentityKind.ANONYMOUS_ID, previous_id)]
    found = run.lookup(wanted)
    user_identity = found.get((IdentityKind.USER_ID, user_id)) if user_id else None
    anon_identity = found.get((IdentityKind.ANONYMOUS_ID, anonymous_id)) if anonymous_id else None
    previous_identity = (
        (
            found.get((IdentityKind.USER_ID, previous_id))
            or found.get((IdentityKind.ANONYMOUS_ID, previous_id))
        )
        if previous_id
        else None
    )

    target = run.subject_of(user_identity)
    anon_subject = run.subject_of(anon_identity)
    if anon_subject is not None and (target is None or anon_subject.subject_id != target.subject_id):
        if user_id and _has_user_id(session, anon_subject.subject_id):
            # A device shared by two logins: the anonymous id follows the newest login, no merge.
            target = target or run.new_subject()
        else:
            target = anon_subject if target is None else run.merge(target, anon_subject)
    previous_subject = run.subject_of(previous_identity)
    if previous_subject is not None:
        # An alias is an explicit statement that both identifiers are one person.
        target = previous_subject if target is None else run.merge(target, previous_subject)
    if target is None:
        target = run.new_subject()

    if user_id:
        run.attach(target, IdentityKind.USER_ID, user_id, user_identity)
    if anonymous_id:
        run.attach(target, IdentityKind.ANONYMOUS_ID, anonymous_id, anon_identity)
    if previous_id and previous_identity is None and previous_id not in (user_id, anonymous_id):
        run.attach(target, IdentityKind.ANONYMOUS_ID, previous_id, None)
    target.last_seen_at = max(target.last_seen_at, at)
    session.flush()
    return Resolution(subject_id=target.subject_id, created=run.created, merges=tuple(run.merges))


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
    if not (anonymous_id or user_id or previous_id):
        raise InvalidInput("an anonymous id, a user id or a previous id is needed", code="missing_identity")
    known = (
        None if previous_id else _known(session, keystore, anonymous_id=anonymous_id, user_id=user_id, at=at)
    )
    if known is not None:
        return known
    for attempt in range(_RETRIES):
        try:
            # A savepoint, so that losing a race to create the same identity leaves the caller's
            # transaction usable: the retry then finds the row the other process wrote.
            with session.begin_nested():
                return _resolve_once(
                    session,
                    keystore,
                    anonymous_id=anonymous_id,
                    user_id=user_id,
                    previous_id=previous_id,
                    at=at,
                )
        except IntegrityError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
