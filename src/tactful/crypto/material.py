"""Key material: each subject's data key and salt, wrapped under the key-encryption key (KEK) in the
keystore's `subject_keys` table, and the KEK's re-wrapping of every key (rotation).

    read(subject) ──▶ unwrap (the row's KEK id must be ours, else KeystoreLocked) ──▶ material
    read_or_create(subjects) ──▶ one transaction: read those that exist, wrap and insert the others
    insert(conn, materials) ──▶ refuses with KeystoreLocked when the keystore moved to another KEK
    rotate(new secret) ──▶ every system and subject key re-wrapped in one transaction

A material is `2 * KEY` random bytes: the data key, then the salt (`split`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from cryptography.exceptions import InvalidTag
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from tactful.crypto.sealing import (
    KEY,
    derive_kek,
    kek_fingerprint,
    open_sealed,
    seal,
    subject_keys,
    system_keys,
)
from tactful.crypto.system import require_kek
from tactful.errors import ConfigurationError, KeystoreLocked
from tactful.types import utcnow

CHUNK = 500
"""Subjects or digests per statement: below every driver's parameter limit."""
LOCKED = (
    "the keystore was written under another TACTFUL_SECRET_KEY; set the key it was created with (or "
    "the one `tactful secret rotate` moved it to) and restart"
)


def fresh_material() -> bytes:
    return os.urandom(2 * KEY)


def split(material: bytes) -> tuple[bytes, bytes]:
    """(data key, salt)."""
    return material[:KEY], material[KEY:]


class Wrapping:
    """The keystore's KEK and the subject keys it wraps. Shared by a keystore and all its views."""

    def __init__(self, engine: Engine, secret_key: str) -> None:
        self.engine = engine
        self.kek = derive_kek(secret_key)
        self.kek_id = kek_fingerprint(self.kek)

    def unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        if kek_id != self.kek_id:
            raise KeystoreLocked(LOCKED)
        try:
            return open_sealed(self.kek, wrapped, aad)
        except (InvalidTag, ValueError) as exc:
            raise ConfigurationError("a keystore entry failed authentication: it was altered") from exc

    def read(self, subject_id: uuid.UUID) -> bytes | None:
        """The subject's material, or None when it has no key."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subject_keys.c.wrapped, subject_keys.c.kek_id).where(
                    subject_keys.c.subject_id == subject_id
                )
            ).first()
        return None if row is None else self.unwrap(row.wrapped, row.kek_id, subject_id.bytes)

    def create(self, subject_id: uuid.UUID) -> bytes | None:
        """A new material for the subject, written; None when another process wrote one first."""
        material = fresh_material()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(subject_keys).values(
                        subject_id=subject_id,
                        wrapped=seal(self.kek, material, subject_id.bytes),
                        kek_id=self.kek_id,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            return None
        return material

    def read_many(self, conn: Connection, wanted: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """The material of each wanted subject that has a key, in `conn`'s transaction."""
        found: dict[uuid.UUID, bytes] = {}
        for start in range(0, len(wanted), CHUNK):
            rows = conn.execute(
                select(subject_keys.c.subject_id, subject_keys.c.wrapped, subject_keys.c.kek_id).where(
                    subject_keys.c.subject_id.in_(wanted[start : start + CHUNK])
                )
            )
            for row in rows:
                found[row.subject_id] = self.unwrap(row.wrapped, row.kek_id, row.subject_id.bytes)
        return found

    def read_or_create(self, wanted: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """Every wanted subject's material, the missing ones created, in one transaction.
        IntegrityError when another process created some of them first (then read again)."""
        with self.engine.begin() as conn:
            found = self.read_many(conn, wanted)
            created = {s: fresh_material() for s in wanted if s not in found}
            self.insert(conn, created)
        return found | created

    def insert(self, conn: Connection, materials: Mapping[uuid.UUID, bytes]) -> None:
        """Wrap and insert `materials` in `conn`'s transaction."""
        now = utcnow()
        rows = [
            {"subject_id": s, "wrapped": seal(self.kek, materials[s], s.bytes), "kek_id": self.kek_id}
            for s in sorted(materials, key=str)  # one lock order for concurrent writers
        ]
        if rows:
            require_kek(conn, self.kek_id, locked=LOCKED)
            conn.execute(insert(subject_keys), [row | {"created_at": now} for row in rows])

    def exists(self, subject_id: uuid.UUID) -> bool:
        with self.engine.begin() as conn:
            found = conn.execute(
                select(subject_keys.c.subject_id).where(subject_keys.c.subject_id == subject_id)
            )
            return found.first() is not None

    def created_at(self, subject_id: uuid.UUID) -> datetime | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subject_keys.c.created_at).where(subject_keys.c.subject_id == subject_id)
            ).first()
        return None if row is None else row.created_at

    def rotate(self, new_secret: str, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-wrap every key under the KEK of `new_secret` in one transaction. Returns the count."""
        new_kek = derive_kek(new_secret)
        new_id = kek_fingerprint(new_kek)
        done = 0
        with self.engine.begin() as conn:
            systems = conn.execute(select(system_keys)).all()
            total = conn.execute(select(subject_keys.c.subject_id)).all()
            count = len(systems) + len(total)
            for row in systems:
                aad = row.name.encode()
                key = self.unwrap(row.wrapped, row.kek_id, aad)
                conn.execute(
                    update(system_keys)
                    .where(system_keys.c.name == row.name)
                    .values(wrapped=seal(new_kek, key, aad), kek_id=new_id)
                )
                done += 1
                if progress:
                    progress(done, count)
            for (subject_id,) in total:
                wrapped, kek_id = conn.execute(
                    select(subject_keys.c.wrapped, subject_keys.c.kek_id).where(
                        subject_keys.c.subject_id == subject_id
                    )
                ).one()
                material = self.unwrap(wrapped, kek_id, subject_id.bytes)
                conn.execute(
                    update(subject_keys)
                    .where(subject_keys.c.subject_id == subject_id)
                    .values(wrapped=seal(new_kek, material, subject_id.bytes), kek_id=new_id)
                )
                done += 1
                if progress:
                    progress(done, count)
        self.kek, self.kek_id = new_kek, new_id
        return done
