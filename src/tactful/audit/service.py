"""Append entries to the hash-chained audit log (`verification.py` checks the chain).

Every entry's hash covers its fields and the previous entry's hash, so changing, removing or moving
any entry breaks the chain at that point. The sequence number is an index, not part of the hash: the
order is carried by `prev_hash`, which lets verification tell a moved entry (its predecessor exists
elsewhere) from a removed one (its predecessor is gone).

The hash is keyed: an HMAC-SHA256 under the audit chain's key, which lives in the keystore (wrapped
by the KEK, never destroyed), so whoever can write the main database cannot recompute the hashes of
an entry they changed. A log written before the key existed keeps its plain SHA-256 entries as they
are: the key is made on the next append, anchored to the head at that moment (the anchor is sealed
with the key), and every entry after the anchor is keyed. Verification checks the unkeyed prefix
as before, the anchor entry against the sealed anchor, and the keyed segment with the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from tactful.audit.models import AuditEntry
from tactful.bulk import insert_rows
from tactful.crypto import ChainKey, Keystore
from tactful.errors import InvalidInput

Scalar = str | int | float | bool | None
"""What an entry's details may hold: flat scalars, so that nested documents (and the personal data
they tend to carry) cannot ride along."""

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""

# A fixed key for pg_advisory_xact_lock: every appender, in every process, queues on it.
_APPEND_LOCK = 0x7461637466756C  # "tactful"
_FORMAT = 1
_KEYED_FORMAT = 2
_TABLE = cast(Table, AuditEntry.__table__)
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_DETAILS = 32
MAX_KEY = 64
MAX_TEXT = 500
MAX_ACTOR = 200
_INT_BOUND = 2**63


@dataclass(frozen=True)
class Head:
    """The newest entry: what an operator records elsewhere to detect a truncated tail later."""

    seq: int
    hash: str
    at: datetime

    def anchor(self) -> str:
        """`SEQ:HASH`, the form `tactful audit verify --expect-head` reads."""
        return f"{self.seq}:{self.hash}"


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


def canonical_entry(
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_ref: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
    keyed: bool,
) -> bytes:
    """The canonical JSON that an entry's hash covers (its format version says whether it is keyed)."""
    document = {
        "v": _KEYED_FORMAT if keyed else _FORMAT,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject_ref": subject_ref,
        "details": {name: _canonical_number(value) for name, value in details.items()},
        "prev_hash": prev_hash,
    }
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_hash(
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_ref: str | None,
    details: Mapping[str, Any],
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """The hash of an entry: HMAC-SHA256 under `key` (the keyed segment), plain SHA-256 without
    (entries written before the key existed), over `canonical_entry`."""
    encoded = canonical_entry(
        at=at,
        actor=actor,
        action=action,
        subject_ref=subject_ref,
        details=details,
        prev_hash=prev_hash,
        keyed=key is not None,
    )
    if key is None:
        return hashlib.sha256(encoded).hexdigest()
    return hmac.new(key, encoded, hashlib.sha256).hexdigest()


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


def head_entry(session: Session) -> Head | None:
    """The newest entry's sequence number, hash and time, or None for an empty log."""
    row = session.execute(
        select(_TABLE.c.seq, _TABLE.c.hash, _TABLE.c.at).order_by(_TABLE.c.seq.desc()).limit(1)
    ).first()
    return None if row is None else Head(seq=row.seq, hash=row.hash, at=row.at)


def chain_key(session: Session, *, keystore: Keystore) -> ChainKey:
    """The chain's key, made on first use and anchored to the head at that moment. Call it with the
    append lock held (as `_append` does), so that no entry lands between the anchor and the key."""
    found = keystore.system.chain_key()
    if found is not None:
        return found
    current = head(session)
    anchor_seq, anchor_hash = (0, GENESIS) if current is None else current
    return keystore.system.create_chain_key(anchor_seq=anchor_seq, anchor_hash=anchor_hash)


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
    returned entries are detached copies. Records held back in this session (`held`) go first."""
    rows = _append(session, keystore, records)
    return [AuditEntry(**row) for row in rows[len(rows) - len(records) :]]


def append_records(session: Session, *, keystore: Keystore, records: Sequence[AuditRecord]) -> None:
    """`append_many` for callers that keep nothing of the entries (no copies made: a mapped
    instance costs more to make than its row costs to hash). Inside `held`, the records wait on
    its list instead."""
    waiting = session.info.get(_HELD)
    if waiting is not None:
        waiting.extend(records)
        return
    _append(session, keystore, records)


_HELD = "tactful.audit.held"


@contextmanager
def held(session: Session) -> Iterator[list[AuditRecord]]:
    """Hold back this session's `append_records` calls for the block: their records wait, in order,
    on the list it yields, which the caller appends with its own later in the same transaction (one
    lock and one head read for a request that audits in several steps, as collection does). An
    `append` or `append_many` in the block, whose caller wants its entry now, appends what waits
    first, so the chain keeps the order of the calls either way."""
    waiting: list[AuditRecord] = []
    before = session.info.get(_HELD)
    session.info[_HELD] = waiting
    try:
        yield waiting
    finally:
        if before is None:
            session.info.pop(_HELD, None)
        else:
            session.info[_HELD] = before


def _append(session: Session, keystore: Keystore, records: Sequence[AuditRecord]) -> list[dict[str, object]]:
    waiting = session.info.get(_HELD)
    if waiting:
        records = [*waiting, *records]
        waiting.clear()
    named = [r.subject_id for r in records if r.subject_id is not None]
    if len(named) > 1 and keystore.caching:
        # The salts of every subject named, in one keystore transaction rather than one each.
        keystore.ensure_subjects(named)
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
    keystore.system.chain_key()  # read outside the lock when it exists (cached afterwards)
    _lock_head(session)
    key = chain_key(session, keystore=keystore).key
    current = head(session)
    seq, prev_hash = (1, GENESIS) if current is None else (current[0] + 1, current[1])
    rows: list[dict[str, object]] = []
    for at, actor, action, subject_ref, cleaned in prepared:
        digest = compute_hash(
            at=at,
            actor=actor,
            action=action,
            subject_ref=subject_ref,
            details=cleaned,
            prev_hash=prev_hash,
            key=key,
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
