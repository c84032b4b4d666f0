"""Subjects in bulk: the surviving ones (each person once; a merged subject is a tombstone that
leads to its survivor), in pages by id, for passes over every stored profile (audience sizes).

    subjects WHERE merged_into IS NULL AND subject_id > after ORDER BY subject_id LIMIT n
        ──▶ one page of ids ──▶ the next page starts after its last id

Keyset pages: a subject created or erased during a pass is read or not, never twice, and no page
costs more than an index range.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tactful.profiles.models import Subject


def survivors(session: Session, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """Up to `limit` surviving subjects' ids, in order, after `after` (from the first when None)."""
    statement = (
        select(Subject.subject_id)
        .where(Subject.merged_into.is_(None))
        .order_by(Subject.subject_id)
        .limit(max(1, limit))
    )
    if after is not None:
        statement = statement.where(Subject.subject_id > after)
    return list(session.scalars(statement))


def count_survivors(session: Session) -> int:
    """How many subjects a pass over `survivors` reads (for a progress bar)."""
    return int(
        session.scalar(select(func.count()).select_from(Subject).where(Subject.merged_into.is_(None))) or 0
    )
