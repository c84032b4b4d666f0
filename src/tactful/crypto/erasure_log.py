"""The erasure log: who was erased and when, kept in the keystore, never as an identifier.

    erased_identifiers  HMAC(erasure-log key, kind, value) ─▶ the erasure's time, until the
                        deduplication window has passed: collection suppresses a message naming
                        one that was sent before that time (a replay), and lets one sent after it
                        start a new, empty subject (DESIGN invariant 10, issue 11 part 7)
    erased_subjects     the erased subject ids ─▶ re-applied to both databases at start and after a
                        restore (`rights.reapply`), kept as long as backups are (a setting)

The key is a system key of its own (`ERASURE_KEY`), never dropped and used for nothing else. The
table holds no identifier, no message id and no unkeyed hash of one: without the keystore's KEK the
digests match nothing, and the key itself lives beside the subject keys that erasure destroys.
E-mail addresses are digested in their indexed form (`normalise`), so that case does not matter.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, String, Table, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.types import Uuid

from tactful.crypto.material import CHUNK
from tactful.crypto.sealing import keystore_metadata
from tactful.crypto.system import ERASURE_KEY, SystemKeys
from tactful.db import UTCDateTime

EMAIL = "email"

erased_identifiers = Table(
    "erased_identifiers",
    keystore_metadata,
    Column("digest", String(64), primary_key=True),
    Column("erased_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)
erased_subjects = Table(
    "erased_subjects",
    keystore_metadata,
    Column("subject_id", Uuid(), primary_key=True),
    Column("erased_at", UTCDateTime(), nullable=False),
    Column("keep_until", UTCDateTime(), nullable=False, index=True),
)

Identifier = tuple[str, str]
"""(kind, value): `user_id`, `anonymous_id` or `email`, and the identifier itself."""


def normalise(kind: str, value: str) -> str:
    """An e-mail address as the blind index holds it (blanks and case ignored); others as given."""
    return value.strip().casefold() if kind == EMAIL else value


@dataclass(frozen=True)
class ErasureLog:
    """The erasure log of one keystore (`Keystore.erasure_log`)."""

    engine: Engine
    system: SystemKeys

    def _digest(self, key: bytes, kind: str, value: str) -> str:
        message = f"{kind}\x00{normalise(kind, value)}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def suppress(self, identifiers: Iterable[Identifier], *, at: datetime, until: datetime) -> int:
        """Log that `identifiers` were erased at `at`, for suppression until `until`, in one keystore
        transaction; a later erasure of the same identifier replaces the earlier entry. How many."""
        key, _ = self.system.read_or_create(ERASURE_KEY)
        digests = sorted({self._digest(key, kind, value) for kind, value in identifiers})
        with self.engine.begin() as conn:
            for start in range(0, len(digests), CHUNK):
                chunk = digests[start : start + CHUNK]
                conn.execute(delete(erased_identifiers).where(erased_identifiers.c.digest.in_(chunk)))
            if digests:
                rows = [{"digest": d, "erased_at": at, "expires_at": until} for d in digests]
                conn.execute(insert(erased_identifiers), rows)
        return len(digests)

    def log_subjects(self, subject_ids: Sequence[uuid.UUID], *, at: datetime, keep_until: datetime) -> None:
        """Log that `subject_ids` were erased at `at` (their rows' deletion committed), to be
        erased again from any restored backup until `keep_until`."""
        ids = sorted(set(subject_ids), key=str)
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(delete(erased_subjects).where(erased_subjects.c.subject_id.in_(ids)))
            rows = [{"subject_id": s, "erased_at": at, "keep_until": keep_until} for s in ids]
            conn.execute(insert(erased_subjects), rows)

    def erased(self, identifiers: Iterable[Identifier], *, at: datetime) -> dict[Identifier, datetime]:
        """When each of `identifiers` that the log holds (and has not let expire by `at`) was
        erased: one read for all of them, none while nothing was ever erased."""
        wanted = list(dict.fromkeys(identifiers))
        if not wanted:
            return {}
        key = self.system.read(ERASURE_KEY)
        if key is None:
            return {}
        by_digest: dict[str, list[Identifier]] = {}
        for kind, value in wanted:
            by_digest.setdefault(self._digest(key, kind, value), []).append((kind, value))
        found: dict[Identifier, datetime] = {}
        digests = sorted(by_digest)
        with self.engine.connect() as conn:
            for start in range(0, len(digests), CHUNK):
                rows = conn.execute(
                    select(erased_identifiers.c.digest, erased_identifiers.c.erased_at).where(
                        erased_identifiers.c.digest.in_(digests[start : start + CHUNK]),
                        erased_identifiers.c.expires_at > at,
                    )
                )
                for digest, erased_at in rows:
                    for identifier in by_digest[digest]:
                        found[identifier] = erased_at
        return found

    def subjects(self, *, at: datetime) -> list[uuid.UUID]:
        """The erased subject ids kept at `at`, for re-applying the erasure."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(erased_subjects.c.subject_id)
                .where(erased_subjects.c.keep_until > at)
                .order_by(erased_subjects.c.erased_at)
            )
            return [row.subject_id for row in rows]

    def purge(self, *, at: datetime) -> Mapping[str, int]:
        """Forget the entries whose retention ended by `at`; how many of each kind."""
        with self.engine.begin() as conn:
            identifiers = conn.execute(
                delete(erased_identifiers).where(erased_identifiers.c.expires_at <= at)
            )
            subjects = conn.execute(delete(erased_subjects).where(erased_subjects.c.keep_until <= at))
        return {"identifiers": identifiers.rowcount or 0, "subjects": subjects.rowcount or 0}
