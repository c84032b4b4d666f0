"""The blind index: keyed digests of identifiers (e-mail addresses) pointing at their subject, so that
a subject can be found by an identifier the keystore never stores. Destroyed with the subject.

    digest(kind, value) ── HMAC-SHA256 under the blind-index key (a system key, never destroyed)
    put / put_many ──▶ the `blind_index` table; on a view, with a session, held until its commit
    lookup / digests_of ──▶ entries held by any view of the process first, then the table
    reassign ──▶ a merged subject's entries move to the survivor

Direct writes first write the view's held ones (`HeldWrites.write_held`), so that a later entry
never lands before an earlier one.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from tactful.crypto.material import CHUNK
from tactful.crypto.sealing import blind_index

if TYPE_CHECKING:
    from tactful.crypto.held import HeldWrites, Unwritten


def write_entries(conn: Connection, latest: Mapping[str, uuid.UUID]) -> None:
    """Point each digest at its subject, in `conn`'s transaction, replacing what it pointed at."""
    digests = sorted(latest)
    for start in range(0, len(digests), CHUNK):
        conn.execute(delete(blind_index).where(blind_index.c.digest.in_(digests[start : start + CHUNK])))
    conn.execute(insert(blind_index), [{"digest": d, "subject_id": latest[d]} for d in digests])


def delete_subject(conn: Connection, subject_id: uuid.UUID) -> None:
    conn.execute(delete(blind_index).where(blind_index.c.subject_id == subject_id))


class BlindIndex:
    """The index as one keystore view sees it: the table, with every view's held entries."""

    def __init__(
        self,
        engine: Engine,
        *,
        key: Callable[[], bytes],
        unwritten: Unwritten,
        held: HeldWrites,
        mac: hmac.HMAC | None = None,
    ) -> None:
        self.engine = engine
        self._key = key
        self._unwritten = unwritten
        self._held = held
        self._mac = mac

    def mac(self) -> hmac.HMAC:
        """The index key's HMAC, keyed once (the key is never destroyed, so views share it)."""
        if self._mac is None:
            self._mac = hmac.new(self._key(), digestmod=hashlib.sha256)
        return self._mac

    def digest(self, kind: str, value: str) -> str:
        mac = self.mac().copy()  # keyed once; each digest starts from that state
        mac.update(f"{kind}\x00{value}".encode())
        return f"{kind}:{mac.hexdigest()}"

    def put(self, subject_id: uuid.UUID, *, kind: str, value: str) -> None:
        digest = self.digest(kind, value)
        self._held.write_held()
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(blind_index).where(blind_index.c.digest == digest).values(subject_id=subject_id)
            ).rowcount
            if not updated:
                conn.execute(insert(blind_index).values(digest=digest, subject_id=subject_id))

    def put_many(self, entries: Sequence[tuple[uuid.UUID, str, str]], *, hold: bool) -> bool:
        """Each (subject_id, kind, value), the last entry winning for a value given twice: written in
        one transaction, or with `hold` held in the view's writes. True when entries were held."""
        latest = {self.digest(kind, value): subject_id for subject_id, kind, value in entries}
        if not latest:
            return False
        if hold:
            self._held.hold_entries(latest)
            return True
        self._held.write_held()
        with self.engine.begin() as conn:
            write_entries(conn, latest)
        return False

    def lookup(self, *, kind: str, value: str) -> uuid.UUID | None:
        # Digest first: on first use it opens its own transaction for the index key, which on SQLite
        # would wait forever behind this one's write lock.
        digest = self.digest(kind, value)
        held = self._unwritten.index.get(digest)
        if held is not None:
            return held
        with self.engine.begin() as conn:
            row = conn.execute(select(blind_index.c.subject_id).where(blind_index.c.digest == digest)).first()
        return None if row is None else row.subject_id

    def digests_of(self, subject_id: uuid.UUID) -> set[str]:
        held = {d for d, s in self._unwritten.index.items() if s == subject_id}
        with self.engine.begin() as conn:
            rows = conn.execute(select(blind_index.c.digest).where(blind_index.c.subject_id == subject_id))
            return held | {digest for (digest,) in rows}

    def reassign(self, *, from_subject: uuid.UUID, to_subject: uuid.UUID) -> None:
        self._held.write_held()
        with self.engine.begin() as conn:
            conn.execute(
                update(blind_index)
                .where(blind_index.c.subject_id == from_subject)
                .values(subject_id=to_subject)
            )
