"""Pending links: an anonymous id claimed for a user id by someone who could not prove it.

    identify {anonymousId: a, userId: u} with a write key, no subject token
        ──▶ u's subject gets the events that name u; a's subject keeps its own; nothing merges
        ──▶ pending_links (u's subject, digest(a)) until PENDING_RETENTION runs out

A pending link is never verified later: only proof carried in the same message as a link merges
(DESIGN §4). What it does is make the anonymous id speak for someone who may be identified, so that a
grant for it needs the same proof as a grant for the user. The anonymous id is held only as the
identities' own keyed digest; erasure of either side removes the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    null,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from tactful.bulk import one_of, upsert_rows
from tactful.crypto import Keystore
from tactful.profiles.models import Identity, PendingLink
from tactful.profiles.schemas import IdentityKind

PENDING_RETENTION = timedelta(days=30)
"""How long a claim of a link is remembered: about the life of a session cookie's consent banner
choice; a link that matters is proven at the next sign-in."""
_CHUNK = 500
_TABLE = cast(Table, PendingLink.__table__)
_IDENTITIES = cast(Table, Identity.__table__)


def _count(result: object) -> int:
    return int(getattr(cast(CursorResult[Any], result), "rowcount", 0) or 0)


def record(
    session: Session, *, keystore: Keystore, links: Iterable[tuple[uuid.UUID, str]], at: datetime
) -> int:
    """Remember each (user's subject, anonymous id) claim; a repeated claim starts its retention anew."""
    rows = {
        (subject_id, keystore.digest(IdentityKind.ANONYMOUS_ID, anonymous_id)): None
        for subject_id, anonymous_id in links
    }
    upsert_rows(
        session,
        _TABLE,
        [
            {
                "subject_id": subject_id,
                "anonymous_digest": digest,
                "created_at": at,
                "expires_at": at + PENDING_RETENTION,
            }
            for subject_id, digest in rows
        ],
        keys=("subject_id", "anonymous_digest"),
        replace=("expires_at",),
    )
    return len(rows)


def pending(
    session: Session, *, keystore: Keystore, anonymous_ids: Iterable[str], at: datetime
) -> frozenset[str]:
    """Those of `anonymous_ids` that some unexpired pending link claims for a user."""
    digests = {keystore.digest(IdentityKind.ANONYMOUS_ID, a): a for a in dict.fromkeys(anonymous_ids)}
    found: set[str] = set()
    wanted = sorted(digests)
    for start in range(0, len(wanted), _CHUNK):
        rows = session.connection().execute(
            select(_TABLE.c.anonymous_digest).where(
                one_of(_TABLE.c.anonymous_digest, "digests"), _TABLE.c.expires_at > at
            ),
            {"digests": wanted[start : start + _CHUNK]},
        )
        found.update(digests[row.anonymous_digest] for row in rows)
    return frozenset(found)


def identified(session: Session, *, subject_ids: Iterable[uuid.UUID]) -> frozenset[uuid.UUID]:
    """Those of `subject_ids` that hold a user id: identified people, whom a public key's word does
    not widen (DESIGN §4)."""
    wanted = sorted(set(subject_ids), key=str)
    found: set[uuid.UUID] = set()
    session.flush()  # identities this transaction moved through the ORM (a merge) count too
    for start in range(0, len(wanted), _CHUNK):
        rows = session.connection().execute(
            select(_IDENTITIES.c.subject_id).where(
                one_of(_IDENTITIES.c.subject_id, "ids"), _IDENTITIES.c.kind == IdentityKind.USER_ID.value
            ),
            {"ids": wanted[start : start + _CHUNK]},
        )
        found.update(row.subject_id for row in rows)
    return frozenset(found)


_SPEAKING = union_all(
    select(_IDENTITIES.c.subject_id, type_coerce(null(), String).label("anonymous_digest")).where(
        one_of(_IDENTITIES.c.subject_id, "ids"), _IDENTITIES.c.kind == IdentityKind.USER_ID.value
    ),
    select(type_coerce(null(), Uuid).label("subject_id"), _TABLE.c.anonymous_digest).where(
        one_of(_TABLE.c.anonymous_digest, "digests"),
        _TABLE.c.expires_at > bindparam("at", type_=_TABLE.c.expires_at.type),
    ),
)


def speaking(
    session: Session,
    *,
    keystore: Keystore,
    subject_ids: Iterable[uuid.UUID],
    anonymous_ids: Iterable[str],
    at: datetime,
) -> tuple[frozenset[uuid.UUID], frozenset[str]]:
    """`identified(subject_ids)` and `pending(anonymous_ids, at)` in one statement: the two facts
    the trust of public keys asks about a request's anonymous messages, read in one round trip."""
    ids = sorted(set(subject_ids), key=str)
    digests = {keystore.digest(IdentityKind.ANONYMOUS_ID, a): a for a in dict.fromkeys(anonymous_ids)}
    wanted = sorted(digests)
    identified: set[uuid.UUID] = set()
    claimed: set[str] = set()
    if ids:
        session.flush()  # identities this transaction moved through the ORM (a merge) count too
    for start in range(0, max(len(ids), len(wanted)), _CHUNK):
        rows = session.connection().execute(
            _SPEAKING,
            {"ids": ids[start : start + _CHUNK], "digests": wanted[start : start + _CHUNK], "at": at},
        )
        for row in rows:
            if row.anonymous_digest is None:
                identified.add(row.subject_id)
            else:
                claimed.add(digests[row.anonymous_digest])
    return frozenset(identified), frozenset(claimed)


def move(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> int:
    """After `source` merged into `target`: its claims follow (one row per anonymous id)."""
    taken = select(_TABLE.c.anonymous_digest).where(_TABLE.c.subject_id == target)
    _count(
        session.execute(
            delete(_TABLE).where(_TABLE.c.subject_id == source, _TABLE.c.anonymous_digest.in_(taken))
        )
    )
    return _count(
        session.execute(update(_TABLE).where(_TABLE.c.subject_id == source).values(subject_id=target))
    )


def erase(session: Session, *, subject_id: uuid.UUID, anonymous_digests: Sequence[str]) -> int:
    """Remove the claims about this subject: those naming it as the user, and those naming one of its
    anonymous ids (`anonymous_digests`, read before its identities are deleted)."""
    removed = _count(session.execute(delete(_TABLE).where(_TABLE.c.subject_id == subject_id)))
    for start in range(0, len(anonymous_digests), _CHUNK):
        chunk = list(anonymous_digests[start : start + _CHUNK])
        removed += _count(session.execute(delete(_TABLE).where(_TABLE.c.anonymous_digest.in_(chunk))))
    return removed


def export(session: Session, *, subject_id: uuid.UUID) -> list[dict[str, str]]:
    """The claims naming this subject as the user: when made and until when kept (the anonymous id
    itself is held only as a keyed digest, which means nothing outside this deployment)."""
    rows = session.execute(
        select(_TABLE.c.created_at, _TABLE.c.expires_at)
        .where(_TABLE.c.subject_id == subject_id)
        .order_by(_TABLE.c.created_at)
    )
    return [{"created_at": r.created_at.isoformat(), "expires_at": r.expires_at.isoformat()} for r in rows]


@dataclass(frozen=True)
class PendingClaim:
    """One unexpired claim: `user_subject` holds the user id, `anonymous_digest` names the anonymous id."""

    user_subject: uuid.UUID
    anonymous_digest: str
    created_at: datetime
    expires_at: datetime


def claims(
    session: Session, *, subject_id: uuid.UUID, anonymous_digests: Sequence[str], at: datetime
) -> list[PendingClaim]:
    """The unexpired claims about a subject, for an operator's look-up: those naming it as the user,
    and those naming one of its anonymous ids (`anonymous_digests`), oldest first."""
    naming = [
        _TABLE.c.anonymous_digest.in_(list(anonymous_digests[start : start + _CHUNK]))
        for start in range(0, len(anonymous_digests), _CHUNK)
    ]
    rows = session.connection().execute(
        select(_TABLE)
        .where(or_(_TABLE.c.subject_id == subject_id, *naming), _TABLE.c.expires_at > at)
        .order_by(_TABLE.c.created_at, _TABLE.c.anonymous_digest)
    )
    return [PendingClaim(r.subject_id, r.anonymous_digest, r.created_at, r.expires_at) for r in rows]


def expire(session: Session, *, at: datetime) -> int:
    """Forget claims whose retention ended by `at` (the retention sweep)."""
    return _count(session.execute(delete(_TABLE).where(_TABLE.c.expires_at <= at)))
