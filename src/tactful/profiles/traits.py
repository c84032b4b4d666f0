"""Stored traits. Direct identifiers are encrypted under the subject's own data key, so erasing the
key (crypto-shredding) makes every copy of them unreadable; e-mail addresses are also entered in the
keystore's blind index so that a subject can be found by e-mail without storing it in clear."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.profiles.models import Trait
from tactful.profiles.schemas import AtomInfo, CatalogView, TraitsResult

EMAIL_CATEGORY = "user.contact.email"
EMAIL_INDEX = "email"


def normalise_email(value: str) -> str:
    """The form an address is indexed under: lookups ignore case and surrounding blanks."""
    return value.strip().casefold()


def is_email(atom: AtomInfo) -> bool:
    return str(atom.category) == EMAIL_CATEGORY or atom.name == "traits.email"


def seal(keystore: Keystore, subject_id: uuid.UUID, atom: str, value: object) -> bytes:
    # JSON keeps the value's type (a phone number sent as a number comes back as one).
    return keystore.encrypt(subject_id, json.dumps(value, ensure_ascii=False), context=atom)


def unseal(keystore: Keystore, subject_id: uuid.UUID, atom: str, token: bytes) -> object:
    decoded: object = json.loads(keystore.decrypt(subject_id, token, context=atom))
    return decoded


def apply_traits(
    session: Session,
    *,
    keystore: Keystore,
    catalog: CatalogView,
    subject_id: uuid.UUID,
    traits: Mapping[str, object],
    at: datetime,
) -> TraitsResult:
    """Store the traits the catalog declares (a `None` value removes the trait, as Segment unsets)."""
    declared = {name: catalog.trait_atoms[name] for name in traits if name in catalog.trait_atoms}
    ignored = tuple(sorted(name for name in traits if name not in declared))
    if not declared:
        return TraitsResult(ignored=ignored)
    atoms = {atom.name for atom in declared.values()}
    existing = {
        row.atom: row
        for row in session.scalars(select(Trait).where(Trait.subject_id == subject_id, Trait.atom.in_(atoms)))
    }
    stored: list[str] = []
    encrypted: list[str] = []
    removed: list[str] = []
    emails: list[str] = []
    for name, atom in declared.items():
        value = traits[name]
        row = existing.get(atom.name)
        if value is None:
            if row is not None:
                session.delete(row)
                existing.pop(atom.name)
                removed.append(atom.name)
            continue
        plain, sealed = (
            (None, seal(keystore, subject_id, atom.name, value)) if atom.identifier else (value, None)
        )
        if row is None:
            row = Trait(subject_id=subject_id, atom=atom.name)
            session.add(row)
            existing[atom.name] = row
        row.value, row.value_enc = plain, sealed
        row.updated_at, row.expires_at = at, at + atom.retention
        (encrypted if atom.identifier else stored).append(atom.name)
        if is_email(atom) and isinstance(value, str) and value.strip():
            emails.append(normalise_email(value))
    for email in emails:
        keystore.put_index(subject_id, kind=EMAIL_INDEX, value=email)
    return TraitsResult(
        stored=tuple(stored), encrypted=tuple(encrypted), removed=tuple(removed), ignored=ignored
    )


def read_traits(
    session: Session, *, keystore: Keystore, subject_id: uuid.UUID, at: datetime | None = None
) -> dict[str, object]:
    """The subject's traits by atom name, decrypted; those expired by `at` are left out."""
    query = select(Trait).where(Trait.subject_id == subject_id).order_by(Trait.atom)
    if at is not None:
        query = query.where(Trait.expires_at > at)
    return {
        row.atom: unseal(keystore, subject_id, row.atom, row.value_enc)
        if row.value_enc is not None
        else row.value
        for row in session.scalars(query)
    }
