"""Stored traits. Direct identifiers are encrypted under the subject's own data key, so erasing the
key (crypto-shredding) makes every copy of them unreadable; e-mail addresses are also entered in the
keystore's blind index so that a subject can be found by e-mail without storing it in clear.

    identify traits ──▶ sealed identifiers, plain others ──▶ traits table
                                      └ without e-mail addresses, phone or card numbers
        e-mail addresses ──vouched for (a server key, the operator)?──▶ the index points at them
                         └─ not (a page, even with a subject token) ──▶ indexed only while no
                            other subject holds them

Lookups by e-mail (an operator's erasure or access request, the subject lookup) follow the index, so
a page must not be able to point someone's address at a profile it made (DESIGN §4). A subject token
proves who a user is, not that an address is theirs: only the site's backend vouches for that.

A trait kept in clear holds no e-mail address, phone or card number (DESIGN §3, invariant 15):
collection's field filter has taken them out already, and a rectification's new values lose them
here (`in_clear`); an identifier (an address in `traits.email`) is sealed instead."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from tactful.bulk import one_of, upsert_rows
from tactful.catalog.redact import personal
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


def in_clear(value: object) -> object:
    """A trait value as it may be stored unsealed: strings, at any depth, without e-mail addresses,
    phone or card numbers (each becomes `[email]`, `[phone]`, `[card]`, as in free text)."""
    if isinstance(value, str):
        return personal(value)[0]
    if isinstance(value, list):
        return [in_clear(item) for item in value]
    if isinstance(value, dict):
        return {key: in_clear(item) for key, item in value.items()}
    return value


def seal(keystore: Keystore, subject_id: uuid.UUID, atom: str, value: object) -> bytes:
    # JSON keeps the value's type (a phone number sent as a number comes back as one).
    return keystore.encrypt(subject_id, json.dumps(value, ensure_ascii=False), context=atom)


def unseal(keystore: Keystore, subject_id: uuid.UUID, atom: str, token: bytes) -> object:
    decoded: object = json.loads(keystore.decrypt(subject_id, token, context=atom))
    return decoded


TraitUpdate = tuple[uuid.UUID, Mapping[str, object], datetime]
"""(subject_id, identify traits, event time) for `apply_traits_many`."""

_CHUNK = 500


@dataclass
class _Slot:
    """A trait row as the batch leaves it: None once removed; `stored` while it is in the table."""

    row: dict[str, object] | None
    stored: bool


_TRAITS = Trait.__table__
assert isinstance(_TRAITS, Table)
_KEYS = select(_TRAITS.c.subject_id, _TRAITS.c.atom).where(
    one_of(_TRAITS.c.subject_id, "subjects"),
    one_of(_TRAITS.c.atom, "atoms"),
)


def _existing(session: Session, keys: set[tuple[uuid.UUID, str]]) -> set[tuple[uuid.UUID, str]]:
    subjects = sorted({s for s, _ in keys}, key=str)
    atoms = sorted({a for _, a in keys})
    found: set[tuple[uuid.UUID, str]] = set()
    for start in range(0, len(subjects), _CHUNK):
        rows = session.connection().execute(
            _KEYS, {"subjects": subjects[start : start + _CHUNK], "atoms": atoms}
        )
        found.update((row.subject_id, row.atom) for row in rows)
    return found & keys


def apply_traits_many(
    session: Session,
    *,
    keystore: Keystore,
    catalog: CatalogView,
    updates: Sequence[TraitUpdate],
    vouched: bool = True,
) -> list[TraitsResult]:
    """`apply_traits` for each update in order: one read, one upsert and one keystore transaction for
    the e-mail index, whatever the number of updates (and a delete per trait removed).

    `vouched`: the site's backend (a server key) or the operator vouches for the addresses. Without,
    an address is stored in its profile, sealed, but indexed only while the index points at no other
    subject (`_unclaimed`)."""
    declared = [
        {name: catalog.trait_atoms[name] for name in traits if name in catalog.trait_atoms}
        for _, traits, _ in updates
    ]
    keys = {
        (subject_id, atom.name)
        for (subject_id, _, _), d in zip(updates, declared, strict=True)
        for atom in d.values()
    }
    if keys:
        session.flush()  # a merge in this transaction may have moved traits through the ORM
    present = _existing(session, keys) if keys else set()
    slots = {key: _Slot(None, key in present) for key in keys}
    results: list[TraitsResult] = []
    emails: dict[str, uuid.UUID] = {}
    for (subject_id, traits, at), atoms in zip(updates, declared, strict=True):
        ignored = tuple(sorted(name for name in traits if name not in atoms))
        stored: list[str] = []
        encrypted: list[str] = []
        removed: list[str] = []
        for name, atom in atoms.items():
            value, slot = traits[name], slots[(subject_id, atom.name)]
            if value is None:
                if slot.stored:
                    slot.row, slot.stored = None, False
                    removed.append(atom.name)
                continue
            sealed = seal(keystore, subject_id, atom.name, value) if atom.identifier else None
            slot.row = {
                "subject_id": subject_id,
                "atom": atom.name,
                "value": None if atom.identifier else in_clear(value),
                "value_enc": sealed,
                "updated_at": at,
                "expires_at": at + atom.retention,
            }
            slot.stored = True
            (encrypted if atom.identifier else stored).append(atom.name)
            if is_email(atom) and isinstance(value, str) and value.strip():
                emails.pop(normalise_email(value), None)  # the last update of an address wins
                emails[normalise_email(value)] = subject_id
        results.append(
            TraitsResult(
                stored=tuple(stored), encrypted=tuple(encrypted), removed=tuple(removed), ignored=ignored
            )
        )
    _write(session, slots, present)
    if not vouched:
        emails = _unclaimed(keystore, emails)
    if emails:
        # On a request's view, written with the keys of new subjects in one keystore transaction.
        keystore.put_indexes(
            [(subject_id, EMAIL_INDEX, email) for email, subject_id in emails.items()],
            before_commit_of=session,
        )
    return results


def _unclaimed(keystore: Keystore, emails: Mapping[str, uuid.UUID]) -> dict[str, uuid.UUID]:
    """The entries whose address the index holds for no other subject: first come, until the site's
    backend vouches for the address for someone."""
    kept: dict[str, uuid.UUID] = {}
    for email, subject_id in emails.items():
        holder = keystore.lookup_index(kind=EMAIL_INDEX, value=email)
        if holder is None or holder == subject_id:
            kept[email] = subject_id
    return kept


def _write(
    session: Session, slots: Mapping[tuple[uuid.UUID, str], _Slot], present: set[tuple[uuid.UUID, str]]
) -> None:
    table = Trait.__table__
    assert isinstance(table, Table)
    gone = sorted((key for key, slot in slots.items() if slot.row is None and key in present), key=str)
    for subject_id, atom in gone:
        session.execute(delete(table).where(table.c.subject_id == subject_id, table.c.atom == atom))
    rows = [
        slot.row for _, slot in sorted(slots.items(), key=lambda item: str(item[0])) if slot.row is not None
    ]
    if rows:
        upsert_rows(
            session,
            table,
            rows,
            keys=("subject_id", "atom"),
            replace=("value", "value_enc", "updated_at", "expires_at"),
        )
    # ORM copies of these rows are now stale: forget them, so that later reads load what was written.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Trait) and (obj.subject_id, obj.atom) in slots:
            session.expunge(obj)


def apply_traits(
    session: Session,
    *,
    keystore: Keystore,
    catalog: CatalogView,
    subject_id: uuid.UUID,
    traits: Mapping[str, object],
    at: datetime,
    vouched: bool = True,
) -> TraitsResult:
    """Store the traits the catalog declares (a `None` value removes the trait, as Segment unsets);
    `vouched` as for `apply_traits_many`."""
    updates = [(subject_id, traits, at)]
    return apply_traits_many(session, keystore=keystore, catalog=catalog, updates=updates, vouched=vouched)[0]


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
