"""The profiles service: what collection, rights and the policy gate call.

Resolution lives in `identity`, traits in `traits`, computed atoms in `computed`; this module adds
the whole-profile reads and the per-subject export and erasure that the store registry runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.errors import NotFound
from tactful.profiles import links
from tactful.profiles.identity import resolve, resolve_many
from tactful.profiles.lookup import (
    IdentityRequest,
    Known,
    canonical,
    family,
    find_subject,
    known_identifiers,
    read_known,
)
from tactful.profiles.merge import identity_context
from tactful.profiles.models import Computed, Identity, Subject, Trait
from tactful.profiles.purge import purge_atoms, purge_atoms_many, stored_atoms
from tactful.profiles.recording import EventRecord, record_event, record_events
from tactful.profiles.schemas import IdentityKind, IdentityValue, ProfileSnapshot
from tactful.profiles.traits import TraitUpdate, apply_traits, apply_traits_many, read_traits

_CHUNK = 500

__all__ = [
    "EventRecord",
    "IdentityRequest",
    "Known",
    "TraitUpdate",
    "apply_traits",
    "apply_traits_many",
    "canonical",
    "erase_subject",
    "expire",
    "export_subject",
    "family",
    "find_subject",
    "get_profile",
    "identities",
    "identities_by_digest",
    "known_identifiers",
    "purge_atoms",
    "purge_atoms_many",
    "read_known",
    "record_event",
    "record_events",
    "resolve",
    "resolve_many",
    "stored_atoms",
]


def _identities(session: Session, keystore: Keystore, subject_id: uuid.UUID) -> tuple[IdentityValue, ...]:
    rows = session.scalars(
        select(Identity).where(Identity.subject_id == subject_id).order_by(Identity.created_at, Identity.kind)
    )
    return tuple(
        IdentityValue(
            kind=IdentityKind(row.kind),
            value=keystore.decrypt(subject_id, row.value_enc, context=identity_context(row.kind)),
            created_at=row.created_at,
        )
        for row in rows
    )


def identities(session: Session, *, keystore: Keystore, subject_id: uuid.UUID) -> tuple[IdentityValue, ...]:
    """The identities this subject id holds, decrypted, oldest first."""
    return _identities(session, keystore, subject_id)


def identities_by_digest(
    session: Session, *, keystore: Keystore, digests: Collection[str]
) -> dict[str, tuple[uuid.UUID, IdentityValue]]:
    """The identities known by these digests, with the subject id holding each, decrypted under
    that subject's key (an operator's look-up shows both sides of a pending link)."""
    wanted = sorted(set(digests))
    found: dict[str, tuple[uuid.UUID, IdentityValue]] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.scalars(select(Identity).where(Identity.digest.in_(wanted[start : start + _CHUNK])))
        for row in rows:
            value = keystore.decrypt(row.subject_id, row.value_enc, context=identity_context(row.kind))
            found[row.digest] = (
                row.subject_id,
                IdentityValue(kind=IdentityKind(row.kind), value=value, created_at=row.created_at),
            )
    return found


def _computed(session: Session, subject_id: uuid.UUID, at: datetime | None) -> dict[str, object]:
    query = select(Computed).where(Computed.subject_id == subject_id).order_by(Computed.atom)
    if at is not None:
        query = query.where(Computed.expires_at > at)
    return {row.atom: row.value for row in session.scalars(query)}


def get_profile(
    session: Session, *, keystore: Keystore, subject_id: uuid.UUID, at: datetime | None = None
) -> ProfileSnapshot:
    """Everything stored about the subject (following merges), decrypted. With `at`, atoms past
    their retention are left out even before the sweep removes them."""
    survivor = canonical(session, subject_id)
    subject = None if survivor is None else session.get(Subject, survivor)
    if subject is None:
        raise NotFound("no such subject")
    return ProfileSnapshot(
        subject_id=subject.subject_id,
        created_at=subject.created_at,
        last_seen_at=subject.last_seen_at,
        identities=_identities(session, keystore, subject.subject_id),
        traits=read_traits(session, keystore=keystore, subject_id=subject.subject_id, at=at),
        computed=_computed(session, subject.subject_id, at),
        merged_from=len(family(session, subject.subject_id)) - 1,
    )


def export_subject(session: Session, *, keystore: Keystore, subject_id: uuid.UUID) -> dict[str, object]:
    """The profile rows of exactly this subject id, decrypted, as JSON-ready data ({} if none).

    A tombstone exports only the fact of its merge: its data now lives with the survivor.
    """
    subject = session.get(Subject, subject_id)
    if subject is None:
        return {}
    exported: dict[str, object] = {
        "subject_id": str(subject.subject_id),
        "created_at": subject.created_at.isoformat(),
        "last_seen_at": subject.last_seen_at.isoformat(),
    }
    if subject.merged_into is not None:
        return exported | {"merged_into": str(subject.merged_into)}
    return exported | {
        "identities": [
            {"kind": str(i.kind), "value": i.value, "created_at": i.created_at.isoformat()}
            for i in _identities(session, keystore, subject_id)
        ],
        "traits": read_traits(session, keystore=keystore, subject_id=subject_id),
        "computed": _computed(session, subject_id, None),
        "pending_links": links.export(session, subject_id=subject_id),
    }


def _deleted(session: Session, statement: Delete) -> int:
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount or 0


def erase_subject(session: Session, *, keystore: Keystore, subject_id: uuid.UUID) -> int:
    """Delete this subject id's profile rows; returns how many. Its key is the keystore store's to
    destroy (last, by the registry), and tombstones merged into it are erased by id the same way."""
    del keystore  # part of the registry's handler shape; profile rows need no key to delete
    anonymous = session.scalars(
        select(Identity.digest).where(
            Identity.subject_id == subject_id, Identity.kind == IdentityKind.ANONYMOUS_ID.value
        )
    ).all()
    removed = links.erase(session, subject_id=subject_id, anonymous_digests=list(anonymous))
    for table in (Identity, Trait, Computed, Subject):
        removed += _deleted(session, delete(table).where(table.subject_id == subject_id))
    return removed


def expire(session: Session, *, at: datetime) -> int:
    """Delete traits and computed atoms whose retention ended by `at` (the retention sweep)."""
    removed = links.expire(session, at=at)
    for table in (Trait, Computed):
        removed += _deleted(session, delete(table).where(table.expires_at <= at))
    return removed
