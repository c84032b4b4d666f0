"""Keys of the engine itself, not of a subject, in the keystore's `system_keys` table.

    blind-index          keys the digests of identifiers (never destroyed)
    audit-chain          keys the audit log's hashes; carries the anchor where the keyed segment
                         starts (never destroyed: not by erasure, not by rotation, which re-wraps it)
    quarantine/<date>    seals the quarantined messages received on that day that name nobody;
                         dropped once every message it sealed is past the quarantine's retention

Each is wrapped by the KEK like a subject's key, bound to its name, so `Keystore.rotate` re-wraps
them all. They are created on first use; when two processes race, the first insert wins and the
other reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from tactful.crypto.sealing import KEY, seal, system_keys

INDEX_KEY = "blind-index"
AUDIT_KEY = "audit-chain"
PROTECTED = frozenset({INDEX_KEY, AUDIT_KEY})
"""Names that `drop` refuses: what they key must stay verifiable or findable for ever."""


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


Unwrap = Callable[[bytes, str, bytes], bytes]


class SystemKeys:
    """Read, create and drop system keys. `cache` is shared by a keystore and all its views."""

    def __init__(self, engine: Engine, cache: dict[str, bytes]) -> None:
        self.engine, self.cache = engine, cache

    def read(self, name: str, *, unwrap: Unwrap) -> bytes | None:
        if name in self.cache:
            return self.cache[name]
        with self.engine.begin() as conn:
            row = conn.execute(
                select(system_keys.c.wrapped, system_keys.c.kek_id).where(system_keys.c.name == name)
            ).first()
        if row is None:
            return None
        material = self.cache[name] = unwrap(row.wrapped, row.kek_id, name.encode())
        return material

    def create(self, name: str, material: bytes, *, kek: bytes, kek_id: str, unwrap: Unwrap) -> bytes:
        """Store `material` under `name` unless a key of that name exists; the key that is stored."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(system_keys).values(
                        name=name, wrapped=seal(kek, material, name.encode()), kek_id=kek_id
                    )
                )
        except IntegrityError:
            found = self.read(name, unwrap=unwrap)  # another process made it first: theirs holds
            assert found is not None
            return found
        self.cache[name] = material
        return material

    def read_or_create(self, name: str, *, kek: bytes, kek_id: str, unwrap: Unwrap) -> tuple[bytes, bool]:
        """The key named `name`, made of fresh random bytes if it did not exist; and whether it was made."""
        found = self.read(name, unwrap=unwrap)
        if found is not None:
            return found, False
        material = os.urandom(KEY)
        stored = self.create(name, material, kek=kek, kek_id=kek_id, unwrap=unwrap)
        return stored, stored is material

    def drop_before(self, prefix: str, *, name_below: str) -> int:
        """Drop the keys named `prefix...` that sort below `prefix + name_below`; how many."""
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
