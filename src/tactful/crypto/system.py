"""Keys of the engine itself, not of a subject, in the keystore's `system_keys` table.

    blind-index          keys the digests of identifiers (never destroyed)
    audit-chain          keys the audit log's hashes; carries the anchor where the keyed segment
                         starts (never destroyed: not by erasure, not by rotation, which re-wraps it)
    erasure-log          keys the erasure log's digests of erased identifiers (never destroyed: the
                         log must still match them after any erasure; `erasure_log.py`)
    quarantine/<date>    seals the quarantined messages received on that day that name nobody;
                         dropped once every message it sealed is past the quarantine's retention

Each is wrapped by the KEK like a subject's key, bound to its name, so `Keystore.rotate` re-wraps
them all. They are created on first use; when two processes race, the first insert wins and the
other reads it. A process keeps the keys it read (`cache`); a dropped key is gone from the database
at once and from other processes' caches when they restart, which is soon enough for keys that only
seal on their own day.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from tactful.crypto.sealing import KEY, open_sealed, seal, system_keys
from tactful.errors import KeyDestroyed, KeystoreLocked

INDEX_KEY = "blind-index"
AUDIT_KEY = "audit-chain"
ERASURE_KEY = "erasure-log"
PROTECTED = frozenset({INDEX_KEY, AUDIT_KEY, ERASURE_KEY})
"""Names that `drop_before` refuses: what they key must stay verifiable or findable for ever."""

Unwrap = Callable[[bytes, str, bytes], bytes]
"""(wrapped, kek_id, aad) → the key, or ConfigurationError: the keystore's own check of the KEK."""


@dataclass(frozen=True)
class ChainKey:
    """The audit chain's key, and the anchor its keyed segment starts after: entries up to
    `anchor_seq` were hashed without a key before it existed, and `anchor_hash` is the hash of
    entry `anchor_seq` (the genesis hash when the log was empty)."""

    key: bytes
    anchor_seq: int
    anchor_hash: str

    def material(self) -> bytes:
        anchor = json.dumps({"seq": self.anchor_seq, "hash": self.anchor_hash}, separators=(",", ":"))
        return self.key + anchor.encode()

    @classmethod
    def of(cls, material: bytes) -> ChainKey:
        anchor = json.loads(material[KEY:].decode())
        return cls(key=material[:KEY], anchor_seq=int(anchor["seq"]), anchor_hash=str(anchor["hash"]))


def require_kek(conn: Connection, kek_id: str, *, locked: str) -> None:
    """Raise `KeystoreLocked` (with `locked` as its message) when the keystore's keys are wrapped
    under another KEK than `kek_id`: called in the transaction that writes new keys, so that a process
    still running after `tactful secret rotate` cannot wrap a subject's key under the old secret,
    where the restarted processes could never open it."""
    current = conn.execute(select(system_keys.c.kek_id).where(system_keys.c.name == INDEX_KEY)).scalar()
    if current is not None and current != kek_id:
        raise KeystoreLocked(locked)


@dataclass(frozen=True)
class SystemKeys:
    """The system keys of one keystore, under its current KEK (`Keystore.system`)."""

    engine: Engine
    cache: dict[str, bytes]
    """Shared by a keystore and all its views."""
    kek: bytes
    kek_id: str
    unwrap: Unwrap

    def read(self, name: str) -> bytes | None:
        if name in self.cache:
            return self.cache[name]
        with self.engine.begin() as conn:
            row = conn.execute(
                select(system_keys.c.wrapped, system_keys.c.kek_id).where(system_keys.c.name == name)
            ).first()
        if row is None:
            return None
        material = self.cache[name] = self.unwrap(row.wrapped, row.kek_id, name.encode())
        return material

    def check_kek(self) -> None:
        """Raise `KeystoreLocked` unless the KEK opens the keystore: one system key (the blind-index
        key when it exists, else whichever comes first), read afresh, since the cache would hide a
        `tactful secret rotate` made by another process, and unwrapped. A keystore without any
        system key yet has nothing to open, and passes."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(system_keys.c.name, system_keys.c.wrapped, system_keys.c.kek_id)
                .order_by((system_keys.c.name == INDEX_KEY).desc(), system_keys.c.name)
                .limit(1)
            ).first()
        if row is not None:
            self.unwrap(row.wrapped, row.kek_id, row.name.encode())

    def create(self, name: str, material: bytes) -> bytes:
        """Store `material` under `name` unless a key of that name exists; the key that is stored."""
        try:
            with self.engine.begin() as conn:
                wrapped = seal(self.kek, material, name.encode())
                conn.execute(insert(system_keys).values(name=name, wrapped=wrapped, kek_id=self.kek_id))
        except IntegrityError:
            found = self.read(name)  # another process made it first: theirs holds
            assert found is not None
            return found
        self.cache[name] = material
        return material

    def read_or_create(self, name: str) -> tuple[bytes, bool]:
        """The key named `name`, made of fresh random bytes if it did not exist; and whether it was made."""
        found = self.read(name)
        if found is not None:
            return found, False
        material = os.urandom(KEY)
        stored = self.create(name, material)
        return stored, stored is material

    # -- the audit chain's key ----------------------------------------------------------------

    def chain_key(self) -> ChainKey | None:
        """The audit chain's key and anchor, or None before the first keyed append made them."""
        material = self.read(AUDIT_KEY)
        return None if material is None else ChainKey.of(material)

    def create_chain_key(self, *, anchor_seq: int, anchor_hash: str) -> ChainKey:
        """Make the audit chain's key, its keyed segment anchored after entry `anchor_seq` (whose
        hash is `anchor_hash`); when it exists already, the existing key and anchor hold. Call it
        under the audit log's append lock, with the log's head as the anchor."""
        wanted = ChainKey(key=os.urandom(KEY), anchor_seq=anchor_seq, anchor_hash=anchor_hash)
        return ChainKey.of(self.create(AUDIT_KEY, wanted.material()))

    # -- keys that seal data of no subject ------------------------------------------------------

    def ensure(self, name: str) -> bool:
        """Make the key `name` unless it exists; True when this call made it."""
        return self.read_or_create(name)[1]

    def encrypt(self, name: str, plaintext: str, *, context: str) -> bytes:
        """Encrypt with the key `name` (made on first use), bound to the name and `context`."""
        key, _ = self.read_or_create(name)
        return seal(key, plaintext.encode(), f"{name}\x00{context}".encode())

    def decrypt(self, name: str, token: bytes, *, context: str) -> str:
        """Decrypt what `encrypt` sealed; KeyDestroyed once the key was dropped."""
        key = self.read(name)
        if key is None:
            raise KeyDestroyed(f"the system key {name!r} was dropped")
        try:
            return open_sealed(key, token, f"{name}\x00{context}".encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise KeyDestroyed(f"the value does not decrypt under the system key {name!r}") from exc

    def drop_before(self, prefix: str, *, name_below: str) -> int:
        """Drop the keys named `prefix...` that sort below `prefix + name_below` (never the
        blind-index or audit keys): what they sealed can no longer be read, by anyone. How many."""
        if not prefix or any(name.startswith(prefix) for name in PROTECTED):
            raise ValueError(f"system keys under {prefix!r} are never dropped")
        with self.engine.begin() as conn:
            names = [
                name
                for (name,) in conn.execute(
                    select(system_keys.c.name).where(
                        system_keys.c.name.startswith(prefix, autoescape=True),
                        system_keys.c.name < prefix + name_below,
                    )
                )
            ]
            if names:
                conn.execute(delete(system_keys).where(system_keys.c.name.in_(names)))
        for name in names:
            self.cache.pop(name, None)
        return len(names)
