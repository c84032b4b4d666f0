"""The quarantine: received events that were not stored, kept for a while to show what went wrong.

    rejected message
        │ minimised: the fields the catalog reads for the request only (`retention: request`, such as
        │ context.ip and context.userAgent) and any subject token are removed first
        ▼
    raw text: escaped ASCII JSON, cut at the event size limit, never stored in clear
        ├─ names a subject ──▶ raw_enc, sealed with the subject's data key (erasure shreds it)
        └─ names nobody, or
           its ids are malformed ──▶ raw_enc, sealed with the quarantine key of the day it arrived
                                     (`quarantine/<date>` in the keystore)
    identifiers found in it (userId, anonymousId or previousId, an e-mail address) ──▶ user_ref,
        anonymous_ref, email_ref: keyed digests (the keystore's `digest`), as `identities` and the
        blind index hold them, so that export and erasure of a subject find rows that name them
    every row: expires_at = received_at + RETENTION; `purge` is the retention sweep
    rows written in clear by earlier versions: `seal_legacy`, run by `tactful migrate`

A day's quarantine key is dropped from the keystore when the first message of a day more than a
retention later is quarantined: by then every row it sealed is past its retention, so a copy of the
database kept anywhere cannot be read past it either.

A sealed row stays with the subject whose key sealed it, even when that subject is later merged into
another: the merged profile's id is exported and erased with the survivor's (its key too), so the
payload is neither lost to the export nor kept past an erasure.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.orm import Session

from tactful import jsontext
from tactful.catalog.retention import REQUEST_ONLY
from tactful.collect.message import MessageType, raw_text
from tactful.collect.models import Quarantine
from tactful.crypto import Keystore
from tactful.errors import KeyDestroyed
from tactful.profiles.models import Identity
from tactful.profiles.schemas import CatalogView, IdentityKind
from tactful.profiles.traits import EMAIL_INDEX, normalise_email
from tactful.types import new_row_id

RETENTION = timedelta(days=30)
"""How long a quarantined payload is kept by default (`Limits.quarantine_retention_days`,
`TACTFUL_LIMITS__QUARANTINE_RETENTION_DAYS`): quarantine is for finding faults in senders, which a
month covers."""

RAW_CONTEXT = "quarantine.raw"
DETAIL_LIMIT = 500
KEY_PREFIX = "quarantine/"

ALWAYS_REMOVED = frozenset({"context.ip", "context.userAgent", "context.tactful.subject_token"})
"""Removed whatever the catalog says: the client's address and browser are never needed to find a
sender's fault, and a subject token is proof, never kept."""

_EMAIL = re.compile(r"[^@\s\"'<>(),;:]+@[^@\s\"'<>(),;:]+\.[A-Za-z]{2,}")
_EMAIL_PATHS = (("traits", "email"), ("context", "traits", "email"), ("properties", "email"))
_MAX_DEPTH = 8


def never_stored(catalog: CatalogView | None) -> frozenset[str]:
    """The message paths removed before a message is quarantined: the context fields the catalog
    reads for the request only, and `ALWAYS_REMOVED`."""
    if catalog is None:
        return ALWAYS_REMOVED
    request_only = (
        atom.name
        for atom in catalog.atoms.values()
        if atom.name.startswith("context.") and atom.retention <= REQUEST_ONLY
    )
    return ALWAYS_REMOVED.union(name for name in request_only if "[]" not in name)


def minimise(message: object, paths: Iterable[str]) -> object:
    """`message` without the values at `paths` (dotted, from the message's top); nothing else changes
    and the message itself is not modified."""
    if not isinstance(message, dict):
        return message
    tree: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if node is None:
                break
        else:
            node[leaf] = None  # None: remove the value here, whatever is below it
    return _without(message, tree)


def _without(value: dict[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    if not tree.keys() & value.keys():
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        below = tree.get(key, {})
        if key in tree and below is None:
            continue
        kept[key] = _without(item, below) if below and isinstance(item, dict) else item
    return kept


def _identifier(value: object) -> str | None:
    # As validation reads ids: strings or numbers, empty meaning absent.
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _email(message: Mapping[str, Any]) -> str | None:
    for path in _EMAIL_PATHS:
        value: object = message
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and _EMAIL.fullmatch(value.strip()):
            return value
    return _email_in(message, 0)


def _email_in(value: object, depth: int) -> str | None:
    if isinstance(value, str):
        found = _EMAIL.search(value)
        return None if found is None else found[0]
    if depth >= _MAX_DEPTH:
        return None
    items: Iterable[object] = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    for item in items:
        found_in = _email_in(item, depth + 1)
        if found_in is not None:
            return found_in
    return None


def refs(keystore: Keystore, message: object) -> dict[str, str | None]:
    """The keyed digests of the identifiers a message names: the same digests `identities` (user
    and anonymous ids) and the blind index (e-mail addresses) hold for a subject."""
    found: dict[str, str | None] = {"user_ref": None, "anonymous_ref": None, "email_ref": None}
    if not isinstance(message, dict):
        return found
    user_id = _identifier(message.get("userId"))
    anonymous_id = _identifier(message.get("anonymousId")) or _identifier(message.get("previousId"))
    email = _email(message)
    if user_id is not None:
        found["user_ref"] = keystore.digest(IdentityKind.USER_ID, user_id)
    if anonymous_id is not None:
        found["anonymous_ref"] = keystore.digest(IdentityKind.ANONYMOUS_ID, anonymous_id)
    if email is not None:
        found["email_ref"] = keystore.digest(EMAIL_INDEX, normalise_email(email))
    return found


def key_name(received_at: datetime) -> str:
    """The keystore name of the key that seals what arrived on `received_at`'s day and names nobody."""
    return f"{KEY_PREFIX}{received_at.astimezone(UTC).date().isoformat()}"


def _seal_for_nobody(keystore: Keystore, text: str, received_at: datetime, retention: timedelta) -> bytes:
    name = key_name(received_at)
    if keystore.system.ensure(name):
        # A new day: the keys of days whose every row is past its retention go (a day is kept
        # longer, so a row received late on a day never outlives its key's day).
        oldest_live = (received_at - retention - timedelta(days=1)).astimezone(UTC).date()
        keystore.system.drop_before(KEY_PREFIX, name_below=oldest_live.isoformat())
    return keystore.system.encrypt(name, text, context=RAW_CONTEXT)


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
    catalog: CatalogView | None = None,
    retention: timedelta = RETENTION,
) -> dict[str, Any]:
    """The quarantine row of one rejected message, ready for a bulk insert: minimised (see
    `never_stored`; with no catalog, `ALWAYS_REMOVED` only) and sealed."""
    kept_message = minimise(message, never_stored(catalog))
    raw = raw_text(kept_message)
    kept = raw[:limit]
    kind = message.get("type") if isinstance(message, dict) else None
    if subject_id is None:
        sealed = _seal_for_nobody(keystore, kept, received_at, retention)
    else:
        sealed = keystore.encrypt(subject_id, kept, context=RAW_CONTEXT)
    return {
        "id": new_row_id(),
        "subject_id": subject_id,
        "reason": reason,
        "detail": (detail or "")[:DETAIL_LIMIT],
        "message_id": message_id,
        "type": kind if isinstance(kind, str) and kind in MessageType.__members__.values() else None,
        "raw": None,
        "raw_enc": sealed,
        **refs(keystore, kept_message),
        "truncated": len(raw) > limit,
        "received_at": received_at,
        "expires_at": received_at + retention,
        "write_key_id": write_key_id,
        "request_id": request_id,
    }


def seal_legacy(session: Session, *, keystore: Keystore, batch_size: int = 500) -> int:
    """Minimise and seal the payloads that rows written before sealing hold in clear (`raw`), and
    record the digests of the identifiers they name; how many. Idempotent (`tactful migrate`)."""
    done = 0
    while True:
        rows = session.scalars(
            select(Quarantine).where(Quarantine.raw.is_not(None)).order_by(Quarantine.id).limit(batch_size)
        ).all()
        for held in rows:
            assert held.raw is not None
            if held.subject_id is not None and not keystore.has_subject(held.subject_id):
                held.raw = None  # its subject was erased: no key must be made for it again
                continue
            text, message = held.raw, None
            try:
                message = json.loads(text)
            except ValueError:  # cut at the size limit: sealed as it is
                pass
            else:
                text = raw_text(minimise(message, ALWAYS_REMOVED))
            if held.subject_id is None:
                kept_for = held.expires_at - held.received_at  # the row's own period
                held.raw_enc = _seal_for_nobody(keystore, text, held.received_at, kept_for)
            else:
                held.raw_enc = keystore.encrypt(held.subject_id, text, context=RAW_CONTEXT)
            for name, digest in refs(keystore, message).items():
                setattr(held, name, digest)
            held.raw = None
        session.flush()
        done += len(rows)
        if len(rows) < batch_size:
            return done


def read_raw(keystore: Keystore, held: Quarantine) -> str | None:
    """The payload of a quarantine row, decrypted (KeyDestroyed once its key is gone). Rows written
    before payloads were always sealed hold `raw` in clear until `seal_legacy` seals them."""
    if held.raw_enc is None:
        return held.raw
    if held.subject_id is None:
        return keystore.system.decrypt(key_name(held.received_at), held.raw_enc, context=RAW_CONTEXT)
    return keystore.decrypt(held.subject_id, held.raw_enc, context=RAW_CONTEXT)


# -- a subject's rows -------------------------------------------------------------------------


_REFS = ("user_ref", "anonymous_ref", "email_ref")
_CHUNK = 500


def subject_digests(session: Session, *, keystore: Keystore | None, subject_id: uuid.UUID) -> set[str]:
    """The digests a subject's identifiers are known by: its identities, and (with the keystore)
    the e-mail addresses indexed for it."""
    digests = set(session.scalars(select(Identity.digest).where(Identity.subject_id == subject_id)))
    if keystore is not None:
        digests |= keystore.index_digests(subject_id)
    return digests


def _naming(digests: Collection[str]) -> list[ColumnElement[bool]]:
    ordered = sorted(digests)
    chunks = [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]
    return [getattr(Quarantine, ref).in_(chunk) for ref in _REFS for chunk in chunks]


def _of_subject(
    session: Session, keystore: Keystore | None, subject_id: uuid.UUID, *, sealed_for_others: bool
) -> ColumnElement[bool]:
    """Rows of the subject: its own, and those that name one of its identifiers (sealed for nobody,
    or with `sealed_for_others`, for anyone)."""
    naming = _naming(subject_digests(session, keystore=keystore, subject_id=subject_id))
    own = Quarantine.subject_id == subject_id
    if not naming:
        return own
    if sealed_for_others:
        return or_(own, *naming)
    return or_(own, and_(Quarantine.subject_id.is_(None), or_(*naming)))


def export_rows(
    session: Session,
    *,
    keystore: Keystore | None,
    subject_id: uuid.UUID,
    newest: int | None = None,
) -> list[dict[str, object]]:
    """The subject's quarantined messages, payloads decrypted: its own, and those that named nobody
    the engine could resolve but one of its identifiers (without a keystore, or once a payload's key
    is gone, it reads as None). Rows sealed for another subject are that subject's to export.
    Oldest first; with `newest`, only that many of the newest, newest first (an operator's look-up)."""
    query = select(Quarantine).where(_of_subject(session, keystore, subject_id, sealed_for_others=False))
    if newest is None:
        query = query.order_by(Quarantine.received_at)
    else:
        query = query.order_by(Quarantine.received_at.desc(), Quarantine.id.desc()).limit(newest)
    held = session.scalars(query)
    hidden = {"subject_id", "raw", "raw_enc", *_REFS}
    columns = [c.key for c in Quarantine.__table__.columns if c.key not in hidden]
    exported: list[dict[str, object]] = []
    for q in held:
        item = {c: jsontext.column_value(getattr(q, c)) for c in columns}
        item["raw"] = _readable(keystore, q)
        exported.append(item)
    return exported


def _readable(keystore: Keystore | None, held: Quarantine) -> str | None:
    if keystore is None:
        return held.raw
    try:
        return read_raw(keystore, held)
    except KeyDestroyed:
        return None


def erase(session: Session, *, keystore: Keystore | None, subject_id: uuid.UUID) -> int:
    """Delete the subject's quarantined messages and every one that names one of its identifiers,
    whoever's key sealed it; how many. Run it while the subject's identities and blind-index entries
    still exist (pass the keystore: without it, rows found only by an e-mail address stay)."""
    statement = delete(Quarantine).where(_of_subject(session, keystore, subject_id, sealed_for_others=True))
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(result, "rowcount", 0) or 0)


def purge(session: Session, *, at: datetime) -> int:
    """Delete quarantined messages whose retention ended by `at`; returns how many."""
    result = session.execute(delete(Quarantine).where(Quarantine.expires_at <= at))
    return int(getattr(result, "rowcount", 0) or 0)
