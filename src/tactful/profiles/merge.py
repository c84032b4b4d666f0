"""Merging one subject into another: every row moves to the survivor, the loser stays a tombstone.

Encrypted values are re-encrypted under the survivor's key, so that erasing the survivor later
(destroying its key) also shreds what came from the merged profile.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.crypto import Keystore
from tactful.profiles import links
from tactful.profiles.computed import combine_rows
from tactful.profiles.models import Computed, Identity, Subject, Trait
from tactful.profiles.schemas import Merge


def identity_context(kind: str) -> str:
    return f"identity.{kind}"


def move_identity(keystore: Keystore, identity: Identity, target: Subject) -> None:
    """Give `identity` to `target`, re-encrypting its value under the target's key."""
    context = identity_context(identity.kind)
    value = keystore.decrypt(identity.subject_id, identity.value_enc, context=context)
    identity.value_enc = keystore.encrypt(target.subject_id, value, context=context)
    identity.subject_id = target.subject_id


def _move_traits(
    session: Session, keystore: Keystore, source: Subject, target: Subject, at: datetime
) -> None:
    theirs = {
        row.atom: row for row in session.scalars(select(Trait).where(Trait.subject_id == source.subject_id))
    }
    ours = {
        row.atom: row for row in session.scalars(select(Trait).where(Trait.subject_id == target.subject_id))
    }
    for atom, row in theirs.items():
        session.delete(row)
        if row.expires_at <= at:
            continue
        kept = ours.get(atom)
        if kept is not None and kept.expires_at > at and kept.updated_at >= row.updated_at:
            continue  # the newer value wins; on a tie, the survivor's
        if kept is None:
            kept = Trait(subject_id=target.subject_id, atom=atom)
            session.add(kept)
        kept.value = row.value
        kept.value_enc = (
            None
            if row.value_enc is None
            else keystore.encrypt(
                target.subject_id,
                keystore.decrypt(source.subject_id, row.value_enc, context=atom),
                context=atom,
            )
        )
        kept.updated_at, kept.expires_at = row.updated_at, row.expires_at


def _move_computed(session: Session, source: Subject, target: Subject, at: datetime) -> None:
    theirs = session.scalars(select(Computed).where(Computed.subject_id == source.subject_id)).all()
    ours = {
        row.atom: row
        for row in session.scalars(select(Computed).where(Computed.subject_id == target.subject_id))
    }
    for row in theirs:
        session.delete(row)
        if row.expires_at <= at:
            continue
        kept = ours.get(row.atom)
        if kept is not None and kept.expires_at > at:
            combine_rows(row, kept)
            continue
        if kept is None:
            kept = Computed(subject_id=target.subject_id, atom=row.atom)
            session.add(kept)
        kept.value, kept.state = row.value, row.state
        kept.updated_at, kept.expires_at = row.updated_at, row.expires_at


def merge_subjects(
    session: Session, *, keystore: Keystore, source: Subject, target: Subject, at: datetime
) -> Merge:
    """Merge `source` into `target` inside the caller's transaction and audit it."""
    for identity in session.scalars(select(Identity).where(Identity.subject_id == source.subject_id)):
        move_identity(keystore, identity, target)
    _move_traits(session, keystore, source, target, at)
    _move_computed(session, source, target, at)
    links.move(session, source=source.subject_id, target=target.subject_id)
    source.merged_into = target.subject_id
    # Earlier tombstones of the source now point straight at the survivor: chains stay one hop long.
    session.execute(
        update(Subject)
        .where(Subject.merged_into == source.subject_id)
        .values(merged_into=target.subject_id)
        .execution_options(synchronize_session="fetch")
    )
    target.created_at = min(target.created_at, source.created_at)
    target.last_seen_at = max(target.last_seen_at, source.last_seen_at, at)
    session.flush()
    audit_service.append(
        session,
        keystore=keystore,
        action="profiles.merged",
        actor="collect",
        at=at,
        subject_id=target.subject_id,
        details={"merged_ref": keystore.subject_ref(source.subject_id)},
    )
    # Last, because the keystore commits on its own: the index follows only a merge that got this far.
    keystore.reassign(from_subject=source.subject_id, to_subject=target.subject_id)
    return Merge(source=source.subject_id, target=target.subject_id)
