"""Re-applying the erasure log: a restored backup must not bring an erased person back (DESIGN §5).

    keystore erasure log ── purge what outlived its retention
        ▼ erased subject ids still kept
    main database: which of them some registered table still holds (a restore brought them back)
        ▼ registry.erase_stores for those, one transaction, the write-ahead log emptied after it
    keystore: any key, salt or index entry of theirs still there (a restored keystore) ─▶ destroyed
        ▼
    Reapplied: how many subjects each database held again, and the rows removed (also an audit entry,
    with the counts alone)

The server runs it at start (`main`'s lifespan), and `tactful privacy reapply` after a restore.
Nothing is found on a database that was never restored: then it costs one read per registered
table for each 500 erased subjects.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from tactful.audit import service as audit_service
from tactful.config import Settings
from tactful.crypto import Keystore
from tactful.db import Base, Database
from tactful.rights import registry
from tactful.rights.registry import RightsContext, StoreKind

log = logging.getLogger("tactful.rights")
REAPPLIED = "rights.erasure_reapplied"
_CHUNK = 500


@dataclass(frozen=True)
class Reapplied:
    logged: int
    """Erased subjects the log keeps."""
    restored: int
    """Of those, how many the main database held again."""
    removed: int
    """Rows removed from the main database (and Redis)."""
    keys: int
    """Keys the keystore held again, destroyed."""
    expired: int
    """Log entries past their retention, forgotten."""


def _tables() -> list[Table]:
    names = [name for store in registry.STORES if store.kind is StoreKind.TABLE for name in store.tables]
    tables = [Base.metadata.tables[name] for name in names if name in Base.metadata.tables]
    return [table for table in tables if "subject_id" in table.c]


def held_again(session: Session, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Those of `ids` that some registered table of the main database holds rows of."""
    found: set[uuid.UUID] = set()
    tables = _tables()
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        for table in tables:
            column = table.c.subject_id
            found.update(session.scalars(select(column).where(column.in_(chunk)).distinct()))
    return [sid for sid in ids if sid in found]


def reapply(
    *, database: Database, keystore: Keystore, settings: Settings, at: datetime, redis: Redis | None = None
) -> Reapplied:
    """Erase again, from both databases, every subject the erasure log keeps (see the module)."""
    erasure_log = keystore.erasure_log
    expired = erasure_log.purge(at=at)
    ids = erasure_log.subjects(at=at)
    removed = 0
    restored: list[uuid.UUID] = []
    if ids:
        with database.session() as session:
            restored = held_again(session, ids)
            if restored:
                rights = RightsContext(session=session, keystore=keystore, settings=settings, redis=redis)
                removed = sum(registry.erase_stores(rights, restored).values())
    keyed = [sid for sid in ids if keystore.has_subject(sid)]
    keys = 0
    if keyed:
        with database.session() as session:
            rights = RightsContext(session=session, keystore=keystore, settings=settings, redis=redis)
            keys = sum(registry.erase_keys(rights, keyed).values())
    if restored or keyed:
        with database.session() as session:
            audit_service.append(
                session, keystore=keystore, action=REAPPLIED, actor="system:erasure-log", at=at,
                details={"subjects": len(restored), "rows": removed, "keys": keys},
            )  # fmt: skip
        keystore.truncate_log()
        # Counts only: which subjects were erased again is nobody's business in a log.
        log.warning(
            "erasure log re-applied: %d erased subject(s) found again, %d row(s) and %d key(s) removed",
            len(restored), removed, keys,
        )  # fmt: skip
    return Reapplied(
        logged=len(ids), restored=len(restored), removed=removed, keys=keys, expired=sum(expired.values())
    )
