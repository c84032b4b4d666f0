"""The keystore: what callers use of per-subject data keys and salts, the blind index, and a
request's held writes. Each concern has its module; this class puts them behind one object and keeps
a request's cache of unwrapped keys (`cached()`).

    Keystore ─┬─ material.Wrapping      the KEK, subject keys' rows, rotation      (shared by views)
              ├─ held.Unwritten         every view's held writes, read as written (shared by views)
              ├─ system.SystemKeys      the engine's own keys                      (shared cache)
              ├─ held.HeldWrites        this view's held writes                    (one per view)
              ├─ blind_index.BlindIndex the index as this view sees it             (one per view)
              └─ the view's unwrapped keys, for one request                        (one per view)
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from cryptography.exceptions import InvalidTag
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.crypto import blind_index, commit
from tactful.crypto.blind_index import BlindIndex
from tactful.crypto.erasure_log import ErasureLog
from tactful.crypto.held import HeldWrites, Unwritten
from tactful.crypto.material import Wrapping, fresh_material, split
from tactful.crypto.sealing import keystore_metadata, open_sealed, seal, subject_keys
from tactful.crypto.system import INDEX_KEY, SystemKeys
from tactful.db import make_engine, truncate_log
from tactful.errors import KeyDestroyed


class Keystore:
    """Subject data keys and salts, wrapped by the KEK, in their own database."""

    def __init__(self, url: str, *, secret_key: str) -> None:
        self.engine = make_engine(url)
        self._wrapping = Wrapping(self.engine, secret_key)
        self._index_key: bytes | None = None
        # System keys by name, shared with every view (`copy.copy` keeps the reference).
        self._system_cache: dict[str, bytes] = {}
        self._unwritten = Unwritten()
        self._materials: dict[uuid.UUID, tuple[bytes, bytes]] | None = None
        self._held = HeldWrites(self._wrapping, self._unwritten, None)
        self._index = BlindIndex(self.engine, key=self.index_key, unwritten=self._unwritten, held=self._held)

    def cached(self) -> Keystore:
        """A view of this keystore that keeps the subject keys it unwraps, for one unit of work.

        Build one per request and drop it with the request: a key destroyed by another process
        must stop working on the next request, so the cache never outlives the call that made it.
        The view shares the engine (do not dispose it); erasing through it forgets the cached key.
        """
        mac = self._index.mac()  # the index key is never destroyed: the view shares it, read once
        view = copy.copy(self)
        view._materials = {}
        view._held = HeldWrites(self._wrapping, self._unwritten, view._materials)
        view._index = BlindIndex(
            self.engine, key=self.index_key, unwritten=self._unwritten, held=view._held, mac=mac
        )
        return view

    @property
    def caching(self) -> bool:
        """True for a view made by `cached()`."""
        return self._materials is not None

    def create_schema(self) -> None:
        keystore_metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def truncate_log(self) -> bool:
        """Fold the keystore's write-ahead log into its file and empty it (SQLite; True elsewhere),
        so that no destroyed key or erased entry survives in the `-wal` file."""
        return truncate_log(self.engine)

    @property
    def erasure_log(self) -> ErasureLog:
        """Who was erased and when, as keyed digests (`erasure_log.py`)."""
        return ErasureLog(self.engine, self.system)

    # -- system keys -------------------------------------------------------------------------

    def index_key(self) -> bytes:
        """The blind-index key (created on first use; it is never destroyed, so it may be cached)."""
        if self._index_key is None:
            self._index_key, _ = self.system.read_or_create(INDEX_KEY)
        return self._index_key

    @property
    def system(self) -> SystemKeys:
        """The engine's own keys: the audit chain's, and those that seal data of no subject."""
        wrapping = self._wrapping
        return SystemKeys(self.engine, self._system_cache, wrapping.kek, wrapping.kek_id, wrapping.unwrap)

    # -- subject keys ------------------------------------------------------------------------

    def _remember(self, subject_id: uuid.UUID, material: bytes) -> tuple[bytes, bytes]:
        keys = split(material)
        if self._materials is not None:
            self._materials[subject_id] = keys
        return keys

    def _subject_material(self, subject_id: uuid.UUID, *, create: bool) -> tuple[bytes, bytes]:
        if self._materials is not None and subject_id in self._materials:
            return self._materials[subject_id]
        material = self._held.read_keys(subject_id)
        if material is not None:
            return self._remember(subject_id, material)
        material = self._unwritten.keys.get(subject_id)
        if material is None:
            material = self._wrapping.read(subject_id)
        if material is None and create:
            material = self._wrapping.create(subject_id)
            if material is None:  # another process won the race
                return self._subject_material(subject_id, create=False)
        if material is None:
            raise KeyDestroyed(f"no data key for subject {subject_id}: it was erased or never existed")
        return self._remember(subject_id, material)

    def ensure_subject(self, subject_id: uuid.UUID) -> None:
        self._subject_material(subject_id, create=True)

    def ensure_subjects(self, subject_ids: Iterable[uuid.UUID]) -> None:
        """Make sure each subject has a data key, in one keystore transaction for all of them.

        On a cached view the keys are kept too, so encrypting for these subjects afterwards needs
        no further keystore round trip.
        """
        wanted = sorted(
            {s for s in subject_ids if self._materials is None or s not in self._materials}, key=str
        )
        # Those a started held write reads come from that read, without a transaction of their own
        # (which would wait for the write's commit).
        for subject_id in wanted:
            material = self._held.read_keys(subject_id)
            if material is not None:
                self._remember(subject_id, material)
        wanted = [s for s in wanted if self._materials is None or s not in self._materials]
        if not wanted:
            return
        try:
            materials = self._wrapping.read_or_create(wanted)
        except IntegrityError:
            materials = self._wrapping.read_or_create(wanted)  # another process created some first
        # Remembered only once committed: a rolled-back insert must not leave a usable key behind.
        for subject_id, material in materials.items():
            self._remember(subject_id, material)

    def new_subjects(self, subject_ids: Iterable[uuid.UUID], *, before_commit_of: Session) -> None:
        """Keys for subjects whose ids were just drawn at random, so that no other process can hold
        one for them. On a view they are usable at once and written with its other held writes
        (see `write_before_commit`); elsewhere this is `ensure_subjects`."""
        if not self.caching:
            self.ensure_subjects(subject_ids)
            return
        for subject_id in subject_ids:
            if not self._held.holds_key(subject_id):
                material = fresh_material()
                self._held.hold_key(subject_id, material)
                self._remember(subject_id, material)
        if self._held.holds_keys:
            self.write_before_commit(before_commit_of)

    def has_subject(self, subject_id: uuid.UUID) -> bool:
        return subject_id in self._unwritten.keys or self._wrapping.exists(subject_id)

    def encrypt(self, subject_id: uuid.UUID, plaintext: str, *, context: str) -> bytes:
        """Encrypt `plaintext` with the subject's data key, bound to the subject and `context`."""
        dek, _ = self._subject_material(subject_id, create=True)
        return seal(dek, plaintext.encode(), subject_id.bytes + context.encode())

    def decrypt(self, subject_id: uuid.UUID, token: bytes, *, context: str) -> str:
        dek, _ = self._subject_material(subject_id, create=False)
        try:
            return open_sealed(dek, token, subject_id.bytes + context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise KeyDestroyed("the value does not decrypt under this subject's key") from exc

    def subject_ref(self, subject_id: uuid.UUID, *, domain: str = "audit") -> str:
        """A keyed hash of the subject under its own salt: unlinkable once the salt is destroyed."""
        _, salt = self._subject_material(subject_id, create=True)
        return hmac.new(salt, f"{domain}\x00{subject_id}".encode(), hashlib.sha256).hexdigest()

    # -- held writes (held.py; commit.py ties them to a session's commit) --------------------

    def write_before_commit(self, session: Session) -> None:
        """Write this view's held keys and index entries just before `session` commits: one keystore
        transaction per request, and no key sealing a committed row that is not durable itself."""
        commit.hold_until_commit(session, self)

    def write_held_soon(self, *, reading: Iterable[uuid.UUID] = ()) -> None:
        """Start writing the held keys and index entries on a worker thread, so that the keystore's
        commit overlaps the rest of the request; `write_held`, just before the main commit, waits
        for it. One such write at a time: what is held after it starts waits for `write_held`.

        `reading`: subjects whose keys the request will use next (the salts of those its audit
        entries name), read first in that same transaction rather than in one of their own, which
        would wait for its commit; using one of those keys waits for the read only. On a view only
        (elsewhere keys are not kept)."""
        wanted = [s for s in reading if self._materials is not None and s not in self._materials]
        self._held.write_held_soon(wanted)

    def write_held(self) -> None:
        """Write the held keys and index entries now, in one keystore transaction (after waiting
        for a write started by `write_held_soon`)."""
        self._held.write_held()

    def drop_held(self) -> None:
        """Forget the held writes: the transaction whose rows needed them rolled back."""
        self._held.drop_held()

    # -- blind index (blind_index.py) --------------------------------------------------------

    def digest(self, kind: str, value: str) -> str:
        """A keyed, deterministic digest of an identifier, for lookups without storing the value."""
        return self._index.digest(kind, value)

    def put_index(self, subject_id: uuid.UUID, *, kind: str, value: str) -> None:
        self._index.put(subject_id, kind=kind, value=value)

    def put_indexes(
        self, entries: Sequence[tuple[uuid.UUID, str, str]], *, before_commit_of: Session | None = None
    ) -> None:
        """`put_index` for each (subject_id, kind, value), in one transaction; for a value given
        twice, the last entry wins. On a view, with `before_commit_of`, the entries are held and
        written with the view's other held writes (see `write_before_commit`)."""
        hold = before_commit_of is not None and self.caching
        if self._index.put_many(entries, hold=hold) and before_commit_of is not None:
            self.write_before_commit(before_commit_of)

    def lookup_index(self, *, kind: str, value: str) -> uuid.UUID | None:
        return self._index.lookup(kind=kind, value=value)

    def index_digests(self, subject_id: uuid.UUID) -> set[str]:
        """The digests the blind index holds for the subject (its e-mail addresses, keyed)."""
        return self._index.digests_of(subject_id)

    def reassign(self, *, from_subject: uuid.UUID, to_subject: uuid.UUID) -> None:
        """Point a merged subject's index entries at the surviving subject."""
        self._index.reassign(from_subject=from_subject, to_subject=to_subject)

    # -- erasure and rotation ---------------------------------------------------------------

    def destroy(self, subject_id: uuid.UUID) -> bool:
        """Forget the subject's key, salt and index entries. True when a key existed."""
        self.write_held()
        if self._materials is not None:
            self._materials.pop(subject_id, None)
        self._held.forget_read(subject_id)
        self._unwritten.erase(subject_id)  # another view may hold them: dropped, never written
        with self.engine.begin() as conn:
            blind_index.delete_subject(conn, subject_id)
            return bool(
                conn.execute(delete(subject_keys).where(subject_keys.c.subject_id == subject_id)).rowcount
            )

    def created_at(self, subject_id: uuid.UUID) -> datetime | None:
        self.write_held()
        return self._wrapping.created_at(subject_id)

    def rotate(self, new_secret: str, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-wrap every key under the KEK of `new_secret` in one transaction. Returns the count."""
        self.write_held()
        return self._wrapping.rotate(new_secret, progress=progress)
