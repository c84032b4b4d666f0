"""The quarantine: received events that were not stored, kept for a while to show what went wrong.

    rejected message ─ raw_text: escaped ASCII JSON, cut at the event size limit
        ├─ names a subject ──▶ raw_enc, sealed with the subject's data key (erasure shreds it)
        └─ names nobody ─────▶ raw, as received: no key to seal it with
    every row: expires_at = received_at + RETENTION; `purge` is the retention sweep

A sealed row stays with the subject whose key sealed it, even when that subject is later merged into
another: the merged profile's id is exported and erased with the survivor's (its key too), so the
payload is neither lost to the export nor kept past an erasure.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tactful import jsontext
from tactful.collect.message import MessageType, raw_text
from tactful.collect.models import Quarantine
from tactful.crypto import Keystore
from tactful.types import new_row_id

RETENTION = timedelta(days=30)
"""How long a quarantined payload is kept. A module constant: quarantine is for finding faults in
senders, which a month covers; it is not a setting yet."""

RAW_CONTEXT = "quarantine.raw"
DETAIL_LIMIT = 500


def row(
    message: object,
    *,
    keystore: Keystore,
    subject_id: uuid.UUID | None,
    reason: str,
    detail: str | None,
    message_id: str | None,
    received_at: datetime,
    write_key_id: uuid.UUID | None,
    request_id: str | None,
    limit: int,
) -> dict[str, Any]:
    """The quarantine row of one rejected message, ready for a bulk insert."""
    raw = raw_text(message)
    kept = raw[:limit]
    kind = message.get("type") if isinstance(message, dict) else None
    sealed = None if subject_id is None else keystore.encrypt(subject_id, kept, context=RAW_CONTEXT)
    return {
        "id": new_row_id(),
        "subject_id": subject_id,
        "reason": reason,
        "detail": (detail or "")[:DETAIL_LIMIT],
        "message_id": message_id,
        "type": kind if isinstance(kind, str) and kind in MessageType.__members__.values() else None,
        "raw": kept if sealed is None else None,
        "raw_enc": sealed,
        "truncated": len(raw) > limit,
        "received_at": received_at,
        "expires_at": received_at + RETENTION,
        "write_key_id": write_key_id,
        "request_id": request_id,
    }


def read_raw(keystore: Keystore, held: Quarantine) -> str | None:
    """The payload of a quarantine row, decrypted when it was sealed."""
    if held.raw_enc is None:
        return held.raw
    assert held.subject_id is not None  # only a subject's rows are sealed
    return keystore.decrypt(held.subject_id, held.raw_enc, context=RAW_CONTEXT)


def export_rows(
    session: Session, *, keystore: Keystore | None, subject_id: uuid.UUID
) -> list[dict[str, object]]:
    """The subject's quarantined messages, payloads decrypted (without a keystore a sealed payload
    reads as None)."""
    held = session.scalars(
        select(Quarantine).where(Quarantine.subject_id == subject_id).order_by(Quarantine.received_at)
    )
    columns = [c.key for c in Quarantine.__table__.columns if c.key not in ("subject_id", "raw", "raw_enc")]
    exported: list[dict[str, object]] = []
    for q in held:
        item = {c: jsontext.column_value(getattr(q, c)) for c in columns}
        item["raw"] = q.raw if keystore is None else read_raw(keystore, q)
        exported.append(item)
    return exported


def purge(session: Session, *, at: datetime) -> int:
    """Delete quarantined messages whose retention ended by `at`; returns how many."""
    result = session.execute(delete(Quarantine).where(Quarantine.expires_at <= at))
    return int(getattr(result, "rowcount", 0) or 0)
