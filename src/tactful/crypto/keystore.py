"""The keystore: per-subject data keys and salts, the blind index, and a request's held writes.

A per-request view (`cached()`) may hold back the keystore writes of its request, the keys of new
subjects and blind-index entries, and write them in one transaction just before the main session
commits (`write_before_commit`), or start that write early on a worker thread (`write_held_soon`)
and join it there: the key is durable before anything sealed with it is.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tactful.crypto import commit
from tactful.crypto.sealing import (
    KEY,
    blind_index,
    derive_kek,
    kek_fingerprint,
    keystore_metadata,
    open_sealed,
    seal,
    subject_keys,
    system_keys,
)
from tactful.crypto.system import INDEX_KEY, SystemKeys, require_kek
from tactful.db import make_engine
from tactful.errors import ConfigurationError, KeyDestroyed, KeystoreLocked
from tactful.types import utcnow

_CHUNK = 500
_Writing = tuple["Future[None]", dict[uuid.UUID, bytes], dict[str, uuid.UUID]]
"""A background write of held keys and index entries: the work, and what it writes."""
LOCKED = (
    "the keystore was written under another TACTFUL_SECRET_KEY; set the key it was created with (or "
    "the one `tactful secret rotate` moved it to) and restart"
)


class Keystore:
    """Subject data keys and salts, wrapped by the KEK, in their own database."""

    def __init__(self, url: str, *, secret_key: str) -> None:
        self.engine = make_engine(url)
        self._kek = derive_kek(secret_key)
        self._kek_id = kek_fingerprint(self._kek)
        self._index_key: bytes | None = None
        # System keys by name, shared with every view (`copy.copy` keeps the reference).
        self._system_cache: dict[str, bytes] = {}
        self._index_mac: hmac.HMAC | None = None
        self._materials: dict[uuid.UUID, tuple[bytes, bytes]] | None = None
        self._held_keys: dict[uuid.UUID, bytes] = {}
        self._held_index: dict[str, uuid.UUID] = {}
        self._writing: _Writing | None = None
        # Every view's held writes, shared with this keystore and all its views: the rest of the
        # process reads them as if written (only the holding session can know those subjects).
        self._unwritten: dict[uuid.UUID, bytes] = {}
        self._unwritten_index: dict[str, uuid.UUID] = {}

    def cached(self) -> Keystore:
        """A view of this keystore that keeps the subject keys it unwraps, for one unit of work.

        Build one per request and drop it with the request: a key destroyed by another process
        must stop working on the next request, so the cache never outlives the call that made it.
        The view shares the engine (do not dispose it); erasing through it forgets the cached key.
        """
        self._index_hmac()  # the index key is never destroyed: the view shares it, read once
        view = copy.copy(self)
        view._materials = {}
        view._held_keys, view._held_index = {}, {}
        view._writing = None
        return view

    @property
    def caching(self) -> bool:
        """True for a view made by `cached()`."""
        return self._materials is not None

    def create_schema(self) -> None:
        keystore_metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- system keys -------------------------------------------------------------------------

    def _unwrap(self, wrapped: bytes, kek_id: str, aad: bytes) -> bytes:
        if kek_id != self._kek_id:
            raise KeystoreLocked(LOCKED)
        try:
            return open_sealed(self._kek, wrapped, aad)
        except (InvalidTag, ValueError) as exc:
            raise ConfigurationError("a keystore entry failed authentication: it was altered") from exc

    def index_key(self) -> bytes:
        """The blind-index key (created on first use; it is never destroyed, so it may be cached)."""
        if self._index_key is None:
            self._index_key, _ = self.system.read_or_create(INDEX_KEY)
        return self._index_key

    @property
    def system(self) -> SystemKeys:
        """The engine's own keys: the audit chain's, and those that seal data of no subject."""
        return SystemKeys(self.engine, self._system_cache, self._kek, self._kek_id, self._unwrap)

    def _index_hmac(self) -> hmac.HMAC:
        if self._index_mac is None:
            self._index_mac = hmac.new(self.index_key(), digestmod=hashlib.sha256)
        return self._index_mac

    def digest(self, kind: str, value: str) -> str:
        """A keyed, deterministic digest of an identifier, for lookups without storing the value."""
        mac = self._index_hmac().copy()  # keyed once; each digest starts from that state
        mac.update(f"{kind}\x00{value}".encode())
        return f"{kind}:{mac.hexdigest()}"

    # -- subject keys ------------------------------------------------------------------------

    def _remember(self, subject_id: uuid.UUID, material: bytes) -> tuple[bytes, bytes]:
        keys = material[:KEY], material[KEY:]
        if self._materials is not None:
            self._materials[subject_id] = keys
        return keys

    def _subject_material(self, subject_id: uuid.UUID, *, create: bool) -> tuple[bytes, bytes]:
        if self._materials is not None and subject_id in self._materials:
            return self._materials[subject_id]
        held = self._unwritten.get(subject_id)
        if held is not None:
            return self._remember(subject_id, held)
        aad = subject_id.bytes
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subject_keys.c.wrapped, subject_keys.c.kek_id).where(
                    subject_keys.c.subject_id == subject_id
                )
            ).first()
        if row is not None:
            return self._remember(subject_id, self._unwrap(row.wrapped, row.kek_id, aad))
        if not create:
            raise KeyDestroyed(f"no data key for subject {subject_id}: it was erased or never existed")
        material = os.urandom(2 * KEY)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(subject_keys).values(
                        subject_id=subject_id,
                        wrapped=seal(self._kek, material, aad),
                        kek_id=self._kek_id,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            return self._subject_material(subject_id, create=False)  # another process won the race
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
        if not wanted:
            return
        try:
            self._ensure(wanted)
        except IntegrityError:
            self._ensure(wanted)  # another process created some of them first: read theirs now

    def _ensure(self, wanted: Sequence[uuid.UUID]) -> None:
        with self.engine.begin() as conn:
            found: dict[uuid.UUID, bytes] = {}
            for start in range(0, len(wanted), _CHUNK):
                rows = conn.execute(
                    select(subject_keys.c.subject_id, subject_keys.c.wrapped, subject_keys.c.kek_id).where(
                        subject_keys.c.subject_id.in_(wanted[start : start + _CHUNK])
                    )
                )
                for row in rows:
                    found[row.subject_id] = self._unwrap(row.wrapped, row.kek_id, row.subject_id.bytes)
            created = {s: os.urandom(2 * KEY) for s in wanted if s not in found}
            self._insert_keys(conn, created)
        # Remembered only once committed: a rolled-back insert must not leave a usable key behind.
        for subject_id, material in (found | created).items():
            self._remember(subject_id, material)

    def _insert_keys(self, conn: Connection, materials: Mapping[uuid.UUID, bytes]) -> None:
        now = utcnow()
        rows = [
            {"subject_id": s, "wrapped": seal(self._kek, materials[s], s.bytes), "kek_id": self._kek_id}
            for s in sorted(materials, key=str)  # one lock order for concurrent writers
        ]
        if rows:
            require_kek(conn, self._kek_id, locked=LOCKED)
            conn.execute(insert(subject_keys), [row | {"created_at": now} for row in rows])

    def new_subjects(self, subject_ids: Iterable[uuid.UUID], *, before_commit_of: Session) -> None:
        """Keys for subjects whose ids were just drawn at random, so that no other process can hold
        one for them. On a view they are usable at once and written with its other held writes
        (see `write_before_commit`); elsewhere this is `ensure_subjects`."""
        if not self.caching:
            self.ensure_subjects(subject_ids)
            return
        for subject_id in subject_ids:
            if subject_id not in self._held_keys:
                material = self._held_keys[subject_id] = self._unwritten[subject_id] = os.urandom(2 * KEY)
                self._remember(subject_id, material)
        if self._held_keys:
            self.write_before_commit(before_commit_of)

    def write_before_commit(self, session: Session) -> None:
        """Write this view's held keys and index entries just before `session` commits: one keystore
        transaction per request, and no key sealing a committed row that is not durable itself."""
        commit.hold_until_commit(session, self)

    def write_held_soon(self) -> None:
        """Start writing the held keys and index entries on a worker thread, so that the keystore's
        commit overlaps the rest of the request; `write_held`, just before the main commit, waits
        for it. One such write at a time: what is held after it starts waits for `write_held`."""
        if self._writing is not None:
            return
        keys, index = self._take_held()
        if keys or index:
            self._writing = (_writer().submit(self._write, keys, index), keys, index)

    def write_held(self) -> None:
        """Write the held keys and index entries now, in one keystore transaction (after waiting
        for a write started by `write_held_soon`)."""
        self._finish_writing()
        keys, index = self._take_held()
        if not keys and not index:
            return
        try:
            self._write(keys, index)
        except BaseException:
            self._unusable(keys)  # keys that never became durable must not stay usable
            raise
        finally:
            self._forget_unwritten(keys, index)

    def drop_held(self) -> None:
        """Forget the held writes: the transaction whose rows needed them rolled back."""
        writing, self._writing = self._writing, None
        if writing is not None:
            future, keys, index = writing
            # Waited for all the same: the worker must not outlive the request that started it.
            # Keys it made durable seal nothing now; they stay as keys of no subject.
            future.exception()
            self._unusable(keys)
            self._forget_unwritten(keys, index)
        keys, index = self._held_keys, self._held_index
        self._held_keys, self._held_index = {}, {}
        self._unusable(keys)
        self._forget_unwritten(keys, index)

    def _take_held(self) -> tuple[dict[uuid.UUID, bytes], dict[str, uuid.UUID]]:
        keys, index = self._held_keys, self._held_index
        self._held_keys, self._held_index = {}, {}
        # An erasure since they were held took them out of `_unwritten`: those stay unwritten.
        keys = {s: m for s, m in keys.items() if s in self._unwritten}
        index = {d: s for d, s in index.items() if self._unwritten_index.get(d) == s}
        return keys, index

    def _write(self, keys: Mapping[uuid.UUID, bytes], index: Mapping[str, uuid.UUID]) -> None:
        # Database work only: it may run on the worker thread, so the bookkeeping stays with the
        # caller (`_finish_writing`, `write_held`).
        with self.engine.begin() as conn:
            self._insert_keys(conn, keys)
            if index:
                _write_index(conn, index)

    def _finish_writing(self) -> None:
        writing, self._writing = self._writing, None
        if writing is None:
            return
        future, keys, index = writing
        try:
            future.result()
        except BaseException:
            self._unusable(keys)
            raise
        finally:
            self._forget_unwritten(keys, index)

    def _unusable(self, keys: Iterable[uuid.UUID]) -> None:
        if self._materials is not None:
            for subject_id in keys:
                self._materials.pop(subject_id, None)

    def _forget_unwritten(self, keys: Mapping[uuid.UUID, bytes], index: Mapping[str, uuid.UUID]) -> None:
        for subject_id in keys:
            self._unwritten.pop(subject_id, None)
        for digest, subject_id in index.items():
            if self._unwritten_index.get(digest) == subject_id:
                self._unwritten_index.pop(digest, None)

    def has_subject(self, subject_id: uuid.UUID) -> bool:
        if subject_id in self._unwritten:
            return True
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    select(subject_keys.c.subject_id).where(subject_keys.c.subject_id == subject_id)
                ).first()
                is not None
            )

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

    # -- blind index ------------------------------------------------------------------------

    def put_index(self, subject_id: uuid.UUID, *, kind: str, value: str) -> None:
        digest = self.digest(kind, value)
        self.write_held()
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(blind_index).where(blind_index.c.digest == digest).values(subject_id=subject_id)
            ).rowcount
            if not updated:
                conn.execute(insert(blind_index).values(digest=digest, subject_id=subject_id))

    def put_indexes(
        self, entries: Sequence[tuple[uuid.UUID, str, str]], *, before_commit_of: Session | None = None
    ) -> None:
        """`put_index` for each (subject_id, kind, value), in one transaction; for a value given
        twice, the last entry wins. On a view, with `before_commit_of`, the entries are held and
        written with the view's other held writes (see `write_before_commit`)."""
        latest = {self.digest(kind, value): subject_id for subject_id, kind, value in entries}
        if not latest:
            return
        if before_commit_of is not None and self.caching:
            for digest, subject_id in latest.items():
                self._held_index.pop(digest, None)  # a later entry wins, as in the table
                self._held_index[digest] = self._unwritten_index[digest] = subject_id
            self.write_before_commit(before_commit_of)
            return
        self.write_held()
        with self.engine.begin() as conn:
            _write_index(conn, latest)

    def lookup_index(self, *, kind: str, value: str) -> uuid.UUID | None:
        # Digest first: on first use it opens its own transaction for the index key, which on SQLite
        # would wait forever behind this one's write lock.
        digest = self.digest(kind, value)
        held = self._unwritten_index.get(digest)
        if held is not None:
            return held
        with self.engine.begin() as conn:
            row = conn.execute(select(blind_index.c.subject_id).where(blind_index.c.digest == digest)).first()
        return None if row is None else row.subject_id

    def index_digests(self, subject_id: uuid.UUID) -> set[str]:
        """The digests the blind index holds for the subject (its e-mail addresses, keyed)."""
        held = {d for d, s in self._unwritten_index.items() if s == subject_id}
        with self.engine.begin() as conn:
            rows = conn.execute(select(blind_index.c.digest).where(blind_index.c.subject_id == subject_id))
            return held | {digest for (digest,) in rows}

    def reassign(self, *, from_subject: uuid.UUID, to_subject: uuid.UUID) -> None:
        """Point a merged subject's index entries at the surviving subject."""
        self.write_held()
        with self.engine.begin() as conn:
            conn.execute(
                update(blind_index)
                .where(blind_index.c.subject_id == from_subject)
                .values(subject_id=to_subject)
            )

    # -- erasure and rotation ---------------------------------------------------------------

    def destroy(self, subject_id: uuid.UUID) -> bool:
        """Forget the subject's key, salt and index entries. True when a key existed."""
        self.write_held()
        if self._materials is not None:
            self._materials.pop(subject_id, None)
        # Another view may hold this subject's key or entries: they are dropped, never written.
        self._unwritten.pop(subject_id, None)
        for digest in [d for d, s in self._unwritten_index.items() if s == subject_id]:
            self._unwritten_index.pop(digest, None)
        with self.engine.begin() as conn:
            conn.execute(delete(blind_index).where(blind_index.c.subject_id == subject_id))
            return bool(
                conn.execute(delete(subject_keys).where(subject_keys.c.subject_id == subject_id)).rowcount
            )

    def created_at(self, subject_id: uuid.UUID) -> datetime | None:
        self.write_held()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(subject_keys.c.created_at).where(subject_keys.c.subject_id == subject_id)
            ).first()
        return None if row is None else row.created_at

    def rotate(self, new_secret: str, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-wrap every key under the KEK of `new_secret` in one transaction. Returns the count."""
        self.write_held()
        new_kek = derive_kek(new_secret)
        new_id = kek_fingerprint(new_kek)
        done = 0
        with self.engine.begin() as conn:
            systems = conn.execute(select(system_keys)).all()
            total = conn.execute(select(subject_keys.c.subject_id)).all()
            count = len(systems) + len(total)
            for row in systems:
                aad = row.name.encode()
                key = self._unwrap(row.wrapped, row.kek_id, aad)
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
                material = self._unwrap(wrapped, kek_id, subject_id.bytes)
                conn.execute(
                    update(subject_keys)
                    .where(subject_keys.c.subject_id == subject_id)
                    .values(wrapped=seal(new_kek, material, subject_id.bytes), kek_id=new_id)
                )
                done += 1
                if progress:
                    progress(done, count)
        self._kek, self._kek_id = new_kek, new_id
        return done


@functools.cache
def _writer() -> ThreadPoolExecutor:
    # Made on first use, shared by the process: a few threads, each mostly waiting for a disk flush.
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="tactful-keystore")


def _write_index(conn: Connection, latest: Mapping[str, uuid.UUID]) -> None:
    digests = sorted(latest)
    for start in range(0, len(digests), _CHUNK):
        conn.execute(delete(blind_index).where(blind_index.c.digest.in_(digests[start : start + _CHUNK])))
    conn.execute(insert(blind_index), [{"digest": d, "subject_id": latest[d]} for d in digests])
