"""Append entries to the hash-chained audit log, and verify the chain.

Every entry's hash covers its fields and the previous entry's hash, so changing, removing or moving
any entry breaks the chain at that point. The sequence number is an index, not part of the hash: the
order is carried by `prev_hash`, which lets verification tell a moved entry (its predecessor exists
elsewhere) from a removed one (its predecessor is gone).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.bulk import insert_rows
from tactful.crypto import Keystore
from tactful.errors import InvalidInput

Scalar = str | int | float | bool | None
"""What an entry's details may hold: flat scalars, so that nested documents (and the personal data
they tend to carry) cannot ride along."""

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""

# A fixed key for pg_advisory_xact_lock: every appender, in every process, queues on it.
_APPEND_LOCK = 0x7461637466756C  # "tactful"
_FORMAT = 1
_TABLE = cast(Table, AuditEntry.__table__)
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_DETAILS = 32
MAX_KEY = 64
MAX_TEXT = 500
MAX_ACTOR = 200
_INT_BOUND = 2**63


class ChainProblem(StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"


@dataclass(frozen=True)
class ChainReport:
    """The outcome of `verify`: sound up to `checked`, and the first broken link if any."""

    ok: bool
    checked: int
    head_seq: int | None
    head_hash: str | None
    first_bad_seq: int | None = None
    problem: ChainProblem | None = None
    detail: str = ""


# -- validation ---------------------------------------------------------------------------------


def _text(value: str, *, what: str, limit: int, minimum: int = 1) -> str:
    if not minimum <= len(value) <= limit:
        raise InvalidInput(f"audit {what} must be {minimum} to {limit} characters", code="audit_invalid")
    if "\x00" in value:
        raise InvalidInput(f"audit {what} must not contain NUL characters", code="audit_invalid")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"audit {what} must be valid Unicode text", code="audit_invalid") from exc
    return str.__str__(value)  # a plain str, whatever subclass (StrEnum, ...) came in


def _scalar(key: str, value: object) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, what=f"detail {key!r}", limit=MAX_TEXT, minimum=0)
    if isinstance(value, int):
        if not -_INT_BOUND <= value < _INT_BOUND:
            raise InvalidInput(f"audit detail {key!r} is out of the 64-bit range", code="audit_invalid")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"audit detail {key!r} must be a finite number", code="audit_invalid")
        # JSONB hands integral numbers back as integers: store them as integers from the start so
        # that the hash is computed over what every backend returns.
        return int(value) if value.is_integer() else value
    raise InvalidInput(
        f"audit details hold scalars only (str, int, float, bool, None); {key!r} is {type(value).__name__}",
        code="audit_invalid",
    )


def clean_details(details: Mapping[str, Scalar] | None) -> dict[str, Scalar]:
    """The details as stored, or InvalidInput for anything but a small flat mapping of scalars."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise InvalidInput("audit details must be a mapping", code="audit_invalid")
    if len(details) > MAX_DETAILS:
        raise InvalidInput(f"audit details take at most {MAX_DETAILS} keys", code="audit_invalid")
    cleaned: dict[str, Scalar] = {}
    for key, value in details.items():
        if not isinstance(key, str):
            raise InvalidInput("audit detail keys must be strings", code="audit_invalid")
        name = _text(key, what="detail key", limit=MAX_KEY)
        cleaned[name] = _scalar(name, value)
    return cleaned


# -- hashing ------------------------------------------------------------------------------------


def compute_hash(
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_ref: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of an entry's fields and its predecessor's hash."""
    document = {
        "v": _FORMAT,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject_ref": subject_ref,
        "details": {key: _canonical_number(value) for key, value in details.items()},
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _canonical_number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -- append -------------------------------------------------------------------------------------


_HEAD = select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)


def head(session: Session) -> tuple[int, str] | None:
    """The newest entry's sequence number and hash, or None for an empty log."""
    row = session.connection().execute(_HEAD).first()
    return None if row is None else (row.seq, row.hash)


def _lock_head(session: Session) -> None:
    # SQLite needs nothing here: `tactful.db` starts every transaction with BEGIN IMMEDIATE, which
    # already holds the database's single write lock until commit.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_APPEND_LOCK)))


@dataclass(frozen=True)
class AuditRecord:
    """One entry to append, for `append_many`."""

    action: str
    actor: str
    at: datetime
    subject_id: uuid.UUID | None = None
    details: Mapping[str, Scalar] | None = None


def append(
    session: Session,
    *,
    keystore: Keystore,
    action: str,
    actor: str,
    at: datetime,
    subject_id: uuid.UUID | None = None,
    details: Mapping[str, Scalar] | None = None,
) -> AuditEntry:
    """Add one entry at the head of the chain, inside the caller's transaction.

    The append lock is held until that transaction ends, so entries from concurrent processes form
    one chain; keep audited transactions short.
    """
    record = AuditRecord(action=action, actor=actor, at=at, subject_id=subject_id, details=details)
    [entry] = append_many(session, keystore=keystore, records=[record])
    return entry


def append_many(session: Session, *, keystore: Keystore, records: Sequence[AuditRecord]) -> list[AuditEntry]:
    """Add `records` at the head of the chain, in order: one lock, one head read, one flush. The
    returned entries are detached copies."""
    return [AuditEntry(**row) for row in _append(session, keystore, records)]


def append_records(session: Session, *, keystore: Keystore, records: Sequence[AuditRecord]) -> None:
    """`append_many` for callers that keep nothing of the entries (no copies made: a mapped
    instance costs more to make than its row costs to hash)."""
    _append(session, keystore, records)


def _append(session: Session, keystore: Keystore, records: Sequence[AuditRecord]) -> list[dict[str, object]]:
    prepared = []
    for record in records:
        if not _ACTION.match(record.action) or len(record.action) > 100:
            raise InvalidInput(
                "audit actions are dotted lower-case names such as `keys.created`", code="audit_invalid"
            )
        actor = _text(record.actor, what="actor", limit=MAX_ACTOR)
        if record.at.tzinfo is None:
            raise InvalidInput("audit times must be timezone-aware", code="audit_invalid")
        cleaned = clean_details(record.details)
        # Outside the lock: this may touch the keystore database.
        subject_ref = keystore.subject_ref(record.subject_id) if record.subject_id is not None else None
        prepared.append((record.at.astimezone(UTC), actor, record.action, subject_ref, cleaned))
    if not prepared:
        return []
    _lock_head(session)
    current = head(session)
    seq, prev_hash = (1, GENESIS) if current is None else (current[0] + 1, current[1])
    rows: list[dict[str, object]] = []
    for at, actor, action, subject_ref, cleaned in prepared:
        digest = compute_hash(
            at=at, actor=actor, action=action, subject_ref=subject_ref, details=cleaned, prev_hash=prev_hash
        )
        rows.append(
            {
                "seq": seq, "at": at, "actor": actor, "action": action, "subject_ref": subject_ref,
                "details": cleaned, "prev_hash": prev_hash, "hash": digest,
            }
        )  # fmt: skip
        seq, prev_hash = seq + 1, digest
    # Plain bulk insert, not the unit of work: entries are never updated, and the ORM's per-object
    # bookkeeping costs more than the insert.
    insert_rows(session, _TABLE, rows)
    return rows


# -- verify -------------------------------------------------------------------------------------


def verify(session: Session, *, batch_size: int = 1000) -> ChainReport:
    """Walk the chain in sequence order; report the first entry that was edited, deleted or reordered."""
    columns = (
        AuditEntry.seq,
        AuditEntry.at,
        AuditEntry.actor,
        AuditEntry.action,
        AuditEntry.subject_ref,
        AuditEntry.details,
        AuditEntry.prev_hash,
        AuditEntry.hash,
    )
    # Plain rows rather than entities: the session's identity map may hold stale copies of entries
    # that were changed behind its back, and those are exactly what we look for.
    statement = select(*columns).order_by(AuditEntry.seq).execution_options(yield_per=batch_size)
    checked, prev_seq, prev_hash = 0, 0, GENESIS
    broken: tuple[int, ChainProblem | None, str] | None = None
    result = session.execute(statement)
    try:
        for row in result:
            recomputed = compute_hash(
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject_ref=row.subject_ref,
                details=row.details,
                prev_hash=row.prev_hash,
            )
            if recomputed != row.hash:
                broken = (row.seq, ChainProblem.EDITED, "the entry no longer matches its hash")
                break
            if row.prev_hash != prev_hash:
                broken = (row.seq, None, row.prev_hash)  # classified below, once the cursor is closed
                break
            if row.seq != prev_seq + 1:
                broken = (row.seq, ChainProblem.DELETED, f"the sequence jumps from {prev_seq} to {row.seq}")
                break
            checked, prev_seq, prev_hash = checked + 1, row.seq, row.hash
    finally:
        result.close()  # a server-side cursor on PostgreSQL: release it before the next query
    current = head(session)
    head_seq, head_hash = (None, None) if current is None else current
    if broken is None:
        return ChainReport(ok=True, checked=checked, head_seq=head_seq, head_hash=head_hash)
    seq, problem, detail = broken
    if problem is None:
        predecessor = session.execute(select(AuditEntry.seq).where(AuditEntry.hash == detail)).scalar()
        if predecessor is not None:
            problem = ChainProblem.REORDERED
            detail = f"the entry follows entry {predecessor}, not entry {prev_seq}"
        else:
            problem = ChainProblem.DELETED
            detail = "the entry it follows is missing"
    return ChainReport(
        ok=False,
        checked=checked,
        head_seq=head_seq,
        head_hash=head_hash,
        first_bad_seq=seq,
        problem=problem,
        detail=detail,
    )
